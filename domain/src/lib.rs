//! The native domain layer of pg-console. Nothing here knows about HTTP
//! serving, sessions or Leptos: the server crate wires these into routes.

pub mod audit;
pub mod authz;
pub mod backup;
pub mod containers;
pub mod datetime;
pub mod db;
pub mod docker;
pub mod haproxy;
pub mod lag_history;
pub mod logs;
pub mod naming;
pub mod operations;
pub mod overview;
pub mod overview_feed;
pub mod patroni;
pub mod restore;
pub mod timeline;
pub mod users;
pub mod wal_archive;

pub use model;

/// Runs blocking work (file system walks, removing gigabytes) on Tokio's
/// blocking pool, off the async threads; a panic in it is resumed here.
pub async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Removes a directory tree off the async threads; a missing one is fine.
pub async fn remove_tree(dir: std::path::PathBuf) {
    off_thread(move || {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", dir.display());
            }
        }
    })
    .await
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
