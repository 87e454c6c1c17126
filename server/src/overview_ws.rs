//! `/ws/overview`: the Overview's live feed, one socket per tab. The whole
//! Overview on connect, then a merge patch for each change, all from the
//! console's one sampler (`domain::overview_feed`): however many tabs are
//! open, the cluster is read once per interval. A slow client is sent the
//! newest version when it is ready again (the whole, if it missed one):
//! nothing queues up for it. Same caps, pings and session re-checks as the
//! jobs' sockets.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use domain::authz::Caller;
use domain::overview_feed::OverviewFeed;

use crate::jobs_ws::{bounded, too_many, Flow, Slot, Upkeep, WsState, SESSION_ENDED};

/// The route, as registered and as listed by `pg-console routes`.
pub const ROUTE: &str = "/ws/overview";

pub struct FeedState {
    pub ws: Arc<WsState>,
    pub feed: Arc<OverviewFeed>,
}

pub async fn follow(
    ws: WebSocketUpgrade,
    State(st): State<Arc<FeedState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let Some(slot) = st.ws.admit(&caller.sid) else {
        return too_many();
    };
    bounded(ws).on_upgrade(move |socket| send_versions(socket, st, caller, slot))
}

async fn send_versions(mut socket: WebSocket, st: Arc<FeedState>, caller: Caller, _slot: Slot) {
    let mut versions = st.feed.subscribe();
    let mut upkeep = Upkeep::new().await;
    let mut had: Option<u64> = None;
    loop {
        let newest = versions.borrow_and_update().clone();
        if let Some(v) = newest {
            if let Some(frame) = v.frame_for(had) {
                if socket.send(Message::Text(frame.to_owned().into())).await.is_err() {
                    return;
                }
                had = Some(v.seq);
            }
        }
        tokio::select! {
            r = versions.changed() => if r.is_err() { break },
            due = upkeep.due(&mut socket) => match Upkeep::run(due, &mut socket, &st.ws, &caller.sid).await {
                Flow::Go => {}
                Flow::SessionEnded => {
                    let end = model::overview::FeedFrame {
                        error: Some(SESSION_ENDED.to_string()),
                        ..Default::default()
                    };
                    let text = serde_json::to_string(&end).expect("a frame serialises");
                    let _ = socket.send(Message::Text(text.into())).await;
                    break;
                }
                Flow::Closed => return,
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
