//! Integration tests against the real stack (real Docker, etcd, Patroni +
//! PostgreSQL, HAProxy) with the real pg-console binary. They are `ignore`d
//! for a bare `cargo test`; scripts/test runs them with `--include-ignored`
//! after `scripts/stack up`.

use std::time::{Duration, Instant};

use crate::support::*;
use model::{EndpointKind, Role};

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn topology_equals_patronictl_list() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    // Compare snapshots taken back to back; retry if the cluster moved between them.
    let mut last_diff = String::new();
    for _ in 0..10 {
        let ov = app.overview().await;
        let out = patronictl(&["list", "--format", "json"]);
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let mut diffs = Vec::new();
        if list.len() != ov.topology.members.len() {
            diffs.push(format!("{} members vs {}", list.len(), ov.topology.members.len()));
        }
        for row in &list {
            let Some(m) = ov.topology.members.iter().find(|m| m.name == row["Member"]) else {
                diffs.push(format!("{} missing", row["Member"]));
                continue;
            };
            if m.host_port() != row["Host"] {
                diffs.push(format!("{}: host {} vs {}", m.name, m.host_port(), row["Host"]));
            }
            if m.role.label() != row["Role"] {
                diffs.push(format!("{}: role {} vs {}", m.name, m.role.label(), row["Role"]));
            }
            if m.state.as_str() != row["State"] {
                diffs.push(format!("{}: state {} vs {}", m.name, m.state, row["State"]));
            }
            if m.timeline != row["TL"].as_u64() {
                diffs.push(format!("{}: TL {:?} vs {}", m.name, m.timeline, row["TL"]));
            }
            let lag_mb = row.get("Replay Lag").or_else(|| row.get("Lag in MB"));
            if let (Some(l), true) = (lag_mb.and_then(|v| v.as_u64()), m.role.is_replica()) {
                if l == 0 && m.lag_bytes.unwrap_or(u64::MAX) > 1024 * 1024 {
                    diffs.push(format!("{}: lag {:?} vs {l}", m.name, m.lag_bytes));
                }
            }
        }
        if diffs.is_empty() {
            assert_eq!(ov.topology.members[0].role, Role::Leader, "leader first");
            return;
        }
        last_diff = diffs.join("; ");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("console topology differs from patronictl list: {last_diff}");
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn stopped_replica_is_unreachable_within_one_refresh_and_comes_back() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;

    let stopped = Stopped::new("pg-2");
    // One refresh after the stop: the very next call reports it.
    let ov = app.overview().await;
    let pg2 = ov
        .topology
        .members
        .iter()
        .find(|m| m.name == "pg-2")
        .expect("pg-2 still listed");
    assert!(
        !pg2.reachable && pg2.state == "unreachable",
        "pg-2 not reported unreachable: {pg2:?}"
    );
    let entry = ov
        .topology
        .unreachable
        .iter()
        .find(|u| u.name == "pg-2")
        .expect("an unreachable entry for pg-2");
    assert!(entry.since_ms > 0 && entry.since_ms <= ov.topology.observed_at_ms);
    // The Overview page keeps answering, server-rendered, with the degraded state.
    let page = app.http.get(&app.base).send().await.unwrap();
    assert!(page.status().is_success(), "overview page answered {}", page.status());
    let html = page.text().await.unwrap();
    assert!(
        html.contains("is unreachable since"),
        "overview page does not show pg-2 as unreachable"
    );
    let again = app.overview().await;
    let entry2 = again
        .topology
        .unreachable
        .iter()
        .find(|u| u.name == "pg-2")
        .expect("still unreachable");
    assert_eq!(entry2.since_ms, entry.since_ms, "'since' is stable across refreshes");
    // Docker's view beside Patroni's: pg-2's container exited (docker stop:
    // SIGTERM, a clean exit), and that disagreement is said in words; the
    // other containers of the stack run.
    let containers = eventually(Duration::from_secs(5), "pg-2's container seen exited", || async {
        let ov = app.overview().await;
        let c = ov.containers.iter().find(|c| c.name == "pg-2")?;
        (c.status == model::containers::ContainerStatus::Exited).then_some(ov)
    })
    .await;
    assert!(
        containers.containers_error.is_none(),
        "{:?}",
        containers.containers_error
    );
    for name in ["pg-0", "pg-1", "etcd", "pg-router", "pg-wal"] {
        let c = containers.containers.iter().find(|c| c.name == name).expect(name);
        assert_eq!(c.status, model::containers::ContainerStatus::Running, "{c:?}");
        assert!(c.started_at_ms.is_some() && !c.image.is_empty(), "{c:?}");
    }
    let flags = model::containers::disagreements(
        &containers.topology,
        &containers.containers,
        &containers.busy_members,
        containers.topology.observed_at_ms,
    );
    assert!(
        flags.iter().any(|(m, f)| m == "pg-2" && f.contains("exited")),
        "{flags:?}"
    );
    let html = app.http.get(&app.base).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("exited ("), "the Overview shows the container's exit");

    drop(stopped); // docker start pg-2
    let started = Instant::now();
    eventually(Duration::from_secs(90), "pg-2 streaming with lag 0 again", || async {
        let ov = app.overview().await;
        let m = ov.topology.members.iter().find(|m| m.name == "pg-2")?;
        let c = ov.containers.iter().find(|c| c.name == "pg-2")?;
        (m.reachable
            && m.state == "streaming"
            && m.lag_bytes == Some(0)
            && ov.topology.unreachable.is_empty()
            && c.status == model::containers::ContainerStatus::Running)
            .then_some(())
    })
    .await;
    eprintln!(
        "pg-2 back streaming with lag 0 {:.1}s after docker start",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn sop_commands_work_verbatim_and_endpoints_route_by_role() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;

    // SOP section 2, verbatim (without -it: no terminal here).
    let out = docker(&[
        "exec",
        "pg-0",
        "patronictl",
        "-c",
        "/home/postgres/postgres0.yml",
        "topology",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Leader") && text.contains("pg-1") && text.contains("pg-2"),
        "{text}"
    );

    // HAProxy's health checks may still be bringing a replica UP (fresh cluster, restarted member).
    let ov = eventually(
        Duration::from_secs(30),
        "HAProxy routing reads to both replicas",
        || async {
            let ov = app.overview().await;
            let read = ov.endpoints.iter().find(|e| e.kind == EndpointKind::Read)?;
            (read.routes_to.len() == 2).then_some(ov)
        },
    )
    .await;
    let leader = ov.topology.leader().unwrap().clone();
    let env = &app.env;
    // Writes through the write port land on the leader.
    let got = psql(
        env,
        &env["WRITE_PORT"],
        "create table if not exists pgc_it(id serial primary key, at timestamptz default now()); \
         insert into pgc_it default values; select inet_server_port() || ',' || pg_is_in_recovery()",
    );
    assert_eq!(
        got,
        format!("{},false", leader.port.unwrap()),
        "write port must reach the leader"
    );
    // Reads through the read port land on replicas, round robin over both.
    let replica_ports: Vec<String> = ov
        .topology
        .members
        .iter()
        .filter(|m| m.role.is_replica())
        .map(|m| m.port.unwrap().to_string())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let got = psql(
            env,
            &env["READ_PORT"],
            "select inet_server_port() || ',' || pg_is_in_recovery()",
        );
        let (port, recovery) = got.split_once(',').unwrap();
        assert_eq!(recovery, "true", "read port reached a primary: {got}");
        assert!(
            replica_ports.contains(&port.to_string()),
            "{port} is not a replica port {replica_ports:?}"
        );
        seen.insert(port.to_string());
    }
    assert_eq!(seen.len(), 2, "round robin should reach both replicas: {seen:?}");

    // The console's endpoints panel says the same.
    let write = ov.endpoints.iter().find(|e| e.kind == EndpointKind::Write).unwrap();
    assert_eq!(write.routes_to, vec![leader.name.clone()]);
    assert!(write.connection_string.contains(&env["WRITE_PORT"]));
    assert!(
        !write.connection_string.contains(&env["PG_SUPERUSER_PASSWORD"]),
        "no password in the UI"
    );
    let read = ov.endpoints.iter().find(|e| e.kind == EndpointKind::Read).unwrap();
    assert_eq!(read.routes_to.len(), 2);
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn overview_page_is_server_rendered_with_every_member() {
    let _g = lock_stack();
    let app = spawn_app().await;
    let html = app.http.get(&app.base).send().await.unwrap().text().await.unwrap();
    for needle in [
        "pg-0",
        "pg-1",
        "pg-2",
        "Write endpoint",
        "Read endpoint",
        "/pkg/pg-console.js",
        "Timeline history",
    ] {
        assert!(html.contains(needle), "{needle} missing from the server-rendered page");
    }
    let js = app
        .http
        .get(format!("{}/pkg/pg-console.js", app.base))
        .send()
        .await
        .unwrap();
    assert!(js.status().is_success(), "the hydration script is served");
    let wasm = app
        .http
        .get(format!("{}/pkg/pg-console_bg.wasm", app.base))
        .send()
        .await
        .unwrap();
    assert!(wasm.status().is_success(), "the wasm is served");
}

/// The login page is a lazily loaded route (its own WASM module, split by
/// scripts/build): the page preloads that module, the chunks it needs, the
/// split loader and the main module, and each is served.
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_lazy_routes_page_preloads_its_modules() {
    let _g = lock_stack();
    let app = spawn_app().await;
    // A client without a session: the login page is what it gets.
    let html = reqwest::get(format!("{}/login", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let preloads = login_page_split_assets(&html);
    for href in preloads {
        let r = app.http.get(format!("{}{href}", app.base)).send().await.unwrap();
        assert!(r.status().is_success(), "{href} is served: {}", r.status());
    }
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn console_answers_when_haproxy_is_misconfigured() {
    let _g = lock_stack();
    let app = spawn_app_with(&[("PGC_HAPROXY_STATS_CSV_URL", "http://127.0.0.1:1/;csv")]).await;
    let ov = app.overview().await;
    assert!(ov.haproxy.is_none());
    assert!(ov.haproxy_error.as_deref().unwrap_or("").contains("did not answer"));
    assert!(ov.endpoints.iter().all(|e| !e.known));
    assert!(
        ov.topology.leader().is_some(),
        "Patroni still reported: {:?}",
        ov.topology
    );
}

/// The binary's own answers: `--help` names every command, `serve --help`
/// every setting (from the settings table), a mistake gets clap's error
/// with a suggestion and exit code 2, completions are generated.
#[test]
fn help_documents_every_command_and_setting() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pg-console"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in [
        "serve",
        "config",
        "healthcheck",
        "user",
        "session",
        "audit",
        "routes",
        "completions",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from --help");
    }
    let out = run(&["serve", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for var in [
        "PGC_LISTEN",
        "PGC_PUBLIC_URL",
        "PGC_SITE_ROOT",
        "PGC_CLUSTER_NAME",
        "PGC_MEMBERS",
        "PGC_PATRONI_TIMEOUT_MS",
        "PGC_HAPROXY_STATS_CSV_URL",
        "PGC_HAPROXY_STATS_PUBLIC_URL",
        "PGC_WRITE_ENDPOINT",
        "PGC_READ_ENDPOINT",
        "PGC_LOG",
        "PGC_LOG_FORMAT",
    ] {
        assert!(text.contains(var), "{var} missing from serve --help");
    }
    let out = run(&["user", "lst"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'list'"), "a suggestion");
    let out = run(&["user", "list", "--jsn"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json"), "a suggestion");
    let out = run(&["completions", "bash"]);
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(
        script.contains("pg-console") && script.contains("set-role"),
        "a bash completion script"
    );
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pg-console"))
        .env("PGC_MEMBERS", "pg-0")
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("NAME=URL"), "{err}");
}

/// CPU and memory beside each container, from Docker's stats: a busy loop
/// started in pg-1 shows as pg-1's CPU; every running container has its
/// memory; an exited container has no sample.
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn container_cpu_and_memory_follow_a_real_load() {
    let _g = lock_stack();
    let app = spawn_app().await;
    let mut burner = std::process::Command::new("docker")
        .args(["exec", "pg-1", "timeout", "30", "sh", "-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let ov = eventually(Duration::from_secs(30), "pg-1 sampled busy", || async {
        let ov = app.overview().await;
        let u = ov.containers.iter().find(|c| c.name == "pg-1")?.usage.clone()?;
        // A full CPU for the loop; over 25 % even while CI builds an image beside it
        // (idle containers sample at 1–2 %).
        (u.cpu_percent > 25.0).then_some(ov)
    })
    .await;
    let _ = burner.kill();
    let _ = burner.wait();
    let _ = docker(&["exec", "pg-1", "pkill", "-f", "while :; do :; done"]);
    for c in ov
        .containers
        .iter()
        .filter(|c| c.status == model::containers::ContainerStatus::Running)
    {
        let u = c.usage.as_ref().unwrap_or_else(|| panic!("{} has no sample", c.name));
        assert!(
            u.memory_bytes > 1 << 20 && u.memory_limit_bytes >= u.memory_bytes,
            "{}: {u:?}",
            c.name
        );
        assert!(u.cpu_percent >= 0.0 && u.sampled_at_ms > 0, "{}: {u:?}", c.name);
    }
    // Stopped: no sample, and the Overview says so by showing none.
    let stopped = Stopped::new("pg-2");
    let ov = eventually(Duration::from_secs(10), "pg-2 seen exited", || async {
        let ov = app.overview().await;
        let c = ov.containers.iter().find(|c| c.name == "pg-2")?;
        (c.status == model::containers::ContainerStatus::Exited).then_some(ov)
    })
    .await;
    assert!(ov.containers.iter().find(|c| c.name == "pg-2").unwrap().usage.is_none());
    let html = app.http.get(&app.base).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("data-testid=\"container-usage\""),
        "the Overview shows the samples"
    );
    drop(stopped);
    ensure_replica(&app, "pg-2").await;
}
