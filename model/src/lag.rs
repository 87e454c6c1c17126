//! Replication lag over time: per replica, how many bytes of the leader's
//! WAL it has not yet received and not yet replayed, sampled by the console
//! (the last hour from memory, the last 24 h at one-minute resolution from
//! its database), and the geometry of the SVG charts drawn from them.

use serde::{Deserialize, Serialize};

use crate::topology::Topology;

/// One look at one replica's lag. `None`: Patroni gave no number (the
/// member did not answer, or does not stream), drawn as a gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagSample {
    pub at_ms: i64,
    /// WAL written on the leader, not yet received by the replica.
    pub receive: Option<u64>,
    /// WAL written on the leader, not yet replayed by the replica.
    pub replay: Option<u64>,
}

impl LagSample {
    /// The larger of each lag (a bucket keeps its worst moment).
    pub fn max(self, o: LagSample) -> LagSample {
        LagSample {
            at_ms: self.at_ms.max(o.at_ms),
            receive: max_opt(self.receive, o.receive),
            replay: max_opt(self.replay, o.replay),
        }
    }

    /// The larger of the two lags, if either is known.
    pub fn worst(&self) -> Option<u64> {
        max_opt(self.receive, self.replay)
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Each replica's lag in one look at the cluster (leaders have none).
/// Patroni 3 gives one `lag` only: it stands for both.
pub fn samples_of(t: &Topology) -> Vec<(String, LagSample)> {
    t.members
        .iter()
        .filter(|m| !m.role.is_leader())
        .map(|m| {
            let s = if m.streams() {
                LagSample {
                    at_ms: t.observed_at_ms,
                    receive: m.receive_lag_bytes.or(m.lag_bytes),
                    replay: m.replay_lag_bytes.or(m.lag_bytes),
                }
            } else {
                LagSample {
                    at_ms: t.observed_at_ms,
                    receive: None,
                    replay: None,
                }
            };
            (m.name.clone(), s)
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagSeries {
    pub member: String,
    /// Oldest first.
    pub samples: Vec<LagSample>,
}

/// How far back a chart looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LagRange {
    /// The last hour, from memory, one point per 20 s (the worst of each).
    #[default]
    Hour,
    /// The last 24 h, from the database, one point per minute.
    Day,
}

impl LagRange {
    pub fn span_ms(self) -> i64 {
        match self {
            LagRange::Hour => 3_600_000,
            LagRange::Day => 86_400_000,
        }
    }

    /// The width of one point of the chart.
    pub fn step_ms(self) -> i64 {
        match self {
            LagRange::Hour => 20_000,
            LagRange::Day => 60_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LagRange::Hour => "1h",
            LagRange::Day => "24h",
        }
    }

    pub fn parse(s: &str) -> Option<LagRange> {
        match s {
            "1h" => Some(LagRange::Hour),
            "24h" => Some(LagRange::Day),
            _ => None,
        }
    }
}

/// The lag of every replica (or one) over a range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagHistory {
    pub range: LagRange,
    pub from_ms: i64,
    pub to_ms: i64,
    /// The healthy bound, drawn as a line.
    pub threshold_bytes: u64,
    pub series: Vec<LagSeries>,
}

impl LagHistory {
    pub fn of(&self, member: &str) -> Option<&LagSeries> {
        self.series.iter().find(|s| s.member == member)
    }

    /// Add a fresh look (the live feed's) and move the window to it,
    /// dropping what falls out of the range. Looks within one point's
    /// width are merged, worst of each.
    pub fn push(&mut self, t: &Topology) {
        let now = t.observed_at_ms;
        if now <= self.to_ms {
            return;
        }
        self.to_ms = now;
        self.from_ms = now - self.range.span_ms();
        let step = self.range.step_ms();
        for (member, s) in samples_of(t) {
            match self.series.iter_mut().find(|x| x.member == member) {
                // Same point of the chart: keep the worst of the two.
                Some(x) => match x.samples.last_mut() {
                    Some(last) if last.at_ms.div_euclid(step) == s.at_ms.div_euclid(step) => *last = last.max(s),
                    _ => x.samples.push(s),
                },
                None => self.series.push(LagSeries {
                    member,
                    samples: vec![s],
                }),
            }
        }
        let from = self.from_ms;
        for x in &mut self.series {
            x.samples.retain(|s| s.at_ms >= from);
        }
        self.series.retain(|x| !x.samples.is_empty());
    }
}

/// Worst-of-bucket downsampling: one sample per `step_ms` (oldest first).
pub fn bucket(samples: &[LagSample], step_ms: i64) -> Vec<LagSample> {
    let mut out: Vec<LagSample> = Vec::new();
    let mut key = None;
    for s in samples {
        let k = s.at_ms.div_euclid(step_ms.max(1));
        match out.last_mut() {
            Some(last) if key == Some(k) => *last = last.max(*s),
            _ => out.push(*s),
        }
        key = Some(k);
    }
    out
}

/// Two points further apart than this are not joined (the console was
/// down, or nothing was sampled).
pub const GAP_MS: i64 = 150_000;

/// Where a chart draws: its time window, its value scale and its size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChartScale {
    pub from_ms: i64,
    pub to_ms: i64,
    pub max_bytes: u64,
    pub width: f64,
    pub height: f64,
}

impl ChartScale {
    /// A scale whose top is a round number above every value shown and
    /// at least twice the healthy bound (so the bound line is always drawn).
    pub fn fit(h: &LagHistory, series: &[&LagSeries], width: f64, height: f64) -> ChartScale {
        let top = series
            .iter()
            .flat_map(|s| s.samples.iter().filter_map(LagSample::worst))
            .max()
            .unwrap_or(0)
            .max(2 * h.threshold_bytes.max(1));
        ChartScale {
            from_ms: h.from_ms,
            to_ms: h.to_ms.max(h.from_ms + 1),
            max_bytes: round_up(top),
            width,
            height,
        }
    }

    pub fn x(&self, at_ms: i64) -> f64 {
        let f = (at_ms - self.from_ms) as f64 / (self.to_ms - self.from_ms) as f64;
        (f.clamp(0.0, 1.0) * self.width * 10.0).round() / 10.0
    }

    pub fn y(&self, bytes: u64) -> f64 {
        let f = bytes as f64 / self.max_bytes.max(1) as f64;
        ((1.0 - f.clamp(0.0, 1.0)) * self.height * 10.0).round() / 10.0
    }

    /// SVG polyline point lists, one per unbroken run of `pick`'s values.
    pub fn polylines(&self, samples: &[LagSample], pick: fn(&LagSample) -> Option<u64>) -> Vec<String> {
        let mut runs: Vec<Vec<String>> = Vec::new();
        let mut prev: Option<i64> = None;
        for s in samples.iter().filter(|s| s.at_ms >= self.from_ms) {
            let Some(v) = pick(s) else {
                prev = None;
                continue;
            };
            let joined = prev.is_some_and(|p| s.at_ms - p <= GAP_MS);
            if !joined {
                runs.push(Vec::new());
            }
            if let Some(run) = runs.last_mut() {
                run.push(format!("{},{}", self.x(s.at_ms), self.y(v)));
            }
            prev = Some(s.at_ms);
        }
        runs.into_iter().map(|r| r.join(" ")).collect()
    }
}

/// The smallest 1, 2 or 5 × 2^10k-friendly round number ≥ `n` (in bytes:
/// 1 MB, 2 MB, 5 MB, 10 MB, …, with 1 kB steps below a MB).
fn round_up(n: u64) -> u64 {
    let unit: u64 = if n >= 1 << 30 {
        1 << 30
    } else if n >= 1 << 20 {
        1 << 20
    } else {
        1 << 10
    };
    let mut m = 1u64;
    loop {
        for k in [1, 2, 5] {
            if k * m * unit >= n {
                return k * m * unit;
            }
        }
        m *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: i64, receive: Option<u64>, replay: Option<u64>) -> LagSample {
        LagSample { at_ms, receive, replay }
    }

    #[test]
    fn buckets_keep_the_worst_of_each_lag() {
        let v = [
            s(0, Some(5), Some(9)),
            s(10_000, Some(7), Some(1)),
            s(20_000, None, Some(3)),
            s(41_000, Some(1), None),
        ];
        assert_eq!(
            bucket(&v, 20_000),
            vec![
                s(10_000, Some(7), Some(9)),
                s(20_000, None, Some(3)),
                s(41_000, Some(1), None)
            ]
        );
    }

    #[test]
    fn polylines_break_at_unknown_values_and_long_gaps() {
        let scale = ChartScale {
            from_ms: 0,
            to_ms: 1_000_000,
            max_bytes: 100,
            width: 100.0,
            height: 10.0,
        };
        let v = [
            s(0, Some(0), None),
            s(100_000, Some(50), None),
            s(200_000, None, None),
            s(300_000, Some(100), None),
            s(350_000, Some(100), None),
            s(900_000, Some(200), None),
        ];
        assert_eq!(
            scale.polylines(&v, |s| s.receive),
            vec!["0,10 10,5", "30,0 35,0", "90,0"]
        );
        assert!(scale.polylines(&v, |s| s.replay).is_empty());
    }

    #[test]
    fn the_scale_tops_at_a_round_number_over_twice_the_bound() {
        let h = LagHistory {
            range: LagRange::Hour,
            from_ms: 0,
            to_ms: 10,
            threshold_bytes: 1 << 20,
            series: vec![LagSeries {
                member: "pg-1".into(),
                samples: vec![s(5, Some(3 << 20), Some(7 << 20))],
            }],
        };
        let all: Vec<&LagSeries> = h.series.iter().collect();
        assert_eq!(ChartScale::fit(&h, &all, 100.0, 10.0).max_bytes, 10 << 20);
        let quiet = LagHistory { series: vec![], ..h };
        assert_eq!(ChartScale::fit(&quiet, &[], 100.0, 10.0).max_bytes, 2 << 20);
        assert_eq!(round_up(1500), 2048);
        assert_eq!(round_up(21 << 20), 50 << 20);
    }

    /// The Overview's sparklines grow from the live feed: a look within
    /// the newest point's 20 s merges into it (worst of each), a later one
    /// adds a point, what leaves the hour is dropped, an old look is ignored.
    #[test]
    fn pushed_looks_merge_per_point_and_slide_the_window() {
        let topology = |at_ms: i64, lag: u64| -> Topology {
            serde_json::from_value(serde_json::json!({
                "cluster": "c", "observed_at_ms": at_ms, "members": [{
                    "name": "pg-1", "role": "Replica", "state": "streaming", "raw_state": null,
                    "host": "h", "port": 1, "api_url": "u", "timeline": 1, "lag_bytes": lag,
                    "receive_lag_bytes": lag, "replay_lag_bytes": null, "pending_restart": false,
                    "tags": {}, "reachable": true, "unreachable_since_ms": null,
                    "server_version": null, "patroni_version": null
                }],
                "paused": false, "unreachable": [], "scheduled_switchover": null
            }))
            .unwrap()
        };
        let mut h = LagHistory {
            range: LagRange::Hour,
            from_ms: 0,
            to_ms: 3_600_000,
            threshold_bytes: 1,
            series: vec![LagSeries {
                member: "pg-1".into(),
                samples: vec![s(1_000, Some(1), Some(1))],
            }],
        };
        h.push(&topology(3_600_001, 50));
        h.push(&topology(3_605_000, 70));
        h.push(&topology(3_610_000, 60));
        h.push(&topology(3_620_000, 5));
        h.push(&topology(3_619_000, 999));
        assert_eq!((h.from_ms, h.to_ms), (20_000, 3_620_000));
        assert_eq!(
            h.of("pg-1").unwrap().samples,
            vec![s(3_610_000, Some(70), Some(70)), s(3_620_000, Some(5), Some(5))]
        );
    }

    #[test]
    fn ranges_parse_what_they_print() {
        for r in [LagRange::Hour, LagRange::Day] {
            assert_eq!(LagRange::parse(r.as_str()), Some(r));
        }
        assert_eq!(LagRange::parse("7d"), None);
    }
}
