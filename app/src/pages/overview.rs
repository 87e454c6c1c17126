//! The Overview page: endpoints, topology, the WAL archive, timeline history, HAProxy.
//! Rendered on the server with a fresh read, then kept current by the
//! console's live feed (`/ws/overview`: the whole Overview, then a merge
//! patch per change, from one sampler shared by every tab). While that
//! socket is down (it reopens itself) the page polls once a second instead.
//! The replicas' lag sparklines start from the console's last hour
//! (`/api/lag_history`, once) and grow with each version of the feed.

use crate::components::time::Time;
use std::time::Duration;

use crate::components::sync_hydrate::IntoAnySync;
use leptos::prelude::*;
use model::Overview;

use crate::api::{get_overview, whoami, OpCancelSwitchover};
use crate::components::operations::{target, LiveJobs, OpLauncher, OperationPanel};
use crate::components::{
    endpoints::EndpointsPanel,
    haproxy_table::HaproxyPanel,
    history_table::HistoryPanel,
    topology_table::{StackContainers, TopologyPanel},
    wal_archive::{WalArchiveAlert, WalArchivePanel},
};
use crate::format::{duration_between, utc_time};
use model::auth::Me;
use model::lag::LagHistory;
use model::operations::OpKind;

/// How often the page asks for a fresh overview while the live feed is down.
const REFRESH: Duration = Duration::from_millis(1000);
/// How often a tab following the feed keeps its session alive.
const STILL_HERE: Duration = Duration::from_secs(60);

#[component]
pub fn OverviewPage() -> impl IntoView {
    let overview = crate::codec::resource(|| (), |_| get_overview());
    let me = crate::codec::resource(|| (), |_| whoami());
    let launcher = RwSignal::new(None);
    provide_context(OpLauncher(launcher));
    // Keep showing the last good data while the console itself is unreachable.
    let last_good: RwSignal<Option<Overview>> = RwSignal::new(None);
    let last_error: RwSignal<Option<String>> = RwSignal::new(None);

    // The live feed's newest version (None while it is down).
    let live: RwSignal<Option<Overview>> = RwSignal::new(None);
    let feed_up = RwSignal::new(false);
    let feed_ended: RwSignal<Option<String>> = RwSignal::new(None);
    // The replicas' last hour of lag (None until read).
    let lag: RwSignal<Option<LagHistory>> = RwSignal::new(None);
    #[cfg(feature = "hydrate")]
    Effect::new(move |prev: Option<()>| {
        if prev.is_none() {
            follow_feed(live, feed_up, feed_ended, lag);
            leptos::task::spawn_local(async move {
                if let Ok(h) = crate::api::lag_history(None, None).await {
                    lag.try_set(Some(h));
                }
            });
        }
    });
    poll_while_down(overview, feed_up);

    let body = move || {
        let pushed = live.get();
        let lag = lag.get();
        Suspend::new(async move {
            let me = me.await.ok();
            if let Some(ov) = pushed {
                last_error.set(None);
                return view! { <OverviewBody ov me lag=lag.clone()/> }.into_any_sync();
            }
            match overview.await {
                Ok(ov) => {
                    last_error.set(None);
                    last_good.set(Some(ov.clone()));
                    view! { <OverviewBody ov me lag=lag.clone()/> }.into_any_sync()
                }
                Err(e) => {
                    let msg = format!("The console server did not answer ({e}); retrying every second.");
                    last_error.set(Some(msg.clone()));
                    match last_good.get_untracked() {
                        Some(ov) => view! {
                            <div class="banner error" data-testid="console-error">{msg}</div>
                            <OverviewBody ov me lag=lag.clone()/>
                        }
                        .into_any_sync(),
                        None => {
                            view! { <div class="banner error" data-testid="console-error">{msg}</div> }.into_any_sync()
                        }
                    }
                }
            }
        })
    };

    view! {
        <section class="page overview">
            {move || feed_ended.get().map(|e| view! { <div class="banner error" data-testid="feed-ended">{e}</div> })}
            <OperationPanel/>
            // After a reload, or in another user's tab: what is running now.
            {move || launcher.with(Option::is_none).then(|| view! { <LiveJobs/> })}
            <Transition fallback=|| view! { <p class="notice">"Loading the cluster's state…"</p> }>
                {body}
            </Transition>
        </section>
    }
}

