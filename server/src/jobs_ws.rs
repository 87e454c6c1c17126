//! `/ws/jobs/{id}`: one job's steps and progress, pushed to the browser on
//! every change until it finishes. The middleware has already checked the
//! origin, the session and the role (the route's rule) before the upgrade;
//! the session is re-checked while the socket lives, so a revoked or expired
//! session stops receiving.
//!
//! Bounded: a client's messages are at most [`MAX_MESSAGE_BYTES`] (it has no
//! reason to send any), a session holds at most [`MAX_PER_SESSION`] sockets
//! and the console at most [`MAX_TOTAL`] (more get 429 before the upgrade),
//! and an idle socket is pinged every [`PING_EVERY`] so proxies keep it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::error::{ApiError, ErrorKind};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use domain::authz::Caller;
use domain::operations::Jobs;
use domain::users::{SessionCheck, SessionStore};

/// The routes, as registered and as listed by `pg-console routes`: one
/// job's progress, and the feed of running jobs.
pub const JOB_ROUTE: &str = "/ws/jobs/{id}";
pub const FEED_ROUTE: &str = "/ws/jobs";
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
pub const MAX_PER_SESSION: usize = 8;
pub const MAX_TOTAL: usize = 256;
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// How often an open socket re-checks its session: a revoked, disabled or
/// expired session's streams end within this (a session revoked from the
/// CLI is another process's write, so it is read, not signalled).
pub const SESSION_RECHECK: Duration = Duration::from_secs(1);

pub struct WsState {
    pub jobs: Jobs,
    pub sessions: SessionStore,
    /// Open sockets per session id.
    open: Mutex<HashMap<String, usize>>,
}

impl WsState {
    pub fn new(jobs: Jobs, sessions: SessionStore) -> Self {
        WsState {
            jobs,
            sessions,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the session behind a socket is still valid (not revoked,
    /// disabled, demoted or expired).
    pub async fn session_valid(&self, sid: &str) -> bool {
        matches!(self.sessions.check(sid).await, Ok(SessionCheck::Valid(_)))
    }

    /// Count one socket of `sid`, or None when a cap is reached.
    pub fn admit(self: &Arc<Self>, sid: &str) -> Option<Slot> {
        let mut open = self.open.lock().expect("ws counters poisoned");
        let total: usize = open.values().sum();
        let mine = open.get(sid).copied().unwrap_or(0);
        if total >= MAX_TOTAL || mine >= MAX_PER_SESSION {
            return None;
        }
        *open.entry(sid.to_string()).or_default() += 1;
        Some(Slot {
            st: self.clone(),
            sid: sid.to_string(),
        })
    }
}

/// The answer when a cap is reached (before the upgrade).
pub fn too_many() -> Response {
    crate::auth::middleware::api_error(ApiError::new(
        ErrorKind::TooMany,
        "too many live connections: close other console tabs and reload",
    ))
}

/// The upgrade with the message and frame bounds every socket has.
pub fn bounded(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_MESSAGE_BYTES).max_frame_size(MAX_MESSAGE_BYTES)
}

/// One counted socket; uncounted when dropped.
pub struct Slot {
    st: Arc<WsState>,
    sid: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.st.open.lock().expect("ws counters poisoned");
        if let Some(n) = open.get_mut(&self.sid) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.sid);
            }
        }
    }
}

pub async fn job(
    ws: WebSocketUpgrade,
    Path(id): Path<String>,
    State(st): State<Arc<WsState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let Some(slot) = st.admit(&caller.sid) else {
        return too_many();
    };
    bounded(ws).on_upgrade(move |socket| follow(socket, st, caller, id, slot))
}

/// `/ws/jobs`: the running operations, on connect and whenever they change.
/// Idle between changes (pings keep it open through proxies).
pub async fn feed(
    ws: WebSocketUpgrade,
    State(st): State<Arc<WsState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let Some(slot) = st.admit(&caller.sid) else {
        return too_many();
    };
    bounded(ws).on_upgrade(move |socket| feed_loop(socket, st, caller, slot))
}

async fn feed_loop(mut socket: WebSocket, st: Arc<WsState>, caller: Caller, _slot: Slot) {
    let mut changed = st.jobs.subscribe();
    let mut upkeep = Upkeep::new().await;
    let mut last = String::new();
    loop {
        let running = model::operations::RunningJobs {
            running: st.jobs.running().iter().map(Into::into).collect(),
        };
        let text = serde_json::to_string(&running).expect("the feed serialises");
        if text != last {
            if socket.send(Message::Text(text.clone().into())).await.is_err() {
                return;
            }
            last = text;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { break },
            due = upkeep.due(&mut socket) => match Upkeep::run(due, &mut socket, &st, &caller.sid).await {
                Flow::Go => {}
                Flow::SessionEnded => {
                    let _ = socket.send(error_message(SESSION_ENDED)).await;
                    break;
                }
                Flow::Closed => return,
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// What every socket does besides its own messages: re-check the session,
/// ping, and notice the client leaving (its messages are otherwise ignored).
pub struct Upkeep {
    session_check: tokio::time::Interval,
    ping: tokio::time::Interval,
}

/// What is due on a socket besides its own messages.
pub enum Due {
    SessionCheck,
    Ping,
    /// The client left or the connection broke.
    Closed,
    /// A client message, ignored.
    Nothing,
}

/// What [`Upkeep::run`] decided.
pub enum Flow {
    Go,
    /// Revoked, disabled, demoted or expired: say so, then close.
    SessionEnded,
    /// The client left or the connection broke.
    Closed,
}

/// Sent before a socket closes because its session ended.
pub const SESSION_ENDED: &str = "your session has ended: log in again";

impl Upkeep {
    pub async fn new() -> Upkeep {
        let mut session_check = tokio::time::interval(SESSION_RECHECK);
        session_check.tick().await;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        Upkeep { session_check, ping }
    }

    /// Wait until something is due. Only waits (cancel-safe), so it can
    /// race the socket's own messages in a `select!`; what is due is then
    /// done by [`Upkeep::run`] outside the race, so a busy stream cannot
    /// cancel a session check half-way.
    pub async fn due(&mut self, socket: &mut WebSocket) -> Due {
        tokio::select! {
            _ = self.session_check.tick() => Due::SessionCheck,
            _ = self.ping.tick() => Due::Ping,
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Due::Closed,
                Some(Ok(_)) => Due::Nothing,
            },
        }
    }

    /// Do what is due.
    pub async fn run(due: Due, socket: &mut WebSocket, st: &WsState, sid: &str) -> Flow {
        match due {
            Due::SessionCheck if !st.session_valid(sid).await => Flow::SessionEnded,
            Due::Ping if socket.send(Message::Ping(Vec::new().into())).await.is_err() => Flow::Closed,
            Due::Closed => Flow::Closed,
            _ => Flow::Go,
        }
    }
}

fn error_message(text: &str) -> Message {
    Message::Text(serde_json::json!({ "error": text }).to_string().into())
}

async fn follow(mut socket: WebSocket, st: Arc<WsState>, caller: Caller, id: String, _slot: Slot) {
    let mut changed = st.jobs.subscribe();
    let mut upkeep = Upkeep::new().await;
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
            due = upkeep.due(&mut socket) => match Upkeep::run(due, &mut socket, &st, &caller.sid).await {
                Flow::Go => {}
                Flow::SessionEnded => {
                    let _ = socket.send(error_message(SESSION_ENDED)).await;
                    break;
                }
                Flow::Closed => return,
            },
        }
        // Progress arrives every ~200 ms; a short pause coalesces bursts.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = socket.send(Message::Close(None)).await;
}
