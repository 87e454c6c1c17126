//! The console's own record of each login session (tower-sessions stores the
//! cookie's data; this table lets admins list and revoke sessions, and ends
//! them when a user is disabled or changes role).

use sqlx::SqlitePool;

use crate::authz::UserRole;
use crate::now_ms;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SessionInfo {
    pub sid: String,
    pub user_id: i64,
    pub user_name: String,
    pub role: UserRole,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
    pub source_ip: String,
    pub user_agent: String,
}

/// Why a session is no longer valid (or that it is).
#[derive(Debug, PartialEq)]
pub enum SessionCheck {
    Valid(SessionInfo),
    /// Revoked, logged out, or ended by a role change / disabling.
    Gone,
    IdleTimeout(SessionInfo),
    AbsoluteTimeout(SessionInfo),
}

#[derive(Clone)]
pub struct SessionStore {
    pool: SqlitePool,
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

type Row = (String, i64, String, String, i64, i64, String, String, i64, String);

impl SessionStore {
    pub fn new(pool: SqlitePool, idle_ms: i64, absolute_ms: i64) -> Self {
        Self {
            pool,
            idle_ms,
            absolute_ms,
        }
    }

    pub async fn create(&self, user_id: i64, role: UserRole, ip: &str, ua: &str) -> Result<String, sqlx::Error> {
        let sid = random_token();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO console_sessions (sid, user_id, role, created_at_ms, last_seen_ms, source_ip, user_agent) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&sid)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .bind(now)
        .bind(ip)
        .bind(crate::audit::limits::cut(ua, crate::audit::limits::USER_AGENT_MAX).unwrap_or_else(|| ua.to_string()))
        .execute(&self.pool)
        .await?;
        Ok(sid)
    }

    async fn fetch(
        &self,
        sid: Option<&str>,
        user: Option<&str>,
    ) -> Result<Vec<(SessionInfo, bool, String)>, sqlx::Error> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT s.sid, s.user_id, u.name, s.role, s.created_at_ms, s.last_seen_ms, s.source_ip, s.user_agent, \
                    u.disabled, u.role \
             FROM console_sessions s JOIN users u ON u.id = s.user_id \
             WHERE (?1 IS NULL OR s.sid = ?1) AND (?2 IS NULL OR u.name = ?2) ORDER BY s.created_at_ms DESC",
        )
        .bind(sid)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let info = SessionInfo {
                    sid: r.0,
                    user_id: r.1,
                    user_name: r.2,
                    role: UserRole::parse(&r.3).unwrap_or(UserRole::Viewer),
                    created_at_ms: r.4,
                    last_seen_ms: r.5,
                    source_ip: r.6,
                    user_agent: r.7,
                };
                (info, r.8 != 0, r.9)
            })
            .collect())
    }

    /// Validate a session and touch its last-seen time.
    pub async fn check(&self, sid: &str) -> Result<SessionCheck, sqlx::Error> {
        let now = now_ms();
        let Some((info, disabled, current_role)) = self.fetch(Some(sid), None).await?.into_iter().next() else {
            return Ok(SessionCheck::Gone);
        };
        if disabled || current_role != info.role.as_str() {
            self.delete(sid).await?;
            return Ok(SessionCheck::Gone);
        }
        if now - info.created_at_ms > self.absolute_ms {
            self.delete(sid).await?;
            return Ok(SessionCheck::AbsoluteTimeout(info));
        }
        if now - info.last_seen_ms > self.idle_ms {
            self.delete(sid).await?;
            return Ok(SessionCheck::IdleTimeout(info));
        }
        if now - info.last_seen_ms > 1_000 {
            sqlx::query("UPDATE console_sessions SET last_seen_ms = ? WHERE sid = ?")
                .bind(now)
                .bind(sid)
                .execute(&self.pool)
                .await?;
        }
        Ok(SessionCheck::Valid(info))
    }

    pub async fn delete(&self, sid: &str) -> Result<bool, sqlx::Error> {
        let r = sqlx::query("DELETE FROM console_sessions WHERE sid = ?")
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// End every session of `user_id` (disabled, role changed, revoked).
    pub async fn delete_for_user(&self, user_id: i64) -> Result<u64, sqlx::Error> {
        let r = sqlx::query("DELETE FROM console_sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn list(&self, user: Option<&str>) -> Result<Vec<SessionInfo>, sqlx::Error> {
        Ok(self.fetch(None, user).await?.into_iter().map(|(i, _, _)| i).collect())
    }

    /// Find a session by a prefix of its id (as `session list` shows it).
    pub async fn find_prefix(&self, prefix: &str) -> Result<Vec<SessionInfo>, sqlx::Error> {
        Ok(self
            .list(None)
            .await?
            .into_iter()
            .filter(|s| s.sid.starts_with(prefix))
            .collect())
    }
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}
