//! Cluster operations through the console against the real stack: the
//! prepare → confirm → execute protocol, the lock, refusals, and what Patroni
//! and the write endpoint report afterwards.

use std::time::Duration;

use crate::support::*;
use model::operations::Plan;
use reqwest::StatusCode;

const OPERATOR_PW: &str = "operator with a long phrase";

async fn prepare(app: &TestApp, c: &reqwest::Client, kind: &str, member: &str, at: &str) -> Plan {
    let (s, t) = post(
        app,
        c,
        "/api/op_prepare",
        &[
            ("kind", kind),
            ("member", member),
            ("scheduled_at", at),
            ("only_if_pending", "false"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    serde_json::from_str(&t).unwrap()
}

async fn execute(app: &TestApp, c: &reqwest::Client, token: &str, typed: &str, pw: &str) -> Result<String, String> {
    let (s, t) = post(
        app,
        c,
        "/api/op_execute",
        &[("token", token), ("typed_name", typed), ("password", pw)],
    )
    .await;
    if s == StatusCode::OK {
        Ok(serde_json::from_str::<String>(&t).unwrap())
    } else {
        Err(t)
    }
}

fn replicas(ov: &model::Overview) -> Vec<String> {
    ov.topology
        .members
        .iter()
        .filter(|m| m.role.is_replica())
        .map(|m| m.name.clone())
        .collect()
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn switchover_to_a_named_candidate_reports_the_write_gap() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    let ov = app.overview().await;
    let old = ov.topology.leader().unwrap().name.clone();
    let candidate = replicas(&ov)[0].clone();
    let plan = prepare(&app, &app.http, "switchover", &candidate, "").await;
    assert!(plan.can_run(), "{:?}", plan.preconditions);
    assert!(
        plan.shell
            .contains(&format!("switchover --leader {old} --candidate {candidate}")),
        "{}",
        plan.shell
    );
    assert_eq!(plan.confirm_name, ov.topology.cluster);
    let id = execute(&app, &app.http, &plan.token, &plan.confirm_name, "")
        .await
        .unwrap();
    let job = wait_job(&app, &app.http, &id).await;
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
    let gap = job.write_gap_ms.expect("write gap measured");
    assert!(gap > 0 && gap < 30_000, "write gap {gap} ms");
    eprintln!("switchover {old} -> {candidate}: writes refused for {gap} ms");
    // Patroni and the write endpoint agree.
    let after = app.overview().await;
    assert_eq!(after.topology.leader().unwrap().name, candidate);
    let port = psql(&app.env, &app.env["WRITE_PORT"], "select inet_server_port()");
    assert_eq!(port, after.topology.leader().unwrap().port.unwrap().to_string());
    // The whole run is in the audit log under one correlation id.
    let csv = audit_rows(&app, "").await;
    let steps = csv.lines().filter(|l| l.contains(&id)).count();
    assert!(steps >= 4, "execute, steps and result audited under {id}: {steps}");
    assert!(csv.contains("op_result"));
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn scheduled_switchover_is_shown_then_cancelled_and_does_not_happen() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    let ov = app.overview().await;
    let leader = ov.topology.leader().unwrap().name.clone();
    let candidate = replicas(&ov)[0].clone();
    // Ten minutes from now, UTC.
    let at_ms = domain::now_ms() + 600_000;
    let secs = at_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{}", days * 86_400), "+%Y-%m-%d"])
        .output()
        .unwrap();
    let at = format!(
        "{}T{:02}:{:02}",
        String::from_utf8_lossy(&out.stdout).trim(),
        rem / 3600,
        (rem % 3600) / 60
    );
    let plan = prepare(&app, &app.http, "switchover", &candidate, &at).await;
    assert!(plan.can_run(), "{:?}", plan.preconditions);
    let id = execute(&app, &app.http, &plan.token, &plan.confirm_name, "")
        .await
        .unwrap();
    let job = wait_job(&app, &app.http, &id).await;
    assert!(
        matches!(job.outcome, Some(Ok(ref s)) if s.contains("scheduled")),
        "{job:?}"
    );
    let ov = app.overview().await;
    let s = ov.topology.scheduled_switchover.clone().expect("shown on the Overview");
    assert_eq!(s.to.as_deref(), Some(candidate.as_str()));
    // A second schedule is refused while one is pending.
    let again = prepare(&app, &app.http, "switchover", &candidate, "").await;
    assert!(!again.can_run() && again.preconditions.iter().any(|p| p.text.contains("already scheduled")));
    let (st, t) = post(&app, &app.http, "/api/op_cancel_switchover", &[]).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let ov = app.overview().await;
    assert!(ov.topology.scheduled_switchover.is_none());
    assert_eq!(ov.topology.leader().unwrap().name, leader, "nothing happened");
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn refusals_say_why_and_change_nothing() {
    let _g = lock_stack();
    let app = spawn_app_with(&[("PGC_OPERATION_TOKEN_TTL_SECS", "3")]).await;
    ensure_replica(&app, "pg-2").await;
    let ov = app.overview().await;
    let leader = ov.topology.leader().unwrap().name.clone();
    let candidate = replicas(&ov)[0].clone();

    let p = prepare(&app, &app.http, "switchover", &leader, "").await;
    assert!(!p.can_run() && p.token.is_empty());
    assert!(
        p.preconditions
            .iter()
            .any(|x| !x.ok && x.text.contains("is the leader already")),
        "{:?}",
        p.preconditions
    );
    let p = prepare(&app, &app.http, "switchover", "pg-9", "").await;
    assert!(!p.can_run() && p.preconditions.iter().any(|x| x.text.contains("is not a member")));

    // Wrong name: refused, and the token stays valid for a correct retry.
    let p = prepare(&app, &app.http, "reload", &candidate, "").await;
    let e = execute(&app, &app.http, &p.token, &candidate.to_uppercase(), "")
        .await
        .unwrap_err();
    assert!(e.contains("type exactly"), "{e}");
    let id = execute(&app, &app.http, &p.token, &candidate, "").await.unwrap();
    assert!(matches!(wait_job(&app, &app.http, &id).await.outcome, Some(Ok(_))));
    // Reused token.
    let e = execute(&app, &app.http, &p.token, &candidate, "").await.unwrap_err();
    assert!(e.contains("already used"), "{e}");
    // Expired token.
    let p = prepare(&app, &app.http, "reload", &candidate, "").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let e = execute(&app, &app.http, &p.token, &candidate, "").await.unwrap_err();
    assert!(e.contains("expired"), "{e}");
    // A token from another session of the same user.
    let other = app.login("admin", ADMIN_PASSWORD).await.unwrap();
    let p = prepare(&app, &app.http, "reload", &candidate, "").await;
    let e = execute(&app, &other, &p.token, &candidate, "").await.unwrap_err();
    assert!(e.contains("another session"), "{e}");
    // A viewer may not even prepare.
    app.add_user("vera", "viewer", "viewer with a long phrase");
    let viewer = app.login("vera", "viewer with a long phrase").await.unwrap();
    let (s, _) = post(
        &app,
        &viewer,
        "/api/op_prepare",
        &[
            ("kind", "reload"),
            ("member", &candidate),
            ("scheduled_at", ""),
            ("only_if_pending", "false"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Failover with a healthy leader: only an admin may force it.
    app.add_user("otto", "operator", OPERATOR_PW);
    let op = app.login("otto", OPERATOR_PW).await.unwrap();
    let p = prepare(&app, &op, "failover", &candidate, "").await;
    assert!(
        !p.can_run() && p.preconditions.iter().any(|x| x.text.contains("only an admin")),
        "{:?}",
        p.preconditions
    );
    // A request with fields its kind does not take, or an unknown
    // compression, is bad input (400) with the sentence, and plans nothing.
    for (form, says) in [
        (
            vec![("kind", "reload"), ("member", "pg-2"), ("compression", "zstd")],
            "the reload operation takes no compression",
        ),
        (
            vec![("kind", "backup"), ("member", "pg-2"), ("compression", "lz4")],
            "unknown compression \"lz4\": choose zstd or gzip",
        ),
        (
            vec![("kind", "pause"), ("member", "pg-1")],
            "the pause automatic failover operation takes no member",
        ),
        (
            vec![("kind", "restart"), ("member", "")],
            "the restart operation needs a member: choose one",
        ),
    ] {
        let (s, t) = post(&app, &app.http, "/api/op_prepare", &form).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{form:?}: {t}");
        let error: serde_json::Value = serde_json::from_str(&t).unwrap();
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(says), "{form:?}: {t}");
    }
    assert_eq!(
        app.overview().await.topology.leader().unwrap().name,
        leader,
        "nothing changed"
    );
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn two_operations_at_once_one_runs_the_other_is_busy() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    let ov = app.overview().await;
    let candidate = replicas(&ov)[0].clone();
    let first = prepare(&app, &app.http, "switchover", &candidate, "").await;
    let second = prepare(&app, &app.http, "reload", &replicas(&ov)[1], "").await;
    let id = execute(&app, &app.http, &first.token, &first.confirm_name, "")
        .await
        .unwrap();
    let e = execute(&app, &app.http, &second.token, &second.confirm_name, "")
        .await
        .unwrap_err();
    assert!(e.contains("busy: Switchover") && e.contains("by admin since"), "{e}");
    assert!(matches!(wait_job(&app, &app.http, &id).await.outcome, Some(Ok(_))));
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn pause_then_resume() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    for (kind, paused) in [("pause", true), ("resume", false)] {
        let p = prepare(&app, &app.http, kind, "", "").await;
        assert!(p.can_run(), "{:?}", p.preconditions);
        let id = execute(&app, &app.http, &p.token, &p.confirm_name, "").await.unwrap();
        assert!(matches!(wait_job(&app, &app.http, &id).await.outcome, Some(Ok(_))));
        assert_eq!(app.overview().await.topology.paused, paused);
        // Shown on every page (the top bar asks this).
        let (st, t) = post(&app, &app.http, "/api/cluster_paused", &[]).await;
        assert_eq!(
            (st, t.as_str()),
            (StatusCode::OK, if paused { "true" } else { "false" })
        );
        // Patroni itself says so (patronictl reads the DCS, not the console).
        let out = String::from_utf8_lossy(&patronictl(&["list"]).stdout).to_string();
        assert_eq!(out.contains("Maintenance mode: on"), paused, "{out}");
    }
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn reinitialize_a_member_needs_the_password_and_rebuilds_it() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    // A session whose cookie the test can see and replay.
    let old_cookie = login_cookie(&app, "admin", ADMIN_PASSWORD).await;
    let c_old = cookie_client(&app, &old_cookie);
    let p = prepare(&app, &c_old, "reinitialize_member", "pg-2", "").await;
    assert!(p.can_run() && p.needs_password, "{:?}", p.preconditions);
    // A wrong password uses the confirmation up (and counts toward the lockout).
    let (s, e) = post(
        &app,
        &c_old,
        "/api/op_execute",
        &[
            ("token", p.token.as_str()),
            ("typed_name", "pg-2"),
            ("password", "not my password"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(e.contains("password is wrong"), "{e}");
    let (s, e) = post(
        &app,
        &c_old,
        "/api/op_execute",
        &[
            ("token", p.token.as_str()),
            ("typed_name", "pg-2"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e.contains("already used"), "the token was burnt: {e}");
    let users = String::from_utf8_lossy(&app.cli(&["user", "list"], "").stdout).to_string();
    let admin = users.lines().find(|l| l.starts_with("admin ")).unwrap().to_string();
    assert!(
        admin.split_whitespace().any(|w| w == "1"),
        "one failure counted: {admin}"
    );
    let p = prepare(&app, &c_old, "reinitialize_member", "pg-2", "").await;
    // Re-authentication renews the session id: the cookie held before the
    // password was entered stops working, the renewed one works.
    let r = c_old
        .post(format!("{}/api/op_execute", app.base))
        .form(&[
            ("token", p.token.as_str()),
            ("typed_name", "pg-2"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let renewed = cookie_of(&r);
    let (s, t) = (r.status(), r.text().await.unwrap());
    assert_eq!(s, StatusCode::OK, "{t}");
    let id: String = serde_json::from_str(&t).unwrap();
    let new_cookie = renewed.expect("a renewed session cookie after re-authentication");
    assert_ne!(old_cookie, new_cookie);
    let c_new = cookie_client(&app, &new_cookie);
    assert_eq!(app.call(&c_old, "/api/op_recent", "").await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(&c_new, "/api/op_recent", "").await, StatusCode::OK);
    let job = wait_job(&app, &c_new, &id).await;
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
    ensure_replica(&app, "pg-2").await;
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn reinitialize_the_whole_cluster_destroys_data_and_keeps_the_console() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    psql(
        &app.env,
        &app.env["WRITE_PORT"],
        "create table if not exists pgc_reinit_marker(x int); insert into pgc_reinit_marker values (1)",
    );
    let old_id = String::from_utf8(patronictl(&["list", "--format", "json"]).stdout).unwrap();
    let old_sysid = psql(
        &app.env,
        &app.env["WRITE_PORT"],
        "select system_identifier from pg_control_system()",
    );
    assert!(!old_id.is_empty());

    // Operators may not; admins must type the cluster name and their password.
    app.add_user("oscar", "operator", OPERATOR_PW);
    let op = app.login("oscar", OPERATOR_PW).await.unwrap();
    let p = prepare(&app, &op, "reinitialize_cluster", "", "").await;
    assert!(!p.can_run() && p.preconditions.iter().any(|x| x.text.contains("only an admin")));
    let form = [
        ("kind", "reinitialize_cluster"),
        ("member", ""),
        ("scheduled_at", ""),
        ("only_if_pending", "false"),
        ("backup_first", "true"),
    ];
    let (st, t) = post(&app, &app.http, "/api/op_prepare", &form).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let p: Plan = serde_json::from_str(&t).unwrap();
    assert!(p.can_run() && p.needs_password, "{:?}", p.preconditions);
    assert!(p.steps[0].contains("back up"), "{:?}", p.steps);
    // Without the password: refused, and the confirmation stays valid.
    let e = execute(&app, &app.http, &p.token, &p.confirm_name, "")
        .await
        .unwrap_err();
    assert!(e.contains("needs your password"), "{e}");
    let id = execute(&app, &app.http, &p.token, &p.confirm_name, ADMIN_PASSWORD)
        .await
        .unwrap();
    let job = wait_job(&app, &app.http, &id).await;
    assert!(
        matches!(job.outcome, Some(Ok(ref s)) if s.contains("reinitialized")),
        "{job:?}"
    );

    let ov = app.overview().await;
    assert_eq!(ov.topology.members.len(), 3);
    assert_eq!(ov.topology.members.iter().filter(|m| m.role.is_leader()).count(), 1);
    let new_sysid = psql(
        &app.env,
        &app.env["WRITE_PORT"],
        "select system_identifier from pg_control_system()",
    );
    assert_ne!(new_sysid, old_sysid, "a new database system identifier");
    let marker = psql(
        &app.env,
        &app.env["WRITE_PORT"],
        "select coalesce(to_regclass('pgc_reinit_marker')::text, 'gone')",
    );
    assert_eq!(marker, "gone");
    // The backup taken first is in the catalog; the console's own data is intact.
    let (_, t) = post(&app, &app.http, "/api/backups_list", &[]).await;
    let backups: Vec<model::backups::BackupRow> = serde_json::from_str(&t).unwrap();
    assert!(
        backups
            .iter()
            .any(|b| b.status.as_str() == "ok" && b.system_identifier == old_sysid),
        "{backups:?}"
    );
    assert!(app.cli(&["audit", "verify"], "").status.success());
    app.login("oscar", OPERATOR_PW).await.expect("users survive");
    ensure_replica(&app, "pg-2").await;
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn restart_a_replica_and_refuse_a_pending_only_restart_with_nothing_pending() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    let (s, t) = post(
        &app,
        &app.http,
        "/api/op_prepare",
        &[
            ("kind", "restart"),
            ("member", "pg-2"),
            ("scheduled_at", ""),
            ("only_if_pending", "true"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let p: Plan = serde_json::from_str(&t).unwrap();
    assert!(!p.can_run() && p.preconditions.iter().any(|x| x.text.contains("no pending restart")));
    let p = prepare(&app, &app.http, "restart", "pg-2", "").await;
    assert_eq!(p.confirm_name, "pg-2");
    let id = execute(&app, &app.http, &p.token, "pg-2", "").await.unwrap();
    let job = wait_job(&app, &app.http, &id).await;
    assert!(
        matches!(job.outcome, Some(Ok(ref s)) if s.contains("restarted")),
        "{job:?}"
    );
    ensure_replica(&app, "pg-2").await;
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_confirmed_switchover_does_not_run_after_the_leader_moved() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    let ov = app.overview().await;
    let leader = ov.topology.leader().unwrap().name.clone();
    let (a, b) = {
        let r = replicas(&ov);
        (r[0].clone(), r[1].clone())
    };
    // Confirmed: leader → a. Meanwhile, someone else moves the leader to b.
    let plan = prepare(&app, &app.http, "switchover", &a, "").await;
    assert!(plan.can_run(), "{:?}", plan.preconditions);
    patronictl(&["switchover", "--leader", &leader, "--candidate", &b, "--force"]);
    eventually(Duration::from_secs(90), "the other switchover", || async {
        let t = app.overview().await.topology;
        (t.leader().map(|l| l.name == b).unwrap_or(false)
            && t.members
                .iter()
                .filter(|m| m.role.is_replica() && m.state == "streaming")
                .count()
                == 2)
            .then_some(())
    })
    .await;
    let (s, e) = post(
        &app,
        &app.http,
        "/api/op_execute",
        &[
            ("token", plan.token.as_str()),
            ("typed_name", plan.confirm_name.as_str()),
            ("password", ""),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e.contains(&format!(
            "the cluster changed since you confirmed: was Switchover {leader} → {a}, now Switchover {b} → {a}"
        )),
        "{e}"
    );
    assert_eq!(app.overview().await.topology.leader().unwrap().name, b, "nothing ran");
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn whole_cluster_reinit_is_refused_when_the_consoles_backups_lie_inside() {
    let env = stack_env();
    let data = env
        .get("DEFAULT_DATA_DIR")
        .cloned()
        .unwrap_or_else(|| repo_root().join(".data/data").display().to_string());
    let inside = format!("{data}/etcd/pg-console-backups");
    let app = spawn_app_with(&[("PGC_BACKUPS_DIR", inside.as_str())]).await;
    let p = prepare(&app, &app.http, "reinitialize_cluster", "", "").await;
    assert!(!p.can_run() && p.token.is_empty());
    assert!(
        p.preconditions
            .iter()
            .any(|x| !x.ok && x.text.contains("the console's backups") && x.text.contains("refusing")),
        "{:?}",
        p.preconditions
    );
    assert!(
        !std::path::Path::new(&inside).exists(),
        "nothing was created inside etcd/"
    );
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn failover_without_a_healthy_leader_promotes_the_candidate() {
    let _g = lock_stack();
    let app = spawn_app().await;
    // pg-0 runs the test's patronictl, so it stays a replica throughout.
    ensure_replica(&app, "pg-0").await;
    let ov = app.overview().await;
    let old = ov.topology.leader().unwrap().name.clone();
    let candidate = replicas(&ov).into_iter().find(|r| r != "pg-0").unwrap();
    // Automatic failover paused, then the leader's Patroni and PostgreSQL
    // stop: nothing promotes a replica, only an operator can. (Dropped in
    // reverse on failure: the old leader starts, then failover resumes.)
    let paused = Paused::new();
    let stopped = Stopped::new(&old);
    eventually(Duration::from_secs(90), "a cluster without a leader", || async {
        app.overview().await.topology.leader().is_none().then_some(())
    })
    .await;
    let p = prepare(&app, &app.http, "failover", &candidate, "").await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    assert!(
        p.preconditions
            .iter()
            .any(|x| x.ok && x.text == "there is no healthy leader"),
        "{:?}",
        p.preconditions
    );
    let id = execute(&app, &app.http, &p.token, &p.confirm_name, ADMIN_PASSWORD)
        .await
        .unwrap();
    let job = wait_job(&app, &app.http, &id).await;
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
    let after = app.overview().await;
    assert_eq!(after.topology.leader().map(|l| l.name.clone()), Some(candidate.clone()));
    let port = psql(&app.env, &app.env["WRITE_PORT"], "select inet_server_port()");
    assert_eq!(port, after.topology.leader().unwrap().port.unwrap().to_string());
    eprintln!("failover to {candidate} with {old} down: {:?}", job.outcome);
    // Automatic failover back on, then the old leader rejoins as a replica.
    drop(paused);
    drop(stopped);
    eventually(Duration::from_secs(180), "the old leader streaming again", || async {
        let ov = app.overview().await;
        ov.topology
            .members
            .iter()
            .any(|m| m.name == old && m.caught_up())
            .then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_scheduled_restart_happens_at_its_time() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    let port = app.env["PG2_PORT"].clone();
    let started = psql(&app.env, &port, "select pg_postmaster_start_time()");
    // 15 s from now, to the second (the form and the server take seconds).
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 15;
    let at = psql(
        &app.env,
        &port,
        &format!("select to_char(to_timestamp({now_s}) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"),
    );
    let p = prepare(&app, &app.http, "restart", "pg-2", &at).await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    assert!(p.shell.contains(&format!("--scheduled {at}+00:00")), "{}", p.shell);
    let id = execute(&app, &app.http, &p.token, "pg-2", "").await.unwrap();
    let job = wait_job(&app, &app.http, &id).await;
    assert!(
        matches!(job.outcome, Some(Ok(ref s)) if s.contains("scheduled")),
        "{job:?}"
    );
    assert_eq!(
        psql(&app.env, &port, "select pg_postmaster_start_time()"),
        started,
        "not before its time"
    );
    // Patroni restarts it at that second (its loop runs every few seconds).
    let restarted = eventually(
        Duration::from_secs(150),
        "pg-2 restarted by Patroni's schedule",
        || async {
            let out = std::process::Command::new("docker")
                .args([
                    "exec",
                    "-e",
                    &format!("PGPASSWORD={}", app.env["PG_SUPERUSER_PASSWORD"]),
                    "pg-0",
                    "psql",
                    "-h",
                    &app.env["BIND_ADDR"],
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-XAtqc",
                    "select pg_postmaster_start_time()",
                ])
                .output()
                .ok()?;
            let t = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !t.is_empty() && t != started).then_some(t)
        },
    )
    .await;
    let at_s = psql(
        &app.env,
        &port,
        &format!("select extract(epoch from '{restarted}'::timestamptz)::bigint - {now_s}"),
    );
    let late: i64 = at_s.parse().unwrap();
    assert!((0..30).contains(&late), "restarted {late} s after the scheduled time");
    eprintln!("scheduled restart of pg-2 for {at} UTC happened {late} s after it");
    ensure_replica(&app, "pg-2").await;
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn history_keeps_its_order_after_quick_switchovers() {
    let _g = lock_stack();
    let app = spawn_app().await;
    // pg-0 runs the test's patronictl; it stays a replica while the other two
    // take turns (three promotions within about a minute).
    ensure_replica(&app, "pg-0").await;
    for _ in 0..3 {
        let ov = app.overview().await;
        let leader = ov.topology.leader().unwrap().name.clone();
        let next = if leader == "pg-1" { "pg-2" } else { "pg-1" };
        patronictl(&["switchover", "--leader", &leader, "--candidate", next, "--force"]);
        eventually(
            Duration::from_secs(90),
            "the new leader with both replicas back",
            || async {
                let t = app.overview().await.topology;
                (t.leader().map(|l| l.name == next).unwrap_or(false)
                    && t.members
                        .iter()
                        .filter(|m| m.role.is_replica() && m.caught_up())
                        .count()
                        == 2)
                    .then_some(())
            },
        )
        .await;
    }
    let history = app.overview().await.history;
    let last: Vec<_> = history.iter().rev().take(3).collect();
    for h in &last {
        assert!(h.at_ms.is_some(), "Patroni's timestamp read to the millisecond: {h:?}");
    }
    // Newest timeline first, and each promotion's instant after the one before.
    for pair in last.windows(2) {
        assert!(pair[0].timeline > pair[1].timeline, "{last:?}");
        assert!(
            pair[0].at_ms > pair[1].at_ms,
            "ordered by the instant, seconds and fraction included: {last:?}"
        );
    }
    eprintln!(
        "three promotions within {:.1} s",
        (last[0].at_ms.unwrap() - last[2].at_ms.unwrap()) as f64 / 1000.0
    );
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn json_logs_carry_the_operations_correlation_id_and_no_secret() {
    let _g = lock_stack();
    let app = spawn_app_with(&[("PGC_LOG_FORMAT", "json"), ("PGC_LOG", "info")]).await;
    let member = replicas(&app.overview().await)[0].clone();
    let p = prepare(&app, &app.http, "reload", &member, "").await;
    let id = execute(&app, &app.http, &p.token, &member, "").await.unwrap();
    assert!(matches!(wait_job(&app, &app.http, &id).await.outcome, Some(Ok(_))));
    let log = app.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|v| v["fields"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("listening on"))));
    // Every line of the run names the job, which is the audit entries' correlation id.
    let ours: Vec<&str> = lines
        .iter()
        .filter(|v| v["span"]["correlation_id"] == id.as_str())
        .filter_map(|v| v["fields"]["message"].as_str())
        .collect();
    assert!(ours.iter().any(|m| m.contains(&member)), "{ours:?}");
    assert!(ours.last().is_some_and(|m| m.contains("done")), "{ours:?}");
    let audit = audit_rows(&app, "action=op_result").await;
    assert!(audit.lines().any(|l| l.contains(&id)), "{audit}");
    // The stack's secrets never reach the log.
    for (k, v) in stack_env()
        .iter()
        .filter(|(k, v)| k.contains("PASSWORD") && v.len() >= 8)
    {
        assert!(!log.contains(v.as_str()), "{k} is in the log");
    }
}
