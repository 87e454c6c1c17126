//! One sampler per console for the Overview: while at least one browser
//! follows the live feed, it reads the cluster (Patroni, HAProxy, Docker,
//! the console's own jobs and recent operations) once per interval and
//! publishes each new version once, serialised once, for every follower.
//! So the load on the cluster's REST APIs does not grow with the number of
//! open tabs. Nobody following: no sampling at all.
//!
//! A version carries the whole Overview and the merge patch from the one
//! before; a follower that has the previous version gets the patch, any
//! other (just connected, or too slow to see every version) the whole.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::overview::FeedFrame;
use model::Overview;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::operations::Jobs;
use crate::overview::OverviewService;

/// How often the sampler reads the cluster while someone follows.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(1000);
/// How many recent operations the history lists.
const RECENT_OPERATIONS: i64 = 20;

/// One published version of the Overview.
pub struct FeedVersion {
    pub seq: u64,
    /// When it was read.
    pub read_at: std::time::Instant,
    pub overview: Overview,
    /// This version as a whole-Overview frame (JSON text).
    pub full_frame: String,
    /// The merge patch from version `seq - 1` as a frame, if there was one.
    pub patch_frame: Option<String>,
    value: serde_json::Value,
}

impl FeedVersion {
    /// What to send a follower that last received version `had` (None:
    /// nothing yet); None when it has this version already.
    pub fn frame_for(&self, had: Option<u64>) -> Option<&str> {
        match (had, &self.patch_frame) {
            (Some(h), _) if h == self.seq => None,
            (Some(h), Some(patch)) if h + 1 == self.seq => Some(patch),
            _ => Some(&self.full_frame),
        }
    }
}

pub struct OverviewFeed {
    service: Arc<OverviewService>,
    audit: Arc<AuditLog>,
    jobs: Jobs,
    every: Duration,
    tx: watch::Sender<Option<Arc<FeedVersion>>>,
    /// Whether the sampling task runs (it stops when nobody follows).
    sampling: Mutex<bool>,
}

impl OverviewFeed {
    pub fn new(service: Arc<OverviewService>, audit: Arc<AuditLog>, jobs: Jobs) -> Arc<Self> {
        Arc::new(OverviewFeed {
            service,
            audit,
            jobs,
            every: SAMPLE_EVERY,
            tx: watch::channel(None).0,
            sampling: Mutex::new(false),
        })
    }

    /// The Overview read now, for one caller (the page's first render, the
    /// API): topology, history, HAProxy, containers, recent operations and
    /// which members running jobs account for.
    pub async fn read(&self) -> Overview {
        self.read_with(true).await
    }

    async fn read_with(&self, containers: bool) -> Overview {
        let (mut ov, ops) = tokio::join!(
            self.service.read(containers),
            self.audit.recent_operations(RECENT_OPERATIONS)
        );
        ov.operations = ops.unwrap_or_default();
        let names: Vec<String> = ov.topology.members.iter().map(|m| m.name.clone()).collect();
        ov.busy_members = model::overview::busy_members(&self.jobs.running(), &names);
        ov
    }

    /// The followers' newest version if it is at most `max_age` old (no
    /// second read while tabs follow), else a read of the cluster of its own
    /// (without Docker's view: no resource sampling while nobody looks).
    pub async fn latest_or_read_cluster(&self, max_age: Duration) -> Overview {
        let latest = self.tx.borrow().clone();
        match latest {
            Some(v) if v.read_at.elapsed() <= max_age => v.overview.clone(),
            _ => self.read_with(false).await,
        }
    }

    /// Follow the feed: the receiver holds the newest version (None until
    /// the first sample), and sampling runs for as long as any receiver lives.
    pub fn subscribe(self: &Arc<Self>) -> watch::Receiver<Option<Arc<FeedVersion>>> {
        let rx = self.tx.subscribe();
        let mut sampling = self.sampling.lock().expect("feed state poisoned");
        if !*sampling {
            *sampling = true;
            tokio::spawn(self.clone().sample_while_followed());
        }
        rx
    }

    async fn sample_while_followed(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            {
                // Checked under the same lock `subscribe` takes: a follower
                // arriving now either is counted here or starts a new task.
                let mut sampling = self.sampling.lock().expect("feed state poisoned");
                if self.tx.receiver_count() == 0 {
                    *sampling = false;
                    // The next follower starts from a fresh read, not from this.
                    self.tx.send_replace(None);
                    return;
                }
            }
            let overview = self.read().await;
            let previous = self.tx.borrow().clone();
            if let Some(version) = next_version(previous.as_deref(), overview) {
                self.tx.send_replace(Some(Arc::new(version)));
            }
        }
    }
}

/// The version after `previous` for a newly read Overview, or None when
/// nothing changed.
pub fn next_version(previous: Option<&FeedVersion>, overview: Overview) -> Option<FeedVersion> {
    let value = serde_json::to_value(&overview).expect("the Overview serialises");
    let (seq, patch) = match previous {
        Some(p) => (p.seq + 1, Some(model::merge_patch::diff(&p.value, &value)?)),
        None => (1, None),
    };
    let frame = |f: FeedFrame| serde_json::to_string(&f).expect("a frame serialises");
    Some(FeedVersion {
        seq,
        read_at: std::time::Instant::now(),
        full_frame: frame(FeedFrame {
            seq,
            full: Some(value.clone()),
            ..Default::default()
        }),
        patch_frame: patch.map(|p| {
            frame(FeedFrame {
                seq,
                patch: Some(p),
                ..Default::default()
            })
        }),
        overview,
        value,
    })
}
