//! Docker control (bollard): stop, start and inspect the stack's containers.

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
};
use bollard::Docker;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker engine ({0}); the console needs access to the Docker socket for this")]
    Connect(String),
    #[error("docker {action} {container} failed: {reason}")]
    Call {
        action: &'static str,
        container: String,
        reason: String,
    },
}

/// One event of a container, as Docker reports it.
#[derive(Clone, Debug)]
pub struct ContainerEvent {
    pub action: String,
    pub id: String,
    pub attributes: std::collections::HashMap<String, String>,
    pub time_nano: i64,
}

/// The network of a throwaway container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScratchNetwork {
    /// None at all: nothing can reach it over TCP.
    None,
    /// The host's: it reaches what listens on loopback.
    Host,
}

#[derive(Clone)]
pub struct DockerControl {
    docker: Docker,
}

impl DockerControl {
    /// Connect to the local engine and agree on an API version it supports.
    pub async fn connect() -> Result<Self, DockerError> {
        let docker = Docker::connect_with_local_defaults().map_err(|e| DockerError::Connect(e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| DockerError::Connect(e.to_string()))?;
        Ok(Self { docker })
    }

    /// Stop, giving PostgreSQL `timeout_secs` to shut down cleanly.
    pub async fn stop(&self, container: &str, timeout_secs: i32) -> Result<(), DockerError> {
        let opts = StopContainerOptionsBuilder::new().t(timeout_secs).build();
        // 304: already stopped.
        tolerate(
            self.docker.stop_container(container, Some(opts)).await,
            &[304],
            "stop",
            container,
        )
    }

    pub async fn start(&self, container: &str) -> Result<(), DockerError> {
        let r = self
            .docker
            .start_container(container, None::<StartContainerOptions>)
            .await;
        // 304: already running.
        tolerate(r, &[304], "start", container)
    }

    async fn inspect(&self, container: &str) -> Result<bollard::models::ContainerInspectResponse, DockerError> {
        self.docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .map_err(call_error("inspect", container))
    }

    /// What `docker inspect` says, or None when there is no such container.
    pub async fn inspect_if_exists(
        &self,
        container: &str,
    ) -> Result<Option<bollard::models::ContainerInspectResponse>, DockerError> {
        match self
            .docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => Ok(Some(info)),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(call_error("inspect", container)(e)),
        }
    }

