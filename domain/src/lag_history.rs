//! Replication lag over time, recorded from every look the timeline's
//! observer takes at the cluster (every `timeline_sample_secs`, whether or
//! not anyone watches):
//! - the last hour of looks in memory, in a ring bounded by time and count;
//! - the worst of each minute in SQLite (`lag_minutes`), kept 24 h, so the
//!   day chart and the hour chart after a restart have data.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use model::lag::{bucket, samples_of, LagHistory, LagRange, LagSample, LagSeries};
use model::topology::{Topology, CAUGHT_UP_LAG_BYTES};
use sqlx::SqlitePool;

/// At most this many looks per replica in memory (one per second for an
/// hour; the observer looks every 2 s by default).
const RING_MAX: usize = 3600;
const MINUTE_MS: i64 = 60_000;

pub struct LagRecorder {
    pool: SqlitePool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Member → looks of the last hour, oldest first.
    ring: BTreeMap<String, VecDeque<LagSample>>,
    /// The minute being accumulated, and each member's worst in it.
    minute: Option<i64>,
    worst: BTreeMap<String, LagSample>,
    /// A finished minute while it is being written (the day's chart still
    /// shows it meanwhile).
    writing: Option<(i64, BTreeMap<String, LagSample>)>,
}

type MinuteRow = (String, i64, Option<i64>, Option<i64>);

