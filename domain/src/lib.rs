//! The native domain layer of pg-console. Nothing here knows about HTTP
//! serving, sessions or Leptos: the server crate wires these into routes.

pub mod audit;
pub mod authz;
pub mod backup;
pub mod db;
pub mod docker;
pub mod haproxy;
pub mod operations;
pub mod overview;
pub mod patroni;
pub mod users;

pub use model;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
