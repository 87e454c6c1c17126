//! The deployment users run: the console's container behind a real Traefik
//! over TLS (scripts/edge, scripts/console). Run by scripts/test after it
//! deployed them (PGC_EDGE_* and PGC_E2E_ADMIN_PW in the environment).
//! Certificates are verified against the edge's CA; `*.localhost` names are
//! given their address explicitly (getaddrinfo does not resolve them).

#[path = "integration/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use support::{docker, eventually, lock_stack, stack_env, Stopped};

struct Edge {
    /// https://pg-console.<domain>[:port]
    console: String,
    /// https://pg-haproxy.<domain>[:port]
    stats: String,
    https: SocketAddr,
    http: SocketAddr,
    ca: reqwest::Certificate,
    admin_pw: String,
    /// The console container's own address (what Traefik routes to).
    direct: String,
}

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run scripts/test (it deploys the edge and the console)"))
}

fn edge() -> Edge {
    let ca = std::fs::read(env("PGC_EDGE_CA")).unwrap();
    Edge {
        console: env("PGC_EDGE_CONSOLE_URL"),
        stats: env("PGC_EDGE_STATS_URL"),
        https: env("PGC_EDGE_HTTPS_ADDR").parse().unwrap(),
        http: env("PGC_EDGE_HTTP_ADDR").parse().unwrap(),
        ca: reqwest::Certificate::from_pem(&ca).unwrap(),
        admin_pw: env("PGC_E2E_ADMIN_PW"),
        direct: env("PGC_EDGE_CONSOLE_DIRECT"),
    }
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .split(['/', ':'])
        .next()
        .unwrap()
        .to_string()
}

