//! Console users: accounts in SQLite, argon2id passwords, a login throttle
//! shared by existing and unknown names, step-up re-authentication, and the
//! console's own session records.

mod admin;
mod password;
mod sessions;
mod store;
pub mod throttle;

pub use admin::{Actor, UserAdmin};
pub use password::{check_password, common_password_count, HashError, PasswordHasher, PasswordRuleError};
pub use sessions::{random_token, SessionCheck, SessionInfo, SessionStore};
pub use store::{LoginOutcome, StepUp, User, UserError, UserStore};
