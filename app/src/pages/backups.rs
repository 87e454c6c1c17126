//! The backup catalog: running backups (live), download, verify (sha256 +
//! test restore), delete (admins, typed id), restore instructions, and
//! "Restore the cluster from this backup…" and "Restore the cluster to a
//! point in time…" (admins). Below it, what
//! restores keep, with "Discard". New backups start from the Overview
//! ("Back up" on a replica).

use crate::components::sync_hydrate::IntoAnySync;
use crate::components::time::Time;
use leptos::prelude::*;
use model::backups::{BackupRow, BackupStatus, ImportFile, KeptData};

use crate::api::{backups_list, imports_list, kept_list, whoami, BackupDelete, BackupImport, BackupVerify};
use crate::components::operations::{discard_target, restore_target, target, LiveJobs, OpLauncher, OperationPanel};
use crate::components::post_form::PostForm;
use crate::format::utc_time;
use model::operations::OpKind;

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1_048_576.0)
}

#[component]
pub fn BackupsPage() -> impl IntoView {
    let verify = ServerAction::<BackupVerify>::new();
    let delete = ServerAction::<BackupDelete>::new();
    let me = crate::codec::resource(|| (), |_| whoami());
    let launcher = RwSignal::new(None);
    provide_context(OpLauncher(launcher));
    let tick = RwSignal::new(0u64);
    let kept = crate::codec::resource(move || tick.get(), |_| kept_list());
    let data = crate::codec::resource(
        move || (verify.version().get(), delete.version().get(), tick.get()),
        |_| backups_list(),
    );
    // New backups (started from the Overview) appear as they finish.
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(move || tick.update(|t| *t += 1), std::time::Duration::from_secs(2)) {
            on_cleanup(move || h.clear());
        }
    });
    let body = move || {
        Suspend::new(async move {
            let me = me.await.ok();
            let (can_operate, can_delete) = me.map(|m| (m.can_operate, m.can_admin)).unwrap_or((false, false));
            match data.await {
                Err(e) => view! { <tr><td colspan="9" class="banner error">{format!("Cannot read the backups: {e}")}</td></tr> }.into_any_sync(),
                Ok(rows) if rows.is_empty() => view! {
                    <tr><td colspan="9" class="notice">"No backups yet: use “Back up” on a replica in the Overview."</td></tr>
                }
                .into_any_sync(),
                Ok(rows) => rows
                    .into_iter()
                    .map(|b| view! { <BackupRowView b can_operate can_delete verify delete/> })
                    .collect_view()
                    .into_any_sync(),
            }
        })
    };
    let action_error = move || {
        let e = match (verify.value().get(), delete.value().get()) {
            (Some(Err(e)), _) | (_, Some(Err(e))) => Some(e.message),
            _ => None,
        }?;
        Some(view! { <p class="banner error" data-testid="backup-action-error">{e}</p> })
    };
    view! {
        <section class="page">
            <LiveJobs/>
            <OperationPanel/>
            <div class="panel">
                <h2>"Backups"</h2>
                {action_error}
                {move || verify.pending().get().then(|| view! {
                    <p class="notice" data-testid="verify-running">"Checking the sha256, then restoring into an isolated PostgreSQL and reading every table…"</p>
                })}
                <table class="backups">
                    <thead><tr>
                        <th>"Started (UTC)"</th><th>"Member"</th><th>"Status"</th><th>"Size"</th><th>"Compression"</th>
                        <th>"Duration"</th><th>"Replica down"</th><th>"Verified"</th><th></th>
                    </tr></thead>
                    <tbody><Transition fallback=|| ()>{body}</Transition></tbody>
                </table>
            </div>
            <Transition fallback=|| ()>{move || Suspend::new(async move {
                let can_admin = me.await.ok().map(|m| m.can_admin).unwrap_or(false);
                can_admin.then(|| view! { <PointInTimePanel/><ImportPanel tick/> })
            })}</Transition>
            <Transition fallback=|| ()>{move || Suspend::new(async move {
                let can_admin = me.await.ok().map(|m| m.can_admin).unwrap_or(false);
                kept.await.ok().filter(|k| !k.is_empty()).map(|k| view! { <KeptPanel kept=k can_admin/> })
            })}</Transition>
        </section>
    }
}

/// "Restore the cluster to a point in time…": the time and the plan are
/// chosen in the operation panel.
#[component]
fn PointInTimePanel() -> impl IntoView {
    let launcher = expect_context::<OpLauncher>().0;
    view! {
        <div class="panel">
            <h2>"Point-in-time recovery"</h2>
            <p class="muted">"The newest backup before the time you choose is restored and the WAL archive (pg-wal) replayed up to that second; the replicas are rebuilt from it. The plan shows the window the archive can restore and what is lost."</p>
            <button class="danger" data-testid="restore-to-time"
                on:click=move |_| launcher.set(Some(target(OpKind::RestoreToTime, "")))>"Restore the cluster to a point in time…"</button>
        </div>
    }
}