/// While the feed is down, poll the overview once a second; while it is
/// up, say once a minute that the tab is still open (an open Overview counts
/// as activity, and the feed makes no HTTP requests; no cluster reads).
fn poll_while_down(
    overview: Resource<Result<Overview, crate::error::ApiError>, crate::codec::JsonValue>,
    feed_up: RwSignal<bool>,
) {
    Effect::new(move |_| {
        let poll = move || {
            if !feed_up.get_untracked() {
                overview.refetch()
            }
        };
        if let Ok(handle) = set_interval_with_handle(poll, REFRESH) {
            on_cleanup(move || handle.clear());
        }
    });
    Effect::new(move |_| {
        let still_here = move || {
            if feed_up.get_untracked() {
                leptos::task::spawn_local(async {
                    let _ = whoami().await;
                });
            }
        };
        if let Ok(handle) = set_interval_with_handle(still_here, STILL_HERE) {
            on_cleanup(move || handle.clear());
        }
    });
}

/// Follow `/ws/overview`: apply each frame to the JSON document the page
/// has and publish the result in `live`. A patch that does not follow the
/// version the page has (which the server never sends) is dropped with the
/// document, so the page polls until the next whole version.
#[cfg(feature = "hydrate")]
fn follow_feed(
    live: RwSignal<Option<Overview>>,
    feed_up: RwSignal<bool>,
    ended: RwSignal<Option<String>>,
    lag: RwSignal<Option<LagHistory>>,
) {
    use model::overview::FeedFrame;
    use std::{cell::RefCell, rc::Rc};
    let doc: Rc<RefCell<Option<(u64, serde_json::Value)>>> = Rc::default();
    let on_text = {
        let doc = doc.clone();
        move |text: String| {
            let Ok(frame) = crate::codec::from_json_text::<FeedFrame>(&text) else {
                return;
            };
            if let Some(e) = frame.error {
                ended.try_set(Some(e));
                return;
            }
            let mut doc = doc.borrow_mut();
            match (frame.full, frame.patch, doc.as_mut()) {
                (Some(full), _, _) => *doc = Some((frame.seq, full)),
                (None, Some(patch), Some((seq, d))) if *seq + 1 == frame.seq => {
                    model::merge_patch::apply(d, &patch);
                    *seq = frame.seq;
                }
                _ => *doc = None,
            }
            // Read from the Value, as the page's resource and the server
            // function are: one decoder for Overview in the WASM (codec.rs).
            let ov = doc.as_ref().and_then(|(_, d)| {
                use serde::Deserialize;
                Overview::deserialize(d.clone()).ok()
            });
            if let Some(ov) = &ov {
                lag.try_update(|h| h.as_mut().map(|h| h.push(&ov.topology)));
            }
            feed_up.try_set(ov.is_some());
            live.try_set(ov);
        }
    };
    let on_down = move || {
        doc.borrow_mut().take();
        feed_up.try_set(false);
        live.try_set(None);
        ended.try_get_untracked().flatten().is_none()
    };
    crate::components::live::follow("/ws/overview", on_text, on_down);
}

