use leptos::prelude::*;
use model::containers::{disagreements, ContainerState, ContainerUsage};
use model::operations::OpKind;
use model::{topology::human_bytes, Member, Role, Topology};

use super::lag_chart::LagSparkline;
use super::operations::{target, OpLauncher, OpTarget};
use model::lag::LagHistory;

use crate::format::{duration_between, utc_time};

#[component]
pub fn TopologyPanel(
    topology: Topology,
    /// Members a running console operation acts on, and which.
    #[prop(optional)]
    busy: std::collections::BTreeMap<String, String>,
    #[prop(optional)] can_operate: bool,
    #[prop(optional)] can_admin: bool,
    /// The members' containers as Docker sees them (empty when unknown).
    #[prop(optional)]
    containers: Vec<ContainerState>,
    /// Each replica's lag over the last hour, for the sparklines (None
    /// until the page has it).
    lag: Option<LagHistory>,
) -> impl IntoView {
    let has_leader = topology.leader().is_some();
    let launcher = use_context::<OpLauncher>().map(|l| l.0).filter(|_| can_operate);
    let now = topology.observed_at_ms;
    let flags = disagreements(&topology, &containers, &busy, now);
    let rows = topology
        .members
        .into_iter()
        .map(|m| {
            let busy_with = busy.get(&m.name).cloned();
            // A forced failover (a healthy leader) is offered to those allowed it.
            let may_fail_over = !has_leader || can_admin;
            let container = containers
                .iter()
                .find(|c| c.name == m.name)
                .map(|c| (c.summary(now), c.usage.clone()));
            let flags: Vec<String> = flags
                .iter()
                .filter(|(n, _)| *n == m.name)
                .map(|(_, f)| f.clone())
                .collect();
            let lag = lag.clone();
            view! { <MemberRow m busy_with now launcher may_fail_over container flags lag/> }
        })
        .collect_view();
    view! {
        <section class="panel">
            <h2>"Topology"</h2>
            <table class="topology" data-testid="topology">
                <thead>
                    <tr>
                        <th>"Member"</th><th>"Role"</th><th>"State"</th><th>"Host"</th>
                        <th>"TL"</th><th>"Lag"</th><th>"Restart"</th><th>"Tags"</th><th>"Version"</th><th>"Container"</th>
                        {can_operate.then(|| view! { <th>"Operations"</th> })}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

fn lag_text(m: &Member) -> String {
    match (m.role.is_replica(), m.lag_bytes) {
        _ if !m.reachable => "—".to_string(),
        (false, _) => "".to_string(),
        (true, Some(l)) => human_bytes(l),
        (true, None) => "unknown".to_string(),
    }
}

/// Since when a member does not answer, and whether an operation explains it.
fn state_note(m: &Member, busy_with: Option<&String>, now: i64) -> String {
    match (m.reachable, m.unreachable_since_ms, busy_with) {
        (false, Some(since), Some(op)) => {
            format!(
                " (since {}, {}): expected, {op} is running",
                utc_time(since),
                duration_between(since, now)
            )
        }
        (false, Some(since), None) => format!(" (since {}, {})", utc_time(since), duration_between(since, now)),
        _ => String::new(),
    }
}

fn tags_text(m: &Member) -> String {
    m.tags
        .iter()
        .filter(|(_, v)| v.as_str() != "false")
        .map(|(k, v)| if v == "true" { k.clone() } else { format!("{k}={v}") })
        .collect::<Vec<_>>()
        .join(", ")
}

fn row_class(m: &Member, busy: bool) -> &'static str {
    if !m.reachable && busy {
        "member busy"
    } else if !m.reachable {
        "member unreachable"
    } else if m.role.is_leader() {
        "member leader"
    } else {
        "member"
    }
}

#[component]
fn MemberRow(
    m: Member,
    busy_with: Option<String>,
    now: i64,
    /// Set when the caller may operate: the buttons open the operation panel.
    launcher: Option<RwSignal<Option<OpTarget>>>,
    may_fail_over: bool,
    /// Docker's view of its container, in a line, and its CPU and memory.
    container: Option<(String, Option<ContainerUsage>)>,
    /// Where Docker and Patroni disagree about it.
    flags: Vec<String>,
    lag: Option<LagHistory>,
) -> impl IntoView {
    let note = state_note(&m, busy_with.as_ref(), now);
    let flags = flags
        .into_iter()
        .map(|f| view! { <br/><span class="flag" data-testid="member-flag">{"⚠ "}{f}</span> })
        .collect_view();
    let spark = lag
        .filter(|_| m.role.is_replica())
        .map(|history| view! { <br/><LagSparkline history member=m.name.clone()/> });
    let actions = launcher.map(|l| view! { <MemberActions name=m.name.clone() role=m.role.clone() l may_fail_over/> });
    view! {
        <tr
            class=row_class(&m, busy_with.is_some())
            data-testid="member-row"
            data-member=m.name.clone()
            data-role=m.role.label()
            data-state=m.state.to_string()
        >
            <td class="name"><a href=format!("/member?name={}", m.name) data-testid="member-link">{m.name.clone()}</a></td>
            <td><span class=format!("role {}", m.role.label().to_lowercase().replace(' ', "-"))>{m.role.label()}</span></td>
            <td class=format!("state {}", m.state)>{m.state.to_string()}{note}</td>
            <td>{m.host_port()}</td>
            <td class="num">{m.timeline.map(|t| t.to_string()).unwrap_or_default()}</td>
            <td class="num"><span data-testid="member-lag">{lag_text(&m)}</span>{spark}</td>
            <td>{if m.pending_restart { "pending restart" } else { "" }}</td>
            <td>{tags_text(&m)}</td>
            <td class="muted">{m.server_version.clone().map(|v| format!("PostgreSQL {v}")).unwrap_or_default()}</td>
            <td data-testid="member-container">{container.map(|(line, usage)| view! { {line}<UsageLine usage/> })}{flags}</td>
            {actions}
        </tr>
    }
}

/// The operations offered on one member.
#[component]
fn MemberActions(name: String, role: Role, l: RwSignal<Option<OpTarget>>, may_fail_over: bool) -> impl IntoView {
    let button = move |kind: OpKind, label: &'static str, testid: &'static str| {
        let name = name.clone();
        view! {
            <button class="small" data-testid=testid
                on:click=move |_| l.set(Some(target(kind, &name)))>{label}</button>
        }
    };
    view! {
        <td class="actions">
            {role.is_replica().then(|| button(OpKind::Switchover, "Switchover here", "op-switchover"))}
            {role.is_replica().then(|| button(OpKind::Backup, "Back up", "op-backup"))}
            {role.is_replica().then(|| button(OpKind::BaseBackup, "Hot base backup", "op-base-backup"))}
            {button(OpKind::Restart, "Restart", "op-restart")}
            {button(OpKind::Reload, "Reload", "op-reload")}
            {role.is_replica().then(|| button(OpKind::ReinitializeMember, "Reinit", "op-reinit"))}
            {(!role.is_leader() && may_fail_over).then(|| button(OpKind::Failover, "Failover here", "op-failover"))}
        </td>
    }
}

/// "CPU 1.2 % · 103 MiB" under a container's state, when sampled.
#[component]
fn UsageLine(usage: Option<ContainerUsage>) -> impl IntoView {
    usage.map(|u| {
        view! {
            <br/>
            <span class="muted" data-testid="container-usage" data-cpu=format!("{:.2}", u.cpu_percent)
                data-memory=u.memory_bytes.to_string()>{u.line()}</span>
        }
    })
}

/// The stack's other containers (etcd, pg-router, traefik), as Docker sees them.
#[component]
pub fn StackContainers(
    containers: Vec<ContainerState>,
    members: Vec<String>,
    now: i64,
    error: Option<String>,
) -> impl IntoView {
    let rows = containers
        .into_iter()
        .filter(|c| !members.contains(&c.name))
        .map(|c| {
            let bad = !matches!(c.status, model::containers::ContainerStatus::Running) || c.oom_killed;
            view! {
                <tr data-testid="stack-container" data-name=c.name.clone() data-status=c.status.as_str() class=if bad { "member unreachable" } else { "member" }>
                    <td class="name">{c.name.clone()}</td>
                    <td>{c.summary(now)}<UsageLine usage=c.usage.clone()/></td>
                    <td class="muted">{c.image.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel">
            <h2>"Containers"</h2>
            {error.map(|e| view! { <p class="banner error" data-testid="containers-error">{format!("Docker cannot be asked: {e}")}</p> })}
            <table class="topology"><tbody>{rows}</tbody></table>
        </section>
    }
}
