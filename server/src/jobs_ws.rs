//! `/ws/jobs/{id}`: one job's steps and progress, pushed to the browser on
//! every change until it finishes. The middleware has already checked the
//! origin, the session and the role (rules::WS_RULES) before the upgrade; the
//! session is re-checked while the socket lives, so a revoked or expired
//! session stops receiving.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use domain::authz::Caller;
use domain::operations::Jobs;
use domain::users::{SessionCheck, SessionStore};

/// The route, as registered and as listed by `pg-console routes`.
pub const JOB_ROUTE: &str = "/ws/jobs/{id}";

#[derive(Clone)]
pub struct WsState {
    pub jobs: Jobs,
    pub sessions: SessionStore,
}

pub async fn job(
    ws: WebSocketUpgrade,
    Path(id): Path<String>,
    State(st): State<Arc<WsState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    ws.on_upgrade(move |socket| follow(socket, st, caller, id))
}

fn error_message(text: &str) -> Message {
    Message::Text(serde_json::json!({ "error": text }).to_string().into())
}

async fn follow(mut socket: WebSocket, st: Arc<WsState>, caller: Caller, id: String) {
    let mut changed = st.jobs.subscribe();
    let mut session_check = tokio::time::interval(Duration::from_secs(5));
    session_check.tick().await;
    let mut last = String::new();
    loop {
        let Some(job) = st.jobs.get(&id) else {
            let _ = socket
                .send(error_message(&format!(
                    "no job {id}: it finished long ago or the console restarted; see the audit log"
                )))
                .await;
            break;
        };
        let text = serde_json::to_string(&job).expect("a job serialises");
        if text != last {
            if socket.send(Message::Text(text.clone().into())).await.is_err() {
                return;
            }
            last = text;
        }
        if job.outcome.is_some() {
            break;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { break },
            _ = session_check.tick() => {
                if !matches!(st.sessions.check(&caller.sid).await, Ok(SessionCheck::Valid(_))) {
                    let _ = socket.send(error_message("your session has ended: log in again")).await;
                    break;
                }
            }
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
        // Progress arrives every ~200 ms; a short pause coalesces bursts.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = socket.send(Message::Close(None)).await;
}
