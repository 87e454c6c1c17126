use leptos::prelude::*;
use model::{topology::human_bytes, HaproxyStats, ListenerRole};

#[component]
pub fn HaproxyPanel(stats: Option<HaproxyStats>, error: Option<String>, stats_url: String) -> impl IntoView {
    let listeners = stats
        .map(|s| s.listeners)
        .unwrap_or_default()
        .into_iter()
        .map(|l| {
            let label = match l.role {
                ListenerRole::Write => format!("{} (write)", l.name),
                ListenerRole::Read => format!("{} (read)", l.name),
                ListenerRole::Other => l.name.clone(),
            };
            let servers = l
                .servers
                .iter()
                .map(|s| {
                    let cls = if s.is_up() { "badge up" } else { "badge down" };
                    view! {
                        <tr data-testid="haproxy-server" data-listener=l.name.clone() data-server=s.name.clone() data-status=s.status.clone()>
                            <td>{s.name.clone()}</td>
                            <td><span class=cls>{s.status.clone()}</span></td>
                            <td>{s.check_status.clone()}{s.check_duration_ms.map(|d| format!(" in {d} ms")).unwrap_or_default()}</td>
                            <td class="num">{s.sessions_current}" / "{s.sessions_total}</td>
                            <td class="num">{human_bytes(s.bytes_in)}" / "{human_bytes(s.bytes_out)}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <tbody class="listener">
                    <tr class="listener-head">
                        <th colspan="3">{label}</th>
                        <th class="num">{l.sessions_current}" / "{l.sessions_total}</th>
                        <th class="num">{human_bytes(l.bytes_in)}" / "{human_bytes(l.bytes_out)}</th>
                    </tr>
                    {servers}
                </tbody>
            }
        })
        .collect_view();
    view! {
        <section class="panel">
            <h2>"HAProxy (pg-router) "<a class="small" href=stats_url target="_blank" rel="noopener">"stats page ↗"</a></h2>
            {error.map(|e| view! { <p class="notice warn" data-testid="haproxy-error">{e}</p> })}
            <table class="haproxy" data-testid="haproxy">
                <thead>
                    <tr><th>"Server"</th><th>"Status"</th><th>"Last check"</th><th>"Sessions (cur / total)"</th><th>"Bytes (in / out)"</th></tr>
                </thead>
                {listeners}
            </table>
        </section>
    }
}
