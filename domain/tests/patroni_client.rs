//! `PatroniClient`'s `history` and `topology` over real HTTP, against small
//! servers that replay recorded Patroni 4.1 answers and count what they are asked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::patroni::{MemberEndpoint, PatroniClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HISTORY: &str = include_str!("fixtures/patroni-4.1/history.json");
const CLUSTER: &str = include_str!("fixtures/patroni-4.1/cluster-healthy.json");
const AS_LEADER: &str = include_str!("fixtures/patroni-4.1/patroni-leader.json");
const AS_REPLICA: &str = include_str!("fixtures/patroni-4.1/patroni-replica.json");

/// A member's REST API that answers every request with the recorded
/// `/history`, counting the requests.
async fn replaying_member() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    replaying_member_answering(usize::MAX).await
}

/// Like [`replaying_member`], but only the first `answers` requests are
/// answered: later ones are read and held open with no answer (a hung API).
async fn replaying_member_answering(answers: usize) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let history = Arc::new(|path: &str| {
        assert_eq!(path, "/history", "only /history is asked");
        HISTORY.to_string()
    });
    replaying_api(history, answers).await
}

/// What a replaying member answers to a path.
type Answer = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A member's REST API that answers each GET with `answer(path)`, counting
/// the requests; only the first `answers` are answered, later ones are read
/// and held open with no answer (a hung API).
async fn replaying_api(answer: Answer, answers: usize) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (counter, answer) = (counter.clone(), answer.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&got);
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                if counter.fetch_add(1, Ordering::SeqCst) >= answers {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                }
                let body = answer(&path);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, asked, server)
}

/// A member whose REST API is down: a port nobody listens on.
fn down_member() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn client(urls: &[&str]) -> PatroniClient {
    client_with_timeout(urls, Duration::from_secs(2))
}

fn client_with_timeout(urls: &[&str], timeout: Duration) -> PatroniClient {
    let members = urls
        .iter()
        .enumerate()
        .map(|(i, url)| MemberEndpoint {
            name: format!("pg-{i}"),
            api_url: url.to_string(),
        })
        .collect();
    PatroniClient::new("postgresql-cluster", members, timeout).unwrap()
}

#[tokio::test]
async fn history_asks_all_members_once_then_only_the_one_that_answered() {
    let (pg1, asked_pg1, _) = replaying_member().await;
    let (pg2, asked_pg2, _) = replaying_member().await;
    let patroni = client(&[&down_member(), &pg1, &pg2]);

    let first = patroni.history().await.expect("pg-1 and pg-2 answer");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].timeline, 1);
    assert_eq!(asked_pg1.load(Ordering::SeqCst), 1, "all are asked the first time");
    assert_eq!(asked_pg2.load(Ordering::SeqCst), 1, "all are asked the first time");

    for _ in 0..3 {
        assert_eq!(patroni.history().await.unwrap(), first);
    }
    assert_eq!(
        asked_pg1.load(Ordering::SeqCst),
        4,
        "pg-1 answered first in order: asked alone since"
    );
    assert_eq!(
        asked_pg2.load(Ordering::SeqCst),
        1,
        "pg-2 is not asked while pg-1 answers"
    );
}

