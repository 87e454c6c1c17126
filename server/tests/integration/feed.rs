//! The Overview's live feed (`/ws/overview`) against the real stack: the
//! console reads Patroni once per interval however many tabs follow, every
//! tab gets the whole Overview and then patches that rebuild each version,
//! a change in Patroni reaches every tab, and nobody following stops the
//! feed's reads. Patroni's requests are counted on the wire, by a TCP proxy
//! in front of each member's REST API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use model::overview::FeedFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

/// A TCP proxy to one Patroni REST API that counts the HTTP requests sent through it.
struct CountingProxy {
    url: String,
    requests: Arc<AtomicUsize>,
}

async fn counting_proxy(upstream: String) -> CountingProxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                continue;
            };
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
            let counter = counter.clone();
            tokio::spawn(async move {
                // A request line ends with " HTTP/1.1\r\n"; a line split
                // across two reads is caught by keeping the last bytes.
                let needle = b" HTTP/1.1\r\n";
                let mut buf = vec![0u8; 16 * 1024];
                let mut tail: Vec<u8> = Vec::new();
                loop {
                    let n = match from_client.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    tail.extend_from_slice(&buf[..n]);
                    let found = tail.windows(needle.len()).filter(|w| w == needle).count();
                    counter.fetch_add(found, Ordering::SeqCst);
                    let keep = tail.len().min(needle.len() - 1);
                    tail.drain(..tail.len() - keep);
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    CountingProxy { url, requests }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One tab following the feed, with the document it has rebuilt.
struct Tab {
    ws: Ws,
    seq: u64,
    doc: serde_json::Value,
    frames: usize,
    patches: usize,
}

impl Tab {
    async fn open(app: &TestApp, cookie: &str) -> Tab {
        let mut req = format!("{}/ws/overview", app.base.replacen("http", "ws", 1))
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        req.headers_mut().insert("origin", app.base.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("the feed opens");
        let mut tab = Tab {
            ws,
            seq: 0,
            doc: serde_json::Value::Null,
            frames: 0,
            patches: 0,
        };
        let first = tab.next_frame(Duration::from_secs(10)).await.expect("a first frame");
        assert!(first.full.is_some(), "the first frame is the whole Overview: {first:?}");
        tab.take(first);
        tab
    }

    async fn next_frame(&mut self, within: Duration) -> Option<FeedFrame> {
        loop {
            let msg = tokio::time::timeout(within, futures::StreamExt::next(&mut self.ws))
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(t) => return Some(serde_json::from_str(&t).expect("a feed frame")),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Apply a frame as the browser does: a patch follows the version we have.
    fn take(&mut self, f: FeedFrame) {
        assert!(f.error.is_none(), "{f:?}");
        self.frames += 1;
        match (f.full, f.patch) {
            (Some(full), _) => self.doc = full,
            (None, Some(patch)) => {
                assert_eq!(f.seq, self.seq + 1, "a patch follows the version the tab has");
                model::merge_patch::apply(&mut self.doc, &patch);
                self.patches += 1;
            }
            _ => panic!("a frame with neither the whole nor a patch"),
        }
        self.seq = f.seq;
    }

    fn overview(&self) -> model::Overview {
        serde_json::from_value(self.doc.clone()).expect("the rebuilt document is an Overview")
    }

    /// Take frames for `d`.
    async fn follow_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.next_frame(left).await {
                Some(f) => self.take(f),
                None if Instant::now() >= end => break,
                None => panic!("the feed closed"),
            }
        }
    }
}

async fn follow_all(tabs: &mut [Tab], d: Duration) {
    futures::future::join_all(tabs.iter_mut().map(|t| t.follow_for(d))).await;
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn the_overview_feed_reads_patroni_once_however_many_tabs_follow() {
    let _g = lock_stack();
    let env = stack_env();
    let bind = env["BIND_ADDR"].clone();
    let mut proxies = Vec::new();
    for i in 0..3 {
        proxies.push(counting_proxy(format!("{bind}:{}", env[&format!("PG{i}_API_PORT")])).await);
    }
    let members: Vec<String> = proxies
        .iter()
        .enumerate()
        .map(|(i, p)| format!("pg-{i}={}", p.url))
        .collect();
    let app = spawn_app_with(&[("PGC_MEMBERS", &members.join(","))]).await;
    let requests = || proxies.iter().map(|p| p.requests.load(Ordering::SeqCst)).sum::<usize>();
    app.add_user("vera", "viewer", "a viewer with many tabs open");
    let mut cookies = Vec::new();
    for _ in 0..4 {
        cookies.push(login_cookie(&app, "vera", "a viewer with many tabs open").await);
    }

    // One tab: the cluster is read about once a second.
    let mut tabs = vec![Tab::open(&app, &cookies[0]).await];
    let r = requests();
    follow_all(&mut tabs, Duration::from_secs(5)).await;
    let one = requests() - r;
    assert!(tabs[0].patches >= 3, "a patch about every second: {}", tabs[0].patches);
    assert!(
        one >= 10,
        "each read asks every member (and the history): {one} requests in 5 s"
    );

    // 24 tabs: the same reads.
    for i in 1..24 {
        tabs.push(Tab::open(&app, &cookies[i % cookies.len()]).await);
    }
    let r = requests();
    follow_all(&mut tabs, Duration::from_secs(5)).await;
    let many = requests() - r;
    eprintln!("Patroni requests in 5 s: {one} with one tab, {many} with 24");
    assert!(
        many <= one + one / 2 + 3,
        "24 tabs must not read Patroni more than one does: {many} vs {one} requests in 5 s"
    );
    for t in &tabs {
        assert!(t.patches >= 3, "every tab gets the patches");
        assert_eq!(t.overview().topology.members.len(), 3);
    }

    // A change in Patroni reaches every tab, through patches only.
    let paused = Paused::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    for t in tabs.iter_mut() {
        while !t.overview().topology.paused {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("every tab sees the pause within 5 s");
            let f = t.next_frame(left).await.expect("frames keep coming");
            t.take(f);
        }
    }
    drop(paused);

    // A tab that reconnects starts again from the whole Overview.
    let last = tabs[0].seq;
    tabs.remove(0);
    let again = Tab::open(&app, &cookies[0]).await;
    assert!(
        again.seq >= last,
        "the newest version, not an old one: {} < {last}",
        again.seq
    );

    // Nobody following: the feed stops reading; what is left is the
    // timeline's own look every 2 s (timeline_sample_secs), half the rate.
    drop(again);
    tabs.clear();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = requests();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = requests() - r;
    eprintln!("Patroni requests in 5 s with no tab: {idle}");
    assert!(
        idle > 0 && idle * 10 <= one * 8,
        "no tab open: only the timeline reads ({idle} vs {one})"
    );
}