impl LagRecorder {
    pub fn new(pool: SqlitePool) -> Self {
        LagRecorder {
            pool,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fill the ring from the database's minutes of the last hour (at
    /// start, so the hour chart does not begin empty after a restart).
    pub async fn load(&self, now_ms: i64) -> Result<(), sqlx::Error> {
        let rows = self.minutes(None, now_ms - LagRange::Hour.span_ms()).await?;
        let mut inner = self.lock();
        for (member, s) in rows {
            inner.ring.entry(member).or_default().push_back(s);
        }
        Ok(())
    }

    /// Record one look; when it opens a new minute, the finished one is
    /// written to the database and minutes past 24 h are dropped.
    pub async fn record(&self, t: &Topology) -> Result<(), sqlx::Error> {
        let now = t.observed_at_ms;
        let finished = {
            let mut inner = self.lock();
            let samples = samples_of(t);
            for (member, s) in &samples {
                let ring = inner.ring.entry(member.clone()).or_default();
                if ring.back().is_some_and(|b| b.at_ms >= s.at_ms) {
                    continue; // the same look again
                }
                ring.push_back(*s);
            }
            let from = now - LagRange::Hour.span_ms();
            for ring in inner.ring.values_mut() {
                while ring.front().is_some_and(|f| f.at_ms < from) || ring.len() > RING_MAX {
                    ring.pop_front();
                }
            }
            inner.ring.retain(|_, r| !r.is_empty());
            let minute = now.div_euclid(MINUTE_MS) * MINUTE_MS;
            let finished = match inner.minute {
                Some(m) if m != minute => Some((m, std::mem::take(&mut inner.worst))),
                _ => None,
            };
            inner.writing = finished.clone();
            inner.minute = Some(minute);
            for (member, s) in samples {
                let w = inner.worst.entry(member).or_insert(s);
                *w = w.max(s);
            }
            finished
        };
        if let Some((minute, worst)) = finished {
            let written = self.write_minute(minute, &worst).await;
            self.lock().writing = None;
            written?;
        }
        Ok(())
    }

    async fn write_minute(&self, minute: i64, worst: &BTreeMap<String, LagSample>) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for (member, s) in worst {
            sqlx::query("INSERT OR REPLACE INTO lag_minutes (member, minute_ms, receive, replay) VALUES (?, ?, ?, ?)")
                .bind(member)
                .bind(minute)
                .bind(s.receive.map(|v| v as i64))
                .bind(s.replay.map(|v| v as i64))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM lag_minutes WHERE minute_ms < ?")
            .bind(minute - LagRange::Day.span_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Minutes since `from_ms` (of one member, or all), oldest first.
    async fn minutes(&self, member: Option<&str>, from_ms: i64) -> Result<Vec<(String, LagSample)>, sqlx::Error> {
        let rows: Vec<MinuteRow> = sqlx::query_as(
            "SELECT member, minute_ms, receive, replay FROM lag_minutes \
             WHERE minute_ms >= ?1 AND (?2 IS NULL OR member = ?2) ORDER BY minute_ms",
        )
        .bind(from_ms)
        .bind(member)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(m, at_ms, receive, replay)| {
                let s = LagSample {
                    at_ms,
                    receive: receive.map(|v| v as u64),
                    replay: replay.map(|v| v as u64),
                };
                (m, s)
            })
            .collect())
    }

    /// The chart's data for `range` up to `now_ms`, of one member or every
    /// replica: the hour from memory, the day from the database (plus the
    /// minute not yet written).
    pub async fn history(&self, range: LagRange, member: Option<&str>, now_ms: i64) -> Result<LagHistory, sqlx::Error> {
        let from_ms = now_ms - range.span_ms();
        let mut by_member: BTreeMap<String, Vec<LagSample>> = BTreeMap::new();
        match range {
            LagRange::Hour => {
                let inner = self.lock();
                for (m, ring) in &inner.ring {
                    if member.is_none_or(|x| x == m) {
                        let v = ring.iter().filter(|s| s.at_ms >= from_ms).copied().collect();
                        by_member.insert(m.clone(), v);
                    }
                }
            }
            LagRange::Day => {
                for (m, s) in self.minutes(member, from_ms).await? {
                    by_member.entry(m).or_default().push(s);
                }
                // The minutes not in the table yet: one being written, the open one.
                let inner = self.lock();
                let unwritten = inner.writing.iter().map(|(m, w)| (*m, w));
                for (minute, worst) in unwritten.chain(inner.minute.map(|m| (m, &inner.worst))) {
                    for (m, s) in worst {
                        if member.is_none_or(|x| x == m) {
                            let v = by_member.entry(m.clone()).or_default();
                            if v.last().is_none_or(|l| l.at_ms < minute) {
                                v.push(LagSample { at_ms: minute, ..*s });
                            }
                        }
                    }
                }
            }
        }
        let series = by_member
            .into_iter()
            .map(|(member, v)| LagSeries {
                member,
                samples: bucket(&v, range.step_ms()),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        Ok(LagHistory {
            range,
            from_ms,
            to_ms: now_ms,
            threshold_bytes: CAUGHT_UP_LAG_BYTES,
            series,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(at_ms: i64, lag: Option<u64>) -> Topology {
        let mut t = crate::operations::plan_tests::recorded();
        t.observed_at_ms = at_ms;
        for m in &mut t.members {
            if !m.role.is_leader() {
                m.receive_lag_bytes = lag;
                m.replay_lag_bytes = lag.map(|l| l * 2);
            }
        }
        t
    }

    async fn recorder(tag: &str) -> LagRecorder {
        let dir = std::env::temp_dir().join(format!("pgc-lag-{tag}-{}-{}", std::process::id(), crate::now_ms()));
        LagRecorder::new(crate::db::open(&dir.join("t.db")).await.unwrap())
    }

    #[tokio::test]
    async fn the_hour_is_bounded_and_each_minute_keeps_its_worst() {
        let r = recorder("ring").await;
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE_MS;
        // Two hours of looks every 2 s: the ring keeps the last hour only.
        for i in 0..3600 {
            r.record(&topology(t0 + i * 2000, Some(i as u64))).await.unwrap();
        }
        let now = t0 + 3599 * 2000;
        let h = r.history(LagRange::Hour, None, now).await.unwrap();
        assert_eq!(
            h.series.len(),
            2,
            "{:?}",
            h.series.iter().map(|s| &s.member).collect::<Vec<_>>()
        );
        let s = &h.series[0].samples;
        assert_eq!(s.len(), 181, "one point per 20 s, both ends included");
        assert!(s[0].at_ms >= now - 3_600_000);
        assert_eq!(s.last().unwrap().receive, Some(3599));
        assert_eq!(r.lock().ring.values().map(VecDeque::len).max(), Some(1801));
        // The day: one point per minute, the worst of it, plus the open minute.
        let d = r.history(LagRange::Day, Some("pg-1"), now).await.unwrap();
        assert_eq!(d.series.len(), 1);
        let m = &d.series[0].samples;
        assert_eq!(m.len(), 120);
        assert_eq!(
            m[0],
            LagSample {
                at_ms: t0,
                receive: Some(29),
                replay: Some(58)
            }
        );
        // A restarted console starts its hour from the written minutes (the
        // hour's 59 whole ones: the open minute was lost with the process).
        let again = LagRecorder::new(r.pool.clone());
        again.load(now).await.unwrap();
        let h = again.history(LagRange::Hour, Some("pg-1"), now).await.unwrap();
        assert_eq!(h.series[0].samples.len(), 59);
    }

    #[tokio::test]
    async fn a_member_that_does_not_stream_is_a_gap() {
        let r = recorder("gap").await;
        let mut t = topology(1_000, Some(5));
        t.members[1].reachable = false;
        r.record(&t).await.unwrap();
        let h = r.history(LagRange::Hour, None, 1_000).await.unwrap();
        let gap = h.of(&t.members[1].name).unwrap();
        assert_eq!(gap.samples[0].receive, None);
    }
}
