//! Running and finished operations: one job's steps and progress, followed
//! over a websocket (polling when it cannot), and the list of jobs running now.

use std::time::Duration;

use leptos::prelude::*;
use model::operations::{OpJob, StepState};

use crate::api::op_status;

/// A job's steps and progress, pushed by the server over a websocket
/// (`/ws/jobs/{id}`); if the socket cannot be used, polled every 500 ms.
#[component]
pub fn JobView(id: String) -> impl IntoView {
    let job: RwSignal<Option<OpJob>> = RwSignal::new(None);
    let done = RwSignal::new(false);
    let polling = RwSignal::new(false);
    let live_error: RwSignal<Option<String>> = RwSignal::new(None);
    #[cfg(feature = "hydrate")]
    {
        let id = id.clone();
        Effect::new(move |prev: Option<()>| {
            if prev.is_none() {
                follow_over_websocket(&id, job, polling, live_error);
            }
        });
    }
    let tick = RwSignal::new(0u64);
    Effect::new(move |_| {
        if !polling.get() {
            return;
        }
        if let Ok(h) = set_interval_with_handle(
            move || {
                if !done.get_untracked() {
                    tick.update(|t| *t += 1)
                }
            },
            Duration::from_millis(500),
        ) {
            on_cleanup(move || h.clear());
        }
    });
    let id2 = id.clone();
    let status = crate::codec::resource(
        move || (polling.get(), tick.get()),
        move |(poll, _)| {
            let id = id2.clone();
            async move {
                if poll {
                    op_status(id).await
                } else {
                    Ok(None)
                }
            }
        },
    );
    Effect::new(move |_| {
        if let Some(Ok(Some(j))) = status.get() {
            job.set(Some(j));
        }
    });
    Effect::new(move |_| {
        if let Some(j) = job.get() {
            done.set(j.outcome.is_some());
        }
    });
    view! {
        <div class="job" data-testid="job" data-job=id data-live=move || if polling.get() { "polling" } else { "websocket" }>
            {move || live_error.get().map(|e| view! { <p class="banner error">{e}</p> })}
            {move || job.get().map(|j| view! { <JobState j/> })}
        </div>
    }
}

/// One state of a job: its steps, progress, write gap and outcome.
#[component]
fn JobState(j: OpJob) -> impl IntoView {
    let steps = j
        .steps
        .iter()
        .map(|s| {
            let (icon, cls) = match s.state {
                StepState::Running => ("…", "step running"),
                StepState::Done => ("✓", "step done"),
                StepState::Failed => ("✗", "step failed"),
            };
            view! { <li class=cls data-testid="job-step">{icon}" "{s.text.clone()}</li> }
        })
        .collect_view();
    let outcome = j.outcome.clone().map(|o| match o {
        Ok(s) => view! { <p class="banner info" data-testid="job-outcome" data-ok="true">{s}</p> },
        Err(e) => view! { <p class="banner error" data-testid="job-outcome" data-ok="false">{e}</p> },
    });
    let progress = j.progress.clone().filter(|_| j.outcome.is_none());
    view! {
        <h3>{j.title.clone()}" · by "{j.user.clone()}</h3>
        <ol class="steps">{steps}</ol>
        {progress.clone().filter(|p| p.bytes_total == 0).map(|p| view! {
            <p class="muted" data-testid="job-phase">{p.phase}</p>
        })}
        {progress.filter(|p| p.bytes_total > 0).map(|p| {
            let pct = p.bytes_done * 100 / p.bytes_total;
            view! {
                <progress class="progress" max="100" value=pct.to_string()
                    data-testid="job-progress" data-pct=pct.to_string()></progress>
                <p class="muted">{format!(
                    "{} · {} of {} MB · {} files · {} MB/s{}",
                    p.phase,
                    p.bytes_done / 1_048_576,
                    p.bytes_total / 1_048_576,
                    p.files,
                    p.rate_bytes_per_s / 1_048_576,
                    p.eta_s.map(|e| format!(" · about {e} s left")).unwrap_or_default()
                )}</p>
            }
        })}
        {j.write_gap_ms.map(|g| view! {
            <p class="muted" data-testid="write-gap" data-ms=g.to_string()>
                {format!("Writes were refused for {:.1} s.", g as f64 / 1000.0)}
            </p>
        })}
        {outcome}
    }
}

/// Follow `/ws/jobs/{id}`: every message is the job's whole state (or
/// `{"error": …}`). While the socket is down (it reopens itself) the view
/// polls, so nothing is missed; the first message after a reconnect stops
/// the polling again.
#[cfg(feature = "hydrate")]
fn follow_over_websocket(
    id: &str,
    job: RwSignal<Option<OpJob>>,
    polling: RwSignal<bool>,
    live_error: RwSignal<Option<String>>,
) {
    let on_text = move |text: String| {
        use serde::Deserialize;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return;
        };
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            live_error.try_set(Some(e.to_string()));
        } else if let Ok(j) = OpJob::deserialize(v) {
            job.try_set(Some(j));
            polling.try_set(false);
        }
    };
    let on_down = move || {
        let finished = job.try_get_untracked().flatten().is_some_and(|j| j.outcome.is_some());
        if finished || live_error.try_get_untracked().flatten().is_some() {
            return false;
        }
        polling.try_set(true);
        true
    };
    if !super::live::follow(&format!("/ws/jobs/{id}"), on_text, on_down) {
        polling.set(true);
    }
}

/// Operations still running (any user's, started from any tab), each
/// followed live. Pushed by the server as they start. A job seen running here stays on the
/// list once it finishes, with its outcome, until the page is left: the
/// result is not lost because the job ended between two checks.
#[component]
pub fn LiveJobs() -> impl IntoView {
    let seen: RwSignal<Vec<String>> = RwSignal::new(Vec::new());
    let add = move |ids: Vec<String>| {
        let fresh: Vec<String> = ids
            .into_iter()
            .filter(|id| !seen.with_untracked(|s| s.contains(id)))
            .collect();
        if !fresh.is_empty() {
            seen.update(|s| s.extend(fresh));
        }
    };
    // Pushed over `/ws/jobs` (which reopens itself after a drop); polled
    // every 2 s while that socket is down. Client-side only.
    let feed_up = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |prev: Option<()>| {
        if prev.is_some() {
            return;
        }
        let on_text = move |text: String| {
            if let Ok(feed) = crate::codec::from_json_text::<model::operations::RunningJobs>(&text) {
                feed_up.try_set(true);
                add(feed.running.into_iter().map(|j| j.id).collect());
            }
        };
        let on_down = move || {
            feed_up.try_set(false);
            true
        };
        super::live::follow("/ws/jobs", on_text, on_down);
    });
    let tick = RwSignal::new(0u64);
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(
            move || {
                if !feed_up.get_untracked() {
                    tick.update(|t| *t += 1)
                }
            },
            Duration::from_secs(2),
        ) {
            on_cleanup(move || h.clear());
        }
    });
    let recent = LocalResource::new(move || {
        tick.track();
        crate::api::op_recent()
    });
    Effect::new(move |_| {
        let now_running: Vec<String> = recent
            .get()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .filter(|j| j.outcome.is_none())
            .map(|j| j.id)
            .collect();
        add(now_running);
    });
    let running = move || seen.get();
    view! {
        <Show when=move || !running().is_empty()>
            <section class="panel" data-testid="live-jobs">
                <h2>"Running now"</h2>
                <For each=running key=|id| id.clone() let:id>
                    <JobView id/>
                </For>
            </section>
        </Show>
    }
}
