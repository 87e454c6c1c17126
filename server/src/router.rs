//! Wires the domain services into the axum router and serves it.

use std::sync::Arc;
use std::time::Duration;

use app::{shell, App, ServerContext};
use axum::{
    middleware::{from_fn, from_fn_with_state},
    routing::{get, post},
    Router,
};
use domain::backup::{BackupSettings, Recovery};
use domain::haproxy::HaproxyClient;
use domain::operations::{reinit_cluster::ReinitSettings, write_probe::ProbeTarget, OperationService};
use domain::overview::{EndpointSettings, OverviewService};
use domain::patroni::admin::{ApiCredentials, PatroniAdmin};
use domain::patroni::PatroniClient;
use leptos::config::{Env, LeptosOptions};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

use crate::auth::{login, middleware};
use crate::config::Config;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot start the Patroni client: {0}")]
    Patroni(#[from] domain::patroni::PatroniError),
    #[error("cannot listen on {addr}: {source}; is another pg-console running? Set PGC_LISTEN to another port")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    State(#[from] crate::state::StateError),
    #[error("cannot prepare the session store: {0}")]
    Sessions(sqlx::Error),
}

pub fn build_context(cfg: &Config, st: &AppState) -> Result<ServerContext, ServeError> {
    let timeout = Duration::from_millis(cfg.patroni_timeout_ms);
    let patroni = Arc::new(PatroniClient::new(&cfg.cluster_name, cfg.member_endpoints()?, timeout)?);
    let haproxy = Arc::new(HaproxyClient::new(
        &cfg.haproxy_stats_csv_url,
        &cfg.haproxy_write_listener,
        &cfg.haproxy_read_listener,
        timeout,
    ));
    let (credentials, probe) = stack_access(cfg);
    let overview = Arc::new(OverviewService {
        patroni,
        haproxy,
        endpoints: EndpointSettings {
            write_address: cfg.write_endpoint.clone(),
            read_address: cfg.read_endpoint.clone(),
            database: cfg.database.clone(),
            user: cfg.database_user.clone(),
            haproxy_stats_public_url: cfg.haproxy_stats_public_url.clone(),
        },
        containers: domain::containers::ContainerWatch::new(watched_containers(cfg)?),
        wal_archive: wal_archive_watch(cfg, probe.clone()),
    });
    let operations = Arc::new(OperationService {
        cluster_name: cfg.cluster_name.clone(),
        patroni: overview.patroni.clone(),
        admin: Arc::new(PatroniAdmin::new(
            cfg.member_endpoints()?,
            credentials,
            Duration::from_secs(cfg.operation_timeout_secs),
        )),
        haproxy: overview.haproxy.clone(),
        audit: st.audit.clone(),
        users: st.users.clone(),
        probe,
        tokens: Default::default(),
        lock: domain::operations::OpLock::across_consoles(&cfg.stack_data_dir),
        catalog: Default::default(),
        jobs: Default::default(),
        token_ttl_ms: (cfg.operation_token_ttl_secs * 1000) as i64,
        backup: backup_settings(cfg),
        reinit: ReinitSettings {
            data_dir: cfg.stack_data_dir.clone(),
            etcd_container: cfg.etcd_container.clone(),
            console_data_dir: cfg.data_dir.clone(),
            backups_dir: cfg.backups_dir.clone(),
            restore_timeout_secs: cfg.restore_timeout_secs,
        },
        wal_archive: overview.wal_archive.clone(),
    });
    let feed = domain::overview_feed::OverviewFeed::new(overview.clone(), st.audit.clone(), operations.jobs.clone());
    let timeline = domain::timeline::Timeline::new(
        domain::timeline::TimelineStore::new(st.pool.clone()),
        feed.clone(),
        watched_containers(cfg)?,
        cfg.timeline_retention_days.max(1),
        Duration::from_secs(cfg.timeline_sample_secs.max(1)),
    );
    Ok(ServerContext {
        overview,
        feed,
        timeline,
        operations,
        audit: st.audit.clone(),
        users: st.users.clone(),
        sessions: st.sessions.clone(),
    })
}

