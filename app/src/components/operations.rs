//! The operation panel: plan (preconditions, steps, shell command) → typed
//! confirmation (and password) → the job's steps as they happen.

use crate::components::sync_hydrate::IntoAnySync;
use leptos::prelude::*;
use model::operations::{OpKind, Plan};

use crate::api::{OpExecute, OpPrepare};
use crate::error::ApiError;

pub use super::jobs::{JobView, LiveJobs};

/// What a button opens the panel for: an operation, and the member it acts
/// on (empty for the whole cluster), or the backup it restores, or the kept
/// data it discards.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTarget {
    pub kind: OpKind,
    pub member: String,
    pub backup_id: String,
    pub kept_id: String,
}

/// Set by buttons on the Overview to open the panel.
#[derive(Clone, Copy)]
pub struct OpLauncher(pub RwSignal<Option<OpTarget>>);

pub fn target(kind: OpKind, member: &str) -> OpTarget {
    OpTarget {
        kind,
        member: member.to_string(),
        backup_id: String::new(),
        kept_id: String::new(),
    }
}

/// "Restore the cluster from this backup".
pub fn restore_target(backup_id: &str) -> OpTarget {
    OpTarget {
        backup_id: backup_id.to_string(),
        ..target(OpKind::RestoreCluster, "")
    }
}

/// "Discard the data kept from before the restore".
pub fn discard_target(kept_id: &str) -> OpTarget {
    OpTarget {
        kept_id: kept_id.to_string(),
        ..target(OpKind::DiscardKept, "")
    }
}

impl OpTarget {
    /// What the panel's heading names: the member, backup or kept folder.
    fn subject(&self) -> &str {
        [&self.member, &self.backup_id, &self.kept_id]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(String::as_str)
            .unwrap_or("")
    }
}

fn err_text(e: &ApiError) -> String {
    e.message.clone()
}

/// The choices a request can carry beyond its kind and member. One value,
/// reset as a whole when another operation is opened, so nothing chosen for
/// one operation carries over to the next.
#[derive(Clone, Copy)]
struct OpOptions {
    when: RwSignal<String>,
    only_pending: RwSignal<bool>,
    compression: RwSignal<String>,
    backup_first: RwSignal<bool>,
    allow_only_replica: RwSignal<bool>,
    other_system: RwSignal<bool>,
    target_time: RwSignal<String>,
}

const DEFAULT_COMPRESSION: &str = "zstd";

/// Shown while Execute runs: the server checks the preconditions again, and
/// gives a replica that lags a few seconds to catch up before refusing.
fn executing_text() -> String {
    format!(
        "Checking the preconditions again (a replica that lags gets up to {} s to catch up)…",
        model::operations::MOMENTARY_WAIT_SECS
    )
}

impl OpOptions {
    fn new() -> Self {
        Self {
            when: RwSignal::new(String::new()),
            only_pending: RwSignal::new(false),
            compression: RwSignal::new(DEFAULT_COMPRESSION.into()),
            backup_first: RwSignal::new(false),
            allow_only_replica: RwSignal::new(false),
            other_system: RwSignal::new(false),
            target_time: RwSignal::new(String::new()),
        }
    }

    fn reset(&self) {
        self.when.set(String::new());
        self.only_pending.set(false);
        self.compression.set(DEFAULT_COMPRESSION.into());
        self.backup_first.set(false);
        self.allow_only_replica.set(false);
        self.other_system.set(false);
        self.target_time.set(String::new());
    }

    /// The form for `t`, with the choices its kind takes (the server
    /// refuses the others).
    fn prepare(&self, t: OpTarget) -> OpPrepare {
        let kind = t.kind;
        let schedulable = matches!(kind, OpKind::Switchover | OpKind::Restart);
        OpPrepare {
            kind,
            member: t.member,
            scheduled_at: if schedulable {
                self.when.get_untracked()
            } else {
                String::new()
            },
            only_if_pending: kind == OpKind::Restart && self.only_pending.get_untracked(),
            compression: if kind.is_backup() {
                self.compression.get_untracked()
            } else {
                String::new()
            },
            backup_first: kind == OpKind::ReinitializeCluster && self.backup_first.get_untracked(),
            allow_only_replica: kind == OpKind::Backup && self.allow_only_replica.get_untracked(),
            backup_id: t.backup_id,
            other_system: kind == OpKind::RestoreCluster && self.other_system.get_untracked(),
            kept_id: t.kept_id,
            target_time: if kind == OpKind::RestoreToTime {
                self.target_time.get_untracked()
            } else {
                String::new()
            },
        }
    }
}

