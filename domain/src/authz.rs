//! Roles and who may do what: [`Action`] and [`may`] live in `model` (the
//! one table, shared with the UI); this module adds the authenticated caller.

pub use model::auth::{may, Access, Action, UserRole};

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

/// The roles allowed to perform `action`.
pub fn allowed(action: Action) -> &'static [UserRole] {
    action.roles()
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
            assert_eq!(Action::parse(a.name()), Some(a));
        }
        assert!(!may(UserRole::Viewer, Action::ViewAudit));
        assert!(!may(UserRole::Viewer, Action::OperateCluster));
        assert!(!may(UserRole::Viewer, Action::ReadBackupContents));
        assert!(may(UserRole::Operator, Action::OperateCluster));
        assert!(may(UserRole::Operator, Action::ReadBackupContents));
        assert!(!may(UserRole::Operator, Action::ManageUsers));
        assert!(may(UserRole::Admin, Action::ReinitializeCluster));
    }
}