/// Where backups go, what retention keeps, the WAL archive they prune, and
/// the replication login of hot base backups (from the stack's secrets).
fn backup_settings(cfg: &Config) -> BackupSettings {
    BackupSettings {
        backups_dir: cfg.backups_dir.clone(),
        imports_dir: if cfg.imports_dir.as_os_str().is_empty() {
            cfg.backups_dir.join("import")
        } else {
            cfg.imports_dir.clone()
        },
        stack_data_dir: cfg.stack_data_dir.clone(),
        max_lag_bytes: cfg.backup_max_lag_bytes,
        retention: domain::backup::retention::Retention {
            keep_last: cfg.backup_keep_last,
            keep_days: cfg.backup_keep_days,
        },
        wal_archive_dir: cfg.wal_archive_path(),
        replication: crate::secrets::StackSecrets::load(&cfg.stack_secrets_file)
            .get("PG_REPLICATION_PASSWORD")
            .map(|pw| domain::backup::base::ReplicationLogin {
                user: cfg.replication_user.clone(),
                password: pw.to_string(),
            }),
    }
}

/// What the console needs from the stack's secrets file: Patroni's REST
/// credentials (its unsafe methods) and the superuser password (the write
/// probe, the restartpoint). Neither is logged.
fn stack_access(cfg: &Config) -> (Option<ApiCredentials>, Option<ProbeTarget>) {
    let secrets = crate::secrets::StackSecrets::load(&cfg.stack_secrets_file);
    if secrets.is_empty() {
        tracing::warn!(
            "no stack secrets at {}: Patroni will refuse operations (switchover, ...) without its REST credentials",
            cfg.stack_secrets_file.display()
        );
    }
    let credentials = match (secrets.get("PATRONI_API_USERNAME"), secrets.get("PATRONI_API_PASSWORD")) {
        (Some(u), Some(p)) => Some(ApiCredentials {
            username: u.into(),
            password: p.into(),
        }),
        _ => None,
    };
    let probe = match (
        cfg.write_endpoint.rsplit_once(':'),
        secrets.get("PG_SUPERUSER_PASSWORD"),
    ) {
        (Some((host, port)), Some(pw)) => port.parse().ok().map(|port| ProbeTarget {
            host: host.to_string(),
            port,
            user: cfg.database_user.clone(),
            password: pw.to_string(),
            dbname: cfg.database.clone(),
        }),
        _ => None,
    };
    (credentials, probe)
}

/// Every secret value the console knows (the stack's and its own), masked
/// in the containers' logs before any line leaves the server.
fn log_masker(cfg: &Config) -> domain::logs::Masker {
    let stack = crate::secrets::StackSecrets::load(&cfg.stack_secrets_file);
    let own = crate::secrets::StackSecrets::load(&cfg.console_secrets_path());
    domain::logs::Masker::new(stack.values().chain(own.values()))
}

/// Request bodies are small forms and server-function arguments.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn build_router(cfg: &Config, ctx: ServerContext, st: AppState, sessions: SqliteStore) -> Router {
    // A release build names its JS and WASM by hash (hash.txt beside the
    // binary, written by scripts/build --release): cached for a year.
    let hashed = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("hash.txt")))
        .is_some_and(|p| p.is_file());
    let options = LeptosOptions::builder()
        .output_name("pg-console")
        .site_root(cfg.site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .site_addr(cfg.listen)
        .env(Env::PROD)
        .hash_files(hashed)
        .build();
    let routes = generate_route_list(App);
    // `__Host-` cookies need Secure, so only over HTTPS; plain-HTTP local dev works too.
    let https = cfg.is_https();
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name(if https { "__Host-pgc_session" } else { "pgc_session" })
        .with_secure(https)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            cfg.session_idle_secs as i64 + crate::auth::SESSION_RENEW_EVERY_SECS,
        )));
    let auth_routes = Router::new()
        .route("/login", post(login::login))
        .route("/logout", post(login::logout))
        .route("/audit/export.csv", get(crate::auth::audit_csv::export))
        .route(crate::timeline_csv::ROUTE, get(crate::timeline_csv::export))
        .route("/backups/download/{id}", get(crate::backups::download))
        .route("/auth/traefik", get(crate::stats_auth::forward_auth))
        .route("/auth/stats", get(crate::stats_auth::grant))
        .route("/_pgc/grant", get(crate::stats_auth::redeem))
        .with_state(st.clone());
    let ws_routes = live_routes(cfg, &ctx, &st);
    // The static site has its own route; nothing else serves files.
    let site = tower_http::services::ServeDir::new(cfg.site_root.join("pkg"))
        .precompressed_br()
        .precompressed_gzip();
    Router::new()
        .route("/healthz", get(crate::health::healthz))
        .nest_service("/pkg", site)
        .merge(auth_routes)
        .merge(ws_routes)
        .leptos_routes_with_context(&options, routes, move || provide_context(ctx.clone()), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(|| async { middleware::not_found() })
        .with_state(options)
        .layer(from_fn(crate::auth::headers::server_fn_status))
        .layer(from_fn_with_state(st, middleware::authenticate))
        .layer(session_layer)
        .layer(from_fn(crate::auth::headers::security_headers))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
}

