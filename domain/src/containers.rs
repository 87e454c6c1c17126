//! The stack's containers beside Patroni: `docker inspect` of each member,
//! etcd, pg-router and traefik, sampled at most once a second and shared by
//! every viewer of the Overview.

use std::time::{Duration, Instant};

use bollard::models::ContainerInspectResponse;
use model::containers::{ContainerState, ContainerStatus};

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
    }
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
    }
}

type Sample = Result<Vec<ContainerState>, String>;

/// The containers to watch and the last sample.
pub struct ContainerWatch {
    names: Vec<String>,
    docker: tokio::sync::OnceCell<DockerControl>,
    last: tokio::sync::Mutex<Option<(Instant, Sample)>>,
}

/// How long one sample serves every viewer.
const FRESH: Duration = Duration::from_secs(1);

impl ContainerWatch {
    pub fn new(names: Vec<String>) -> Self {
        Self {
            names,
            docker: tokio::sync::OnceCell::new(),
            last: tokio::sync::Mutex::new(None),
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
        let sample = self.sample().await;
        *last = Some((Instant::now(), sample.clone()));
        sample
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

    fn recorded(file: &str) -> ContainerInspectResponse {
        let path = format!("{}/tests/fixtures/docker-20.10/{file}", env!("CARGO_MANIFEST_DIR"));
        let all: Vec<ContainerInspectResponse> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
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
        assert_eq!(down.status, ContainerStatus::Exited);
        assert_eq!(down.exit_code, Some(3));
        assert!(down.finished_at_ms.unwrap() >= down.started_at_ms.unwrap());
    }
}
