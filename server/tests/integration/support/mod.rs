//! Test fixture: spawn the real pg-console binary on a free port against the
//! real stack (started by scripts/test / scripts/stack up), zero2prod-style.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests that stop containers or compare snapshots must not overlap.
static STACK_LOCK: Mutex<()> = Mutex::new(());

pub fn lock_stack() -> MutexGuard<'static, ()> {
    STACK_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The checkout under test: the parent of the package directory that cargo
/// runs the test in (CARGO_MANIFEST_DIR at run time; scripts/test sets it
/// when it runs a test binary itself). Never the path compiled in: .ci/run
/// shares one target directory between clones at changing paths, so a test
/// binary built in one clone runs in the next, and a compiled-in path read
/// the first clone's stale stack env (other passwords, another data
/// directory) and site.
pub fn repo_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .expect("CARGO_MANIFEST_DIR: run the tests with cargo test (or scripts/test)");
    PathBuf::from(package).parent().unwrap().to_path_buf()
}

fn state_dir() -> PathBuf {
    std::env::var("PGC_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".data"))
}

pub fn stack_secrets_path() -> PathBuf {
    state_dir().join("secrets.env")
}

/// The stack's generated env file (ports and secrets), as scripts/stack
/// writes it in the state directory. The first read in a test process checks
/// that the file describes the stack that runs: its superuser password is the
/// one pg-0's container was created with (a stale state directory once made
/// every SQL statement of a CI run fail on a password, 20 tests from the one
/// that read it first).
pub fn stack_env() -> HashMap<String, String> {
    let path = state_dir().join("stack.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Start the stack first: scripts/stack up (scripts/test does)",
            path.display()
        )
    });
    let env: HashMap<String, String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    // Checked once; every later read fails with the same message.
    static MISMATCH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let mismatch = MISMATCH.get_or_init(|| {
        let created_with = container_env("pg-0", "PG_SUPERUSER_PASSWORD");
        (created_with.is_some() && created_with.as_ref() != env.get("PG_SUPERUSER_PASSWORD")).then(|| {
            format!(
                "{} does not describe the running stack: pg-0's container was created with another \
                 superuser password. Point PGC_STATE_DIR at the state directory of the stack that runs \
                 (scripts/test does), or run scripts/stack up from this checkout.",
                path.display()
            )
        })
    });
    if let Some(message) = mismatch {
        panic!("{message}");
    }
    env
}