/// What verification found, in a sentence.
fn verified_text(b: &BackupRow) -> String {
    match (b.verified_ok, &b.restore_test) {
        (Some(false), _) => "CORRUPTED (sha256 mismatch)".to_string(),
        (Some(true), Some(r)) if r.ok && r.details_hidden => "verified ✓ restored".to_string(),
        (Some(true), Some(r)) if r.ok => format!("verified ✓ restored: {} tables, {} rows", r.tables, r.rows),
        (Some(true), Some(r)) => format!("sha256 ✓, test restore FAILED: {}", r.error),
        (Some(true), None) => "sha256 ✓".to_string(),
        (None, _) => "not verified".to_string(),
    }
}

/// What the test restore read (for those allowed to see it).
fn restore_details(b: &BackupRow) -> Option<impl IntoView> {
    let r = b.restore_test.clone().filter(|r| !r.details_hidden)?;
    let lines = r
        .table_rows
        .iter()
        .map(|(t, n)| format!("{t}: {n} rows"))
        .collect::<Vec<_>>()
        .join("\n");
    Some(view! {
        <details><summary>"What the test restore read"</summary>
            <pre data-testid="restore-tables">{format!(
                "system identifier {} · {} databases · {:.1} s ({} UTC)\n{lines}",
                r.system_identifier, r.databases, r.duration_ms as f64 / 1000.0, utc_time(r.at_ms)
            )}</pre>
        </details>
    })
}

/// One backup: what it holds, how it went, and what the caller may do with it.
#[component]
fn BackupRowView(
    b: BackupRow,
    can_operate: bool,
    can_delete: bool,
    verify: ServerAction<BackupVerify>,
    delete: ServerAction<BackupDelete>,
) -> impl IntoView {
    let ok = b.status == BackupStatus::Ok;
    let verified = verified_text(&b);
    let restored_ok = b.restore_test.as_ref().map(|r| r.ok.to_string()).unwrap_or_default();
    let tables = restore_details(&b);
    let (id, id2, id3) = (b.id.clone(), b.id.clone(), b.id.clone());
    view! {
        <tr data-testid="backup-row" id=format!("backup-{}", b.id) data-id=b.id.clone() data-status=b.status.as_str()
            data-kind=format!("{:?}", b.kind).to_lowercase()
            data-verified=b.verified_ok.map(|v| v.to_string()).unwrap_or_default() data-restored=restored_ok>
            <td><Time ms=b.started_at_ms/><br/><code class="muted">{b.id.clone()}</code></td>
            <td>{b.member.clone()}<br/><span class="muted" data-testid="backup-kind">{b.kind.label()}</span>{b.imported_from.clone().map(|f| view! { <br/><span class="muted" data-testid="imported-from">{format!("imported from {f}")}</span> })}</td>
            <td>{b.status.as_str()}{(!b.error.is_empty()).then(|| format!(": {}", b.error))}</td>
            <td class="num" title=format!("recycled WAL segments left out (they hold no WAL): {}", mb(b.recycled_wal_bytes))>
                {mb(b.archive_bytes)}<br/><span class="muted">{format!("of {}", mb(b.data_bytes))}</span>
            </td>
            <td>{b.compression.clone()}</td>
            <td class="num">{format!("{:.1} s", b.duration_ms as f64 / 1000.0)}</td>
            <td class="num" title=format!("compressed again while stopped (changed since): {}", mb(b.compressed_stopped_bytes))>
                {format!("{:.1} s", b.downtime_ms as f64 / 1000.0)}
            </td>
            <td data-testid="verified">{verified}{tables}</td>
            <td>
                {(ok && can_operate).then(|| view! {
                    <a href=format!("/backups/download/{}", b.id) download>"Download"</a>" "
                    <PostForm action=verify args=|f| BackupVerify { id: f.text("id") } class="inline">
                        <input type="hidden" name="id" value=id/>
                        <button type="submit" data-testid="verify-backup" disabled=move || verify.pending().get()>
                            "Verify + test restore"
                        </button>
                    </PostForm>
                })}
                {ok.then(|| view! { <details><summary>"Restore"</summary><pre>{b.restore.clone()}</pre></details> })}
                {(ok && can_delete).then(|| {
                    let launcher = expect_context::<OpLauncher>().0;
                    let id = b.id.clone();
                    view! {
                        <button class="danger" data-testid="restore-backup"
                            on:click=move |_| launcher.set(Some(restore_target(&id)))>"Restore the cluster from this backup…"</button>
                    }
                })}
                {can_delete.then(|| view! {
                    <details data-testid="delete-backup"><summary>"Delete"</summary>
                        <PostForm action=delete args=|f| BackupDelete { id: f.text("id"), typed_id: f.text("typed_id") }>
                            <input type="hidden" name="id" value=id2/>
                            <label>"Type "<code>{id3}</code>" to delete "
                                <input name="typed_id" data-testid="delete-typed" autocomplete="off"/></label>
                            <button type="submit" class="danger" data-testid="delete-submit">"Delete"</button>
                        </PostForm>
                    </details>
                })}
            </td>
        </tr>
    }
}