/// What is typed to confirm: the target's name, and the password for the riskiest.
#[derive(Clone, Copy)]
struct Confirmation {
    typed: RwSignal<String>,
    password: RwSignal<String>,
}

#[component]
pub fn OperationPanel() -> impl IntoView {
    let launcher = expect_context::<OpLauncher>().0;
    let prepare = ServerAction::<OpPrepare>::new();
    let execute = ServerAction::<OpExecute>::new();
    let options = OpOptions::new();
    let confirm = Confirmation {
        typed: RwSignal::new(String::new()),
        password: RwSignal::new(String::new()),
    };
    let job_id: RwSignal<Option<String>> = RwSignal::new(None);

    // A new request starts over.
    Effect::new(move |_| {
        if launcher.get().is_some() {
            prepare.clear();
            execute.clear();
            options.reset();
            confirm.typed.set(String::new());
            confirm.password.set(String::new());
            job_id.set(None);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(id)) = execute.value().get() {
            job_id.set(Some(id));
        }
    });

    // A new plan replaces the refusal of the last Execute: what it said was
    // about the old plan.
    let review = Callback::new(move |_: ()| {
        if let Some(req) = launcher.get_untracked() {
            execute.clear();
            prepare.dispatch(options.prepare(req));
        }
    });
    let body = move || {
        let req = launcher.get()?;
        Some(view! {
            <section class="panel op-panel" data-testid="op-panel">
                <div class="op-head">
                    <h2>{format!("{} {}", req.kind.label(), req.subject())}</h2>
                    <button on:click=move |_| launcher.set(None)>"Close"</button>
                </div>
                {move || job_id.get().is_none().then(|| view! { <OptionsForm kind=req.kind options review/> })}
                {move || match (job_id.get(), prepare.value().get()) {
                    (Some(_), _) => None,
                    (None, Some(Ok(plan))) => Some(view! { <PlanView plan confirm execute/> }.into_any_sync()),
                    (None, Some(Err(e))) => Some(view! { <p class="banner error">{err_text(&e)}</p> }.into_any_sync()),
                    (None, None) => None,
                }}
                {move || match execute.value().get() {
                    Some(Err(e)) => Some(view! { <p class="banner error" data-testid="execute-error">{err_text(&e)}</p> }),
                    _ => None,
                }}
                {move || job_id.get().map(|id| view! { <JobView id/> })}
            </section>
        })
    };
    view! { {body} }
}

