//! Shared server state: the domain services the router, middleware, server
//! functions and CLI use.

use std::sync::Arc;
use std::time::Duration;

use domain::audit::{AuditLog, AuditOptions, ChainKey};
use domain::users::{PasswordHasher, SessionStore, UserStore};
use sqlx::SqlitePool;

use crate::auth::ratelimit::FailureLimiter;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{0}")]
    Db(#[from] domain::db::DbError),
    #[error("{0}")]
    Key(#[from] domain::audit::chain::ChainKeyError),
    #[error("cannot open the audit log: {0}")]
    Audit(sqlx::Error),
}

/// Who opens the state: the server (audit head recorded once per second by
/// its maintenance task) or a CLI command (recorded after each append).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Server,
    Cli,
}

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
    /// Who may see HAProxy's stats through Traefik (forwardAuth).
    pub stats_auth: Arc<crate::stats_auth::StatsAuth>,
}

impl AppState {
    pub async fn open(cfg: &Config, mode: Mode) -> Result<Self, StateError> {
        let pool = domain::db::open(&cfg.database_path()).await?;
        let key = ChainKey::load_or_create(&cfg.console_secrets_path())?;
        let audit = AuditLog::open(
            pool.clone(),
            key,
            AuditOptions {
                aggregate_window_ms: (cfg.audit_aggregate_window_secs.max(1) * 1000) as i64,
                head_every_append: mode == Mode::Cli,
            },
        )
        .await
        .map_err(StateError::Audit)?;
        let hasher = PasswordHasher::with_queue(cfg.max_concurrent_hashes, cfg.max_queued_hashes);
        Ok(AppState {
            users: UserStore::new(pool.clone(), hasher, (cfg.lockout_base_secs * 1000) as i64),
            sessions: SessionStore::new(
                pool.clone(),
                (cfg.session_idle_secs * 1000) as i64,
                (cfg.session_absolute_secs * 1000) as i64,
            ),
            audit: Arc::new(audit),
            ip_limiter: Arc::new(FailureLimiter::new(cfg.login_failures_per_ip, Duration::from_secs(600))),
            public_origin: cfg.public_origin(),
            trusted_proxies: Arc::new(cfg.trusted_proxies.iter().filter_map(|p| p.parse().ok()).collect()),
            backups_dir: Some(cfg.backups_dir.clone()),
            stats_auth: Arc::new(crate::stats_auth::StatsAuth::new(
                &cfg.public_origin(),
                &cfg.haproxy_stats_public_url,
            )),
            pool,
        })
    }
}