/// What restores keep, with its size and "Discard" for admins.
#[component]
fn KeptPanel(kept: Vec<KeptData>, can_admin: bool) -> impl IntoView {
    let launcher = expect_context::<OpLauncher>().0;
    let rows = kept
        .into_iter()
        .map(|k| {
            let id = k.id.clone();
            let discardable = can_admin && k.phase.finished() && k.bytes > 0;
            view! {
                <tr data-testid="kept-row" data-id=k.id.clone() data-phase=k.phase.as_str()>
                    <td><Time ms=k.started_at_ms/><br/><code class="muted">{k.id.clone()}</code></td>
                    <td>{k.started_by.clone()}</td>
                    <td><code>{k.backup_id.clone()}</code></td>
                    <td>{k.phase.as_str()}<br/><span class="muted" data-testid="kept-outcome">{k.outcome.clone()}</span></td>
                    <td>{k.holds.clone()}<br/><code class="muted">{k.path.clone()}</code></td>
                    <td class="num" data-testid="kept-size">{mb(k.bytes)}</td>
                    <td>{discardable.then(|| view! {
                        <button class="danger" data-testid="discard-kept"
                            on:click=move |_| launcher.set(Some(discard_target(&id)))>"Discard…"</button>
                    })}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="panel" data-testid="kept-panel">
            <h2>"Kept by restores"</h2>
            <p class="muted">"A restore moves the cluster's data aside instead of deleting it. It stays here, using disk space, until an admin discards it."</p>
            <table class="backups">
                <thead><tr>
                    <th>"Restore started (UTC)"</th><th>"By"</th><th>"Backup"</th><th>"State"</th><th>"Holds"</th><th>"Size"</th><th></th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// The import directory: archives made by hand with the SOP, brought into
/// the catalog (and test-restored) with one click.
#[component]
fn ImportPanel(tick: RwSignal<u64>) -> impl IntoView {
    let import = ServerAction::<BackupImport>::new();
    let files = crate::codec::resource(move || (tick.get(), import.version().get()), |_| imports_list());
    let row = move |f: ImportFile| {
        let name = f.name.clone();
        view! {
            <tr data-testid="import-row" data-name=f.name.clone()>
                <td><code>{f.name.clone()}</code></td>
                <td class="num">{mb(f.bytes)}</td>
                <td><Time ms=f.modified_ms/></td>
                <td>
                    <PostForm action=import args=|f| BackupImport { name: f.text("name") } class="inline">
                        <input type="hidden" name="name" value=name/>
                        <button type="submit" data-testid="import-backup" disabled=move || import.pending().get()>
                            "Import + test restore"
                        </button>
                    </PostForm>
                </td>
            </tr>
        }
    };
    view! {
        <div class="panel" data-testid="import-panel">
            <h2>"Import an archive made by hand"</h2>
            <p class="muted">"Put a "<code>"pgN-backup.tar.gz"</code>" made with the SOP (container stopped, then "
                <code>"tar -czvf"</code>") in the console's import directory. Importing reads it through, checks that it was shut down cleanly, copies it into the catalog and test-restores it; then it can be restored like any backup."</p>
            {move || import.pending().get().then(|| view! { <p class="notice" data-testid="import-running">"Reading the archive, then restoring it into an isolated PostgreSQL…"</p> })}
            {move || match import.value().get() {
                Some(Err(e)) => Some(view! { <p class="banner error" data-testid="import-error">{e.message}</p> }.into_any_sync()),
                Some(Ok(b)) => Some(view! { <p class="notice" data-testid="import-done">{format!("Imported as {}: {}", b.id, verified_text(&b))}</p> }.into_any_sync()),
                None => None,
            }}
            <table class="backups">
                <thead><tr><th>"File"</th><th>"Size"</th><th>"Modified (UTC)"</th><th></th></tr></thead>
                <tbody><Transition fallback=|| ()>{move || Suspend::new(async move {
                    match files.await {
                        Ok(f) if f.is_empty() => view! { <tr><td colspan="4" class="notice">"The import directory holds no .tar.gz, .tgz or .tar.zst archive."</td></tr> }.into_any_sync(),
                        Ok(f) => f.into_iter().map(row).collect_view().into_any_sync(),
                        Err(e) => view! { <tr><td colspan="4" class="banner error">{e.message}</td></tr> }.into_any_sync(),
                    }
                })}</Transition></tbody>
            </table>
        </div>
    }
}
