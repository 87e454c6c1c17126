//! Console users: accounts in SQLite, argon2id passwords, per-account
//! exponential lockout, and the console's own session records.

mod admin;
mod password;
mod sessions;
mod store;

pub use admin::{Actor, UserAdmin};
pub use password::{check_password, common_password_count, HashError, PasswordHasher, PasswordRuleError};
pub use sessions::{random_token, SessionCheck, SessionInfo, SessionStore};
pub use store::{LoginOutcome, User, UserError, UserStore};
