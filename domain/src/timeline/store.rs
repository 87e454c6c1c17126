//! The timeline's table: events from every source on one clock, each
//! recorded once (a source key makes a second sighting a no-op, so a
//! console restart or Docker's replayed history adds nothing twice).

use model::timeline::{EventKind, TimelineEvent};
use sqlx::SqlitePool;

/// An event to record. `key` identifies it across sightings.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub at_ms: i64,
    pub kind: EventKind,
    pub subject: String,
    pub text: String,
    pub link: Option<String>,
    pub key: String,
}

/// What the page and the CSV ask for. Empty fields match everything.
#[derive(Clone, Debug, Default)]
pub struct TimelineFilter {
    pub subject: Option<String>,
    pub kind: Option<EventKind>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

#[derive(Clone)]
pub struct TimelineStore {
    pool: SqlitePool,
}

type Row = (i64, i64, String, String, String, Option<String>);

impl TimelineStore {
    pub fn new(pool: SqlitePool) -> Self {
        TimelineStore { pool }
    }

    pub fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }

    /// Record what is new; returns how many were.
    pub async fn record(&self, events: &[NewEvent]) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for e in events {
            added += sqlx::query(
                "INSERT OR IGNORE INTO timeline (at_ms, kind, subject, text, link, source_key) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(e.at_ms)
            .bind(e.kind.as_str())
            .bind(&e.subject)
            .bind(&e.text)
            .bind(&e.link)
            .bind(&e.key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Up to `limit` matching events, newest first (same time: the later
    /// recorded first), and whether there are more.
    pub async fn page(&self, f: &TimelineFilter, limit: i64) -> Result<(Vec<TimelineEvent>, bool), sqlx::Error> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, at_ms, kind, subject, text, link FROM timeline \
             WHERE (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR kind = ?2) \
             AND at_ms >= ?3 AND at_ms <= ?4 ORDER BY at_ms DESC, id DESC LIMIT ?5",
        )
        .bind(&f.subject)
        .bind(f.kind.map(EventKind::as_str))
        .bind(f.from_ms.unwrap_or(i64::MIN))
        .bind(f.to_ms.unwrap_or(i64::MAX))
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() as i64 > limit;
        let events = rows
            .into_iter()
            .take(limit as usize)
            .filter_map(|(id, at_ms, kind, subject, text, link)| {
                Some(TimelineEvent {
                    id,
                    at_ms,
                    kind: EventKind::parse(&kind)?,
                    subject,
                    text,
                    link,
                })
            })
            .collect();
        Ok((events, more))
    }

    /// The newest event of a kind, if any (where Docker's history resumes).
    pub async fn newest(&self, kind: EventKind) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT MAX(at_ms) FROM timeline WHERE kind = ?")
            .bind(kind.as_str())
            .fetch_one(&self.pool)
            .await
    }

    /// Remember a moment by name (e.g. the observer's last look).
    pub async fn set_mark(&self, name: &str, at_ms: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT OR REPLACE INTO timeline_marks (name, at_ms) VALUES (?, ?)")
            .bind(name)
            .bind(at_ms)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn mark(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT at_ms FROM timeline_marks WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
    }

    /// Forget events older than `before_ms`; returns how many.
    pub async fn prune(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM timeline WHERE at_ms < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
