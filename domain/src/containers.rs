//! The stack's containers beside Patroni: `docker inspect` of each member,
//! etcd, pg-router and traefik, sampled at most once a second and shared by
//! every viewer of the Overview.

use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bollard::models::{ContainerCpuStats, ContainerInspectResponse, ContainerStatsResponse};
use model::containers::{ContainerState, ContainerStatus, ContainerUsage};

use crate::docker::DockerControl;

/// Docker's answer, in the model's terms.
pub fn from_inspect(name: &str, info: &ContainerInspectResponse) -> ContainerState {
    let st = info.state.as_ref();
    // Docker writes 0001-01-01T00:00:00Z for "never".
    let time = |t: Option<&String>| {
        t.and_then(|s| crate::datetime::parse_rfc3339_ms(s))
            .filter(|ms| *ms > 0)
    };
    ContainerState {
        name: name.to_string(),
        status: st
            .and_then(|s| s.status)
            .map(|s| ContainerStatus::parse(&s.to_string()))
            .unwrap_or(ContainerStatus::Unknown),
        exit_code: st.and_then(|s| s.exit_code),
        started_at_ms: time(st.and_then(|s| s.started_at.as_ref())),
        finished_at_ms: time(st.and_then(|s| s.finished_at.as_ref())),
        restart_count: info.restart_count.unwrap_or(0),
        oom_killed: st.and_then(|s| s.oom_killed).unwrap_or(false),
        image: info.config.as_ref().and_then(|c| c.image.clone()).unwrap_or_default(),
        health: st
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .map(|h| h.to_string())
            .filter(|h| !h.is_empty() && h != "none"),
        usage: None,
    }
}

/// One `docker stats` answer (two CPU readings about a second apart) as
/// the `docker stats` command computes it: CPU of one CPU in percent,
/// memory without the inactive page cache, block I/O in bytes.
pub fn usage_from_stats(s: &ContainerStatsResponse, at_ms: i64) -> Option<ContainerUsage> {
    let (cpu, pre) = (s.cpu_stats.as_ref()?, s.precpu_stats.as_ref());
    let total = |c: &ContainerCpuStats| c.cpu_usage.as_ref().and_then(|u| u.total_usage).unwrap_or(0);
    let cpu_delta = total(cpu).saturating_sub(pre.map(total).unwrap_or(0));
    let system_delta = cpu
        .system_cpu_usage
        .unwrap_or(0)
        .saturating_sub(pre.and_then(|p| p.system_cpu_usage).unwrap_or(0));
    let cpus = cpu.online_cpus.filter(|n| *n > 0).map(u64::from).unwrap_or_else(|| {
        cpu.cpu_usage
            .as_ref()
            .and_then(|u| u.percpu_usage.as_ref())
            .map_or(1, |v| v.len().max(1) as u64)
    });
    let has_pre = pre.and_then(|p| p.system_cpu_usage).is_some_and(|v| v > 0);
    let cpu_percent = if has_pre && system_delta > 0 {
        cpu_delta as f64 / system_delta as f64 * cpus as f64 * 100.0
    } else {
        0.0
    };
    let mem = s.memory_stats.as_ref()?;
    // cgroup v1 names it total_inactive_file, v2 inactive_file.
    let inactive = mem
        .stats
        .as_ref()
        .and_then(|m| m.get("total_inactive_file").or_else(|| m.get("inactive_file")).copied())
        .unwrap_or(0);
    let io = |op: &str| {
        let entries = s.blkio_stats.as_ref()?.io_service_bytes_recursive.as_ref()?;
        (!entries.is_empty()).then(|| {
            entries
                .iter()
                .filter(|e| e.op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(op)))
                .filter_map(|e| e.value)
                .sum()
        })
    };
    Some(ContainerUsage {
        cpu_percent,
        memory_bytes: mem.usage?.saturating_sub(inactive),
        memory_limit_bytes: mem.limit.unwrap_or(0),
        block_read_bytes: io("read"),
        block_write_bytes: io("write"),
        sampled_at_ms: at_ms,
    })
}

fn missing(name: &str) -> ContainerState {
    ContainerState {
        name: name.to_string(),
        status: ContainerStatus::Missing,
        exit_code: None,
        started_at_ms: None,
        finished_at_ms: None,
        restart_count: 0,
        oom_killed: false,
        image: String::new(),
        health: None,
        usage: None,
    }
}

type Sample = Result<Vec<ContainerState>, String>;

/// The last resource samples, by container name.
type Usage = Arc<std::sync::Mutex<(Option<Instant>, HashMap<String, ContainerUsage>)>>;

/// The containers to watch and the last sample.
pub struct ContainerWatch {
    names: Vec<String>,
    docker: tokio::sync::OnceCell<DockerControl>,
    last: tokio::sync::Mutex<Option<(Instant, Sample)>>,
    usage: Usage,
    /// One resource sampling at a time.
    sampling: Arc<AtomicBool>,
}

/// How long one sample serves every viewer.
const FRESH: Duration = Duration::from_secs(1);
/// How often CPU and memory are sampled while someone looks (each
/// `docker stats` answer takes Docker about a second).
const USAGE_EVERY: Duration = Duration::from_secs(5);

impl ContainerWatch {
    pub fn new(names: Vec<String>) -> Self {
        Self {
            names,
            docker: tokio::sync::OnceCell::new(),
            last: tokio::sync::Mutex::new(None),
            usage: Default::default(),
            sampling: Default::default(),
        }
    }