#[tokio::test]
async fn history_asks_all_again_when_the_one_that_answered_goes_down() {
    let (pg0, asked_pg0, pg0_server) = replaying_member().await;
    let (pg2, asked_pg2, _) = replaying_member().await;
    let patroni = client(&[&pg0, &down_member(), &pg2]);

    patroni.history().await.expect("pg-0 and pg-2 answer");
    assert_eq!(
        (asked_pg0.load(Ordering::SeqCst), asked_pg2.load(Ordering::SeqCst)),
        (1, 1)
    );

    // pg-0's API goes away (its listener is dropped: connections are refused).
    pg0_server.abort();
    let _ = pg0_server.await;
    let history = patroni.history().await.expect("pg-2 still answers");
    assert_eq!(history.len(), 1);
    assert_eq!(asked_pg2.load(Ordering::SeqCst), 2, "pg-0 refused: all asked again");
    patroni.history().await.unwrap();
    assert_eq!(asked_pg2.load(Ordering::SeqCst), 3, "pg-2 answered: asked alone since");
    assert_eq!(asked_pg0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_hung_member_that_answered_last_costs_one_timeout_not_two() {
    let timeout = Duration::from_millis(400);
    let (pg0, asked_pg0, _) = replaying_member_answering(1).await;
    let (pg1, asked_pg1, _) = replaying_member().await;
    let patroni = client_with_timeout(&[&pg0, &pg1], timeout);
    patroni.history().await.expect("both answer");
    assert_eq!(asked_pg1.load(Ordering::SeqCst), 1);

    // pg-0, which answered first, now hangs: it is waited for once, then
    // pg-1 alone is asked.
    let started = std::time::Instant::now();
    patroni.history().await.expect("pg-1 answers");
    let took = started.elapsed();
    assert!(took >= timeout, "pg-0 was waited for: {took:?}");
    assert!(took < timeout * 2, "pg-0 was not waited for twice: {took:?}");
    assert_eq!(asked_pg0.load(Ordering::SeqCst), 2, "pg-0 asked once more, not twice");
    assert_eq!(asked_pg1.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn history_with_no_member_answering_names_them_all() {
    let patroni = client(&[&down_member(), &down_member(), &down_member()]);
    let e = patroni.history().await.unwrap_err().to_string();
    for name in ["pg-0", "pg-1", "pg-2"] {
        assert!(e.contains(name), "{e}");
    }
    // Nothing answered: nothing is remembered, the next call asks all again.
    let e = patroni.history().await.unwrap_err().to_string();
    assert!(e.contains("pg-0") && e.contains("pg-2"), "{e}");
}

/// A member that answers `/patroni` as the leader while `leads` is set (as a
/// replica otherwise) and `/cluster` with the recorded DCS view; the counter
/// counts its `/cluster` requests.
async fn member_leading_while(leads: Arc<std::sync::atomic::AtomicBool>) -> (String, Arc<AtomicUsize>) {
    let views = Arc::new(AtomicUsize::new(0));
    let counted = views.clone();
    let answer: Answer = Arc::new(move |path: &str| match path {
        "/patroni" if leads.load(Ordering::SeqCst) => AS_LEADER.to_string(),
        "/patroni" => AS_REPLICA.to_string(),
        "/cluster" => {
            counted.fetch_add(1, Ordering::SeqCst);
            CLUSTER.to_string()
        }
        other => panic!("unexpected request {other}"),
    });
    let (url, _, _) = replaying_api(answer, usize::MAX).await;
    (url, views)
}

#[tokio::test]
async fn topology_asks_the_leader_alone_for_the_dcs_view_and_all_again_after_a_leader_change() {
    use std::sync::atomic::AtomicBool;
    let leads: Vec<Arc<AtomicBool>> = (0..3).map(|i| Arc::new(AtomicBool::new(i == 0))).collect();
    let mut urls = Vec::new();
    let mut views = Vec::new();
    for l in &leads {
        let (url, asked) = member_leading_while(l.clone()).await;
        urls.push(url);
        views.push(asked);
    }
    let counts = |views: &[Arc<AtomicUsize>]| views.iter().map(|v| v.load(Ordering::SeqCst)).collect::<Vec<_>>();
    let patroni = client(&urls.iter().map(String::as_str).collect::<Vec<_>>());

    let first = patroni.topology().await;
    assert_eq!(first.view_from.as_deref(), Some("pg-0"));
    assert_eq!(first.members.len(), 3);
    assert_eq!(counts(&views), [1, 1, 1], "nothing known yet: every member is asked");
    for _ in 0..3 {
        assert_eq!(patroni.topology().await.view_from.as_deref(), Some("pg-0"));
    }
    assert_eq!(counts(&views), [4, 1, 1], "then the leader alone");

    // pg-1 takes over: pg-0 is asked (it was the leader), says it is a
    // replica now, so the others are asked, and pg-1's view is believed.
    leads[0].store(false, Ordering::SeqCst);
    leads[1].store(true, Ordering::SeqCst);
    let after = patroni.topology().await;
    assert_eq!(after.view_from.as_deref(), Some("pg-1"));
    assert_eq!(counts(&views), [5, 2, 2]);
    patroni.topology().await;
    assert_eq!(counts(&views), [5, 3, 2], "then pg-1 alone");
}