/// The websocket routes (jobs, logs, the Overview's feed) and the log
/// download, which shares the logs' state.
fn live_routes<S: Clone + Send + Sync + 'static>(cfg: &Config, ctx: &ServerContext, st: &AppState) -> Router<S> {
    let ws = Arc::new(crate::jobs_ws::WsState::new(
        ctx.operations.jobs.clone(),
        st.sessions.clone(),
    ));
    let log_routes = Router::new()
        .route(crate::logs::TAIL_ROUTE, get(crate::logs::tail))
        .route(crate::logs::DOWNLOAD_ROUTE, get(crate::logs::download))
        .with_state(Arc::new(crate::logs::LogsState::new(
            ws.clone(),
            st.audit.clone(),
            watched_containers(cfg).unwrap_or_default(),
            log_masker(cfg),
        )));
    let overview_routes = Router::new()
        .route(crate::overview_ws::ROUTE, get(crate::overview_ws::follow))
        .with_state(Arc::new(crate::overview_ws::FeedState {
            ws: ws.clone(),
            feed: ctx.feed.clone(),
        }));
    Router::new()
        .route(crate::jobs_ws::JOB_ROUTE, get(crate::jobs_ws::job))
        .route(crate::jobs_ws::FEED_ROUTE, get(crate::jobs_ws::feed))
        .with_state(ws)
        .merge(log_routes)
        .merge(overview_routes)
}

pub async fn run(cfg: Config) -> Result<(), ServeError> {
    let st = AppState::open(&cfg, crate::state::Mode::Server).await?;
    let audit_task = st.audit.spawn_maintenance();
    tokio::spawn({
        let limiter = st.ip_limiter.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limiter.sweep();
            }
        }
    });
    let store = SqliteStore::new(st.pool.clone());
    store.migrate().await.map_err(ServeError::Sessions)?;
    tokio::spawn({
        use tower_sessions::ExpiredDeletion;
        store.clone().continuously_delete_expired(Duration::from_secs(300))
    });
    say_who_can_log_in(&cfg, &st).await;
    let ctx = build_context(&cfg, &st)?;
    ctx.timeline.start();
    recover_backups_at_start(&st, &ctx.operations.backup).await;
    // In the background, under the operation lock (it may wait minutes for the cluster).
    let (ops, audit) = (ctx.operations.clone(), st.audit.clone());
    tokio::spawn(async move {
        for line in ops.recover_restores().await {
            system_event(&audit, "restore_recovered", &line).await;
        }
    });
    let audit = st.audit.clone();
    let (shutdown_state, backups) = (st.clone(), ctx.operations.backup.clone());
    let router = build_router(&cfg, ctx, st, store);
    // Paths are checked before routing: nothing, not even the router, sees
    // a path that is not in canonical form.
    let app = tower::Layer::layer(&from_fn(crate::auth::path::canonical_paths), router);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: cfg.listen,
            source,
        })?;
    tracing::info!(
        "pg-console listening on http://{} (public URL {}); cluster {} with {} member(s)",
        cfg.listen,
        cfg.public_url,
        cfg.cluster_name,
        cfg.members.len()
    );
    let served = axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<std::net::SocketAddr>(app),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(ServeError::Serve);
    // No new requests now. A backup that has its replica stopped is not
    // waited for: the replica is started again and the backup marked failed
    // (as a restart after a crash would), then the audit log is flushed.
    stop_interrupted_backups(&shutdown_state, &backups).await;
    audit_task.abort();
    audit.flush(true).await;
    served
}