/// The choices for this kind of operation, and "Review plan".
#[component]
fn OptionsForm(kind: OpKind, options: OpOptions, review: Callback<()>) -> impl IntoView {
    let OpOptions {
        when,
        only_pending,
        compression,
        backup_first,
        allow_only_replica,
        other_system,
        target_time,
    } = options;
    let shows_when = matches!(kind, OpKind::Switchover | OpKind::Restart);
    view! {
        <div class="filters">
            {shows_when.then(|| view! {
                <label class="muted">"at (UTC, empty = now) "
                    <input type="datetime-local" step="1" data-testid="op-when" prop:value=move || when.get()
                        on:input=move |ev| when.set(event_target_value(&ev))/>
                </label>
            })}
            {kind.is_backup().then(|| view! {
                <label class="muted">"compression "
                    <select data-testid="op-compression" prop:value=move || compression.get()
                        on:change=move |ev| compression.set(event_target_value(&ev))>
                        <option value="zstd">"zstd (multi-threaded, .tar.zst)"</option>
                        <option value="gzip">"gzip (.tar.gz, restores with plain tar -xzf)"</option>
                    </select>
                </label>
            })}
            {(kind == OpKind::Backup).then(|| view! {
                <label class="muted"><input type="checkbox" data-testid="op-allow-only-replica" prop:checked=move || allow_only_replica.get()
                    on:change=move |ev| allow_only_replica.set(event_target_checked(&ev))/>" even if it is the only healthy replica"</label>
            })}
            {(kind == OpKind::ReinitializeCluster).then(|| view! {
                <label class="muted"><input type="checkbox" data-testid="op-backup-first" prop:checked=move || backup_first.get()
                    on:change=move |ev| backup_first.set(event_target_checked(&ev))/>" back up the healthiest replica first"</label>
            })}
            {(kind == OpKind::RestoreCluster).then(|| view! {
                <label class="muted"><input type="checkbox" data-testid="op-other-system" prop:checked=move || other_system.get()
                    on:change=move |ev| other_system.set(event_target_checked(&ev))/>" another cluster's backup: restore it although its system identifier differs"</label>
            })}
            {(kind == OpKind::RestoreToTime).then(|| view! {
                <label class="muted">"restore to (UTC) "
                    <input type="datetime-local" step="1" data-testid="op-target-time" prop:value=move || target_time.get()
                        on:input=move |ev| target_time.set(event_target_value(&ev))/>
                </label>
                <span class="muted">" the plan shows the window the archive can restore"</span>
            })}
            {(kind == OpKind::Restart).then(|| view! {
                <label class="muted"><input type="checkbox" prop:checked=move || only_pending.get()
                    on:change=move |ev| only_pending.set(event_target_checked(&ev))/>" only if a restart is pending"</label>
            })}
            <button data-testid="review-plan" on:click=move |_| review.run(())>"Review plan"</button>
        </div>
    }
}

/// The plan: preconditions, steps, the shell equivalent, and the typed
/// confirmation when it may run.
#[component]
fn PlanView(plan: Plan, confirm: Confirmation, execute: ServerAction<OpExecute>) -> impl IntoView {
    let Confirmation { typed, password } = confirm;
    let can_run = plan.can_run();
    let (token, confirm_name, needs_pw) = (plan.token.clone(), plan.confirm_name.clone(), plan.needs_password);
    let pre = plan
        .preconditions
        .iter()
        .map(|p| {
            view! {
                <li class=if p.ok { "pre ok" } else { "pre bad" } data-testid="precondition" data-ok=p.ok.to_string()>
                    {if p.ok { "✓ " } else { "✗ " }}{p.text.clone()}
                </li>
            }
        })
        .collect_view();
    let steps = plan.steps.iter().map(|s| view! { <li>{s.clone()}</li> }).collect_view();
    let run = move |_| {
        execute.dispatch(OpExecute {
            token: token.clone(),
            typed_name: typed.get_untracked(),
            password: password.get_untracked(),
        });
    };
    view! {
        <h3 data-testid="plan-title">{plan.title.clone()}</h3>
        <div class="plan-grid">
            <div><h4>"Preconditions"</h4><ul class="pre-list">{pre}</ul></div>
            <div><h4>"Steps"</h4><ol>{steps}</ol></div>
        </div>
        <p class="muted">"Shell equivalent: "<code data-testid="plan-shell">{plan.shell.clone()}</code></p>
        {can_run.then(|| view! {
            <div class="confirm">
                <label>
                    "Type "<strong>{confirm_name.clone()}</strong>" to confirm"
                    <input data-testid="confirm-name" prop:value=move || typed.get()
                        on:input=move |ev| typed.set(event_target_value(&ev)) autocomplete="off"/>
                </label>
                {needs_pw.then(|| view! {
                    <label>"Your password"
                        <input type="password" data-testid="confirm-password" prop:value=move || password.get()
                            on:input=move |ev| password.set(event_target_value(&ev)) autocomplete="current-password"/>
                    </label>
                })}
                <button class="danger" data-testid="execute" on:click=run.clone()
                    disabled=move || execute.pending().get()>"Execute"</button>
                {move || execute.pending().get().then(|| view! {
                    <span class="muted" data-testid="executing">{executing_text()}</span>
                })}
            </div>
        })}
        {(!can_run).then(|| view! { <p class="banner error" data-testid="plan-refused">"Refused: fix the failed preconditions first. Nothing was changed."</p> })}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_executing_text_says_how_long_a_lag_is_waited_for() {
        assert_eq!(
            super::executing_text(),
            "Checking the preconditions again (a replica that lags gets up to 15 s to catch up)…"
        );
    }
}