#[component]
fn OverviewBody(ov: Overview, me: Option<Me>, lag: Option<LagHistory>) -> impl IntoView {
    let can_operate = me.as_ref().map(|m| m.can_operate).unwrap_or(false);
    let can_admin = me.as_ref().map(|m| m.can_admin).unwrap_or(false);
    let topo = ov.topology.clone();
    let now = topo.observed_at_ms;
    let leader = topo.leader().map(|m| m.name.clone());
    let health = if topo.is_degraded() { "degraded" } else { "healthy" };
    let status_text = match (&leader, topo.unreachable.len()) {
        (Some(l), 0) => format!("Healthy · leader {l}"),
        (Some(l), n) => format!("Degraded · leader {l} · {n} member(s) unreachable"),
        (None, _) => "No leader: writes are not possible".to_string(),
    };
    let banners = topo
        .unreachable
        .iter()
        .map(|u| {
            view! {
                <div class="banner warn" data-testid="unreachable-banner" data-member=u.name.clone()>
                    <strong>{u.name.clone()}</strong>
                    {format!(
                        " is unreachable since {} ({}): {}",
                        utc_time(u.since_ms),
                        duration_between(u.since_ms, now),
                        u.error
                    )}
                </div>
            }
        })
        .collect_view();
    let paused = topo.paused.then(|| {
        view! {
            <div class="banner maintenance" data-testid="paused-banner">
                "Maintenance mode: automatic failover is paused."
            </div>
        }
    });

    view! {
        <div class="summary">
            <h1>{topo.cluster.clone()}</h1>
            <span class=format!("status-pill {health}") data-testid="cluster-status" data-status=health>
                {status_text}
            </span>
            <span class="refreshed" data-testid="refreshed-at" data-ms=now.to_string()>
                "updated "<Time ms=now/>
            </span>
        </div>
        {paused}
        {banners}
        <WalArchiveAlert wal=ov.wal_archive.clone()/>
        <ScheduledSwitchover ov=ov.clone() can_operate/>
        {can_operate.then(|| view! { <ClusterActions paused=topo.paused cluster=topo.cluster.clone() can_admin/> })}
        <EndpointsPanel endpoints=ov.endpoints.clone()/>
        <TopologyPanel topology=topo.clone() busy=ov.busy_members.clone() can_operate can_admin containers=ov.containers.clone() lag/>
        <StackContainers containers=ov.containers.clone() members=topo.members.iter().map(|m| m.name.clone()).collect() now error=ov.containers_error.clone()/>
        <WalArchivePanel wal=ov.wal_archive.clone()/>
        <div class="two-col">
            <HistoryPanel history=ov.history.clone() error=ov.history_error.clone() operations=ov.operations.clone()/>
            <HaproxyPanel
                stats=ov.haproxy.clone()
                error=ov.haproxy_error.clone()
                stats_url=ov.haproxy_stats_url.clone()
            />
        </div>
    }
}

/// Cluster-wide operations (operators).
#[component]
fn ClusterActions(paused: bool, cluster: String, can_admin: bool) -> impl IntoView {
    let launcher = expect_context::<OpLauncher>().0;
    let kind = if paused { OpKind::Resume } else { OpKind::Pause };
    let label = if paused {
        "Resume automatic failover"
    } else {
        "Pause automatic failover (maintenance)"
    };
    view! {
        <div class="cluster-actions">
            <button data-testid=if paused { "op-resume" } else { "op-pause" }
                on:click=move |_| launcher.set(Some(target(kind, "")))>{label}</button>
            {can_admin.then(|| view! {
                <button class="danger-outline" data-testid="op-reinit-cluster"
                    on:click=move |_| launcher.set(Some(target(OpKind::ReinitializeCluster, "")))>
                    "Reinitialize the whole cluster…"
                </button>
            })}
            <span class="muted">{format!("cluster {cluster}")}</span>
        </div>
    }
}

/// A switchover Patroni will run at a set time, with a cancel button.
#[component]
fn ScheduledSwitchover(ov: Overview, can_operate: bool) -> impl IntoView {
    let cancel = ServerAction::<OpCancelSwitchover>::new();
    ov.topology.scheduled_switchover.map(|s| {
        view! {
            <div class="banner maintenance" data-testid="scheduled-switchover">
                {format!(
                    "Switchover scheduled for {} from {} to {}. ",
                    s.at,
                    s.from.unwrap_or_else(|| "the leader".into()),
                    s.to.unwrap_or_else(|| "the best replica".into())
                )}
                {can_operate.then(|| view! {
                    <button data-testid="cancel-switchover" on:click=move |_| { cancel.dispatch(OpCancelSwitchover {}); }>
                        "Cancel it"
                    </button>
                })}
            </div>
        }
    })
}
