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
    #[serde(default)]
    pub can_read_logs: bool,
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

/// One page of the audit log, newest first, read by key (never by offset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    /// Older rows exist (before the last row shown).
    pub has_older: bool,
    /// Newer rows exist (after the first row shown).
    pub has_newer: bool,
    pub per_page: i64,
    /// "verified through #N", "broken at #N: …" or "empty".
    pub chain_status: String,
    pub chain_broken: bool,
    /// When the whole chain was last checked (rows since are checked on each load).
    pub full_check_at_ms: Option<i64>,
    /// The chain's head as a line signed by the console, to keep elsewhere.
    pub signed_head: String,
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

/// Everything a caller can ask the console to do. Each page, server
/// function and route is mapped to one (`app::access`, the server's
/// rules); [`may`] says which roles may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Read the topology, history, HAProxy stats, the backups list.
    ViewCluster,
    /// Who am I (any logged-in user).
    ViewSelf,
    /// Backups and Patroni member operations (switchover, restart, ...).
    OperateCluster,
    /// Download backup archives and see what their test restores read
    /// (table names, row counts).
    ReadBackupContents,
    /// Whole-cluster reinitialization.
    ReinitializeCluster,
    /// Restore the whole cluster from a backup, and discard what a restore kept aside.
    RestoreCluster,
    /// A failover while the leader is healthy (loses what was not replicated).
    ForceFailover,
    /// Delete backups.
    DeleteBackup,
    /// Manage users and sessions.
    ManageUsers,
    /// Read the audit log.
    ViewAudit,
    /// Read the containers' logs (live tail and downloads, secrets masked).
    ReadLogs,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::ViewCluster,
        Action::ViewSelf,
        Action::OperateCluster,
        Action::ReadBackupContents,
        Action::ReinitializeCluster,
        Action::RestoreCluster,
        Action::ForceFailover,
        Action::DeleteBackup,
        Action::ManageUsers,
        Action::ViewAudit,
        Action::ReadLogs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::ViewCluster => "view_cluster",
            Action::ViewSelf => "view_self",
            Action::OperateCluster => "operate_cluster",
            Action::ReadBackupContents => "read_backup_contents",
            Action::ReinitializeCluster => "reinitialize_cluster",
            Action::RestoreCluster => "restore_cluster",
            Action::ForceFailover => "force_failover",
            Action::DeleteBackup => "delete_backup",
            Action::ManageUsers => "manage_users",
            Action::ViewAudit => "view_audit",
            Action::ReadLogs => "read_logs",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The roles allowed to perform this action: the one place roles are decided.
    pub fn roles(self) -> &'static [UserRole] {
        use UserRole::*;
        match self {
            Action::ViewCluster | Action::ViewSelf => &[Viewer, Operator, Admin],
            Action::OperateCluster | Action::ReadBackupContents | Action::ReadLogs => &[Operator, Admin],
            Action::ReinitializeCluster
            | Action::RestoreCluster
            | Action::ForceFailover
            | Action::DeleteBackup
            | Action::ManageUsers
            | Action::ViewAudit => &[Admin],
        }
    }
}

/// Whether `role` may perform `action`.
pub fn may(role: UserRole, action: Action) -> bool {
    action.roles().contains(&role)
}

/// Who may reach a route: anyone, or a logged-in user allowed `Action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Public,
    Needs(Action),
}
