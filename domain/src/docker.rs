//! Docker control (bollard): stop, start and inspect the stack's containers.

use bollard::query_parameters::{InspectContainerOptions, StartContainerOptions, StopContainerOptionsBuilder};
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
        match self.docker.stop_container(container, Some(opts)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(DockerError::Call {
                action: "stop",
                container: container.into(),
                reason: e.to_string(),
            }),
        }
    }

    pub async fn start(&self, container: &str) -> Result<(), DockerError> {
        match self
            .docker
            .start_container(container, None::<StartContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(DockerError::Call {
                action: "start",
                container: container.into(),
                reason: e.to_string(),
            }),
        }
    }

    /// Whether the container exists and runs.
    pub async fn is_running(&self, container: &str) -> Result<bool, DockerError> {
        let info = self
            .docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .map_err(|e| DockerError::Call {
                action: "inspect",
                container: container.into(),
                reason: e.to_string(),
            })?;
        Ok(info.state.and_then(|s| s.running).unwrap_or(false))
    }
}
