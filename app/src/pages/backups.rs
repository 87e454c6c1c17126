//! The backup catalog: download, verify, restore instructions. New backups
//! start from the Overview ("Back up" on a replica) with live progress.

use leptos::prelude::*;

use crate::api::{backups_list, BackupVerify};
use crate::format::utc_time;

#[component]
pub fn BackupsPage() -> impl IntoView {
    let verify = ServerAction::<BackupVerify>::new();
    let tick = RwSignal::new(0u64);
    let data = Resource::new(move || (verify.version().get(), tick.get()), |_| backups_list());
    // New backups (started from the Overview) appear as they finish.
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(move || tick.update(|t| *t += 1), std::time::Duration::from_secs(2)) {
            on_cleanup(move || h.clear());
        }
    });
    let body = move || {
        Suspend::new(async move {
            match data.await {
                Err(e) => view! { <p class="banner error">{format!("Cannot read the backups: {e}")}</p> }.into_any(),
                Ok(rows) if rows.is_empty() => view! {
                    <p class="notice">"No backups yet: use “Back up” on a replica in the Overview."</p>
                }
                .into_any(),
                Ok(rows) => rows
                    .into_iter()
                    .map(|b| {
                        let ok = b.status == "ok";
                        let verified = match b.verified_ok {
                            Some(true) => "verified ✓".to_string(),
                            Some(false) => "CORRUPTED (sha256 mismatch)".to_string(),
                            None => "not verified".to_string(),
                        };
                        let id = b.id.clone();
                        view! {
                            <tr data-testid="backup-row" data-id=b.id.clone() data-status=b.status.clone()
                                data-verified=b.verified_ok.map(|v| v.to_string()).unwrap_or_default()>
                                <td>{utc_time(b.started_at_ms)}</td>
                                <td>{b.member.clone()}</td>
                                <td>{b.status.clone()}{(!b.error.is_empty()).then(|| format!(": {}", b.error))}</td>
                                <td class="num">{format!("{:.1} MB", b.archive_bytes as f64 / 1_048_576.0)}</td>
                                <td>{b.compression.clone()}</td>
                                <td class="num">{format!("{:.1} s", b.duration_ms as f64 / 1000.0)}</td>
                                <td class="num">{format!("{:.1} s", b.downtime_ms as f64 / 1000.0)}</td>
                                <td>{verified}</td>
                                <td>
                                    {ok.then(|| view! {
                                        <a href=format!("/backups/download/{}", b.id) download>"Download"</a>" "
                                        <ActionForm action=verify attr:class="inline">
                                            <input type="hidden" name="id" value=id/>
                                            <button type="submit" data-testid="verify-backup">"Verify"</button>
                                        </ActionForm>
                                        <details><summary>"Restore"</summary><pre>{b.restore.clone()}</pre></details>
                                    })}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()
                    .into_any(),
            }
        })
    };
    view! {
        <section class="page panel">
            <h2>"Backups"</h2>
            <table class="backups">
                <thead><tr>
                    <th>"Started (UTC)"</th><th>"Member"</th><th>"Status"</th><th>"Size"</th><th>"Compression"</th>
                    <th>"Duration"</th><th>"Replica down"</th><th>"Verified"</th><th></th>
                </tr></thead>
                <tbody><Transition fallback=|| ()>{body}</Transition></tbody>
            </table>
        </section>
    }
}
