//! Containers' logs for operators and admins (the routes' rule is
//! `read_logs`): `/ws/logs/{container}` tails a log live, `GET
//! /logs/{container}` downloads a time range. Only the stack's own
//! containers; every line masked (the stack's secrets never leave the
//! server); each view and download audited.
//!
//! Bounded like the jobs' sockets (the same per-session and total caps, the
//! session re-checked every second): Docker's lines go through a queue of
//! [`QUEUE_BATCHES`] batches; when the browser does not keep up, what does
//! not fit is dropped and counted, and the browser is told how many lines
//! it missed. Nothing buffers without limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use app::error::{ApiError, ErrorKind};
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use domain::audit::{AuditEntry, AuditLog, AuditResult};
use domain::authz::Caller;
use domain::docker::DockerControl;
use domain::logs::{LogQuery, Masker};
use futures::StreamExt;
use model::logs::{LogLine, LogMessage};
use serde::Deserialize;

use crate::auth::middleware::api_error;
use crate::jobs_ws::{Flow, Upkeep, WsState, SESSION_ENDED};

pub const TAIL_ROUTE: &str = "/ws/logs/{container}";
pub const DOWNLOAD_ROUTE: &str = "/logs/{container}";
/// Batches of lines waiting for a slow browser; beyond, lines are dropped and counted.
pub const QUEUE_BATCHES: usize = 256;
/// At most this many lines per message.
const LINES_PER_MESSAGE: usize = 500;
/// The live tail starts with at most this many earlier lines.
const MAX_TAIL: u32 = 5000;

pub struct LogsState {
    pub ws: Arc<WsState>,
    pub audit: Arc<AuditLog>,
    /// The stack's containers (members, etcd, pg-router, traefik).
    pub containers: Vec<String>,
    pub masker: Masker,
    docker: tokio::sync::OnceCell<DockerControl>,
}

impl LogsState {
    pub fn new(ws: Arc<WsState>, audit: Arc<AuditLog>, containers: Vec<String>, masker: Masker) -> Self {
        LogsState {
            ws,
            audit,
            containers,
            masker,
            docker: tokio::sync::OnceCell::new(),
        }
    }

    /// The container, if it is one of the stack's, and Docker.
    async fn open(&self, container: &str) -> Result<DockerControl, ApiError> {
        if !self.containers.iter().any(|c| c == container) {
            return Err(ApiError::not_found(format!(
                "no container {container:?} in this stack: the Logs page lists them"
            )));
        }
        self.docker
            .get_or_try_init(DockerControl::connect)
            .await
            .cloned()
            .map_err(|e| {
                tracing::error!("logs: {e}");
                ApiError::new(ErrorKind::Internal, "Docker cannot be reached: see the console's log")
            })
    }

    async fn audit(&self, caller: &Caller, action: &str, container: &str, params: serde_json::Value) {
        self.audit
            .record_or_log(
                AuditEntry::new(action, AuditResult::Ok)
                    .by(caller)
                    .target(container)
                    .params(params),
            )
            .await;
    }
}

/// `?tail=N&since=S` of the live tail: the last N lines (default 200) of the
/// last S seconds (default: all), then new ones.
#[derive(Debug, Default, Deserialize)]
pub struct TailParams {
    pub tail: Option<u32>,
    pub since: Option<u32>,
}

pub async fn tail(
    ws: WebSocketUpgrade,
    Path(container): Path<String>,
    Query(p): Query<TailParams>,
    State(st): State<Arc<LogsState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let docker = match st.open(&container).await {
        Ok(d) => d,
        Err(e) => return api_error(e),
    };
    let Some(slot) = st.ws.admit(&caller.sid) else {
        return crate::jobs_ws::too_many();
    };
    let tail = p.tail.unwrap_or(200).min(MAX_TAIL);
    let since_s = p.since.map_or(0, |s| domain::now_ms() / 1000 - i64::from(s));
    st.audit(
        &caller,
        "logs_view",
        &container,
        serde_json::json!({ "tail": tail, "since_s": since_s }),
    )
    .await;
    let q = LogQuery {
        since_s,
        until_s: 0,
        tail: Some(tail),
        follow: true,
    };
    crate::jobs_ws::bounded(ws).on_upgrade(move |socket| async move {
        let _slot = slot;
        follow(socket, st, caller, docker, container, q).await
    })
}

type Batch = Result<Vec<LogLine>, String>;