pub struct TestApp {
    pub base: String,
    /// Logged in as an admin created for the test.
    pub http: reqwest::Client,
    child: Child,
    pub env: HashMap<String, String>,
    pub data_dir: PathBuf,
    console_env: Vec<(String, String)>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

static APP_COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The console settings that point it at the stack described by `env`.
pub fn console_env(env: &HashMap<String, String>) -> Vec<(String, String)> {
    let bind = &env["BIND_ADDR"];
    let members = (0..3)
        .map(|i| format!("pg-{i}=http://{bind}:{}", env[&format!("PG{i}_API_PORT")]))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        ("PGC_MEMBERS".into(), members),
        ("PGC_CLUSTER_NAME".into(), env["CLUSTER_NAME"].clone()),
        (
            "PGC_HAPROXY_STATS_CSV_URL".into(),
            format!("http://{bind}:{}/;csv", env["STATS_PORT"]),
        ),
        ("PGC_WRITE_ENDPOINT".into(), format!("{bind}:{}", env["WRITE_PORT"])),
        ("PGC_READ_ENDPOINT".into(), format!("{bind}:{}", env["READ_PORT"])),
        (
            "PGC_SITE_ROOT".into(),
            repo_root().join("target/site").display().to_string(),
        ),
        (
            "PGC_STACK_SECRETS_FILE".into(),
            stack_secrets_path().display().to_string(),
        ),
        (
            "PGC_STACK_DATA_DIR".into(),
            env.get("DEFAULT_DATA_DIR")
                .cloned()
                .unwrap_or_else(|| state_dir().join("data").display().to_string()),
        ),
    ]
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A console with an admin user `admin` (password `ADMIN_PASSWORD`), logged in as `app.http`.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let mut app = spawn_app_without_users(extra).await;
    app.add_user("admin", "admin", ADMIN_PASSWORD);
    app.http = app.login("admin", ADMIN_PASSWORD).await.expect("admin logs in");
    app
}

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub async fn spawn_app_without_users(extra: &[(&str, &str)]) -> TestApp {
    let env = stack_env();
    let port = free_port();
    let n = APP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let data_dir = std::env::temp_dir().join(format!("pgc-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let base = format!("http://127.0.0.1:{port}");
    let mut console_env = console_env(&env);
    console_env.push(("PGC_DATA_DIR".into(), data_dir.display().to_string()));
    console_env.push(("PGC_PUBLIC_URL".into(), base.clone()));
    console_env.push(("PGC_BACKUPS_DIR".into(), data_dir.join("backups").display().to_string()));
    for (k, v) in extra {
        console_env.push((k.to_string(), v.to_string()));
    }
    std::fs::create_dir_all(&data_dir).unwrap();
    let log = std::fs::File::create(data_dir.join("console.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pg-console"))
        .env("PGC_LISTEN", format!("127.0.0.1:{port}"))
        .env("PGC_LOG", "warn")
        .envs(console_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(log)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn pg-console");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "pg-console did not start on {base}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    TestApp {
        base,
        http,
        child,
        env,
        data_dir,
        console_env,
    }
}

impl TestApp {
    /// Stop the console as `docker stop` or systemd would (SIGTERM), and wait.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// What the console logged (its stdout) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("console.log")).unwrap_or_default()
    }

    /// Hang the console (SIGSTOP): it holds its connections and does
    /// nothing more, as a process stuck in the kernel or a debugger would.
    /// [`TestApp::kill`] still ends it.
    pub fn hang(&self) {
        let s = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(s.success(), "SIGSTOP the console");
    }

    /// Kill the console process (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Run a CLI command of the same binary on the same database.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_pg-console"))
            .args(args)
            .envs(self.console_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        let out = self.cli(&["user", "add", name, "--role", role], &format!("{password}\n"));
        assert!(
            out.status.success(),
            "user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A client as a same-origin browser page would be (cookies kept, Origin sent, no redirects followed).
    pub fn client(&self) -> reqwest::Client {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("origin", self.base.parse().unwrap());
        reqwest::Client::builder()
            .cookie_store(true)
            .default_headers(h)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    /// POST the login form; the response (a redirect) and the client holding the cookie.
    pub async fn login_response(&self, name: &str, password: &str) -> (reqwest::Response, reqwest::Client) {
        let c = self.client();
        let r = login_post(self, &c, name, password).await;
        (r, c)
    }

    /// Log in; Err(location) when the login is refused.
    pub async fn login(&self, name: &str, password: &str) -> Result<reqwest::Client, String> {
        let (r, c) = self.login_response(name, password).await;
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        if r.status().is_redirection() && loc == "/" {
            Ok(c)
        } else {
            Err(loc)
        }
    }

    /// POST a server function with a form body; the status.
    pub async fn call(&self, client: &reqwest::Client, path: &str, body: &str) -> reqwest::StatusCode {
        client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
    }

    /// The same server function the Overview page calls.
    pub async fn overview(&self) -> model::Overview {
        let r = self
            .http
            .post(format!("{}/api/overview", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .expect("overview request");
        assert!(r.status().is_success(), "overview answered {}", r.status());
        r.json().await.expect("overview JSON")
    }
}

pub fn docker(args: &[&str]) -> Output {
    let out = Command::new("docker").args(args).output().expect("run docker");
    // Passwords handed to `docker exec -e` stay out of the test's output.
    let shown: Vec<&str> = args
        .iter()
        .map(|a| if a.contains("PASSWORD=") { "<secret>" } else { *a })
        .collect();
    assert!(
        out.status.success(),
        "docker {shown:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn patronictl(args: &[&str]) -> Output {
    let mut full = vec!["exec", "pg-0", "patronictl", "-c", "/home/postgres/postgres0.yml"];
    full.extend_from_slice(args);
    docker(&full)
}

/// psql inside pg-0 (host networking: 127.0.0.1 is the host's loopback).
/// When it fails, the message names what listens on `port` (process and
/// pid): on a shared loopback, which server answered is the first question.
pub fn psql(env: &HashMap<String, String>, port: &str, sql: &str) -> String {
    let pw = format!("PGPASSWORD={}", env["PG_SUPERUSER_PASSWORD"]);
    let args = [
        "exec",
        "-e",
        &pw,
        "pg-0",
        "psql",
        "-h",
        &env["BIND_ADDR"],
        "-p",
        port,
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-XAtq",
        "-c",
        sql,
    ];
    let out = Command::new("docker").args(args).output().expect("run docker");
    assert!(
        out.status.success(),
        "psql on port {port} failed: {}\nlistening on port {port}: {}",
        String::from_utf8_lossy(&out.stderr).trim(),
        listeners(port),
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `docker inspect -f TEMPLATE container`, trimmed; None if docker fails
/// (no such container): for failure messages and polling, which must not
/// panic on the way.
pub fn docker_inspect(container: &str, template: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["inspect", "-f", template, container])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A variable of a container's environment as created.
pub fn container_env(container: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    docker_inspect(container, "{{range .Config.Env}}{{println .}}{{end}}")?
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

/// The sockets listening on a TCP port, with their processes (`ss`).
pub fn listeners(port: &str) -> String {
    Command::new("ss")
        .args(["-Hltnp", &format!("sport = :{port}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("(ss failed: {e})"))
}

/// Poll `f` until it returns Some, or panic after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Make sure the stack is healthy with `name` as a replica (switch over away
/// from it if it leads), so a test may stop it.
pub async fn ensure_replica(app: &TestApp, name: &str) {
    let healthy = |ov: &model::Overview| {
        let t = &ov.topology;
        t.leader().is_some()
            && t.members
                .iter()
                .filter(|m| m.role.is_replica() && m.state == "streaming" && m.lag_bytes == Some(0))
                .count()
                == 2
    };
    let ov = eventually(Duration::from_secs(300), "a healthy cluster", || async {
        let ov = app.overview().await;
        healthy(&ov).then_some(ov)
    })
    .await;
    let leader = ov.topology.leader().unwrap().name.clone();
    if leader == name {
        let candidate = ov
            .topology
            .members
            .iter()
            .find(|m| m.name != name)
            .unwrap()
            .name
            .clone();
        patronictl(&["switchover", "--leader", name, "--candidate", &candidate, "--force"]);
        eventually(
            Duration::from_secs(90),
            "the switchover away from the test's target",
            || async {
                let ov = app.overview().await;
                (healthy(&ov) && ov.topology.leader().map(|l| l.name != name).unwrap_or(false)).then_some(())
            },
        )
        .await;
    }
}

/// Whether a container runs (false if it does not exist).
pub fn container_running(container: &str) -> bool {
    docker_inspect(container, "{{.State.Running}}").as_deref() == Some("true")
}

/// A container's last `lines` log lines (stdout and stderr), for a failure's message.
pub fn container_log_tail(container: &str, lines: u32) -> String {
    Command::new("docker")
        .args(["logs", "--tail", &lines.to_string(), container])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_else(|e| format!("(docker logs failed: {e})"))
}

/// A stopped container that is started again when the guard drops, whatever
/// the test did in between (so a failing test never leaves a replica down).
pub struct Stopped(pub String);

impl Stopped {
    pub fn new(name: &str) -> Self {
        docker(&["stop", name]);
        Stopped(name.to_string())
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["start", &self.0]).output();
    }
}

/// A killed container, started again when the guard drops whatever happened.
pub struct Killed(String);

impl Killed {
    pub fn new(name: &str) -> Self {
        docker(&["kill", name]);
        Killed(name.to_string())
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["start", &self.0]).output();
    }
}

/// A replica's WAL receiver frozen (SIGSTOP inside its container), so its
/// lag grows while the leader writes; `CONT` again on drop, whatever the
/// test did.
pub struct FrozenReceiver(String);

impl FrozenReceiver {
    pub fn new(member: &str) -> Self {
        signal_walreceiver(member, "STOP");
        FrozenReceiver(member.to_string())
    }
}

impl Drop for FrozenReceiver {
    fn drop(&mut self) {
        signal_walreceiver(&self.0, "CONT");
    }
}

fn signal_walreceiver(member: &str, sig: &str) {
    let script = format!(
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^postgres: .*walreceiver' && kill -{sig} ${{p#/proc/}}; done; true"
    );
    let out = Command::new("docker")
        .args(["exec", member, "bash", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Maintenance mode (automatic failover paused) until dropped, so a failing
/// test never leaves the cluster without automatic failover.
pub struct Paused;

impl Paused {
    pub fn new() -> Self {
        patronictl(&["pause", "--wait"]);
        Paused
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let mut args = vec!["exec", "pg-0", "patronictl", "-c", "/home/postgres/postgres0.yml"];
        args.extend(["resume", "--wait"]);
        let _ = Command::new("docker").args(args).output();
    }
}

/// POST a form as `c`; status and body.
pub async fn post(
    app: &TestApp,
    c: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, String) {
    let r = c.post(format!("{}{path}", app.base)).form(form).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Follow an operation job (`op_status`) until it has an outcome.
pub async fn wait_job(app: &TestApp, c: &reqwest::Client, id: &str) -> model::operations::OpJob {
    eventually(Duration::from_secs(600), "the operation to finish", || async {
        let (_, t) = post(app, c, "/api/op_status", &[("id", id)]).await;
        serde_json::from_str::<Option<model::operations::OpJob>>(&t)
            .ok()?
            .filter(|j| j.outcome.is_some())
    })
    .await
}

/// Log in without a cookie store; the session cookie (`name=value`).
pub async fn login_cookie(app: &TestApp, name: &str, password: &str) -> String {
    let r = login_post(app, &cookie_client(app, ""), name, password).await;
    cookie_of(&r).expect("login sets the session cookie")
}

/// A same-origin client that sends exactly this cookie and keeps no jar.
pub fn cookie_client(app: &TestApp, cookie: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("origin", app.base.parse().unwrap());
    if !cookie.is_empty() {
        h.insert("cookie", cookie.parse().unwrap());
    }
    reqwest::Client::builder()
        .default_headers(h)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn cookie_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("pgc_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// The audit log as the admin's CSV export, filtered (`action=…&user=…`).
pub async fn audit_rows(app: &TestApp, filter: &str) -> String {
    let r = app
        .http
        .get(format!("{}/audit/export.csv?{filter}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    r.text().await.unwrap()
}

/// An HTTP answer read off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send `method path` exactly as written (no URL normalisation: reqwest and
/// browsers resolve `..` and `%2e%2e` before sending, an attacker's client
/// does not), with an optional cookie and body; read the whole answer.
pub async fn raw_request(app: &TestApp, method: &str, path: &str, cookie: Option<&str>, body: &str) -> Raw {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nOrigin: {}\r\n",
        app.base
    );
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("answer within 20 s")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Raw { status, headers, body }
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            out.push_str(&after[..n.min(after.len())]);
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A same-origin client whose connections come from `ip` (any 127.x.y.z).
pub fn client_from(app: &TestApp, ip: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("origin", app.base.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(h)
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

impl TestApp {
    /// GET `path` as `client`: the body, whatever the status.
    pub async fn get_text(&self, client: &reqwest::Client, path: &str) -> String {
        let r = client.get(format!("{}{path}", self.base)).send().await.expect("GET");
        r.text().await.expect("a body")
    }

    /// Stop the console (SIGKILL) and start it again on the same port and data.
    pub async fn restart(&mut self) {
        self.kill();
        self.start_again().await;
    }

    /// Start a killed console again on the same port and data.
    pub async fn start_again(&mut self) {
        let port = self.base.rsplit(':').next().unwrap().to_string();
        self.child = Command::new(env!("CARGO_BIN_EXE_pg-console"))
            .env("PGC_LISTEN", format!("127.0.0.1:{port}"))
            .env("PGC_LOG", "warn")
            .envs(self.console_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(self.data_dir.join("console.log"))
                    .unwrap(),
            )
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pg-console");
        let http = reqwest::Client::new();
        eventually(Duration::from_secs(20), "the console to start again", || async {
            let r = http.get(format!("{}/healthz", self.base)).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
    }
}

async fn login_post(app: &TestApp, c: &reqwest::Client, name: &str, pw: &str) -> reqwest::Response {
    c.post(format!("{}/login", app.base))
        .form(&[("username", name), ("password", pw), ("next", "/")])
        .send()
        .await
        .unwrap()
}

/// POST the login form as `c`; the status and the Location it answered.
pub async fn login_status(c: &reqwest::Client, app: &TestApp, name: &str, pw: &str) -> (u16, String) {
    let r = login_post(app, c, name, pw).await;
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), loc)
}

/// The scripts and WASM modules the login page names (`href="/pkg/…"`),
/// checked to include the login route's own module and the split loader:
/// the login page is a lazily loaded route (app/src/routes.rs).
pub fn login_page_split_assets(html: &str) -> Vec<String> {
    let assets: Vec<String> = html
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("/pkg/") && (href.ends_with(".wasm") || href.ends_with(".js")))
        .map(str::to_string)
        .collect();
    assert!(
        assets.iter().any(|a| a.starts_with("/pkg/split___login_route_view")),
        "the login route's module is preloaded: {assets:?}"
    );
    assert!(
        assets.iter().any(|a| a.starts_with("/pkg/__wasm_split.")),
        "the split loader is preloaded: {assets:?}"
    );
    assets
}
