//! Containers' logs through the console against the real stack: a live
//! tail over the websocket (operators and admins only), secrets masked
//! before they leave the server, views and downloads audited.

use std::time::Duration;

use crate::support::*;
use model::logs::{LogLine, LogMessage, MASK};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const OPERATOR_PW: &str = "an operator who reads logs";
const VIEWER_PW: &str = "a viewer who may not read logs";

async fn connect(app: &TestApp, cookie: &str, path: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("{}{path}", app.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut().insert("origin", app.base.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

fn refused_with(r: Result<Ws, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        other => panic!("expected a refusal before the upgrade, got {:?}", other.map(|_| ())),
    }
}

/// The next log message within `secs`.
async fn next_message(ws: &mut Ws, secs: u64) -> LogMessage {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(secs), futures::StreamExt::next(ws))
            .await
            .expect("a log message in time")
            .expect("the socket is open")
            .expect("a readable message");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}"));
        }
    }
}

/// Write `line` to a container's stdout, as its main process would log it
/// (the line goes through stdin, so no command line or test output shows
/// it). The container's main process must run as root: etcd's does.
fn log_in(container: &str, line: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("docker")
        .args(["exec", "-i", container, "sh", "-c", "cat > /proc/1/fd/1"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "writing to {container}'s log");
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_live_tail_masks_secrets_and_is_for_operators_only() {
    let _g = lock_stack();
    let app = spawn_app().await;
    app.add_user("olga", "operator", OPERATOR_PW);
    app.add_user("vic", "viewer", VIEWER_PW);
    let operator = login_cookie(&app, "olga", OPERATOR_PW).await;
    let viewer = login_cookie(&app, "vic", VIEWER_PW).await;
    // Refused before the upgrade: a viewer (403), a container not of the stack (404).
    assert_eq!(refused_with(connect(&app, &viewer, "/ws/logs/pg-0").await), 403);
    assert_eq!(refused_with(connect(&app, &operator, "/ws/logs/sshd").await), 404);

    let mut ws = connect(&app, &operator, "/ws/logs/etcd?tail=3")
        .await
        .expect("the tail opens");
    let secret = app.env["PG_SUPERUSER_PASSWORD"].clone();
    let marker = format!("pgc-log-marker-{}", std::process::id());
    let written = domain::now_ms();
    log_in("etcd", &format!("{marker} connecting with password={secret}"));
    let line: LogLine = loop {
        if let LogMessage::Lines(lines) = next_message(&mut ws, 10).await {
            if let Some(l) = lines.into_iter().find(|l| l.text.contains(&marker)) {
                break l;
            }
        }
    };
    assert!(
        !line.text.contains(&secret),
        "the secret left the server: {}",
        line.text
    );
    assert!(line.text.ends_with(&format!("password={MASK}")), "{}", line.text);
    assert!(
        (line.at_ms - written).abs() < 10_000,
        "Docker's time of the line: {}",
        line.at_ms
    );
    // Revoked while lines keep streaming (one every 10 ms): the tail still
    // re-checks the session and ends with a message saying why.
    let busy = std::thread::spawn(|| {
        use std::io::Write;
        let mut child = std::process::Command::new("docker")
            .args(["exec", "-i", "etcd", "sh", "-c", "cat > /proc/1/fd/1"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        for i in 0..400 {
            let _ = writeln!(input, "pgc-busy-line {i}");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(input);
        let _ = child.wait();
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = app.cli(&["session", "revoke", "--user", "olga"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let revoked = std::time::Instant::now();
    let ended = loop {
        if let LogMessage::Error(e) = next_message(&mut ws, 10).await {
            break e;
        }
    };
    assert!(ended.contains("session has ended"), "{ended}");
    eprintln!(
        "the busy tail ended {} ms after the revocation",
        revoked.elapsed().as_millis()
    );
    busy.join().unwrap();
    drop(ws);
    let audit = audit_rows(&app, "action=logs_view").await;
    assert!(
        audit.lines().any(|l| l.contains("olga") && l.contains("etcd")),
        "{audit}"
    );

    // The same line in a download of the last hour, masked too; bad input is a 400.
    let c = app.login("olga", OPERATOR_PW).await.unwrap();
    let r = c.get(format!("{}/logs/etcd", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("etcd-"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains(&marker) && !text.contains(&secret),
        "the download is masked"
    );
    let r = c
        .get(format!("{}/logs/pg-0?since=yesterday", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("RFC 3339"));
    let v = app.login("vic", VIEWER_PW).await.unwrap();
    let r = v.get(format!("{}/logs/pg-0", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let audit = audit_rows(&app, "action=logs_download").await;
    assert!(
        audit.lines().any(|l| l.contains("olga") && l.contains("etcd")),
        "{audit}"
    );
}

/// A stopped container ends its tail with a message saying so.
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_tail_ends_with_a_message_when_its_container_stops() {
    let _g = lock_stack();
    let app = spawn_app().await;
    app.add_user("olga", "operator", OPERATOR_PW);
    let operator = login_cookie(&app, "olga", OPERATOR_PW).await;
    ensure_replica(&app, "pg-2").await;
    let mut ws = connect(&app, &operator, "/ws/logs/pg-2?tail=1")
        .await
        .expect("the tail opens");
    let stopped = Stopped::new("pg-2");
    let ended = loop {
        if let LogMessage::Error(e) = next_message(&mut ws, 60).await {
            break e;
        }
    };
    assert!(ended.contains("pg-2 stopped"), "{ended}");
    drop(stopped);
    ensure_replica(&app, "pg-2").await;
}
