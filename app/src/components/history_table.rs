use leptos::prelude::*;
use model::{topology::format_lsn, HistoryEntry};

#[component]
pub fn HistoryPanel(history: Vec<HistoryEntry>, error: Option<String>) -> impl IntoView {
    let empty = history.is_empty() && error.is_none();
    let rows = history
        .into_iter()
        .rev()
        .map(|h| {
            view! {
                <tr data-testid="history-row">
                    <td class="num">{h.timeline}</td>
                    <td>{format_lsn(h.lsn)}</td>
                    <td>{h.reason}</td>
                    <td>{h.timestamp.unwrap_or_default()}</td>
                    <td>{h.new_leader.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel">
            <h2>"Timeline history"</h2>
            {error.map(|e| view! { <p class="notice warn">{e}</p> })}
            {empty.then(|| view! { <p class="notice">"No failover or switchover yet: the cluster is on its first timeline."</p> })}
            <table class="history">
                <thead>
                    <tr><th>"TL"</th><th>"Ended at LSN"</th><th>"Reason"</th><th>"When"</th><th>"New leader"</th></tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}
