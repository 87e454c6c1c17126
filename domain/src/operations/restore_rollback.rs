//! Putting a cluster's previous data back after a failed or interrupted
//! restore, and finishing, at the console's start, what a restore left
//! (its journal says where it stood).

use std::time::{Duration, Instant};

use model::backups::RestorePhase;
use model::topology::human_bytes;

use super::jobs::JobHandle;
use super::reinit_cluster::healthy;
use super::OperationService;
use crate::docker::DockerControl;
use crate::naming::data_dir_name;
use crate::restore::{swap, Journal};

async fn say(job: Option<&JobHandle>, text: String) {
    match job {
        Some(j) => j.step(text).await,
        None => tracing::warn!("restore recovery: {text}"),
    }
}

impl OperationService {
    /// Stop everything, move what the restore put in place to `failed/` and
    /// the previous data back, start etcd and the members, wait for them.
    pub(super) async fn put_back(
        &self,
        job: Option<&JobHandle>,
        docker: &DockerControl,
        j: &mut Journal,
    ) -> Result<(), String> {
        let etcd = self.reinit.etcd_container.clone();
        say(job, format!("stopping {} and {etcd}", j.members.join(", "))).await;
        for r in futures::future::join_all(j.members.iter().map(|n| docker.stop(n, 60))).await {
            r.map_err(|e| e.to_string())?;
        }
        docker.stop(&etcd, 30).await.map_err(|e| e.to_string())?;
        let data = self.reinit.data_dir.clone();
        say(
            job,
            format!("putting the previous data back from {}", j.folder(&data).display()),
        )
        .await;
        let dirs: Vec<String> = j.members.iter().map(|m| data_dir_name(m)).collect();
        let (layout, folder) = (swap::Layout::new(&data, j.folder(&data)), j.folder(&data));
        let (holds, bytes) = crate::off_thread(move || {
            swap::roll_back(&layout, &dirs)?;
            swap::drop_incoming(&layout);
            Ok::<_, std::io::Error>((swap::holds(&layout), crate::restore::tree_bytes(&folder)))
        })
        .await
        .map_err(|e| format!("cannot move the data back: {e}"))?;
        j.phase = RestorePhase::RolledBack;
        j.holds = holds;
        j.bytes = bytes;
        self.journal(j).await?;
        say(job, format!("starting {etcd} and {}", j.members.join(", "))).await;
        docker.start(&etcd).await.map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        for n in &j.members {
            docker.start(n).await.map_err(|e| e.to_string())?;
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(self.reinit.restore_timeout_secs.max(30)) {
            if healthy(&self.patroni.topology().await, j.members.len()) {
                say(job, "the previous cluster is healthy again".into()).await;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(
            "the previous data is back, but the old cluster did not become healthy in time: look at the members' logs"
                .into(),
        )
    }

    /// At start: restores the previous run left unfinished. Before the
    /// swap, the extracted copy is dropped and the members started again;
    /// from the swap on, the previous data is put back. Returns what was
    /// done, one line per restore.
    pub async fn recover_restores(&self) -> Vec<String> {
        let data = self.reinit.data_dir.clone();
        let pending: Vec<Journal> = crate::off_thread(move || crate::restore::journals(&data))
            .await
            .into_iter()
            .filter(|j| !j.phase.finished())
            .collect();
        let mut out = Vec::new();
        if pending.is_empty() {
            return out;
        }
        // Under the cluster-wide lock: no operation starts meanwhile.
        // Another console that shares the data directory and runs a restore
        // holds the lock too: its restore is running, not interrupted.
        let _guard = match self
            .lock
            .try_acquire("Finishing an interrupted restore", "console")
            .await
        {
            Ok(g) => g,
            Err(e) => return vec![format!("{e}: the unfinished restore is left as it is")],
        };
        let docker = match DockerControl::connect().await {
            Ok(d) => d,
            Err(e) => return vec![format!("cannot reach Docker to finish an interrupted restore: {e}")],
        };
        for mut j in pending {
            let was = j.phase;
            let line = self.recover_one(&docker, &mut j).await;
            out.push(format!(
                "restore {} of backup {} was interrupted ({}): {line}",
                j.id,
                j.backup_id,
                was.as_str()
            ));
        }
        out
    }

    async fn recover_one(&self, docker: &DockerControl, j: &mut Journal) -> String {
        if j.phase == RestorePhase::Staging {
            // A point-in-time replay may still run on the extracted copy.
            if let Err(e) = docker.remove(crate::restore::replay::CONTAINER).await {
                return format!("cannot remove the replay's container: {e}; the extracted copy is left as it is");
            }
            let layout = swap::Layout::new(&self.reinit.data_dir, j.folder(&self.reinit.data_dir));
            crate::off_thread(move || swap::drop_incoming(&layout)).await;
            j.phase = RestorePhase::Abandoned;
            j.holds = "nothing".into();
            j.outcome = "interrupted by a console restart before anything stopped".into();
            if let Err(e) = self.journal(j).await {
                return e;
            }
            return "nothing had stopped; the extracted copy was removed".into();
        }
        let r = self.put_back(None, docker, j).await;
        j.outcome = match &r {
            Ok(()) => format!(
                "interrupted by a console restart; the previous data is back and the old cluster runs ({} kept)",
                human_bytes(j.bytes)
            ),
            Err(e) => format!("interrupted by a console restart; putting the previous data back: {e}"),
        };
        if let Err(e) = self.journal(j).await {
            return e;
        }
        j.outcome.clone()
    }
}
