use crate::components::sync_hydrate::IntoAnySync;
use leptos::prelude::*;
use model::{topology::format_lsn, HistoryEntry, OperationRecord};

/// How many entries the Overview lists (the Timeline page has them all).
const SHOWN: usize = 12;

#[component]
pub fn HistoryPanel(
    history: Vec<HistoryEntry>,
    error: Option<String>,
    #[prop(optional)] operations: Vec<OperationRecord>,
) -> impl IntoView {
    let empty = history.is_empty() && error.is_none() && operations.is_empty();
    // Patroni's timeline switches and the console's own operations, newest first.
    // Ordered by time, the timeline number breaking ties; entries Patroni
    // gave no time (a history rebuilt from PostgreSQL's files after a
    // restore) go last, by timeline.
    let total = history.len() + operations.len();
    let mut merged: Vec<((i64, u64), AnyView)> = history
        .into_iter()
        .map(|h| {
            let at = (h.at_ms.unwrap_or(i64::MIN), h.timeline);
            let when = match (h.at_ms, h.timestamp) {
                (Some(ms), _) => view! { <crate::components::time::Time ms/> }.into_any_sync(),
                (None, t) => t.map(|t| short_timestamp(&t)).unwrap_or_default().into_any_sync(),
            };
            let row = view! {
                <tr data-testid="history-row" data-tl=h.timeline.to_string() data-ms=h.at_ms.map(|m| m.to_string())>
                    <td class="num">{h.timeline}</td>
                    <td>{format_lsn(h.lsn)}</td>
                    <td>{h.reason}</td>
                    <td>{when}</td>
                    <td>{h.new_leader.unwrap_or_default()}</td>
                </tr>
            };
            (at, row.into_any_sync())
        })
        .collect();
    merged.extend(operations.into_iter().map(|o| {
        let row = view! {
            <tr class=if o.ok { "console-op" } else { "console-op failed" } data-testid="history-op" data-ms=o.at_ms.to_string()>
                <td></td>
                <td class="muted">"console"</td>
                <td>{format!("{} by {}: {}", o.title, o.user, o.summary)}</td>
                <td><crate::components::time::Time ms=o.at_ms/></td>
                <td></td>
            </tr>
        };
        ((o.at_ms, 0), row.into_any_sync())
    }));
    merged.sort_by(|a, b| b.0.cmp(&a.0));
    let rows = merged.into_iter().take(SHOWN).map(|(_, v)| v).collect_view();
    let more = (total > SHOWN).then(|| {
        view! {
            <p class="muted" data-testid="history-more">
                {format!("The newest {SHOWN} of {total}. ")}
                <a href="/timeline">"The whole story is on the Timeline page."</a>
            </p>
        }
    });
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
            {more}
        </section>
    }
}

/// `2026-11-28T21:00:16.544624+00:00` → `2026-11-28 21:00:16+00:00`
fn short_timestamp(t: &str) -> String {
    match (t.get(..19), t.rfind(['+', 'Z'])) {
        (Some(head), Some(i)) if i >= 19 => format!("{} {}", &head[..10], &head[11..]) + &t[i..],
        (Some(head), _) => format!("{} {}", &head[..10], &head[11..]),
        _ => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shortens_patroni_timestamps() {
        assert_eq!(
            super::short_timestamp("2026-11-28T21:00:16.544624+00:00"),
            "2026-11-28 21:00:16+00:00"
        );
        assert_eq!(super::short_timestamp("2026-11-28T21:00:16"), "2026-11-28 21:00:16");
        assert_eq!(super::short_timestamp("x"), "x");
    }
}
