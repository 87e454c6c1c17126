use sqlx::SqlitePool;

use std::sync::Arc;

use super::password::{check_password, HashError, PasswordHasher, PasswordRuleError};
use super::throttle::{Gate, Throttle};
use crate::authz::UserRole;
use crate::now_ms;

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
    #[error("re-enter your password to confirm this change")]
    StepUpRequired,
    #[error("the password you re-entered is wrong; nothing was changed")]
    WrongPassword,
    #[error("too many wrong passwords: your account is locked until {0} (unix ms); nothing was changed")]
    Locked(i64),
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
    throttle: Arc<Throttle>,
}

/// Proof that the acting user re-entered their password just now (or that
/// the change comes from the local CLI). Only [`UserStore::step_up`] and
/// [`StepUp::local`] make one.
#[derive(Clone, Debug)]
pub struct StepUp {
    /// The user who re-authenticated (None: the local CLI).
    pub user_id: Option<i64>,
}

impl StepUp {
    /// Changes made with the CLI on the server itself.
    pub fn local() -> StepUp {
        StepUp { user_id: None }
    }
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
            throttle: Arc::new(Throttle::new(first_lock_ms)),
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
        self.throttle.clear(name);
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

    /// Re-authentication before a risky change or operation: the same
    /// throttle as logins (a wrong password counts toward the lockout, a
    /// locked account cannot step up).
    pub async fn step_up(&self, user_id: i64, password: &str) -> Result<StepUp, UserError> {
        let name = self
            .get_by_id(user_id)
            .await?
            .map(|u| u.name)
            .ok_or_else(|| UserError::NoSuchUser(format!("#{user_id}")))?;
        match self.attempt(&name, password).await? {
            LoginOutcome::Ok(_) => Ok(StepUp { user_id: Some(user_id) }),
            LoginOutcome::Locked { until_ms } => Err(UserError::Locked(until_ms)),
            LoginOutcome::Invalid {
                now_locked_until_ms: Some(until),
                ..
            } => Err(UserError::Locked(until)),
            LoginOutcome::Invalid { .. } => Err(UserError::WrongPassword),
        }
    }

    /// Check a login. Unknown and existing names go through the same
    /// throttle and the same hash work, so neither the answer nor its
    /// timing tells whether an account exists.
    pub async fn login(&self, name: &str, password: &str) -> Result<LoginOutcome, UserError> {
        self.attempt(name, password).await
    }

    async fn attempt(&self, name: &str, password: &str) -> Result<LoginOutcome, UserError> {
        // Names longer than any valid one never exist; keep the key small.
        let key: String = name.chars().take(80).collect();
        let _serial = self.throttle.serialise(&key).await;
        let now = now_ms();
        let row: Option<(i64, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT id, password_hash, disabled, failed_logins, locked_until_ms FROM users WHERE name = ?",
        )
        .bind(&key)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = &row {
            self.throttle.seed(&key, r.3, r.4, now);
        }
        if let Gate::Locked(until_ms) = self.throttle.gate(&key, now) {
            return Ok(LoginOutcome::Locked { until_ms });
        }
        let ok = self.hasher.verify(password, row.as_ref().map(|r| r.1.as_str())).await?;
        match row {
            Some((id, _, 0, _, _)) if ok => {
                self.throttle.succeed(&key);
                sqlx::query("UPDATE users SET failed_logins = 0, locked_until_ms = 0 WHERE id = ?")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                let u = self
                    .get_by_id(id)
                    .await?
                    .ok_or_else(|| UserError::NoSuchUser(key.clone()))?;
                Ok(LoginOutcome::Ok(u))
            }
            row => {
                let (failures, lock) = self.throttle.fail(&key, now);
                if let Some((id, ..)) = row {
                    sqlx::query("UPDATE users SET failed_logins = ?, locked_until_ms = ? WHERE id = ?")
                        .bind(failures as i64)
                        .bind(lock.unwrap_or(0))
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(LoginOutcome::Invalid {
                    known_user: row.is_some(),
                    now_locked_until_ms: lock,
                })
            }
        }
    }
}