    /// A container's log frames as `docker logs --timestamps` reads them:
    /// (bytes, whether from stderr).
    pub fn logs(
        &self,
        container: &str,
        q: &crate::logs::LogQuery,
    ) -> impl futures::Stream<Item = Result<(Vec<u8>, bool), DockerError>> + Send + 'static {
        use futures::StreamExt;
        let mut b = bollard::query_parameters::LogsOptionsBuilder::default()
            .follow(q.follow)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(i32::try_from(q.since_s).unwrap_or(0));
        if q.until_s > 0 {
            b = b.until(i32::try_from(q.until_s).unwrap_or(i32::MAX));
        }
        if let Some(t) = q.tail {
            b = b.tail(&t.to_string());
        }
        let name = container.to_string();
        self.docker.logs(container, Some(b.build())).map(move |r| match r {
            Ok(out) => {
                let stderr = matches!(out, bollard::container::LogOutput::StdErr { .. });
                Ok((out.as_ref().to_vec(), stderr))
            }
            Err(e) => Err(call_error("logs", &name)(e)),
        })
    }

    /// Docker's events of `containers` since `since_s` (unix seconds; what
    /// Docker still holds), then each new one as it happens: (action,
    /// container id, attributes, time in ns).
    pub fn events(
        &self,
        containers: &[String],
        since_s: i64,
    ) -> impl futures::Stream<Item = Result<ContainerEvent, DockerError>> + Send + 'static {
        use futures::StreamExt;
        let filters = std::collections::HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("container".to_string(), containers.to_vec()),
        ]);
        let options = bollard::query_parameters::EventsOptions {
            since: Some(since_s.max(0).to_string()),
            until: None,
            filters: Some(filters),
        };
        self.docker.events(Some(options)).map(|r| match r {
            Ok(m) => {
                let actor = m.actor.unwrap_or_default();
                Ok(ContainerEvent {
                    action: m.action.unwrap_or_default(),
                    id: actor.id.unwrap_or_default(),
                    attributes: actor.attributes.unwrap_or_default(),
                    time_nano: m.time_nano.unwrap_or_else(|| m.time.unwrap_or(0) * 1_000_000_000),
                })
            }
            Err(e) => Err(call_error("events", "")(e)),
        })
    }

    /// One resource sample of a container (`docker stats --no-stream`:
    /// Docker takes two CPU readings about a second apart). None when there
    /// is no such container.
    pub async fn stats_once(
        &self,
        container: &str,
    ) -> Result<Option<bollard::models::ContainerStatsResponse>, DockerError> {
        use futures::StreamExt;
        let options = bollard::query_parameters::StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(false)
            .build();
        let mut answers = Box::pin(self.docker.stats(container, Some(options)));
        match answers.next().await {
            Some(Ok(s)) => Ok(Some(s)),
            Some(Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })) | None => Ok(None),
            Some(Err(e)) => Err(call_error("stats", container)(e)),
        }
    }

    /// Whether the container exists and runs.
    pub async fn is_running(&self, container: &str) -> Result<bool, DockerError> {
        let info = self.inspect(container).await?;
        Ok(info.state.and_then(|s| s.running).unwrap_or(false))
    }

    /// SIGKILL the container's main process (gone or stopped already is fine).
    pub async fn kill(&self, container: &str) -> Result<(), DockerError> {
        let opts = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
        tolerate(
            self.docker.kill_container(container, Some(opts)).await,
            &[404, 409],
            "kill",
            container,
        )
    }

    /// The image (id) a container runs.
    pub async fn image_of(&self, container: &str) -> Result<String, DockerError> {
        self.inspect(container).await?.image.ok_or_else(|| DockerError::Call {
            action: "inspect",
            container: container.into(),
            reason: "no image reported".into(),
        })
    }

    /// Create and start a throwaway container as root with no network at
    /// all and `binds` (`host:container[:ro]`) mounted; replaces a leftover
    /// of the same name.
    pub async fn run_scratch(
        &self,
        name: &str,
        image: &str,
        binds: &[String],
        entrypoint: Vec<String>,
    ) -> Result<(), DockerError> {
        self.run_isolated(name, image, binds, "root", entrypoint).await
    }

    /// The same as `user` (`uid:gid`): its entrypoint is PID 1, so `stop`'s
    /// SIGTERM reaches it directly.
    pub async fn run_isolated(
        &self,
        name: &str,
        image: &str,
        binds: &[String],
        user: &str,
        entrypoint: Vec<String>,
    ) -> Result<(), DockerError> {
        // No network at all: nothing can reach it over TCP.
        self.run_on_network(name, image, binds, user, ScratchNetwork::None, entrypoint)
            .await
    }

    /// A throwaway container as `user` on `network`: [`ScratchNetwork::Host`]
    /// reaches the stack's members on loopback (e.g. `pg_basebackup` from a replica).
    pub async fn run_on_network(
        &self,
        name: &str,
        image: &str,
        binds: &[String],
        user: &str,
        network: ScratchNetwork,
        entrypoint: Vec<String>,
    ) -> Result<(), DockerError> {
        let _ = self.remove(name).await;
        let body = ContainerCreateBody {
            image: Some(image.into()),
            entrypoint: Some(entrypoint),
            cmd: Some(Vec::new()),
            user: Some(user.into()),
            labels: Some([("pg-console.scratch".to_string(), "true".to_string())].into()),
            host_config: Some(HostConfig {
                network_mode: Some(
                    match network {
                        ScratchNetwork::None => "none",
                        ScratchNetwork::Host => "host",
                    }
                    .into(),
                ),
                binds: Some(binds.to_vec()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(name).build();
        self.docker
            .create_container(Some(opts), body)
            .await
            .map_err(call_error("create", name))?;
        self.docker
            .start_container(name, None::<StartContainerOptions>)
            .await
            .map_err(call_error("start", name))
    }

    /// A container's exit code once it has exited; None while it runs.
    pub async fn exit_code(&self, name: &str) -> Result<Option<i64>, DockerError> {
        let state = self.inspect(name).await?.state.unwrap_or_default();
        Ok(if state.running.unwrap_or(false) {
            None
        } else {
            Some(state.exit_code.unwrap_or(-1))
        })
    }

    /// Force-remove a container (gone already is fine).
    pub async fn remove(&self, name: &str) -> Result<(), DockerError> {
        let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        tolerate(
            self.docker.remove_container(name, Some(opts)).await,
            &[404],
            "remove",
            name,
        )
    }

    /// The last `lines` lines of a container's output (for error messages).
    pub async fn tail_logs(&self, name: &str, lines: usize) -> String {
        use futures::StreamExt;
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut out = String::new();
        let mut s = self.docker.logs(name, Some(opts));
        while let Some(Ok(chunk)) = s.next().await {
            out.push_str(&chunk.to_string());
        }
        out
    }
}

fn call_error(action: &'static str, container: &str) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let container = container.to_string();
    move |e| DockerError::Call {
        action,
        container,
        reason: e.to_string(),
    }
}

/// Ok, also when the engine answers with one of `ok_codes` (already in the wanted state).
fn tolerate(
    r: Result<(), bollard::errors::Error>,
    ok_codes: &[u16],
    action: &'static str,
    container: &str,
) -> Result<(), DockerError> {
    match r {
        Err(bollard::errors::Error::DockerResponseServerError { status_code, .. })
            if ok_codes.contains(&status_code) =>
        {
            Ok(())
        }
        r => r.map_err(call_error(action, container)),
    }
}
