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
