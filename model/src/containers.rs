//! The stack's containers as Docker sees them, beside Patroni's view, and
//! the places where the two disagree, in words.

use serde::{Deserialize, Serialize};

use crate::topology::Topology;

/// Docker's state of a container (`State.Status`), or `missing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    Running,
    Exited,
    Restarting,
    Paused,
    Dead,
    Created,
    Removing,
    /// No container of that name.
    Missing,
    Unknown,
}

impl ContainerStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "running" => Self::Running,
            "exited" => Self::Exited,
            "restarting" => Self::Restarting,
            "paused" => Self::Paused,
            "dead" => Self::Dead,
            "created" => Self::Created,
            "removing" => Self::Removing,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Exited => "exited",
            Self::Restarting => "restarting",
            Self::Paused => "paused",
            Self::Dead => "dead",
            Self::Created => "created",
            Self::Removing => "removing",
            Self::Missing => "missing",
            Self::Unknown => "unknown",
        }
    }
}

/// One container: what `docker inspect` says about its life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    pub name: String,
    pub status: ContainerStatus,
    pub exit_code: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub restart_count: i64,
    pub oom_killed: bool,
    pub image: String,
    /// The health check's verdict, where the container has one.
    pub health: Option<String>,
    /// CPU, memory and I/O of a running container, sampled every few
    /// seconds while someone looks (None: not running, or not sampled yet).
    #[serde(default)]
    pub usage: Option<ContainerUsage>,
}

/// One resource sample of a container, as `docker stats` computes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerUsage {
    /// Of one CPU: 200 % is two CPUs busy.
    pub cpu_percent: f64,
    /// Memory in use without the page cache it could drop (as `docker stats`).
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    /// Bytes read and written since the container started (None: the
    /// kernel keeps no block I/O accounting for its storage).
    pub block_read_bytes: Option<u64>,
    pub block_write_bytes: Option<u64>,
    pub sampled_at_ms: i64,
}

impl ContainerUsage {
    /// "CPU 1.2 % · 103 MiB": one line for a table cell.
    pub fn line(&self) -> String {
        let mut s = format!(
            "CPU {:.1} % · {}",
            self.cpu_percent,
            crate::topology::human_bytes(self.memory_bytes)
        );
        if let (Some(r), Some(w)) = (self.block_read_bytes, self.block_write_bytes) {
            s.push_str(&format!(
                " · I/O {} read, {} written",
                crate::topology::human_bytes(r),
                crate::topology::human_bytes(w)
            ));
        }
        s
    }
}