async fn say_who_can_log_in(cfg: &Config, st: &AppState) {
    match st.users.count().await {
        Ok(0) => tracing::warn!(
            "no users exist, so nobody can log in: create the first admin with \
             `pg-console user add NAME --role admin` (database {})",
            cfg.database_path().display()
        ),
        Ok(n) => tracing::info!("{n} user(s) can log in"),
        Err(e) => tracing::error!("cannot count users: {e}"),
    }
}

/// The WAL archive's watch: needs pg-wal's container name and the superuser's
/// credentials (the leader's `pg_stat_replication` and slots).
fn wal_archive_watch(cfg: &Config, leader: Option<ProbeTarget>) -> Option<Arc<domain::wal_archive::WalArchiveWatch>> {
    let settings = domain::wal_archive::WalArchiveSettings {
        archive_dir: cfg.wal_archive_path()?,
        slot: cfg.wal_slot.clone(),
        container: cfg.wal_container.clone(),
        retained_alert_bytes: cfg.wal_retained_alert_mb.saturating_mul(1024 * 1024),
    };
    leader.map(|l| domain::wal_archive::WalArchiveWatch::new(settings, l))
}

/// The containers the Overview shows beside Patroni: the members, etcd,
/// pg-router, pg-wal and traefik (a setting left empty is not shown).
fn watched_containers(cfg: &Config) -> Result<Vec<String>, crate::config::ConfigError> {
    Ok(cfg
        .member_endpoints()?
        .into_iter()
        .map(|m| m.name)
        .chain([
            cfg.etcd_container.clone(),
            cfg.router_container.clone(),
            cfg.wal_container.clone(),
            cfg.edge_container.clone(),
        ])
        .filter(|n| !n.is_empty())
        .collect())
}

/// A backup the previous run left mid-way: start its replica again, mark it failed.
async fn recover_backups_at_start(st: &AppState, b: &BackupSettings) {
    for line in domain::backup::fail_orphaned(b) {
        recovered(st, &line).await;
    }
    // One connection to the engine for both recoveries.
    let docker = domain::docker::DockerControl::connect().await;
    if let Ok(docker) = &docker {
        if let Some(line) = domain::backup::base::remove_leftover(docker, &b.backups_dir).await {
            recovered(st, &line).await;
        }
    }
    if !domain::backup::journal::pending(&b.backups_dir).is_empty() {
        match &docker {
            Ok(docker) => {
                for line in domain::backup::recover_interrupted(b, docker, Recovery::AtStart).await {
                    recovered(st, &line).await;
                }
            }
            Err(e) => tracing::error!("startup recovery: {e}; start the replica by hand (docker start …)"),
        }
    }
}

/// At shutdown: start the replicas of backups still running, and end a
/// running `pg_basebackup` (its backup is marked failed at the next start).
async fn stop_interrupted_backups(st: &AppState, b: &BackupSettings) {
    if let Ok(docker) = domain::docker::DockerControl::connect().await {
        if let Some(line) = domain::backup::base::remove_leftover(&docker, &b.backups_dir).await {
            recovered(st, &format!("at shutdown: {line}")).await;
        }
    }
    let dir = b.backups_dir.clone();
    let pending = tokio::task::spawn_blocking(move || domain::backup::journal::pending(&dir))
        .await
        .unwrap_or_default();
    if pending.is_empty() {
        return;
    }
    match domain::docker::DockerControl::connect().await {
        Ok(docker) => {
            for line in domain::backup::recover_interrupted(b, &docker, Recovery::AtShutdown).await {
                recovered(st, &format!("at shutdown: {line}")).await;
            }
        }
        Err(e) => tracing::error!("shutdown: {e}; the replica stays stopped until the console starts again"),
    }
}

/// Log and audit one thing the recovery of interrupted backups did.
async fn recovered(st: &AppState, line: &str) {
    system_event(&st.audit, "backup_recovered", line).await;
}

/// Log and audit something the console did on its own (user `console`).
async fn system_event(audit: &domain::audit::AuditLog, action: &str, line: &str) {
    tracing::warn!("{action}: {line}");
    audit
        .record_or_log(
            domain::audit::AuditEntry::new(action, domain::audit::AuditResult::Ok)
                .user("console", "system")
                .ip("local")
                .params(serde_json::json!({ "what": line })),
        )
        .await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
