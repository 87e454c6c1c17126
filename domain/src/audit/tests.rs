//! The audit log on a real SQLite file: bounds, keyset pages, and each kind
//! of tampering `audit verify` must tell apart.

use super::*;

struct Fixture {
    dir: std::path::PathBuf,
    pool: SqlitePool,
    log: AuditLog,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn opts() -> AuditOptions {
    AuditOptions {
        aggregate_window_ms: 60_000,
        head_every_append: true,
    }
}

async fn fixture(rows: usize) -> Fixture {
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("pgc-audit-{}-{n}-{}", std::process::id(), crate::now_ms()));
    let pool = crate::db::open(&dir.join("t.db")).await.unwrap();
    let key = ChainKey::load_or_create(&dir.join("console-secrets.env")).unwrap();
    let log = AuditLog::open(pool.clone(), key, opts()).await.unwrap();
    for i in 0..rows {
        log.record(AuditEntry::new("login", AuditResult::Ok).user(&format!("u{i}"), "admin"))
            .await
            .unwrap();
    }
    Fixture { dir, pool, log }
}

async fn unlock(pool: &SqlitePool) {
    sqlx::raw_sql("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete")
        .execute(pool)
        .await
        .unwrap();
}

/// What someone with only the SQLite file can do: recompute hashes from
/// `from` on, with plain sha256 (they do not have the key).
async fn recompute_without_key(pool: &SqlitePool, from: i64) {
    let rows: Vec<query::Row> = sqlx::query_as(&format!("SELECT {} FROM audit ORDER BY id", query::COLS))
        .fetch_all(pool)
        .await
        .unwrap();
    let mut prev = GENESIS.to_string();
    for r in rows.into_iter().map(query::record) {
        if r.id >= from {
            let h = chain::legacy_hash(&prev, &r.canonical());
            sqlx::query("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?")
                .bind(&prev)
                .bind(&h)
                .bind(r.id)
                .execute(pool)
                .await
                .unwrap();
            prev = h;
        } else {
            prev = r.hash;
        }
    }
}

#[test]
fn the_canonical_form_is_unchanged() {
    // Rows written by earlier consoles were hashed over `json!([...]).to_string()`.
    let mut r = AuditRecord::bounded(
        AuditEntry::new("login", AuditResult::Ok)
            .user("al\"ice", "admin")
            .target("é\n"),
        1_795_900_000_000,
    );
    r.correlation_id = "c0ffee".into();
    let old = serde_json::json!([
        r.at_ms,
        r.user_name,
        r.role,
        r.source_ip,
        r.session_hash,
        r.action,
        r.target,
        r.params,
        r.result,
        r.error,
        r.correlation_id,
        r.duration_ms
    ])
    .to_string();
    assert_eq!(r.canonical(), old);
}

#[test]
fn secrets_are_redacted() {
    let v = redact(
        serde_json::json!({"user": "a", "password": "x", "nested": {"api_token": "t"}, "list": [{"secret": 1}]}),
    );
    assert_eq!(v["user"], "a");
    assert_eq!(v["password"], "[redacted]");
    assert_eq!(v["nested"]["api_token"], "[redacted]");
    assert_eq!(v["list"][0]["secret"], "[redacted]");
}

#[tokio::test]
async fn an_intact_chain_verifies_and_triggers_refuse_changes() {
    let f = fixture(3).await;
    assert_eq!(f.log.verify().await.unwrap(), ChainStatus::VerifiedThrough(3));
    assert!(sqlx::query("UPDATE audit SET user_name = 'x' WHERE id = 2")
        .execute(&f.pool)
        .await
        .is_err());
    assert!(sqlx::query("DELETE FROM audit WHERE id = 2")
        .execute(&f.pool)
        .await
        .is_err());
}

#[tokio::test]
async fn an_empty_log_is_empty() {
    let f = fixture(0).await;
    assert_eq!(f.log.verify().await.unwrap(), ChainStatus::Empty);
}

#[tokio::test]
async fn a_rewritten_row_is_reported_as_altered() {
    let f = fixture(5).await;
    unlock(&f.pool).await;
    sqlx::query("UPDATE audit SET user_name = 'mallory' WHERE id = 2")
        .execute(&f.pool)
        .await
        .unwrap();
    assert_eq!(f.log.verify().await.unwrap(), ChainStatus::RowAltered(2));
}

