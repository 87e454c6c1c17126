//! The Overview's WAL archive panel: pg-wal receiving, behind or stopped,
//! what the archive holds, its gaps, and what the leader keeps for it.

use crate::components::sync_hydrate::IntoAnySync;
use leptos::prelude::*;
use model::topology::human_bytes;
use model::wal::{WalArchive, WalReceiverStatus};

use crate::components::time::Time;

/// The alert raised when the slot makes the leader keep too much WAL.
#[component]
pub fn WalArchiveAlert(wal: Option<WalArchive>) -> impl IntoView {
    wal.and_then(|w| w.retained_alert).map(|a| {
        view! { <div class="banner warn" data-testid="wal-alert">{a}</div> }
    })
}

#[component]
pub fn WalArchivePanel(wal: Option<WalArchive>) -> impl IntoView {
    let w = wal?;
    let class = match w.status {
        WalReceiverStatus::Receiving => "healthy",
        WalReceiverStatus::Behind => "lagging",
        WalReceiverStatus::Stopped | WalReceiverStatus::Unknown => "degraded",
    };
    let f = w.files.clone();
    let newest = match f.newest_segment.clone() {
        Some(s) => view! {
            <span data-testid="wal-newest">{s}</span>" archived "
            {f.newest_at_ms.map(|ms| view! { <Time ms/> })}
        }
        .into_any_sync(),
        None => view! { <span data-testid="wal-newest">"none yet"</span> }.into_any_sync(),
    };
    let gaps = f
        .gaps
        .iter()
        .map(|g| {
            view! {
                <li data-testid="wal-gap" data-from=g.from_lsn.clone() data-to=g.to_lsn.clone()>
                    {format!("no WAL from {} to {}", g.from_lsn, g.to_lsn)}
                    {g.after_ms.map(|ms| view! { " (after "<Time ms/>")" })}
                    ": no restore can reach a time in this range"
                </li>
            }
        })
        .collect_view();
    let timelines = f.timelines.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    Some(view! {
        <section class="panel wal-archive" data-testid="wal-archive">
            <h2>
                "WAL archive "
                <span class=format!("status-pill {class}") data-testid="wal-status" data-status=w.status.label()>
                    {w.summary()}
                </span>
            </h2>
            {w.error.clone().map(|e| view! { <p class="error" data-testid="wal-error">{e}</p> })}
            <dl class="facts">
                <dt>"Newest segment"</dt>
                <dd>{newest}</dd>
                <dt>"Receiving"</dt>
                <dd>{f.receiving_segment.clone().unwrap_or_else(|| "nothing".into())}</dd>
                <dt>"Archive"</dt>
                <dd data-testid="wal-size" data-segments=f.segments.to_string()>
                    {format!("{} segments, {} (compressed), from {}, timelines {}",
                        f.segments, human_bytes(f.bytes), f.oldest_lsn.clone().unwrap_or_else(|| "-".into()),
                        if timelines.is_empty() { "-".to_string() } else { timelines })}
                </dd>
                <dt>"Kept on the leader"</dt>
                <dd data-testid="wal-retained">{w.retained_bytes.map(human_bytes).unwrap_or_else(|| "unknown".into())}</dd>
                <dt>"System id"</dt>
                <dd>{w.system_identifier.clone().unwrap_or_else(|| "unknown".into())}</dd>
            </dl>
            {(!f.gaps.is_empty()).then(|| view! { <ul class="gaps">{gaps}</ul> })}
        </section>
    })
}
