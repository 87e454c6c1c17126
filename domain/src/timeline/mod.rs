//! The incident timeline: Docker's events of the stack's containers, HAProxy's
//! UP/DOWN changes, Patroni's promotions, member changes the console saw and
//! its own operations, in one SQLite table on one clock, kept for
//! `retention_days`.
//!
//! Two tasks fill it from the moment the console starts, whether or not
//! anyone looks:
//! - the observer looks at the cluster every `sample_every` (reusing the live
//!   feed's version when tabs follow it, so no second read), records what
//!   changed ([`observe`]) and each replica's lag ([`LagRecorder`]);
//! - the Docker follower reads Docker's events from the newest one recorded
//!   (so what happened while the console was down is recovered, as far as
//!   Docker still holds it), then follows them ([`docker_events`]).

pub mod docker_events;
pub mod observe;
mod observe_wal;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use model::timeline::EventKind;

pub use store::{NewEvent, TimelineFilter, TimelineStore};

use crate::lag_history::LagRecorder;
use crate::overview_feed::OverviewFeed;

pub struct Timeline {
    pub store: TimelineStore,
    /// Each replica's lag at every look: the Overview's and member page's charts.
    pub lag: LagRecorder,
    pub retention_days: u64,
    feed: Arc<OverviewFeed>,
    containers: Vec<String>,
    sample_every: Duration,
}

/// How long the Docker follower waits before it tries again.
const DOCKER_RETRY: Duration = Duration::from_secs(5);
/// The mark of the observer's last look: where the next console's first
/// look takes over (HAProxy's changes in between are recovered).
const LAST_LOOK: &str = "observer_last_look";
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Timeline {
    pub fn new(
        store: TimelineStore,
        feed: Arc<OverviewFeed>,
        containers: Vec<String>,
        retention_days: u64,
        sample_every: Duration,
    ) -> Arc<Self> {
        let lag = LagRecorder::new(store.pool());
        Arc::new(Timeline {
            store,
            lag,
            retention_days,
            feed,
            containers,
            sample_every,
        })
    }

    /// Start both tasks (the server does, once).
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(self.clone().observe());
        tokio::spawn(self.clone().follow_docker());
    }

    fn retention_ms(&self) -> i64 {
        self.retention_days as i64 * 86_400_000
    }

    async fn observe(self: Arc<Self>) {
        let last_look = self.store.mark(LAST_LOOK).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the previous console's last look");
            None
        });
        let mut seen = observe::Observed::resuming(last_look);
        let mut tick = tokio::time::interval(self.sample_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pruned = tokio::time::Instant::now();
        if let Err(e) = self.lag.load(crate::now_ms()).await {
            tracing::warn!(error = %e, "cannot read the last hour's lag");
        }
        loop {
            tick.tick().await;
            let ov = self.feed.latest_or_read_cluster(self.sample_every).await;
            let events = seen.changes(&ov);
            if let Err(e) = self.store.record(&events).await {
                tracing::warn!(error = %e, "cannot record timeline events");
            }
            if let Err(e) = self.lag.record(&ov.topology).await {
                tracing::warn!(error = %e, "cannot record the replicas' lag");
            }
            if let Err(e) = self.store.set_mark(LAST_LOOK, ov.topology.observed_at_ms).await {
                tracing::warn!(error = %e, "cannot record the observer's last look");
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = tokio::time::Instant::now();
                match self.store.prune(crate::now_ms() - self.retention_ms()).await {
                    Ok(n) if n > 0 => tracing::info!(events = n, "timeline: pruned events past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot prune the timeline"),
                }
            }
        }
    }

    async fn follow_docker(self: Arc<Self>) {
        loop {
            if let Err(e) = self.docker_once().await {
                tracing::warn!(error = %e, "timeline: Docker's events are not followed; retrying in 5 s");
            }
            tokio::time::sleep(DOCKER_RETRY).await;
        }
    }

    /// Read Docker's events from the newest recorded (or the retention
    /// period's start), then follow them until the stream ends.
    async fn docker_once(&self) -> Result<(), String> {
        let docker = crate::docker::DockerControl::connect()
            .await
            .map_err(|e| e.to_string())?;
        let floor = crate::now_ms() - self.retention_ms();
        let since_ms = self
            .store
            .newest(EventKind::Container)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or(floor)
            .max(floor);
        let mut events = Box::pin(docker.events(&self.containers, since_ms / 1000));
        while let Some(e) = events.next().await {
            let e = e.map_err(|e| e.to_string())?;
            if let Some(ev) = docker_events::container_event(&e.action, &e.id, &e.attributes, e.time_nano) {
                self.store.record(&[ev]).await.map_err(|e| e.to_string())?;
            }
        }
        Err("Docker closed the event stream".into())
    }
}

/// Events as CSV (RFC 4180, with a header): time (RFC 3339 UTC), unix ms,
/// kind, member or container, what happened, link.
pub fn csv_of(events: &[model::timeline::TimelineEvent]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["time_utc", "at_ms", "kind", "subject", "event", "link"]);
    for e in events {
        let _ = w.write_record([
            crate::datetime::format_rfc3339(e.at_ms).unwrap_or_default(),
            e.at_ms.to_string(),
            e.kind.as_str().to_string(),
            e.subject.clone(),
            e.text.clone(),
            e.link.clone().unwrap_or_default(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
