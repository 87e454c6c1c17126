//! The tamper-evident audit log: an append-only SQLite table (triggers refuse
//! UPDATE and DELETE) whose rows are chained with a keyed hash (see
//! [`chain`]). Every field that can come from a request is bounded
//! ([`limits`]); refusals a client can cause at will are aggregated per
//! source and window ([`AuditLog::refuse`]); reading and verifying never
//! load the table whole ([`query`], [`verify`]).

mod aggregate;
pub mod chain;
mod csv;
pub mod limits;
mod query;
mod verify;

pub use self::csv::{csv_header, csv_rows};
pub use chain::{ChainKey, ChainStatus, Head};
pub use query::{AuditFilter, Cursor, Page};
pub use verify::ChainReport;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use aggregate::{Admit, Aggregator};
use chain::GENESIS;
use limits::*;
use verify::Verified;

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
    /// Parameters; keys that look secret are redacted by [`AuditEntry::params`].
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

    /// Who did it: the authenticated caller's name, role, address and session.
    pub fn by(self, c: &crate::authz::Caller) -> Self {
        self.user(&c.name, c.role.as_str()).ip(&c.ip).session(&c.sid)
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
    /// What the hash covers (unchanged since the first release, so older
    /// rows still verify).
    pub(crate) fn canonical(&self) -> String {
        // A tuple serialises as a JSON array, like `json!([...])` did, without
        // building a `Value` first (this runs once per row in a full check).
        serde_json::to_string(&(
            self.at_ms,
            &self.user_name,
            &self.role,
            &self.source_ip,
            &self.session_hash,
            &self.action,
            &self.target,
            &self.params,
            &self.result,
            &self.error,
            &self.correlation_id,
            self.duration_ms,
        ))
        .expect("a row serialises")
    }

    /// A row from an entry, every field within its bound; cut fields are
    /// marked in the value and listed in the params' `cut`.
    fn bounded(e: AuditEntry, at_ms: i64) -> AuditRecord {
        let mut r = AuditRecord {
            id: 0,
            at_ms,
            user_name: e.user_name,
            role: e.role,
            source_ip: e.source_ip,
            session_hash: e.session_hash,
            action: e.action,
            target: e.target,
            params: String::new(),
            result: e.result.as_str().into(),
            error: e.error,
            correlation_id: e.correlation_id,
            duration_ms: e.duration_ms,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let mut cut = Vec::new();
        for (name, field, max) in [
            ("user_name", &mut r.user_name, USER_NAME_MAX),
            ("role", &mut r.role, ROLE_MAX),
            ("source_ip", &mut r.source_ip, SOURCE_IP_MAX),
            ("action", &mut r.action, ACTION_MAX),
            ("target", &mut r.target, TARGET_MAX),
            ("error", &mut r.error, ERROR_MAX),
        ] {
            if bound(field, max) {
                cut.push(name);
            }
        }
        let mut params = e.params;
        if !cut.is_empty() {
            match &mut params {
                Value::Object(m) => {
                    m.insert("cut".into(), serde_json::json!(cut));
                }
                other => *other = serde_json::json!({ "value": other.clone(), "cut": cut }),
            }
        }
        r.params = bound_params(&params).0;
        r
    }
}

/// How an [`AuditLog`] behaves.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Refusals of one (kind, source, target) within this window become one entry.
    pub aggregate_window_ms: i64,
    /// Record the head after each append (CLI), or let [`AuditLog::spawn_maintenance`]
    /// record it once per second (server).
    pub head_every_append: bool,
}

#[derive(Default)]
struct HeadState {
    last: Option<Head>,
    dirty: bool,
}

pub struct AuditLog {
    pool: SqlitePool,
    /// One writer at a time keeps the chain linear.
    writer: tokio::sync::Mutex<()>,
    key: ChainKey,
    legacy_through: i64,
    /// Set when the head file is there but not signed with our key.
    head_error: Option<String>,
    head: Mutex<HeadState>,
    opts: AuditOptions,
    aggregator: Aggregator,
    verifying: tokio::sync::Mutex<()>,
    verified: Mutex<Verified>,
}