/// Lines into a bounded queue; what does not fit is counted in `missed`.
fn read_into_queue<S>(
    lines: S,
    missed: Arc<AtomicU64>,
) -> (tokio::sync::mpsc::Receiver<Batch>, tokio::task::JoinHandle<()>)
where
    S: futures::Stream<Item = Batch> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE_BATCHES);
    let mut lines = Box::pin(lines);
    let reader = tokio::spawn(async move {
        while let Some(batch) = lines.next().await {
            match tx.try_send(batch) {
                Ok(()) => {}
                Err(tokio::sync::mpsc::error::TrySendError::Full(Ok(b))) => {
                    missed.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                Err(tokio::sync::mpsc::error::TrySendError::Full(Err(_))) => {}
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    });
    (rx, reader)
}

fn text(m: &LogMessage) -> Message {
    Message::Text(serde_json::to_string(m).expect("a log message serialises").into())
}

async fn follow(
    mut socket: WebSocket,
    st: Arc<LogsState>,
    caller: Caller,
    docker: DockerControl,
    container: String,
    q: LogQuery,
) {
    let missed = Arc::new(AtomicU64::new(0));
    let lines = domain::logs::lines(&docker, &container, &q, st.masker.clone()).map(|b| b.map_err(|e| e.to_string()));
    let (mut rx, reader) = read_into_queue(lines, missed.clone());
    let _stop_reading = AbortOnDrop(reader);
    let mut upkeep = Upkeep::new().await;
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let mut lines = match batch {
                    Some(Ok(lines)) => lines,
                    Some(Err(e)) => {
                        tracing::warn!("logs of {container}: {e}");
                        let _ = socket.send(text(&LogMessage::Error(format!("reading the log of {container} failed: see the console's log")))).await;
                        break;
                    }
                    None => {
                        let _ = socket.send(text(&LogMessage::Error(format!("{container} stopped or was removed: the live tail ended; reload to follow it again")))).await;
                        break;
                    }
                };
                // Whatever else is already queued goes in the same message.
                while lines.len() < LINES_PER_MESSAGE {
                    match rx.try_recv() {
                        Ok(Ok(more)) => lines.extend(more),
                        _ => break,
                    }
                }
                let lost = missed.swap(0, Ordering::Relaxed);
                if lost > 0 && socket.send(text(&LogMessage::Missed(lost))).await.is_err() {
                    return;
                }
                if socket.send(text(&LogMessage::Lines(lines))).await.is_err() {
                    return;
                }
            }
            due = upkeep.due(&mut socket) => match Upkeep::run(due, &mut socket, &st.ws, &caller.sid).await {
                Flow::Go => {}
                Flow::SessionEnded => {
                    let _ = socket.send(text(&LogMessage::Error(SESSION_ENDED.into()))).await;
                    break;
                }
                Flow::Closed => return,
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `?since=…&until=…` of a download: RFC 3339 times (UTC or with an
/// offset); since defaults to an hour ago, until to now.
#[derive(Debug, Default, Deserialize)]
pub struct RangeParams {
    pub since: Option<String>,
    pub until: Option<String>,
}

fn parse_time(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => domain::datetime::parse_rfc3339_ms(v).map(Some).ok_or_else(|| {
            ApiError::bad_input(format!(
                "{name}={v:?} is not a time: use RFC 3339, e.g. 2026-11-30T14:00:00Z"
            ))
        }),
    }
}

pub async fn download(
    Path(container): Path<String>,
    Query(p): Query<RangeParams>,
    State(st): State<Arc<LogsState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let range = parse_time("since", p.since.as_deref()).and_then(|s| Ok((s, parse_time("until", p.until.as_deref())?)));
    let (since_ms, until_ms) = match range {
        Ok((s, u)) => (s.unwrap_or(domain::now_ms() - 3_600_000), u),
        Err(e) => return api_error(e),
    };
    if until_ms.is_some_and(|u| u <= since_ms) {
        return api_error(ApiError::bad_input("until must be after since"));
    }
    let docker = match st.open(&container).await {
        Ok(d) => d,
        Err(e) => return api_error(e),
    };
    st.audit(
        &caller,
        "logs_download",
        &container,
        serde_json::json!({ "since_ms": since_ms, "until_ms": until_ms }),
    )
    .await;
    let q = LogQuery {
        since_s: since_ms / 1000,
        until_s: until_ms.map_or(0, |u| u / 1000 + 1),
        tail: None,
        follow: false,
    };
    let body = domain::logs::lines(&docker, &container, &q, st.masker.clone()).map(|batch| {
        batch
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| {
                        let at = domain::datetime::format_rfc3339(l.at_ms).unwrap_or_default();
                        format!("{at} {}{}\n", if l.stderr { "[stderr] " } else { "" }, l.text)
                    })
                    .collect::<String>()
            })
            .map_err(std::io::Error::other)
    });
    let file = format!("{container}-{}.log", domain::datetime::format_compact(since_ms));
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(i: usize) -> Batch {
        Ok(vec![
            LogLine {
                at_ms: i as i64,
                stderr: false,
                text: format!("line {i}"),
            };
            2
        ])
    }

    /// A browser that reads nothing: the queue holds its bound, the rest is
    /// counted as missed, and nothing else is kept.
    #[tokio::test]
    async fn a_reader_that_does_not_keep_up_is_told_what_it_missed() {
        let missed = Arc::new(AtomicU64::new(0));
        let total = QUEUE_BATCHES + 100;
        let (mut rx, reader) = read_into_queue(futures::stream::iter((0..total).map(batch)), missed.clone());
        reader.await.unwrap();
        assert_eq!(missed.load(Ordering::Relaxed), 200, "100 batches of 2 lines dropped");
        let mut kept = 0;
        while let Ok(b) = rx.try_recv() {
            kept += 1;
            assert_eq!(b.unwrap()[0].at_ms, kept - 1, "the oldest are kept, in order");
        }
        assert_eq!(kept as usize, QUEUE_BATCHES);
    }
}
