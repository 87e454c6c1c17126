//! User administration shared by the CLI and the Admin page: each change ends
//! the sessions it must end and leaves an audit entry, whether it succeeds or
//! not. Changes that could hand an attacker with a stolen admin cookie more
//! power (any password, a new admin, a role, disabling or enabling a user,
//! ending someone else's sessions) need a [`StepUp`]: the acting admin
//! re-entered their password (the CLI on the server is trusted as is).

use serde_json::json;

use super::{SessionStore, StepUp, User, UserError, UserStore};
use crate::audit::{AuditEntry, AuditLog, AuditResult};
use crate::authz::UserRole;

/// Who is making a change (an admin's session, or the local CLI).
#[derive(Clone, Debug)]
pub struct Actor {
    pub name: String,
    pub role: String,
    pub ip: String,
    pub sid: String,
}

impl Actor {
    pub fn cli() -> Actor {
        let who = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "local".into());
        Actor {
            name: format!("cli:{who}"),
            role: "local".into(),
            ip: "local".into(),
            sid: String::new(),
        }
    }

    fn entry(&self, action: &str, result: AuditResult, target: &str) -> AuditEntry {
        AuditEntry::new(action, result)
            .user(&self.name, &self.role)
            .ip(&self.ip)
            .session(&self.sid)
            .target(target)
    }
}

pub struct UserAdmin<'a> {
    pub users: &'a UserStore,
    pub sessions: &'a SessionStore,
    pub audit: &'a AuditLog,
}

impl UserAdmin<'_> {
    async fn log<T>(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        params: serde_json::Value,
        r: Result<T, UserError>,
    ) -> Result<T, UserError> {
        let (result, error) = match &r {
            Ok(_) => (AuditResult::Ok, String::new()),
            Err(e) => (AuditResult::Failed, e.to_string()),
        };
        if let Err(e) = self
            .audit
            .record(actor.entry(action, result, target).params(params).error(&error))
            .await
        {
            tracing::error!("cannot write the audit log: {e}");
        }
        r
    }

    /// Refuse a change that would leave no active admin.
    async fn keep_an_admin(&self, name: &str) -> Result<(), UserError> {
        let admins = self
            .users
            .list()
            .await?
            .into_iter()
            .filter(|u| u.role == UserRole::Admin && !u.disabled && u.name != name);
        if admins.count() == 0 {
            return Err(UserError::LastAdmin);
        }
        Ok(())
    }

    pub async fn add(
        &self,
        actor: &Actor,
        step_up: Option<&StepUp>,
        name: &str,
        role: UserRole,
        password: &str,
    ) -> Result<User, UserError> {
        let r = async {
            if role == UserRole::Admin && step_up.is_none() {
                return Err(UserError::StepUpRequired);
            }
            self.users.add(name, role, password).await
        }
        .await;
        self.log(actor, "user_add", name, json!({ "role": role.as_str() }), r)
            .await
    }

    pub async fn set_password(&self, actor: &Actor, _: &StepUp, name: &str, password: &str) -> Result<u64, UserError> {
        let r = async {
            let u = self.users.set_password(name, password).await?;
            Ok(self.sessions.delete_for_user(u.id).await?)
        }
        .await;
        self.log(actor, "user_passwd", name, json!({}), r).await
    }

    pub async fn set_role(&self, actor: &Actor, _: &StepUp, name: &str, role: UserRole) -> Result<u64, UserError> {
        let r = async {
            if role != UserRole::Admin {
                self.keep_an_admin(name).await?;
            }
            let u = self.users.set_role(name, role).await?;
            Ok(self.sessions.delete_for_user(u.id).await?)
        }
        .await;
        self.log(actor, "user_set_role", name, json!({ "role": role.as_str() }), r)
            .await
    }

    pub async fn set_disabled(&self, actor: &Actor, _: &StepUp, name: &str, disabled: bool) -> Result<u64, UserError> {
        let r = async {
            if disabled {
                self.keep_an_admin(name).await?;
            }
            let u = self.users.set_disabled(name, disabled).await?;
            Ok(if disabled {
                self.sessions.delete_for_user(u.id).await?
            } else {
                0
            })
        }
        .await;
        let action = if disabled { "user_disable" } else { "user_enable" };
        self.log(actor, action, name, json!({}), r).await
    }

    pub async fn revoke_user_sessions(&self, actor: &Actor, _: &StepUp, name: &str) -> Result<u64, UserError> {
        let r = async {
            let u = self
                .users
                .get(name)
                .await?
                .ok_or_else(|| UserError::NoSuchUser(name.to_string()))?;
            Ok(self.sessions.delete_for_user(u.id).await?)
        }
        .await;
        let params = json!({ "sessions": r.as_ref().ok() });
        self.log(actor, "session_revoke", name, params, r).await
    }

    /// Revoke the one session whose id starts with `prefix` (≥ 8 characters).
    /// Another user's session needs a step-up; one's own does not.
    pub async fn revoke_session(
        &self,
        actor: &Actor,
        step_up: Option<&StepUp>,
        prefix: &str,
    ) -> Result<String, UserError> {
        let r = async {
            if prefix.len() < 8 {
                return Err(UserError::SessionPrefix(format!(
                    "give at least 8 characters of the id, not {prefix:?}"
                )));
            }
            let found = self.sessions.find_prefix(prefix).await?;
            let [s] = found.as_slice() else {
                return Err(UserError::SessionPrefix(format!(
                    "{} sessions match {prefix:?}",
                    found.len()
                )));
            };
            if s.user_name != actor.name && step_up.is_none() {
                return Err(UserError::StepUpRequired);
            }
            self.sessions.delete(&s.sid).await?;
            Ok(s.user_name.clone())
        }
        .await;
        let target = r.as_ref().map(String::as_str).unwrap_or("-").to_string();
        self.log(actor, "session_revoke", &target, json!({ "session": prefix }), r)
            .await
    }
}
