//! Roles and the one table that says which role may do what. Every server
//! function and websocket is mapped to an [`Action`]; the server consults
//! [`allowed`] before doing anything.

use serde::{Deserialize, Serialize};

pub use model::auth::UserRole;

/// Everything a caller can ask the console to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Read the topology, history, HAProxy stats, backups list.
    ViewCluster,
    /// Who am I (any logged-in user).
    ViewSelf,
    /// Backups and Patroni member operations (switchover, restart, ...).
    OperateCluster,
    /// Whole-cluster reinitialization.
    ReinitializeCluster,
    /// Delete backups.
    DeleteBackup,
    /// Manage users and sessions.
    ManageUsers,
    /// Read the audit log.
    ViewAudit,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::ViewCluster,
        Action::ViewSelf,
        Action::OperateCluster,
        Action::ReinitializeCluster,
        Action::DeleteBackup,
        Action::ManageUsers,
        Action::ViewAudit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::ViewCluster => "view_cluster",
            Action::ViewSelf => "view_self",
            Action::OperateCluster => "operate_cluster",
            Action::ReinitializeCluster => "reinitialize_cluster",
            Action::DeleteBackup => "delete_backup",
            Action::ManageUsers => "manage_users",
            Action::ViewAudit => "view_audit",
        }
    }
}

/// The roles allowed to perform `action`.
pub fn allowed(action: Action) -> &'static [UserRole] {
    use UserRole::*;
    match action {
        Action::ViewCluster | Action::ViewSelf => &[Viewer, Operator, Admin],
        Action::OperateCluster => &[Operator, Admin],
        Action::ReinitializeCluster | Action::DeleteBackup | Action::ManageUsers | Action::ViewAudit => &[Admin],
    }
}

/// The authenticated caller of a request (the server's middleware puts it in
/// the request extensions after validating the session).
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: i64,
    pub name: String,
    pub role: UserRole,
    /// The console session id (audit entries store only its hash).
    pub sid: String,
    pub ip: String,
}

impl Caller {
    pub fn may(&self, action: Action) -> bool {
        may(self.role, action)
    }
}

pub fn may(role: UserRole, action: Action) -> bool {
    allowed(action).contains(&role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_nested() {
        for a in Action::ALL {
            if may(UserRole::Viewer, a) {
                assert!(may(UserRole::Operator, a), "{a:?}");
            }
            if may(UserRole::Operator, a) {
                assert!(may(UserRole::Admin, a), "{a:?}");
            }
        }
        assert!(!may(UserRole::Viewer, Action::ViewAudit));
        assert!(!may(UserRole::Viewer, Action::OperateCluster));
        assert!(may(UserRole::Operator, Action::OperateCluster));
        assert!(!may(UserRole::Operator, Action::ManageUsers));
        assert!(may(UserRole::Admin, Action::ReinitializeCluster));
    }
}
