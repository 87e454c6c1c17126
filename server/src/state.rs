//! Shared server state: the domain services the router, middleware, server
//! functions and CLI use.

use std::sync::Arc;
use std::time::Duration;

use domain::audit::AuditLog;
use domain::users::{PasswordHasher, SessionStore, UserStore};
use sqlx::SqlitePool;

use crate::auth::ratelimit::FailureLimiter;
use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub pool: SqlitePool,
    pub users: UserStore,
    pub sessions: SessionStore,
    pub audit: Arc<AuditLog>,
    pub ip_limiter: Arc<FailureLimiter>,
    pub public_origin: String,
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    pub backups_dir: Option<std::path::PathBuf>,
}

impl AppState {
    pub async fn open(cfg: &Config) -> Result<Self, domain::db::DbError> {
        let pool = domain::db::open(&cfg.database_path()).await?;
        Ok(Self::from_pool(cfg, pool))
    }

    pub fn from_pool(cfg: &Config, pool: SqlitePool) -> Self {
        let hasher = PasswordHasher::new(cfg.max_concurrent_hashes);
        AppState {
            users: UserStore::new(pool.clone(), hasher, (cfg.lockout_base_secs * 1000) as i64),
            sessions: SessionStore::new(
                pool.clone(),
                (cfg.session_idle_secs * 1000) as i64,
                (cfg.session_absolute_secs * 1000) as i64,
            ),
            audit: Arc::new(AuditLog::new(pool.clone())),
            ip_limiter: Arc::new(FailureLimiter::new(cfg.login_failures_per_ip, Duration::from_secs(600))),
            public_origin: cfg.public_origin(),
            trusted_proxies: Arc::new(cfg.trusted_proxies.iter().filter_map(|p| p.parse().ok()).collect()),
            backups_dir: Some(cfg.backups_dir.clone()),
            pool,
        }
    }
}
