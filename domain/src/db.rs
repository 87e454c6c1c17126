//! The console's embedded SQLite database: users, sessions, audit log,
//! incident timeline, replication lag by the minute.
//! (tower-sessions keeps its own table in the same file.)

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the console database {path}: {source}; check the data_dir setting and its permissions")]
    Open { path: String, source: sqlx::Error },
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash   TEXT NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until_ms INTEGER NOT NULL DEFAULT 0,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS console_sessions (
    sid           TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    role          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    source_ip     TEXT NOT NULL,
    user_agent    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions(user_id);

CREATE TABLE IF NOT EXISTS audit (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms          INTEGER NOT NULL,
    user_name      TEXT NOT NULL,
    role           TEXT NOT NULL,
    source_ip      TEXT NOT NULL,
    session_hash   TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL,
    params         TEXT NOT NULL,
    result         TEXT NOT NULL CHECK (result IN ('ok', 'refused', 'failed')),
    error          TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    duration_ms    INTEGER NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at_ms);
CREATE INDEX IF NOT EXISTS audit_action ON audit(action, id);
CREATE INDEX IF NOT EXISTS audit_user ON audit(user_name, id);

CREATE TABLE IF NOT EXISTS timeline (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    text       TEXT NOT NULL,
    link       TEXT,
    source_key TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS timeline_at ON timeline(at_ms, id);
-- A promotion's key is its timeline and Patroni's time of it (a reinitialized
-- cluster numbers its timelines again); rows keyed by the timeline alone, as
-- older consoles wrote them, get the same form, so they are not written twice.
UPDATE timeline SET source_key = source_key || ':' || at_ms
 WHERE kind = 'promotion' AND source_key NOT LIKE 'promotion:%:%';
CREATE TABLE IF NOT EXISTS timeline_marks (
    name  TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS lag_minutes (
    member    TEXT NOT NULL,
    minute_ms INTEGER NOT NULL,
    receive   INTEGER,
    replay    INTEGER,
    PRIMARY KEY (member, minute_ms)
);
CREATE INDEX IF NOT EXISTS lag_minutes_at ON lag_minutes(minute_ms);
CREATE INDEX IF NOT EXISTS audit_result ON audit(result, id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// Open (creating if needed) the database at `path` and apply the schema.
pub async fn open(path: &Path) -> Result<SqlitePool, DbError> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await
        .map_err(|source| DbError::Open {
            path: path.display().to_string(),
            source,
        })?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    Ok(pool)
}
