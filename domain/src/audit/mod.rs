//! The tamper-evident audit log: an append-only SQLite table (triggers refuse
//! UPDATE and DELETE) where each row carries
//! `hash = sha256(previous hash ‖ canonical row)`.

mod csv;

pub use self::csv::to_csv;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use tokio::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditResult {
    Ok,
    Refused,
    Failed,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Refused => "refused",
            AuditResult::Failed => "failed",
        }
    }
}

/// What happened, by whom, from where.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    pub user_name: String,
    pub role: String,
    pub source_ip: String,
    /// sha256 of the session id (never the id itself).
    pub session_hash: String,
    pub action: String,
    pub target: String,
    /// Parameters; keys that look secret are redacted by [`AuditEntry::new`].
    pub params: Value,
    pub result: AuditResult,
    pub error: String,
    pub correlation_id: String,
    pub duration_ms: i64,
}

impl AuditEntry {
    pub fn new(action: &str, result: AuditResult) -> Self {
        AuditEntry {
            user_name: "-".into(),
            role: "-".into(),
            source_ip: "-".into(),
            session_hash: String::new(),
            action: action.into(),
            target: String::new(),
            params: Value::Object(Default::default()),
            result,
            error: String::new(),
            correlation_id: crate::users::random_token()[..16].to_string(),
            duration_ms: 0,
        }
    }

    pub fn user(mut self, name: &str, role: &str) -> Self {
        self.user_name = name.into();
        self.role = role.into();
        self
    }

    pub fn ip(mut self, ip: &str) -> Self {
        self.source_ip = ip.into();
        self
    }

    pub fn session(mut self, sid: &str) -> Self {
        self.session_hash = if sid.is_empty() {
            String::new()
        } else {
            hex::encode(Sha256::digest(sid.as_bytes()))
        };
        self
    }

    pub fn target(mut self, t: &str) -> Self {
        self.target = t.into();
        self
    }

    pub fn params(mut self, p: Value) -> Self {
        self.params = redact(p);
        self
    }

    pub fn error(mut self, e: &str) -> Self {
        self.error = e.into();
        self
    }
}

/// Replace values whose key suggests a secret.
pub fn redact(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let lk = k.to_lowercase();
                    if ["pass", "secret", "token", "key", "cookie", "credential"]
                        .iter()
                        .any(|s| lk.contains(s))
                    {
                        (k, Value::String("[redacted]".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(redact).collect()),
        other => other,
    }
}

/// A stored row.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ms: i64,
    pub user_name: String,
    pub role: String,
    pub source_ip: String,
    pub session_hash: String,
    pub action: String,
    pub target: String,
    pub params: String,
    pub result: String,
    pub error: String,
    pub correlation_id: String,
    pub duration_ms: i64,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    fn canonical(&self) -> String {
        serde_json::json!([
            self.at_ms,
            self.user_name,
            self.role,
            self.source_ip,
            self.session_hash,
            self.action,
            self.target,
            self.params,
            self.result,
            self.error,
            self.correlation_id,
            self.duration_ms
        ])
        .to_string()
    }

    fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(self.canonical().as_bytes());
        hex::encode(h.finalize())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ChainStatus {
    Empty,
    VerifiedThrough(i64),
    BrokenAt(i64),
}

impl std::fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainStatus::Empty => write!(f, "empty"),
            ChainStatus::VerifiedThrough(n) => write!(f, "verified through #{n}"),
            ChainStatus::BrokenAt(n) => write!(f, "broken at #{n}"),
        }
    }
}

/// Filters for reading the log.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user: Option<String>,
    pub action: Option<String>,
    pub result: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

pub struct AuditLog {
    pool: SqlitePool,
    /// One writer at a time keeps the chain linear.
    writer: Mutex<()>,
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
);
const COLS: &str = "id, at_ms, user_name, role, source_ip, session_hash, action, target, params, result, error, \
                    correlation_id, duration_ms, prev_hash, hash";

fn record(r: Row) -> AuditRecord {
    AuditRecord {
        id: r.0,
        at_ms: r.1,
        user_name: r.2,
        role: r.3,
        source_ip: r.4,
        session_hash: r.5,
        action: r.6,
        target: r.7,
        params: r.8,
        result: r.9,
        error: r.10,
        correlation_id: r.11,
        duration_ms: r.12,
        prev_hash: r.13,
        hash: r.14,
    }
}