impl Edge {
    /// A browser-like client: the edge's CA trusted, both host names given
    /// the edge's address, cookies kept, redirects not followed; connections
    /// from `from` (any 127.x.y.z).
    fn client(&self, from: &str) -> reqwest::Client {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("origin", self.console.parse().unwrap());
        reqwest::Client::builder()
            .add_root_certificate(self.ca.clone())
            .resolve(&host_of(&self.console), self.https)
            .resolve(&host_of(&self.stats), self.https)
            .local_address(from.parse::<std::net::IpAddr>().unwrap())
            .cookie_store(true)
            .default_headers(h)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    async fn login(&self, c: &reqwest::Client, user: &str, pw: &str, next: &str) -> reqwest::Response {
        c.post(format!("{}/login", self.console))
            .form(&[("username", user), ("password", pw), ("next", next)])
            .send()
            .await
            .unwrap()
    }

    /// A client logged in as the e2e admin. The deployment tests start right
    /// after the end-to-end tests; a login that is not answered with the
    /// redirect home is tried again after 5 s (at most 3 times), and each
    /// such answer is printed with the console container's health, so a
    /// transient answer of the edge is told from a refusal (one run got no
    /// redirect here once, and said nothing more).
    async fn admin(&self) -> reqwest::Client {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let c = self.client("127.0.0.1");
            let r = self.login(&c, "e2e-admin", &self.admin_pw, "/").await;
            if r.headers().get("location").is_some_and(|l| l == "/") {
                return c;
            }
            let (status, retry_after) = (r.status(), r.headers().get("retry-after").cloned());
            let body: String = r.text().await.unwrap_or_default().chars().take(300).collect();
            let health = support::docker_inspect("pg-console", "{{.State.Health.Status}}");
            let answer = format!("{status} (retry-after {retry_after:?}; the console's container {health:?}): {body}");
            eprintln!("the e2e admin's login was answered {answer}");
            seen.push(answer);
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        panic!("the e2e admin cannot log in through the edge: {seen:#?}");
    }

    async fn audit(&self, filter: &str) -> String {
        let r = self
            .admin()
            .await
            .get(format!("{}/audit/export.csv?{filter}", self.console))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }

    async fn post(&self, c: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let r = c
            .post(format!("{}{path}", self.console))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

/// A user of the deployed console, created with its CLI in the container.
fn add_user(name: &str, role: &str, pw: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("docker")
        .args([
            "exec",
            "-i",
            "pg-console",
            "pg-console",
            "user",
            "add",
            name,
            "--role",
            role,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{pw}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "user add {name}");
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", domain::now_ms() % 1_000_000_000)
}

#[tokio::test]
#[ignore = "needs the edge and the console container: run scripts/test"]
async fn edge_tls_is_verified_and_http_redirects_to_https() {
    let e = edge();
    let r = e
        .client("127.0.0.1")
        .get(format!("{}/healthz", e.console))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let health: serde_json::Value = r.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_ne!(
        health["revision"], "unknown",
        "the image records its revision: {health}"
    );
    // Without the CA, the certificate is refused: TLS is checked for real.
    let untrusting = reqwest::Client::builder()
        .resolve(&host_of(&e.console), e.https)
        .build()
        .unwrap();
    let err = untrusting
        .get(format!("{}/healthz", e.console))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.to_string().contains("certificate"), "{err:?}");
    // Plain HTTP only redirects.
    let plain = reqwest::Client::builder()
        .resolve(&host_of(&e.console), e.http)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let host = host_of(&e.console);
    let r = plain
        .get(format!("http://{host}:{}/audit", e.http.port()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&format!("https://{host}")));
}

/// A page names its route's WASM modules (split at the lazy routes) for
/// preloading; each, and the split loader, is served under a hashed name
/// with a year-long cache and precompressed with brotli.
#[tokio::test]
#[ignore = "needs the edge and the console container: run scripts/test"]
async fn edge_a_page_preloads_its_route_modules_hashed_and_precompressed() {
    let e = edge();
    let c = e.client("127.0.0.1");
    let html = c
        .get(format!("{}/login", e.console))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let assets = support::login_page_split_assets(&html);
    for asset in &assets {
        let r = c
            .get(format!("{}{asset}", e.console))
            .header("accept-encoding", "br")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
        let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(header("content-encoding").as_deref(), Some("br"), "{asset}");
        assert!(
            header("cache-control").is_some_and(|c| c.contains("immutable")),
            "{asset}: {:?}",
            header("cache-control")
        );
    }
}

#[tokio::test]
#[ignore = "needs the edge and the console container: run scripts/test"]
async fn edge_session_cookies_are_secure_and_host_only() {
    let e = edge();
    let c = e.client("127.0.0.1");
    let r = e.login(&c, "e2e-admin", &e.admin_pw, "/").await;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.contains("pgc_session"))
        .expect("a session cookie");
    assert!(cookie.starts_with("__Host-pgc_session="), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
}

#[tokio::test]
#[ignore = "needs the edge and the console container: run scripts/test"]
async fn edge_audit_records_the_real_client_address_and_ignores_spoofed_ones() {
    let e = edge();
    let name = unique("edge-ip");
    add_user(&name, "viewer", "a viewer from the second address");
    // Through Traefik, from 127.0.0.2, claiming to be someone else.
    let c = e.client("127.0.0.2");
    let r = c
        .post(format!("{}/login", e.console))
        .header("x-forwarded-for", "203.0.113.7")
        .form(&[
            ("username", name.as_str()),
            ("password", "a viewer from the second address"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    // Straight to the console's port (not a trusted proxy), spoofing too.
    let direct = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = direct
        .post(format!("http://{}/login", e.direct))
        .header("origin", &e.console)
        .header("x-forwarded-for", "198.51.100.9")
        .form(&[
            ("username", name.as_str()),
            ("password", "a wrong one this time"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    let rows = e.audit(&format!("target={name}")).await + &e.audit(&format!("user={name}")).await;
    let mine: Vec<&str> = rows.lines().filter(|l| l.contains(&name)).collect();
    assert!(
        mine.iter()
            .any(|l| l.contains(",\"login\",") && l.contains("\"127.0.0.2\"")),
        "{mine:#?}"
    );
    assert!(
        mine.iter()
            .any(|l| l.contains("login_failed") && l.contains("\"127.0.0.2\"")),
        "{mine:#?}"
    );
    assert!(
        !rows.contains("203.0.113.7") && !rows.contains("198.51.100.9"),
        "a spoofed address was believed"
    );
}

/// The SOP's section 6 verbatim: "monitor HAProxy ... by navigating to the
/// Traefik route https://pg-haproxy.${DEFAULT_URL}" — after signing in to the console.
#[tokio::test]
#[ignore = "needs the edge and the console container: run scripts/test"]
async fn edge_haproxy_stats_route_of_the_sop_needs_a_console_login() {
    let e = edge();
    let c = e.client("127.0.0.1");
    let get = |url: String| {
        let c = c.clone();
        async move { c.get(url).send().await.unwrap() }
    };
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_string();
    // Not signed in: sent to the console, which asks for a login.
    let r = get(format!("{}/", e.stats)).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let to_console = location(&r);
    assert_eq!(to_console, format!("{}/auth/stats", e.console));
    let r = get(to_console.clone()).await;
    assert!(location(&r).starts_with("/login?next=/auth/stats"), "{}", location(&r));
    // Sign in; the login returns to the grant, which returns to the stats host.
    let r = e.login(&c, "e2e-admin", &e.admin_pw, "/auth/stats").await;
    assert_eq!(location(&r), "/auth/stats");
    let r = get(to_console).await;
    let grant = location(&r);
    assert!(grant.starts_with(&format!("{}/_pgc/grant?code=", e.stats)), "{grant}");
    let r = get(grant.clone()).await;
    assert_eq!(location(&r), "/");
    let stats_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("__Host-pgc_stats="))
        .expect("the stats host's own cookie");
    assert!(
        stats_cookie.contains("Secure") && stats_cookie.contains("HttpOnly"),
        "{stats_cookie}"
    );
    // The code is single use.
    let again = get(grant).await;
    assert_eq!(location(&again), format!("{}/auth/stats", e.console));
    // Now the stats page itself, twice.
    for _ in 0..2 {
        let r = get(format!("{}/", e.stats)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.text().await.unwrap();
        assert!(body.contains("Statistics Report"), "{}", &body[..200.min(body.len())]);
    }
    let views = e.audit("action=haproxy_stats_view").await;
    let sid_views = views.lines().skip(1).count();
    assert!(sid_views >= 1, "{views}");
    // Logging out closes the stats route too.
    let r = c.post(format!("{}/logout", e.console)).send().await.unwrap();
    assert!(r.status().is_redirection());
    let r = get(format!("{}/", e.stats)).await;
    assert!(
        r.status().is_redirection(),
        "stats still open after logout: {}",
        r.status()
    );
    assert_eq!(
        e.audit("action=haproxy_stats_view").await.lines().skip(1).count(),
        sid_views,
        "one view audited per session"
    );
}

/// `docker stop pg-console` while a backup holds its replica stopped: the
/// console starts the replica before it exits and marks the backup failed.
#[tokio::test]
#[ignore = "needs the edge and the console container: run scripts/test"]
async fn edge_docker_stop_mid_backup_starts_the_replica_again() {
    let _g = lock_stack();
    let e = edge();
    let c = e.admin().await;
    let ov = || async {
        let (_, t) = e.post(&c, "/api/overview", &[]).await;
        serde_json::from_str::<model::Overview>(&t).ok()
    };
    let replica = eventually(Duration::from_secs(240), "a healthy cluster", || async {
        let o = ov().await?;
        let t = &o.topology;
        let streaming: Vec<_> = t
            .members
            .iter()
            .filter(|m| m.role.is_replica() && m.state == "streaming" && m.lag_bytes == Some(0))
            .collect();
        (t.leader().is_some() && streaming.len() == 2).then(|| streaming[0].name.clone())
    })
    .await;
    let (s, t) = e
        .post(
            &c,
            "/api/op_prepare",
            &[
                ("kind", "backup"),
                ("member", &replica),
                ("scheduled_at", ""),
                ("only_if_pending", "false"),
                ("compression", "zstd"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let plan: model::operations::Plan = serde_json::from_str(&t).unwrap();
    assert!(plan.can_run(), "{:?}", plan.preconditions);
    let (s, t) = e
        .post(
            &c,
            "/api/op_execute",
            &[
                ("token", &plan.token),
                ("typed_name", &plan.confirm_name),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let running = |name: &str| {
        String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.State.Running}}", name]).stdout).trim() == "true"
    };
    // The fault, through the real system: the moment PostgreSQL on the
    // replica has shut down (its pid file is gone), the console's process
    // hangs (SIGSTOP from the host), so it cannot start the replica again.
    // Docker finishes the stop it was asked for. Then `docker stop
    // pg-console` is sent and the process continues with that SIGTERM pending.
    let pid_file = std::path::PathBuf::from(format!(
        "{}/pg/{}-data/postmaster.pid",
        stack_env()["DEFAULT_DATA_DIR"],
        replica.replace('-', "")
    ));
    let console_pid = String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.State.Pid}}", "pg-console"]).stdout)
        .trim()
        .to_string();
    let t0 = std::time::Instant::now();
    while pid_file.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "the backup never stopped {replica}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &console_pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {console_pid}");
    };
    signal("-STOP");
    // Whatever happens below, the replica is started again at the end.
    let _restart_anyway = Stopped(replica.clone());
    eventually(
        Duration::from_secs(120),
        "the replica stopped by the backup",
        || async { (!running(&replica)).then_some(()) },
    )
    .await;
    let stopping = std::process::Command::new("docker")
        .args(["stop", "pg-console"])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!running(&replica), "the hung console cannot have started {replica}");
    signal("-CONT");
    let out = stopping.wait_with_output().unwrap();
    assert!(out.status.success(), "docker stop pg-console");
    assert!(
        running(&replica),
        "the console started {replica} again before it exited"
    );
    docker(&["start", "pg-console"]);
    eventually(Duration::from_secs(60), "the console healthy again", || async {
        let h = String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.State.Health.Status}}", "pg-console"]).stdout)
            .trim()
            .to_string();
        (h == "healthy").then_some(())
    })
    .await;
    let c = e.admin().await;
    let (_, t) = e.post(&c, "/api/backups_list", &[]).await;
    let rows: Vec<model::backups::BackupRow> = serde_json::from_str(&t).unwrap();
    let b = rows.iter().find(|r| r.member == replica).expect("the backup is listed");
    assert_eq!(b.status.as_str(), "failed", "{b:?}");
    assert!(b.error.contains("shut down during the backup"), "{}", b.error);
    let audit = e.audit("action=backup_recovered").await;
    assert!(audit.contains("at shutdown: started"), "{audit}");
}

/// The README's nginx snippet proxies websockets too (one test, not a second deployment).
#[tokio::test]
#[ignore = "needs the edge and the console container: run scripts/test"]
async fn edge_the_readmes_nginx_snippet_carries_websockets() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let e = edge();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("pgc-nginx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let snippet = std::fs::read_to_string(support::repo_root().join("docs/nginx.conf"))
        .unwrap()
        .replace("127.0.0.1:18080", &e.direct)
        .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port};"))
        .lines()
        .filter(|l| !l.trim_start().starts_with("ssl_"))
        .collect::<Vec<_>>()
        .join("\n");
    let conf = format!(
        "pid {dir}/nginx.pid;\nerror_log {dir}/error.log;\nevents {{}}\nhttp {{\naccess_log {dir}/access.log;\n\
         client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n{snippet}\n}}\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let out = std::process::Command::new("nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "nginx: {}", String::from_utf8_lossy(&out.stderr));
    struct StopNginx(std::path::PathBuf);
    impl Drop for StopNginx {
        fn drop(&mut self) {
            let _ = std::process::Command::new("nginx")
                .arg("-c")
                .arg(self.0.join("nginx.conf"))
                .args(["-s", "stop"])
                .output();
        }
    }
    let _stop = StopNginx(dir.clone());
    // A session cookie to send (the cookie is Secure, so set by hand here).
    let c = e.client("127.0.0.1");
    let r = e.login(&c, "e2e-admin", &e.admin_pw, "/").await;
    let cookie = support::cookie_of(&r).expect("session cookie");
    let mut req = format!("ws://127.0.0.1:{port}/ws/jobs/no-such-job")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut().insert("origin", e.console.parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("the upgrade passes nginx");
    assert_eq!(resp.status().as_u16(), 101);
    let msg = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut ws))
        .await
        .expect("a message through nginx")
        .unwrap()
        .unwrap();
    assert!(msg.to_string().contains("no job no-such-job"), "{msg}");
}