#[tokio::test]
async fn a_chain_recomputed_without_the_key_is_reported_as_rewritten() {
    let f = fixture(5).await;
    unlock(&f.pool).await;
    sqlx::query("UPDATE audit SET user_name = 'mallory' WHERE id = 3")
        .execute(&f.pool)
        .await
        .unwrap();
    recompute_without_key(&f.pool, 3).await;
    assert_eq!(f.log.verify().await.unwrap(), ChainStatus::ChainRewritten(3));
    // The whole chain, from the first row.
    recompute_without_key(&f.pool, 1).await;
    assert_eq!(f.log.verify().await.unwrap(), ChainStatus::ChainRewritten(1));
}

#[tokio::test]
async fn a_deleted_tail_is_caught_by_the_recorded_head() {
    let f = fixture(6).await;
    unlock(&f.pool).await;
    sqlx::query("DELETE FROM audit WHERE id > 4")
        .execute(&f.pool)
        .await
        .unwrap();
    assert_eq!(
        f.log.verify().await.unwrap(),
        ChainStatus::TailDeleted { last: 4, head: 6 }
    );
}

#[tokio::test]
async fn a_deleted_row_in_the_middle_is_reported() {
    let f = fixture(5).await;
    unlock(&f.pool).await;
    sqlx::query("DELETE FROM audit WHERE id = 3")
        .execute(&f.pool)
        .await
        .unwrap();
    assert_eq!(
        f.log.verify().await.unwrap(),
        ChainStatus::RowsMissing { after: 2, before: 4 }
    );
}

#[tokio::test]
async fn a_forged_head_file_is_reported() {
    let f = fixture(2).await;
    let head_file = f.dir.join("audit-head.json");
    let text = std::fs::read_to_string(&head_file).unwrap();
    std::fs::write(&head_file, text.replace("id=2", "id=1")).unwrap();
    let key = ChainKey::load_or_create(&f.dir.join("console-secrets.env")).unwrap();
    let reopened = AuditLog::open(f.pool.clone(), key, opts()).await.unwrap();
    assert!(matches!(reopened.verify().await.unwrap(), ChainStatus::HeadForged(_)));
}

