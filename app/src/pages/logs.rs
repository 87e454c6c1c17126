//! Logs (operators and admins): a container's log, live. The last lines
//! first, then new ones as Docker receives them (pushed over a websocket),
//! with pause, a text filter, "jump to now", and a download of the last
//! hour. Secrets are masked by the server before any line is sent.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use model::logs::LogLine;

use crate::components::time::Time;

/// Lines the page keeps (older ones are dropped as new ones come).
#[cfg(feature = "hydrate")]
const KEPT_LINES: usize = 5000;

#[component]
pub fn LogsPage() -> impl IntoView {
    let query = use_query_map();
    let container = Memo::new(move |_| query.with(|q| q.get("container")).unwrap_or_else(|| "pg-0".to_string()));
    // `since` (seconds back): from then on, else the last 200 lines.
    let since = Memo::new(move |_| query.with(|q| q.get("since")).and_then(|s| s.parse::<u32>().ok()));
    let overview = crate::codec::resource(|| (), |_| crate::api::get_overview());
    let choices = move || {
        Suspend::new(async move {
            let names: Vec<String> = overview
                .await
                .map(|o| o.containers.into_iter().map(|c| c.name).collect())
                .unwrap_or_default();
            names
                .into_iter()
                .map(|n| {
                    // Follows the address: picking another container is a client-side navigation.
                    let name = n.clone();
                    let class = move || {
                        if name == container.get() {
                            "chip current"
                        } else {
                            "chip"
                        }
                    };
                    view! {
                        <a href=format!("/logs?container={n}") data-testid="log-container" data-name=n.clone()
                            class=class>{n.clone()}</a>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <section class="panel logs">
            <h1>"Logs"</h1>
            <p class="muted">"Secrets of the stack are masked (" {model::logs::MASK} ") before lines leave the server. Each view is audited."</p>
            <nav class="log-containers"><Transition fallback=|| ()>{choices}</Transition></nav>
            <nav class="log-containers" data-testid="log-since">
                {SINCE_CHOICES
                    .iter()
                    .map(|(secs, label)| {
                        let href = move || match secs {
                            Some(s) => format!("/logs?container={}&since={s}", container.get()),
                            None => format!("/logs?container={}", container.get()),
                        };
                        let class = move || if since.get() == *secs { "chip current" } else { "chip" };
                        view! { <a href=href class=class data-since=secs.map(|s| s.to_string()).unwrap_or_default()>{*label}</a> }
                    })
                    .collect_view()}
            </nav>
            {move || view! { <LogTail container=container.get() since=since.get()/> }}
        </section>
    }
}

/// Where the tail starts: the last lines, or everything since a moment.
static SINCE_CHOICES: [(Option<u32>, &str); 4] = [
    (None, "last 200 lines"),
    (Some(900), "since 15 min"),
    (Some(3600), "since 1 h"),
    (Some(86_400), "since 24 h"),
];

#[component]
fn LogTail(container: String, since: Option<u32>) -> impl IntoView {
    let lines: RwSignal<Vec<LogLine>> = RwSignal::new(Vec::new());
    let missed = RwSignal::new(0u64);
    let state = RwSignal::new("connecting".to_string());
    // While paused, the view shows the lines up to this count.
    let frozen: RwSignal<Option<usize>> = RwSignal::new(None);
    let filter = RwSignal::new(String::new());
    let pre = NodeRef::<leptos::html::Pre>::new();
    #[cfg(feature = "hydrate")]
    {
        let path = match since {
            Some(s) => format!("/ws/logs/{container}?tail=5000&since={s}"),
            None => format!("/ws/logs/{container}?tail=200"),
        };
        Effect::new(move |_| follow_log(&path, lines, missed, state, frozen));
    }
    // Following: the view stays at the newest line.
    Effect::new(move |_| {
        lines.track();
        if frozen.get().is_none() {
            if let Some(p) = pre.get() {
                p.set_scroll_top(p.scroll_height());
            }
        }
    });
    let shown = move || {
        let needle = filter.get().to_lowercase();
        lines.with(|all| {
            let end = frozen.get().unwrap_or(all.len()).min(all.len());
            all[..end]
                .iter()
                .filter(|l| needle.is_empty() || l.text.to_lowercase().contains(&needle))
                .map(|l| {
                    let (ms, text) = (l.at_ms, l.text.clone());
                    view! {
                        <div class=if l.stderr { "log-line stderr" } else { "log-line" } data-testid="log-line">
                            <Time ms/>" "{text}
                        </div>
                    }
                })
                .collect_view()
        })
    };
    let pause = move |_| {
        frozen.set(match frozen.get_untracked() {
            Some(_) => None,
            None => Some(lines.with_untracked(Vec::len)),
        })
    };
    let now = move |_| frozen.set(None);
    let download = format!("/logs/{container}");
    #[cfg(not(feature = "hydrate"))]
    let _ = since;
    view! {
        <div class="log-tools">
            <span class="log-state" data-testid="log-state" data-state=move || state.get()>{move || state.get()}</span>
            <button type="button" data-testid="log-pause" on:click=pause>
                {move || if frozen.get().is_some() { "Resume" } else { "Pause" }}
            </button>
            <button type="button" data-testid="log-now" on:click=now>"Jump to now"</button>
            <input type="search" placeholder="filter" data-testid="log-filter"
                on:input=move |ev| filter.set(event_target_value(&ev))/>
            <a href=download data-testid="log-download" download>"Download the last hour"</a>
            {move || (missed.get() > 0).then(|| view! {
                <span class="banner warn" data-testid="log-missed">{format!("{} lines were skipped: the browser did not keep up", missed.get())}</span>
            })}
        </div>
        <pre class="log" node_ref=pre data-testid="log" data-container=container.clone()>{shown}</pre>
    }
}

/// Lines pushed by `/ws/logs/{container}`; the tail is not reopened after
/// it ends (reloading the page starts it again).
#[cfg(feature = "hydrate")]
fn follow_log(
    path: &str,
    lines: RwSignal<Vec<LogLine>>,
    missed: RwSignal<u64>,
    state: RwSignal<String>,
    frozen: RwSignal<Option<usize>>,
) {
    use model::logs::LogMessage;
    let on_text = move |text: String| match crate::codec::from_json_text::<LogMessage>(&text) {
        Ok(LogMessage::Lines(new)) => {
            state.try_set("live".to_string());
            lines.try_update(|all| {
                all.extend(new);
                let excess = all.len().saturating_sub(KEPT_LINES);
                if excess > 0 {
                    all.drain(..excess);
                    frozen.try_update(|f| *f = f.map(|n| n.saturating_sub(excess)));
                }
            });
        }
        Ok(LogMessage::Missed(n)) => {
            missed.try_update(|m| *m += n);
        }
        Ok(LogMessage::Error(e)) => {
            state.try_set(format!("ended: {e}"));
        }
        Err(_) => {}
    };
    let on_down = move || {
        if state.try_get_untracked().is_some_and(|s| !s.starts_with("ended")) {
            state.try_set("disconnected: reload the page to follow again".to_string());
        }
        false
    };
    if !crate::components::live::follow(path, on_text, on_down) {
        state.set("cannot open a websocket: reload the page".to_string());
    }
}