/// "3 h 2 min", "41 s": a duration for people.
pub fn span(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

impl ContainerState {
    /// One line: "running, up 3 h 2 min" or "exited (137) 2 min 5 s ago".
    pub fn summary(&self, now_ms: i64) -> String {
        let mut out = match (self.status, self.started_at_ms, self.finished_at_ms) {
            (ContainerStatus::Running, Some(t), _) => format!("running, up {}", span(now_ms - t)),
            (ContainerStatus::Exited | ContainerStatus::Dead, _, Some(t)) => format!(
                "{} ({}) {} ago",
                self.status.as_str(),
                self.exit_code.unwrap_or_default(),
                span(now_ms - t)
            ),
            (s, _, _) => s.as_str().to_string(),
        };
        if let Some(h) = &self.health {
            out.push_str(&format!(", {h}"));
        }
        if self.restart_count > 0 {
            out.push_str(&format!(", restarted {} times", self.restart_count));
        }
        if self.oom_killed {
            out.push_str(", OOM-killed");
        }
        out
    }
}

/// Where Docker and Patroni disagree about a member, or its container is
/// in trouble: (member, sentence). Members a console operation acts on
/// (`busy`) are left out: their stop is expected.
pub fn disagreements(
    t: &Topology,
    containers: &[ContainerState],
    busy: &std::collections::BTreeMap<String, String>,
    now_ms: i64,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in t.members.iter().filter(|m| !busy.contains_key(&m.name)) {
        let Some(c) = containers.iter().find(|c| c.name == m.name) else {
            continue;
        };
        let mut say = |text: String| out.push((m.name.clone(), text));
        match c.status {
            ContainerStatus::Running if !m.reachable => say(match m.unreachable_since_ms {
                Some(since) => format!("container running, Patroni not answering for {}", span(now_ms - since)),
                None => "container running, Patroni not answering".into(),
            }),
            ContainerStatus::Paused => say("container paused: Patroni and PostgreSQL are frozen".into()),
            ContainerStatus::Running | ContainerStatus::Restarting | ContainerStatus::Created => {}
            _ => {
                let ago = c
                    .finished_at_ms
                    .map(|f| format!(" {} ago", span(now_ms - f)))
                    .unwrap_or_default();
                let exited = format!("{}{ago}", c.status.as_str());
                say(match m.raw_state.as_deref() {
                    Some(s @ ("streaming" | "running")) => {
                        format!("Patroni's DCS entry says {s} but the container {exited}")
                    }
                    _ => format!("the container {exited}"),
                });
            }
        }
        if c.oom_killed {
            say("the container was killed for lack of memory (OOM)".into());
        }
        if c.restart_count > 0 {
            say(format!("Docker restarted the container {} times", c.restart_count));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Member, MemberState, Role};

    fn member(name: &str, reachable: bool, raw: &str) -> Member {
        Member {
            name: name.into(),
            role: Role::Replica,
            state: if reachable {
                MemberState::Streaming
            } else {
                MemberState::Unreachable
            },
            raw_state: Some(raw.into()),
            host: "127.0.0.1".into(),
            port: None,
            api_url: String::new(),
            timeline: None,
            lag_bytes: None,
            receive_lag_bytes: None,
            replay_lag_bytes: None,
            pending_restart: false,
            tags: Default::default(),
            reachable,
            unreachable_since_ms: (!reachable).then_some(60_000),
            server_version: None,
            patroni_version: None,
        }
    }

    fn container(name: &str, status: ContainerStatus) -> ContainerState {
        ContainerState {
            name: name.into(),
            status,
            exit_code: Some(0),
            started_at_ms: Some(0),
            finished_at_ms: None,
            restart_count: 0,
            oom_killed: false,
            image: "pgc-node".into(),
            health: None,
            usage: None,
        }
    }

    #[test]
    fn disagreements_in_plain_words() {
        let t = Topology {
            cluster: "c".into(),
            members: vec![
                member("pg-0", true, "running"),
                member("pg-1", false, "running"),
                member("pg-2", false, "streaming"),
            ],
            unreachable: Vec::new(),
            paused: false,
            view_from: None,
            scheduled_switchover: None,
            observed_at_ms: 0,
        };
        let mut exited = container("pg-2", ContainerStatus::Exited);
        exited.exit_code = Some(137);
        exited.finished_at_ms = Some(0);
        let cs = vec![
            container("pg-0", ContainerStatus::Running),
            container("pg-1", ContainerStatus::Running),
            exited.clone(),
        ];
        let d = disagreements(&t, &cs, &Default::default(), 100_000);
        assert_eq!(
            d,
            vec![
                (
                    "pg-1".to_string(),
                    "container running, Patroni not answering for 40 s".to_string()
                ),
                (
                    "pg-2".to_string(),
                    "Patroni's DCS entry says streaming but the container exited 1 min 40 s ago".to_string()
                ),
            ]
        );
        let busy = [("pg-2".to_string(), "Backup of pg-2 by ada".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            disagreements(&t, &cs, &busy, 100_000).len(),
            1,
            "an expected stop is not flagged"
        );
        assert_eq!(exited.summary(100_000), "exited (137) 1 min 40 s ago");
        let mut r = container("pg-0", ContainerStatus::Running);
        r.restart_count = 3;
        r.oom_killed = true;
        assert_eq!(
            r.summary(3 * 3_600_000 + 120_000),
            "running, up 3 h 2 min, restarted 3 times, OOM-killed"
        );
    }
}
