//! Canonical paths, authentication, authorization, CSRF/origin checks and
//! login/logout.

pub mod audit_csv;
pub mod client_ip;
pub mod csrf;
pub mod headers;
pub mod login;
pub mod middleware;
pub mod path;
pub mod ratelimit;
pub mod rules;

pub use domain::authz::Caller as CurrentUser;

/// The tower-sessions key holding the console session id.
pub const SESSION_KEY: &str = "pgc_sid";

/// How often an active session's cookie and tower-sessions record are saved
/// again with a new expiry. The console's own session row (last seen each
/// second) is what ends sessions, idle or absolute, with an audit entry; the
/// record's expiry is the idle timeout plus this, so it never runs out first.
pub const SESSION_RENEW_EVERY_SECS: i64 = 60;
