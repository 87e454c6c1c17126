//! Wires the domain services into the axum router and serves it.

use std::sync::Arc;
use std::time::Duration;

use app::{shell, App, ServerContext};
use axum::{routing::get, Router};
use domain::haproxy::HaproxyClient;
use domain::overview::{EndpointSettings, OverviewService};
use domain::patroni::PatroniClient;
use leptos::config::{Env, LeptosOptions};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};

use crate::config::Config;

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
}

pub fn build_context(cfg: &Config) -> Result<ServerContext, ServeError> {
    let timeout = Duration::from_millis(cfg.patroni_timeout_ms);
    let patroni = Arc::new(PatroniClient::new(&cfg.cluster_name, cfg.member_endpoints()?, timeout)?);
    let haproxy = Arc::new(HaproxyClient::new(
        &cfg.haproxy_stats_csv_url,
        &cfg.haproxy_write_listener,
        &cfg.haproxy_read_listener,
        timeout,
    ));
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
    });
    Ok(ServerContext { overview })
}

pub fn build_router(cfg: &Config, ctx: ServerContext) -> Router {
    let options = LeptosOptions::builder()
        .output_name("pg-console")
        .site_root(cfg.site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .site_addr(cfg.listen)
        .env(Env::PROD)
        .build();
    let routes = generate_route_list(App);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .leptos_routes_with_context(&options, routes, move || provide_context(ctx.clone()), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options)
}

pub async fn run(cfg: Config) -> Result<(), ServeError> {
    let ctx = build_context(&cfg)?;
    let router = build_router(&cfg, ctx);
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
    axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServeError::Serve)
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
