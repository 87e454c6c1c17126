use leptos::prelude::*;
use model::operations::OpKind;
use model::{topology::human_bytes, Topology};

use super::operations::{request, OpLauncher};

use crate::format::{duration_between, utc_time};

#[component]
pub fn TopologyPanel(
    topology: Topology,
    /// Members a running console operation acts on, and which.
    #[prop(optional)]
    busy: std::collections::BTreeMap<String, String>,
    #[prop(optional)] can_operate: bool,
    #[prop(optional)] can_admin: bool,
) -> impl IntoView {
    let has_leader = topology.leader().is_some();
    let launcher = use_context::<OpLauncher>().map(|l| l.0);
    let now = topology.observed_at_ms;
    let rows = topology
        .members
        .iter()
        .map(|m| {
            let lag = match (m.role.is_replica(), m.lag_bytes) {
                _ if !m.reachable => "—".to_string(),
                (false, _) => "".to_string(),
                (true, Some(l)) => human_bytes(l),
                (true, None) => "unknown".to_string(),
            };
            let busy_with = busy.get(&m.name).cloned();
            let state_note = match (m.reachable, m.unreachable_since_ms, &busy_with) {
                (false, Some(since), Some(op)) => format!(
                    " (since {}, {}): expected, {op} is running",
                    utc_time(since),
                    duration_between(since, now)
                ),
                (false, Some(since), None) => {
                    format!(" (since {}, {})", utc_time(since), duration_between(since, now))
                }
                _ => String::new(),
            };
            let tags = m
                .tags
                .iter()
                .filter(|(_, v)| v.as_str() != "false")
                .map(|(k, v)| if v == "true" { k.clone() } else { format!("{k}={v}") })
                .collect::<Vec<_>>()
                .join(", ");
            let row_class = if !m.reachable && busy_with.is_some() {
                "member busy"
            } else if !m.reachable {
                "member unreachable"
            } else if m.role.is_leader() {
                "member leader"
            } else {
                "member"
            };
            view! {
                <tr
                    class=row_class
                    data-testid="member-row"
                    data-member=m.name.clone()
                    data-role=m.role.label()
                    data-state=m.state.clone()
                >
                    <td class="name">{m.name.clone()}</td>
                    <td><span class=format!("role {}", m.role.label().to_lowercase().replace(' ', "-"))>{m.role.label()}</span></td>
                    <td class=format!("state {}", m.state)>{m.state.clone()}{state_note}</td>
                    <td>{m.host_port()}</td>
                    <td class="num">{m.timeline.map(|t| t.to_string()).unwrap_or_default()}</td>
                    <td class="num" data-testid="member-lag">{lag}</td>
                    <td>{if m.pending_restart { "pending restart" } else { "" }}</td>
                    <td>{tags}</td>
                    <td class="muted">{m.server_version.clone().map(|v| format!("PostgreSQL {v}")).unwrap_or_default()}</td>
                    {(can_operate && launcher.is_some()).then(|| {
                        let l = launcher.expect("checked");
                        let name = m.name.clone();
                        let button = move |kind: OpKind, label: &'static str, testid: &'static str| {
                            let name = name.clone();
                            view! {
                                <button class="small" data-testid=testid
                                    on:click=move |_| l.set(Some(request(kind, &name)))>{label}</button>
                            }
                        };
                        view! {
                            <td class="actions">
                                {m.role.is_replica().then(|| button(OpKind::Switchover, "Switchover here", "op-switchover"))}
                                {m.role.is_replica().then(|| button(OpKind::Backup, "Back up", "op-backup"))}
                                {button(OpKind::Restart, "Restart", "op-restart")}
                                {button(OpKind::Reload, "Reload", "op-reload")}
                                {m.role.is_replica().then(|| button(OpKind::ReinitializeMember, "Reinit", "op-reinit"))}
                                {(!m.role.is_leader() && (!has_leader || can_admin)).then(|| button(OpKind::Failover, "Failover here", "op-failover"))}
                            </td>
                        }
                    })}
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel">
            <h2>"Topology"</h2>
            <table class="topology" data-testid="topology">
                <thead>
                    <tr>
                        <th>"Member"</th><th>"Role"</th><th>"State"</th><th>"Host"</th>
                        <th>"TL"</th><th>"Lag"</th><th>"Restart"</th><th>"Tags"</th><th>"Version"</th>
                        {can_operate.then(|| view! { <th>"Operations"</th> })}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}
