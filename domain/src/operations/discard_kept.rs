//! Free the space of what a restore kept (the cluster's data from before
//! it, or a failed restore's): admin, typed folder name, password. The only
//! place the console deletes what a restore moved aside.

use futures::future::BoxFuture;
use model::operations::OpRequest;
use model::topology::human_bytes;

use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{pass, Draft};
use crate::authz::Action;

pub struct DiscardKept;

fn kept_id(req: &OpRequest) -> &str {
    match req {
        OpRequest::DiscardKept { kept_id } => kept_id,
        _ => "",
    }
}

/// A folder name as restores write them: digits, `T` and `Z` only (so it
/// cannot climb out of the kept folder).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_digit() || c == 'T' || c == 'Z')
}

impl Operation for DiscardKept {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let admin = ctx.may(Action::RestoreCluster);
        let id = kept_id(req);
        Draft {
            title: format!("Discard the data kept by restore {id}"),
            steps: Vec::new(),
            preconditions: vec![
                pass(
                    admin,
                    if admin {
                        "you are an admin"
                    } else {
                        "only an admin may discard kept data"
                    },
                ),
                pass(valid_id(id), format!("{id:?} names a restore's folder")),
            ],
            shell: format!("sudo rm -rf ${{DEFAULT_DATA_DIR}}/pg-console-kept/{id}"),
            confirm_name: id.to_string(),
        }
    }

    fn local<'a>(&'a self, req: &'a OpRequest, svc: &'a OperationService, d: &'a mut Draft) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (data, id) = (svc.reinit.data_dir.clone(), kept_id(req).to_string());
            if !valid_id(&id) {
                return;
            }
            let j = crate::off_thread(move || crate::restore::find(&data, &id)).await;
            match j {
                None => d.preconditions.push(pass(false, "there is no such kept data")),
                Some(j) => {
                    d.preconditions.push(pass(
                        j.phase.finished(),
                        if j.phase.finished() {
                            format!("restore {} is over ({})", j.id, j.phase.as_str())
                        } else {
                            format!(
                                "restore {} is not finished ({}): its data is still needed",
                                j.id,
                                j.phase.as_str()
                            )
                        },
                    ));
                    d.steps = vec![
                        format!(
                            "delete {} ({}: {})",
                            j.folder(&svc.reinit.data_dir).display(),
                            human_bytes(j.bytes),
                            j.holds
                        ),
                        "THIS CANNOT BE UNDONE: the cluster's data from before that restore is gone for good".into(),
                    ];
                }
            }
        })
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        Box::pin(async move {
            let id = kept_id(r.req);
            let folder = crate::restore::kept_root(&r.svc.reinit.data_dir).join(id);
            r.job.step(format!("deleting {}", folder.display())).await;
            let f2 = folder.clone();
            crate::off_thread(move || std::fs::remove_dir_all(&f2))
                .await
                .map_err(|e| format!("cannot delete {}: {e}", folder.display()))?;
            Ok(format!("deleted {}", folder.display()))
        })
    }
}

use super::OperationService;
