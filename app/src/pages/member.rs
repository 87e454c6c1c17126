//! A member's page (`/member?name=pg-1`): its replication lag over the last
//! hour or day as a chart, with links to its timeline and its log. The
//! chart is redrawn from the console's memory every few seconds (no read of
//! the cluster: the console samples it anyway).

use std::time::Duration;

use crate::components::sync_hydrate::IntoAnySync;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use model::lag::LagRange;

use crate::api::{lag_history, whoami};
use crate::components::lag_chart::LagChart;

/// How often the chart is redrawn.
const REDRAW: Duration = Duration::from_secs(5);

#[component]
pub fn MemberPage() -> impl IntoView {
    let q = use_query_map();
    let name = move || q.with(|m| m.get("name").map(|s| s.to_string()).unwrap_or_default());
    let range = move || {
        q.with(|m| m.get("range").and_then(|r| LagRange::parse(&r)))
            .unwrap_or_default()
    };
    let data = crate::codec::resource(
        move || (name(), range()),
        |(n, r)| lag_history(Some(r.as_str().to_string()), Some(n)),
    );
    let me = crate::codec::resource(|| (), |_| whoami());
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(move || data.refetch(), REDRAW) {
            on_cleanup(move || h.clear());
        }
    });
    let tabs = move || {
        [LagRange::Hour, LagRange::Day]
            .map(|r| {
                let label = match r {
                    LagRange::Hour => "last hour",
                    LagRange::Day => "last 24 h",
                };
                view! {
                    <a class=if range() == r { "tab active" } else { "tab" } data-testid=format!("lag-range-{}", r.as_str())
                        href=format!("/member?name={}&range={}", name(), r.as_str())>{label}</a>
                }
            })
            .collect_view()
    };
    let chart = move || {
        Suspend::new(async move {
            match data.await {
                // No member named: the replicas with a chart.
                Ok(h) if name().is_empty() => {
                    let links = h
                        .series
                        .iter()
                        .map(|s| view! { " "<a href=format!("/member?name={}", s.member)>{s.member.clone()}</a> })
                        .collect_view();
                    view! { <p class="notice" data-testid="member-pick">"Pick a replica:"{links}</p> }.into_any_sync()
                }
                Ok(h) => view! { <LagChart history=h member=name()/> }.into_any_sync(),
                Err(e) => {
                    view! { <p class="banner error" data-testid="lag-error">{format!("Cannot read the lag: {e}")}</p> }
                        .into_any_sync()
                }
            }
        })
    };
    let links = move || {
        Suspend::new(async move {
            let logs = me.await.map(|m| m.can_read_logs).unwrap_or(false);
            let n = name();
            view! {
                <a href=format!("/timeline?subject={n}") data-testid="member-timeline">{format!("Timeline of {n}")}</a>
                {logs.then(|| view! { " · "<a href=format!("/logs?container={n}") data-testid="member-logs">{format!("Log of {n}")}</a> })}
            }
        })
    };
    view! {
        <section class="page member-page panel">
            <div class="summary">
                <h1>{name}</h1>
                <span class="refreshed"><Transition>{links}</Transition></span>
            </div>
            <h2>"Replication lag"</h2>
            <nav class="tabs">{tabs}</nav>
            <Transition fallback=|| view! { <p class="notice">"Loading…"</p> }>{chart}</Transition>
            <p class="muted">
                "Receive lag: WAL the leader wrote that this replica has not received. Replay lag: not yet applied. \
                 The console samples them every few seconds, whether or not anyone looks; the hour is kept in \
                 memory, the day by the minute in its database. Crossings of the healthy bound are on the "
                <a href="/timeline?kind=member">"timeline"</a>"."
            </p>
        </section>
    }
}