impl AuditLog {
    /// Open the log on `pool`, keyed by `key`. The first time a key meets a
    /// table with rows (written by an older console), those rows are
    /// recorded as chained without a key.
    pub async fn open(pool: SqlitePool, key: ChainKey, opts: AuditOptions) -> Result<AuditLog, sqlx::Error> {
        let (legacy_through, head_error, last) = match key.read_head() {
            Ok(Some(h)) => (h.legacy_through, None, Some(h)),
            Ok(None) => {
                let last: Option<(i64, String, i64)> =
                    sqlx::query_as("SELECT id, hash, at_ms FROM audit ORDER BY id DESC LIMIT 1")
                        .fetch_optional(&pool)
                        .await?;
                let (id, hash, at_ms) = last.unwrap_or((0, GENESIS.into(), crate::now_ms()));
                let h = Head {
                    id,
                    hash,
                    at_ms,
                    legacy_through: id,
                };
                if let Err(e) = key.write_head(&h) {
                    tracing::error!("cannot record the audit head in {}: {e}", key.head_file().display());
                }
                (id, None, Some(h))
            }
            Err(why) => {
                tracing::error!("audit log: {why}; `pg-console audit verify` reports it as broken");
                (0, Some(why), None)
            }
        };
        Ok(AuditLog {
            pool,
            writer: tokio::sync::Mutex::new(()),
            key,
            legacy_through,
            head_error,
            head: Mutex::new(HeadState { last, dirty: false }),
            aggregator: Aggregator::new(opts.aggregate_window_ms),
            opts,
            verifying: tokio::sync::Mutex::new(()),
            verified: Mutex::new(Verified::default()),
        })
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) fn key(&self) -> &ChainKey {
        &self.key
    }

    pub(crate) fn legacy_through(&self) -> i64 {
        self.legacy_through
    }

    fn verifying(&self) -> &tokio::sync::Mutex<()> {
        &self.verifying
    }

    fn verified_state(&self) -> MutexGuard<'_, Verified> {
        self.verified.lock().expect("audit verification state poisoned")
    }

    fn head_state(&self) -> MutexGuard<'_, HeadState> {
        self.head.lock().expect("audit head poisoned")
    }

    /// The latest head recorded (by this process or another one).
    pub(crate) fn recorded_head(&self) -> Result<Option<Head>, String> {
        if let Some(e) = &self.head_error {
            return Err(e.clone());
        }
        let mine = self.head_state().last.clone();
        let file = self.key.read_head()?;
        Ok(match (mine, file) {
            (Some(a), Some(b)) => Some(if a.id >= b.id { a } else { b }),
            (a, b) => a.or(b),
        })
    }

    /// The recorded head as a signed line.
    pub fn signed_head(&self) -> Option<String> {
        self.recorded_head().ok().flatten().map(|h| self.key.signed_line(&h))
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
        let mut rec = AuditRecord::bounded(e, crate::now_ms());
        rec.prev_hash = prev.unwrap_or_else(|| GENESIS.to_string());
        rec.hash = self.key.row_hash(&rec.prev_hash, &rec.canonical());
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
        let head = Head {
            id,
            hash: rec.hash,
            at_ms: rec.at_ms,
            legacy_through: self.legacy_through,
        };
        {
            let mut h = self.head_state();
            h.last = Some(head);
            h.dirty = true;
        }
        if self.opts.head_every_append {
            self.write_head();
        }
        Ok(id)
    }

    /// Record an entry; a failure to write is logged loudly, never hidden.
    pub async fn record_or_log(&self, e: AuditEntry) {
        if let Err(err) = self.record(e).await {
            tracing::error!("cannot write the audit log: {err}");
        }
    }

    /// A refusal a client can cause at will: the first of its (kind,
    /// source, target) in a window is written now, the rest are counted and
    /// written as one entry when the window ends.
    pub async fn refuse(&self, e: AuditEntry) {
        if let Admit::Write(e) = self.aggregator.admit(e, crate::now_ms()) {
            self.record_or_log(e).await;
        }
    }

    fn write_head(&self) {
        if self.head_error.is_some() {
            return;
        }
        let head = {
            let mut h = self.head_state();
            if !h.dirty {
                return;
            }
            h.dirty = false;
            h.last.clone()
        };
        let Some(head) = head else { return };
        match self.key.write_head(&head) {
            Ok(()) => tracing::info!(target: "audit_head", "{}", self.key.signed_line(&head)),
            Err(e) => {
                tracing::error!(
                    "cannot record the audit head in {}: {e}",
                    self.key.head_file().display()
                );
                self.head_state().dirty = true;
            }
        }
    }

    /// Write the aggregated refusals whose window ended (all of them when
    /// `all`), then record the head if rows were appended.
    pub async fn flush(&self, all: bool) {
        for e in self.aggregator.due(crate::now_ms(), all) {
            self.record_or_log(e).await;
        }
        self.write_head();
    }

    /// The server's background work: once per second write due aggregates
    /// and the head; a full chain check at start and every hour.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let log = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last_full: Option<std::time::Instant> = None;
            loop {
                tick.tick().await;
                log.flush(false).await;
                if last_full
                    .map(|t| t.elapsed() > Duration::from_secs(3600))
                    .unwrap_or(true)
                {
                    last_full = Some(std::time::Instant::now());
                    let bg = log.clone();
                    tokio::spawn(async move {
                        match bg.verify().await {
                            Ok(s) if s.is_broken() => tracing::error!("audit log chain: {s}"),
                            Ok(s) => tracing::info!("audit log chain: {s}"),
                            Err(e) => tracing::error!("cannot verify the audit log: {e}"),
                        }
                    });
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