impl AuditLog {
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            writer: Mutex::new(()),
        }
    }

    /// Append an entry; returns its id.
    pub async fn record(&self, e: AuditEntry) -> Result<i64, sqlx::Error> {
        let _w = self.writer.lock().await;
        // IMMEDIATE: take the write lock before reading the previous hash. A
        // deferred read-then-write transaction fails at once ("database is
        // locked", no busy wait) when another connection wrote in between.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let prev: Option<String> = sqlx::query_scalar("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let mut rec = AuditRecord {
            id: 0,
            at_ms: crate::now_ms(),
            user_name: e.user_name,
            role: e.role,
            source_ip: e.source_ip,
            session_hash: e.session_hash,
            action: e.action,
            target: e.target,
            params: e.params.to_string(),
            result: e.result.as_str().into(),
            error: e.error,
            correlation_id: e.correlation_id,
            duration_ms: e.duration_ms,
            prev_hash: prev.unwrap_or_else(|| GENESIS.to_string()),
            hash: String::new(),
        };
        rec.hash = rec.compute_hash();
        let id = sqlx::query(
            "INSERT INTO audit (at_ms, user_name, role, source_ip, session_hash, action, target, params, result, error, \
             correlation_id, duration_ms, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(rec.at_ms)
        .bind(&rec.user_name)
        .bind(&rec.role)
        .bind(&rec.source_ip)
        .bind(&rec.session_hash)
        .bind(&rec.action)
        .bind(&rec.target)
        .bind(&rec.params)
        .bind(&rec.result)
        .bind(&rec.error)
        .bind(&rec.correlation_id)
        .bind(rec.duration_ms)
        .bind(&rec.prev_hash)
        .bind(&rec.hash)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        tx.commit().await?;
        Ok(id)
    }

    /// Newest first, filtered, one page; and the total matching count.
    pub async fn query(
        &self,
        f: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditRecord>, i64), sqlx::Error> {
        let where_ = "WHERE (?1 IS NULL OR user_name = ?1) AND (?2 IS NULL OR action = ?2) \
                      AND (?3 IS NULL OR result = ?3) AND (?4 IS NULL OR at_ms >= ?4) AND (?5 IS NULL OR at_ms <= ?5)";
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM audit {where_} ORDER BY id DESC LIMIT ?6 OFFSET ?7"
        ))
        .bind(&f.user)
        .bind(&f.action)
        .bind(&f.result)
        .bind(f.from_ms)
        .bind(f.to_ms)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM audit {where_}"))
            .bind(&f.user)
            .bind(&f.action)
            .bind(&f.result)
            .bind(f.from_ms)
            .bind(f.to_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows.into_iter().map(record).collect(), total))
    }

    /// The console's finished operations, newest first (for the history).
    pub async fn recent_operations(&self, limit: i64) -> Result<Vec<model::OperationRecord>, sqlx::Error> {
        // Asked on every Overview refresh: an index walk of `limit` rows, no count.
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM audit WHERE action = 'op_result' ORDER BY id DESC LIMIT ?"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(record)
            .map(|r| {
                let params: Value = serde_json::from_str(&r.params).unwrap_or(Value::Null);
                let summary = params
                    .get("summary")
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
                    .unwrap_or(r.error.clone());
                model::OperationRecord {
                    at_ms: r.at_ms,
                    user: r.user_name,
                    title: r.target,
                    ok: r.result == "ok",
                    summary,
                }
            })
            .collect())
    }

    /// Recompute the chain from the first row.
    pub async fn verify(&self) -> Result<ChainStatus, sqlx::Error> {
        let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM audit ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        let mut prev = GENESIS.to_string();
        let mut last = None;
        for r in rows.into_iter().map(record) {
            if r.prev_hash != prev || r.compute_hash() != r.hash {
                return Ok(ChainStatus::BrokenAt(r.id));
            }
            prev = r.hash.clone();
            last = Some(r.id);
        }
        Ok(last.map(ChainStatus::VerifiedThrough).unwrap_or(ChainStatus::Empty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn chain_detects_tampering() {
        let dir = std::env::temp_dir().join(format!("pgc-audit-{}-{}", std::process::id(), crate::now_ms()));
        let pool = crate::db::open(&dir.join("t.db")).await.unwrap();
        let log = AuditLog::new(pool.clone());
        assert_eq!(log.verify().await.unwrap(), ChainStatus::Empty);
        for i in 0..3 {
            log.record(AuditEntry::new("login", AuditResult::Ok).user(&format!("u{i}"), "admin"))
                .await
                .unwrap();
        }
        assert_eq!(log.verify().await.unwrap(), ChainStatus::VerifiedThrough(3));
        // The triggers refuse changes...
        assert!(sqlx::query("UPDATE audit SET user_name = 'x' WHERE id = 2")
            .execute(&pool)
            .await
            .is_err());
        assert!(sqlx::query("DELETE FROM audit WHERE id = 2")
            .execute(&pool)
            .await
            .is_err());
        // ...and someone who drops them is caught by the chain.
        sqlx::raw_sql("DROP TRIGGER audit_no_update")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE audit SET user_name = 'mallory' WHERE id = 2")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(log.verify().await.unwrap(), ChainStatus::BrokenAt(2));
        let (rows, total) = log.query(&AuditFilter::default(), 10, 0).await.unwrap();
        assert_eq!(total, 3);
        assert_eq!(rows[0].id, 3, "newest first");
        let _ = std::fs::remove_dir_all(dir);
    }
}
