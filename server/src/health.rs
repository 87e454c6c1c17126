//! `/healthz` (what Docker's HEALTHCHECK, Traefik and the tests ask) and the
//! `pg-console healthcheck` command that asks it (the image has no curl).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use axum::Json;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision the console was built from. The image sets
/// `PGC_GIT_REVISION` in its environment, after the layers that compile the
/// console: a new revision whose sources are unchanged (docs, tests, scripts)
/// reuses them instead of compiling again. A host release build has it
/// compiled in (scripts/build sets it at build time); a debug build reads it
/// at run time only, so that a new commit does not rebuild it.
pub fn revision() -> &'static str {
    static REVISION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    REVISION.get_or_init(|| {
        std::env::var("PGC_GIT_REVISION")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| option_env!("PGC_GIT_REVISION").unwrap_or("unknown").to_string())
    })
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": VERSION, "revision": revision() }))
}

/// Ask the console listening on `listen` for `/healthz`: Ok when it answers 200.
pub fn check(listen: SocketAddr) -> Result<(), String> {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let status = answer.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("{addr} answered {status:?}"))
    }
}
