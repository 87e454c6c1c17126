//! Reading the audit log without ever loading it whole: keyset pages
//! (newest first, `id < before` or `id > after`), and batches for the
//! streamed CSV export and the chain verification.

use serde_json::Value;

use super::{AuditLog, AuditRecord};

/// Filters for reading the log.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user: Option<String>,
    pub action: Option<String>,
    pub result: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// Where a page starts: the newest rows, rows older than an id, or rows
/// newer than an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor {
    Newest,
    Before(i64),
    After(i64),
}

/// One page, newest first, and whether there is more on each side.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub rows: Vec<AuditRecord>,
    pub has_older: bool,
    pub has_newer: bool,
}

pub(super) type Row = (
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

pub(super) const COLS: &str = "id, at_ms, user_name, role, source_ip, session_hash, action, target, params, result, \
                               error, correlation_id, duration_ms, prev_hash, hash";

pub(super) fn record(r: Row) -> AuditRecord {
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

impl AuditFilter {
    /// The WHERE clause of the filters that are set (only those, so SQLite
    /// can use the index of each: `x = ? OR ? IS NULL` would defeat it),
    /// and the values to bind, in order.
    fn clause(&self) -> (String, Vec<Bind<'_>>) {
        let mut conds = Vec::new();
        let mut binds = Vec::new();
        for (col, v) in [
            ("user_name", &self.user),
            ("action", &self.action),
            ("result", &self.result),
        ] {
            if let Some(v) = v {
                conds.push(format!("{col} = ?"));
                binds.push(Bind::Text(v));
            }
        }
        if let Some(ms) = self.from_ms {
            conds.push("at_ms >= ?".into());
            binds.push(Bind::Int(ms));
        }
        if let Some(ms) = self.to_ms {
            conds.push("at_ms <= ?".into());
            binds.push(Bind::Int(ms));
        }
        (conds.join(" AND "), binds)
    }
}

enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}

impl AuditLog {
    async fn select(
        &self,
        f: &AuditFilter,
        id_cond: &str,
        id: i64,
        order: &str,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, sqlx::Error> {
        let (filters, binds) = f.clause();
        let and = if filters.is_empty() {
            String::new()
        } else {
            format!(" AND {filters}")
        };
        let sql = format!("SELECT {COLS} FROM audit WHERE {id_cond}{and} ORDER BY id {order} LIMIT ?");
        let mut q = sqlx::query_as::<_, Row>(&sql).bind(id);
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q.bind(limit).fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(record).collect())
    }

    /// One page of at most `limit` rows (newest first). Costs O(limit)
    /// index steps, whatever the size of the table.
    pub async fn page(&self, f: &AuditFilter, cursor: Cursor, limit: i64) -> Result<Page, sqlx::Error> {
        let limit = limit.clamp(1, 500);
        let (mut rows, more) = match cursor {
            Cursor::Newest => {
                let mut r = self.select(f, "id < ?", i64::MAX, "DESC", limit + 1).await?;
                let more = r.len() as i64 > limit;
                r.truncate(limit as usize);
                (r, more)
            }
            Cursor::Before(id) => {
                let mut r = self.select(f, "id < ?", id, "DESC", limit + 1).await?;
                let more = r.len() as i64 > limit;
                r.truncate(limit as usize);
                (r, more)
            }
            Cursor::After(id) => {
                let mut r = self.select(f, "id > ?", id, "ASC", limit + 1).await?;
                let more = r.len() as i64 > limit;
                r.truncate(limit as usize);
                r.reverse();
                (r, more)
            }
        };
        let (has_older, has_newer) = match cursor {
            Cursor::Newest => (more, false),
            Cursor::Before(_) => (more, true),
            Cursor::After(_) => (true, more),
        };
        // "older" / "newer" are only promised when such rows exist.
        let has_older = has_older
            && match rows.last() {
                Some(last) => !self.select(f, "id < ?", last.id, "DESC", 1).await?.is_empty(),
                None => false,
            };
        let has_newer = has_newer
            && match rows.first() {
                Some(first) => !self.select(f, "id > ?", first.id, "ASC", 1).await?.is_empty(),
                None => matches!(cursor, Cursor::Before(_)),
            };
        rows.shrink_to_fit();
        Ok(Page {
            rows,
            has_older,
            has_newer,
        })
    }

    /// Up to `limit` rows older than `before` (newest first), for the
    /// streamed CSV export.
    pub async fn batch_before(
        &self,
        f: &AuditFilter,
        before: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, sqlx::Error> {
        self.select(f, "id < ?", before, "DESC", limit).await
    }

    /// Up to `limit` rows after `after` in id order, unfiltered (verification).
    pub(super) async fn chain_batch(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, sqlx::Error> {
        self.select(&AuditFilter::default(), "id > ?", after, "ASC", limit)
            .await
    }

    /// The console's finished operations, newest first (for the history).
    pub async fn recent_operations(&self, limit: i64) -> Result<Vec<model::OperationRecord>, sqlx::Error> {
        // Asked on every Overview refresh: an index walk of `limit` rows, no count.
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM audit WHERE action = 'op_result' ORDER BY id DESC LIMIT ?"
        ))
        .bind(limit)
        .fetch_all(self.pool())
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
                // A success nests the run's parameters under "detail".
                let kind = params
                    .get("detail")
                    .unwrap_or(&params)
                    .get("kind")
                    .and_then(|k| serde_json::from_value::<model::operations::OpKind>(k.clone()).ok());
                let ok = r.result == "ok";
                model::OperationRecord {
                    at_ms: r.at_ms,
                    user: r.user_name,
                    title: r.target,
                    ok,
                    summary,
                    // A backup's id is its job's: the correlation id of its audit entries.
                    backup_id: (ok && kind.is_some_and(|k| k.is_backup())).then_some(r.correlation_id),
                }
            })
            .collect())
    }
}
