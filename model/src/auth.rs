use serde::{Deserialize, Serialize};

/// A console user's role. `viewer` reads everything but the audit log;
/// `operator` adds backups and member operations; `admin` adds cluster
/// reinitialization, deleting backups, users and the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    Viewer,
    Operator,
    Admin,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Viewer => "viewer",
            UserRole::Operator => "operator",
            UserRole::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<UserRole> {
        match s {
            "viewer" => Some(UserRole::Viewer),
            "operator" => Some(UserRole::Operator),
            "admin" => Some(UserRole::Admin),
            _ => None,
        }
    }
}

/// The logged-in user as the UI sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub role: UserRole,
    /// What the UI may offer (the server checks again on every call).
    pub can_operate: bool,
    pub can_admin: bool,
}

/// One audit entry as the Audit page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    pub user: String,
    pub role: String,
    pub source_ip: String,
    pub action: String,
    pub target: String,
    pub params: String,
    pub result: String,
    pub error: String,
    pub correlation_id: String,
    pub duration_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    /// "verified through #N", "broken at #N" or "empty".
    pub chain_status: String,
    pub chain_broken: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    pub name: String,
    pub role: UserRole,
    pub disabled: bool,
    pub locked_until_ms: i64,
    pub failed_logins: i64,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub id_prefix: String,
    pub user: String,
    pub role: UserRole,
    pub source_ip: String,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminView {
    pub users: Vec<UserRow>,
    pub sessions: Vec<SessionRow>,
}
