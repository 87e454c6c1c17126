use sqlx::SqlitePool;

use super::password::{check_password, HashError, PasswordHasher, PasswordRuleError};
use crate::authz::UserRole;
use crate::now_ms;

/// Failures before an account locks, and the first lock's length.
pub const LOCK_AFTER: i64 = 5;
pub const MAX_LOCK_MS: i64 = 3_600_000;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: UserRole,
    pub disabled: bool,
    pub failed_logins: i64,
    pub locked_until_ms: i64,
    pub created_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user names are 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    BadName,
    #[error("there is no user named {0:?}; `pg-console user list` shows them")]
    NoSuchUser(String),
    #[error("a user named {0:?} exists already")]
    Exists(String),
    #[error("{0}")]
    Password(#[from] PasswordRuleError),
    #[error("refused: at least one active admin must remain; make another user admin first")]
    LastAdmin,
    #[error("{0}; nothing was revoked (see the session list)")]
    SessionPrefix(String),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The result of a login attempt. Callers must show the same message for
/// `Invalid` whatever the reason (unknown user, wrong password, disabled).
#[derive(Debug, PartialEq)]
pub enum LoginOutcome {
    Ok(User),
    Invalid {
        known_user: bool,
        now_locked_until_ms: Option<i64>,
    },
    Locked {
        until_ms: i64,
    },
}

#[derive(Clone)]
pub struct UserStore {
    pool: SqlitePool,
    hasher: PasswordHasher,
    /// The first lockout's length; each further failure doubles it.
    first_lock_ms: i64,
}

type Row = (i64, String, String, i64, i64, i64, i64);
const COLS: &str = "id, name, role, disabled, failed_logins, locked_until_ms, created_at_ms";

fn user(r: Row) -> User {
    User {
        id: r.0,
        name: r.1,
        role: UserRole::parse(&r.2).unwrap_or(UserRole::Viewer),
        disabled: r.3 != 0,
        failed_logins: r.4,
        locked_until_ms: r.5,
        created_at_ms: r.6,
    }
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

impl UserStore {
    pub fn new(pool: SqlitePool, hasher: PasswordHasher, first_lock_ms: i64) -> Self {
        Self {
            pool,
            hasher,
            first_lock_ms,
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn count(&self) -> Result<i64, UserError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM users ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(user).collect())
    }

    pub async fn get(&self, name: &str) -> Result<Option<User>, UserError> {
        let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM users WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(user))
    }

    pub async fn get_by_id(&self, id: i64) -> Result<Option<User>, UserError> {
        let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(user))
    }

    pub async fn add(&self, name: &str, role: UserRole, password: &str) -> Result<User, UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName);
        }
        check_password(name, password)?;
        if self.get(name).await?.is_some() {
            return Err(UserError::Exists(name.to_string()));
        }
        let hash = self.hasher.hash(password).await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(hash)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.get(name)
            .await?
            .ok_or_else(|| UserError::NoSuchUser(name.to_string()))
    }

    pub async fn set_password(&self, name: &str, password: &str) -> Result<User, UserError> {
        let u = self
            .get(name)
            .await?
            .ok_or_else(|| UserError::NoSuchUser(name.to_string()))?;
        check_password(name, password)?;
        let hash = self.hasher.hash(password).await?;
        sqlx::query(
            "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until_ms = 0, updated_at_ms = ? WHERE id = ?",
        )
        .bind(hash)
        .bind(now_ms())
        .bind(u.id)
        .execute(&self.pool)
        .await?;
        Ok(u)
    }

    pub async fn set_role(&self, name: &str, role: UserRole) -> Result<User, UserError> {
        let u = self
            .get(name)
            .await?
            .ok_or_else(|| UserError::NoSuchUser(name.to_string()))?;
        sqlx::query("UPDATE users SET role = ?, updated_at_ms = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(now_ms())
            .bind(u.id)
            .execute(&self.pool)
            .await?;
        Ok(User { role, ..u })
    }

    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<User, UserError> {
        let u = self
            .get(name)
            .await?
            .ok_or_else(|| UserError::NoSuchUser(name.to_string()))?;
        sqlx::query("UPDATE users SET disabled = ?, updated_at_ms = ? WHERE id = ?")
            .bind(disabled as i64)
            .bind(now_ms())
            .bind(u.id)
            .execute(&self.pool)
            .await?;
        Ok(User { disabled, ..u })
    }

    /// Re-authentication for risky operations (no lockout bookkeeping).
    pub async fn verify_password(&self, user_id: i64, password: &str) -> Result<bool, UserError> {
        let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ? AND disabled = 0")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(self.hasher.verify(password, hash.as_deref()).await?)
    }

    /// Check a login. Always verifies a hash (a dummy one for unknown users),
    /// so unknown user and wrong password take the same time.
    pub async fn login(&self, name: &str, password: &str) -> Result<LoginOutcome, UserError> {
        let now = now_ms();
        let row: Option<(i64, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT id, password_hash, disabled, failed_logins, locked_until_ms FROM users WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let ok = self.hasher.verify(password, row.as_ref().map(|r| r.1.as_str())).await?;
        let Some((id, _, disabled, failed, locked_until)) = row else {
            return Ok(LoginOutcome::Invalid {
                known_user: false,
                now_locked_until_ms: None,
            });
        };
        if locked_until > now {
            return Ok(LoginOutcome::Locked { until_ms: locked_until });
        }
        if ok && disabled == 0 {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until_ms = 0 WHERE id = ?")
                .bind(id)
                .execute(&self.pool)
                .await?;
            let u = self
                .get_by_id(id)
                .await?
                .ok_or_else(|| UserError::NoSuchUser(name.to_string()))?;
            return Ok(LoginOutcome::Ok(u));
        }
        let failed = failed + 1;
        let lock = (failed >= LOCK_AFTER).then(|| {
            let doublings = (failed - LOCK_AFTER).min(16) as u32;
            now + (self.first_lock_ms.saturating_mul(1 << doublings)).min(MAX_LOCK_MS)
        });
        sqlx::query("UPDATE users SET failed_logins = ?, locked_until_ms = ? WHERE id = ?")
            .bind(failed)
            .bind(lock.unwrap_or(0))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(LoginOutcome::Invalid {
            known_user: true,
            now_locked_until_ms: lock,
        })
    }
}