    /// Each container's state (at most a second old), or why Docker cannot be asked.
    pub async fn states(&self) -> Sample {
        let mut last = self.last.lock().await;
        if let Some((at, sample)) = last.as_ref() {
            if at.elapsed() < FRESH {
                return sample.clone();
            }
        }
        let mut sample = self.sample().await;
        if let Ok(states) = &mut sample {
            self.attach_usage(states);
        }
        *last = Some((Instant::now(), sample.clone()));
        sample
    }

    /// Each running container gets its last resource sample; a new
    /// sampling starts in the background when that is older than
    /// [`USAGE_EVERY`] (so nobody waits for Docker's second).
    fn attach_usage(&self, states: &mut [ContainerState]) {
        let due = {
            let u = self.usage.lock().expect("usage poisoned");
            for s in states.iter_mut().filter(|s| s.status == ContainerStatus::Running) {
                s.usage = u.1.get(&s.name).cloned();
            }
            u.0.is_none_or(|at| at.elapsed() >= USAGE_EVERY)
        };
        let Some(docker) = self.docker.get().cloned() else {
            return;
        };
        if !due || self.sampling.swap(true, Ordering::AcqRel) {
            return;
        }
        let running: Vec<String> = states
            .iter()
            .filter(|s| s.status == ContainerStatus::Running)
            .map(|s| s.name.clone())
            .collect();
        let (usage, sampling) = (self.usage.clone(), self.sampling.clone());
        tokio::spawn(async move {
            let answers = futures::future::join_all(running.iter().map(|n| docker.stats_once(n))).await;
            let now = crate::now_ms();
            let fresh: HashMap<String, ContainerUsage> = running
                .into_iter()
                .zip(answers)
                .filter_map(|(n, a)| match a {
                    Ok(Some(s)) => usage_from_stats(&s, now).map(|u| (n, u)),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::debug!("docker stats {n}: {e}");
                        None
                    }
                })
                .collect();
            *usage.lock().expect("usage poisoned") = (Some(Instant::now()), fresh);
            sampling.store(false, Ordering::Release);
        });
    }

    async fn sample(&self) -> Sample {
        let docker = self
            .docker
            .get_or_try_init(DockerControl::connect)
            .await
            .map_err(|e| e.to_string())?;
        let answers = futures::future::join_all(self.names.iter().map(|n| docker.inspect_if_exists(n))).await;
        self.names
            .iter()
            .zip(answers)
            .map(|(n, a)| match a {
                Ok(Some(info)) => Ok(from_inspect(n, &info)),
                Ok(None) => Ok(missing(n)),
                Err(e) => Err(e.to_string()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file recorded from Docker 20.10 (found at run time: a test binary
    /// may run in another checkout than the one it was built in).
    fn fixture(file: &str) -> String {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
        std::fs::read_to_string(format!("{dir}/tests/fixtures/docker-20.10/{file}")).unwrap()
    }

    fn recorded(file: &str) -> ContainerInspectResponse {
        let all: Vec<ContainerInspectResponse> = serde_json::from_str(&fixture(file)).unwrap();
        all.into_iter().next().unwrap()
    }

    #[test]
    fn reads_docker_inspect_as_recorded() {
        let up = from_inspect("pg-0", &recorded("inspect-running.json"));
        assert_eq!(up.status, ContainerStatus::Running);
        assert!(up.started_at_ms.unwrap() > 1_700_000_000_000);
        assert_eq!(up.finished_at_ms, None, "0001-01-01 means never");
        assert!(!up.image.is_empty());
        let down = from_inspect("x", &recorded("inspect-exited.json"));
        assert_eq!(down.usage, None);
        assert_eq!(down.status, ContainerStatus::Exited);
        assert_eq!(down.exit_code, Some(3));
        assert!(down.finished_at_ms.unwrap() >= down.started_at_ms.unwrap());
    }

    fn recorded_stats(file: &str) -> ContainerStatsResponse {
        serde_json::from_str(&fixture(file)).unwrap()
    }

    /// The figures `docker stats` (CLI 28) shows for the same answer.
    #[test]
    fn reads_docker_stats_as_the_docker_cli_computes_them() {
        let u = usage_from_stats(&recorded_stats("stats-pg-0.json"), 7).unwrap();
        // (5361290204 − 5349176898) / (72234860000000 − 72232840000000) × 2 CPUs
        assert!((u.cpu_percent - 1.1993).abs() < 0.001, "{}", u.cpu_percent);
        assert_eq!(
            u.memory_bytes,
            179_167_232 - 71_598_080,
            "usage minus total_inactive_file"
        );
        assert_eq!(u.memory_limit_bytes, 25_276_063_744);
        assert_eq!(
            (u.block_read_bytes, u.block_write_bytes),
            (None, None),
            "no blkio accounting here"
        );
        assert_eq!(u.sampled_at_ms, 7);
        assert!(u.line().starts_with("CPU 1.2 % · "), "{}", u.line());
        let etcd = usage_from_stats(&recorded_stats("stats-etcd.json"), 0).unwrap();
        assert!(etcd.cpu_percent > 0.0 && etcd.memory_bytes > 0);
        // An answer without the previous reading (one-shot) is 0 %, not a spike.
        let mut one = recorded_stats("stats-pg-0.json");
        one.precpu_stats = None;
        assert_eq!(usage_from_stats(&one, 0).unwrap().cpu_percent, 0.0);
    }
}