#[tokio::test]
async fn rows_from_before_the_key_still_verify_and_are_anchored() {
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("pgc-audit-legacy-{}-{n}", std::process::id()));
    let pool = crate::db::open(&dir.join("t.db")).await.unwrap();
    // Rows as an older console wrote them: plain sha256.
    let mut prev = GENESIS.to_string();
    for i in 0..3 {
        let mut r = AuditRecord::bounded(
            AuditEntry::new("login", AuditResult::Ok).user(&format!("old{i}"), "admin"),
            1,
        );
        r.prev_hash = prev.clone();
        r.hash = chain::legacy_hash(&prev, &r.canonical());
        sqlx::query(
            "INSERT INTO audit (at_ms, user_name, role, source_ip, session_hash, action, target, params, result, \
             error, correlation_id, duration_ms, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        )
        .bind(r.at_ms)
        .bind(&r.user_name)
        .bind(&r.role)
        .bind(&r.source_ip)
        .bind(&r.session_hash)
        .bind(&r.action)
        .bind(&r.target)
        .bind(&r.params)
        .bind(&r.result)
        .bind(&r.error)
        .bind(&r.correlation_id)
        .bind(r.duration_ms)
        .bind(&r.prev_hash)
        .bind(&r.hash)
        .execute(&pool)
        .await
        .unwrap();
        prev = r.hash;
    }
    let key = ChainKey::load_or_create(&dir.join("console-secrets.env")).unwrap();
    let log = AuditLog::open(pool.clone(), key, opts()).await.unwrap();
    log.record(AuditEntry::new("login", AuditResult::Ok)).await.unwrap();
    assert_eq!(log.verify().await.unwrap(), ChainStatus::VerifiedThrough(4));
    // Rewriting the unkeyed rows breaks the link of the first keyed one.
    unlock(&pool).await;
    sqlx::query("UPDATE audit SET user_name = 'mallory' WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap();
    recompute_without_key(&pool, 1).await;
    assert!(log.verify().await.unwrap().is_broken());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_page_report_is_incremental_and_keeps_a_break() {
    let f = fixture(3).await;
    let r = f.log.report(&[]).await.unwrap();
    assert_eq!(r.status, ChainStatus::VerifiedThrough(3));
    assert!(r.signed_head.unwrap().contains("id=3"));
    f.log.record(AuditEntry::new("logout", AuditResult::Ok)).await.unwrap();
    assert_eq!(f.log.report(&[]).await.unwrap().status, ChainStatus::VerifiedThrough(4));
    unlock(&f.pool).await;
    sqlx::query("UPDATE audit SET user_name = 'mallory' WHERE id = 4")
        .execute(&f.pool)
        .await
        .unwrap();
    // Row 4 was verified already: a load that does not show it does not see the edit...
    assert_eq!(f.log.report(&[]).await.unwrap().status, ChainStatus::VerifiedThrough(4));
    // ...one that shows it does, and so does a full check.
    let shown = f
        .log
        .page(&AuditFilter::default(), Cursor::Newest, 10)
        .await
        .unwrap()
        .rows;
    assert_eq!(f.log.report(&shown).await.unwrap().status, ChainStatus::RowAltered(4));
    assert_eq!(f.log.verify().await.unwrap(), ChainStatus::RowAltered(4));
    // ...and from then on the page reports it.
    assert_eq!(f.log.report(&[]).await.unwrap().status, ChainStatus::RowAltered(4));
}

#[tokio::test]
async fn request_fields_are_bounded_and_marked() {
    let f = fixture(0).await;
    let huge = "A".repeat(64 * 1024);
    f.log
        .record(
            AuditEntry::new("login_failed", AuditResult::Refused)
                .ip(&huge)
                .target(&huge)
                .error(&huge)
                .params(serde_json::json!({ "user_agent": huge })),
        )
        .await
        .unwrap();
    let page = f.log.page(&AuditFilter::default(), Cursor::Newest, 10).await.unwrap();
    let r = &page.rows[0];
    assert!(r.source_ip.len() <= limits::SOURCE_IP_MAX);
    assert!(r.target.len() <= limits::TARGET_MAX && r.target.ends_with("[cut: 65536 bytes in all]"));
    assert!(r.error.len() <= limits::ERROR_MAX);
    assert!(r.params.len() <= limits::PARAMS_MAX, "{}", r.params.len());
    assert!(r.params.contains("\"cut\""), "{}", r.params);
    assert_eq!(f.log.verify().await.unwrap(), ChainStatus::VerifiedThrough(1));
}

#[tokio::test]
async fn pages_walk_the_table_by_key() {
    let f = fixture(25).await;
    let all = AuditFilter::default();
    let p1 = f.log.page(&all, Cursor::Newest, 10).await.unwrap();
    assert_eq!(
        p1.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        (16..=25).rev().collect::<Vec<_>>()
    );
    assert!(p1.has_older && !p1.has_newer);
    let p2 = f.log.page(&all, Cursor::Before(16), 10).await.unwrap();
    assert_eq!(p2.rows.first().unwrap().id, 15);
    assert!(p2.has_older && p2.has_newer);
    let p3 = f.log.page(&all, Cursor::Before(6), 10).await.unwrap();
    assert_eq!(p3.rows.len(), 5);
    assert!(!p3.has_older && p3.has_newer);
    let back = f.log.page(&all, Cursor::After(15), 10).await.unwrap();
    assert_eq!(back.rows.first().unwrap().id, 25);
    assert_eq!(back.rows.last().unwrap().id, 16);
    assert!(!back.has_newer && back.has_older);
    let bob = AuditFilter {
        user: Some("u7".into()),
        ..Default::default()
    };
    let one = f.log.page(&bob, Cursor::Newest, 10).await.unwrap();
    assert_eq!(one.rows.len(), 1);
    assert!(!one.has_older && !one.has_newer);
}

#[tokio::test]
async fn refusals_are_aggregated_per_source_and_window() {
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("pgc-audit-agg-{}-{n}", std::process::id()));
    let pool = crate::db::open(&dir.join("t.db")).await.unwrap();
    let key = ChainKey::load_or_create(&dir.join("console-secrets.env")).unwrap();
    let log = AuditLog::open(
        pool,
        key,
        AuditOptions {
            aggregate_window_ms: 1,
            head_every_append: true,
        },
    )
    .await
    .unwrap();
    for _ in 0..38 {
        log.refuse(
            AuditEntry::new("login_failed", AuditResult::Refused)
                .ip("10.1.2.3")
                .target("admin"),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    log.flush(false).await;
    let p = log.page(&AuditFilter::default(), Cursor::Newest, 50).await.unwrap();
    assert_eq!(p.rows.len(), 2, "the first refusal, then one aggregated entry");
    assert!(
        p.rows[0]
            .error
            .starts_with("37 more refused logins for 'admin' from 10.1.2.3"),
        "{}",
        p.rows[0].error
    );
    let _ = std::fs::remove_dir_all(dir);
}
