//! The operator commands on the console's database (same binary): users,
//! sessions, the audit log, the route/rule table. Tables for people,
//! `--json` for scripts; times in UTC (RFC 3339 in JSON).

use std::io::{BufRead, IsTerminal};

use domain::audit::{AuditFilter, Cursor};
use domain::datetime::{format_rfc3339, human_utc};
use domain::users::{Actor, StepUp, UserAdmin};
use serde::Serialize;

use super::{AuditCommand, Command, SessionCommand, UserCommand};
use crate::config::Config;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(String);

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

fn admin(st: &AppState) -> UserAdmin<'_> {
    UserAdmin {
        users: &st.users,
        sessions: &st.sessions,
        audit: &st.audit,
    }
}

fn read_password(confirm: bool) -> Result<String, CliError> {
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("Password: ").map_err(failed)?;
        if confirm {
            let again = rpassword::prompt_password("Again: ").map_err(failed)?;
            if again != p {
                return Err(CliError("the passwords differ; nothing was changed".into()));
            }
        }
        Ok(p)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(failed)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

fn rfc3339(ms: i64) -> String {
    format_rfc3339(ms).unwrap_or_default()
}

fn print_json<T: Serialize>(v: &T) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(v).map_err(failed)?);
    Ok(())
}

/// Run one operator command (not `serve`, `config`, `healthcheck` or
/// `completions`, which main handles).
pub async fn run(cfg: &Config, command: Command) -> Result<(), CliError> {
    if let Command::Routes = command {
        return routes();
    }
    let st = AppState::open(cfg, crate::state::Mode::Cli).await.map_err(failed)?;
    match command {
        Command::User(c) => user(&st, c).await,
        Command::Session(c) => session(&st, c).await,
        Command::Audit(c) => audit(&st, c).await,
        other => Err(CliError(format!("{other:?} is not an operator command"))),
    }
}

fn routes() -> Result<(), CliError> {
    let pages: Vec<String> = leptos_axum::generate_route_list(app::App)
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    let mut unruled = 0;
    for (path, rule) in crate::auth::rules::all_routes(&pages) {
        match rule {
            Some(rule) => println!("{path}\t{rule}"),
            None => {
                unruled += 1;
                println!("{path}\tNO RULE");
            }
        }
    }
    if unruled == 0 {
        Ok(())
    } else {
        Err(CliError(format!("{unruled} route(s) without a rule")))
    }
}

#[derive(Serialize)]
struct UserRow {
    name: String,
    role: &'static str,
    state: &'static str,
    failed_logins: i64,
    created_at: String,
}

async fn user(st: &AppState, c: UserCommand) -> Result<(), CliError> {
    let (cli, local) = (Actor::cli(), StepUp::local());
    match c {
        UserCommand::Add { name, role } => {
            let pw = read_password(true)?;
            let u = admin(st)
                .add(&cli, Some(&local), &name, role.into(), &pw)
                .await
                .map_err(failed)?;
            println!("created user {} ({})", u.name, u.role.as_str());
        }
        UserCommand::Passwd { name } => {
            let pw = read_password(true)?;
            let ended = admin(st).set_password(&cli, &local, &name, &pw).await.map_err(failed)?;
            println!("password of {name} changed; {ended} session(s) ended");
        }
        UserCommand::SetRole { name, role } => {
            let role: domain::authz::UserRole = role.into();
            let ended = admin(st).set_role(&cli, &local, &name, role).await.map_err(failed)?;
            println!("{name} is now {}; {ended} session(s) ended", role.as_str());
        }
        UserCommand::Disable { ref name } | UserCommand::Enable { ref name } => {
            let disable = matches!(c, UserCommand::Disable { .. });
            let name = name.clone();
            let ended = admin(st)
                .set_disabled(&cli, &local, &name, disable)
                .await
                .map_err(failed)?;
            let did = if disable { "disabled" } else { "enabled" };
            println!("{name} {did}; {ended} session(s) ended");
        }
        UserCommand::List(out) => {
            let now = domain::now_ms();
            let rows: Vec<UserRow> = st
                .users
                .list()
                .await
                .map_err(failed)?
                .into_iter()
                .map(|u| UserRow {
                    state: match (u.disabled, u.locked_until_ms > now) {
                        (true, _) => "disabled",
                        (false, true) => "locked",
                        _ => "active",
                    },
                    name: u.name,
                    role: u.role.as_str(),
                    failed_logins: u.failed_logins,
                    created_at: rfc3339(u.created_at_ms),
                })
                .collect();
            if out.json {
                return print_json(&rows);
            }
            println!("{:<24} {:<9} {:<9} {:<8} created", "name", "role", "state", "failures");
            for u in rows {
                println!(
                    "{:<24} {:<9} {:<9} {:<8} {}",
                    u.name, u.role, u.state, u.failed_logins, u.created_at
                );
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct SessionRow {
    /// The first 16 characters of the id: enough to revoke it, not enough to use it.
    id: String,
    user: String,
    role: &'static str,
    from: String,
    since: String,
    last_seen: String,
}

async fn session(st: &AppState, c: SessionCommand) -> Result<(), CliError> {
    match c {
        SessionCommand::List { user, output } => {
            let rows: Vec<SessionRow> = st
                .sessions
                .list(user.as_deref())
                .await
                .map_err(failed)?
                .into_iter()
                .map(|s| SessionRow {
                    id: s.sid.chars().take(16).collect(),
                    user: s.user_name,
                    role: s.role.as_str(),
                    from: s.source_ip,
                    since: human_utc(s.created_at_ms),
                    last_seen: human_utc(s.last_seen_ms),
                })
                .collect();
            if output.json {
                return print_json(&rows);
            }
            println!(
                "{:<18} {:<20} {:<9} {:<16} {:<24} last seen",
                "id", "user", "role", "from", "since"
            );
            for s in rows {
                println!(
                    "{:<18} {:<20} {:<9} {:<16} {:<24} {}",
                    s.id, s.user, s.role, s.from, s.since, s.last_seen
                );
            }
        }
        SessionCommand::Revoke { user: Some(name), .. } => {
            let n = admin(st)
                .revoke_user_sessions(&Actor::cli(), &StepUp::local(), &name)
                .await
                .map_err(failed)?;
            println!("{n} session(s) of {name} revoked");
        }
        SessionCommand::Revoke { id_prefix, user: None } => {
            let prefix = id_prefix.unwrap_or_default();
            let user = admin(st)
                .revoke_session(&Actor::cli(), Some(&StepUp::local()), &prefix)
                .await
                .map_err(failed)?;
            println!("session {prefix}… of {user} revoked");
        }
    }
    Ok(())
}

async fn audit(st: &AppState, c: AuditCommand) -> Result<(), CliError> {
    match c {
        AuditCommand::Verify { head } => {
            let status = st.audit.verify().await.map_err(failed)?;
            println!("audit log: {status}");
            if status.is_broken() {
                return Err(CliError("the audit log was altered (see above)".into()));
            }
            if let Some(line) = head {
                st.audit.check_kept_head(&line).await.map_err(failed)?;
                println!("the head you kept is in the log, unchanged");
            }
        }
        AuditCommand::Head => match st.audit.signed_head() {
            Some(line) => println!("{line}"),
            None => return Err(CliError("no head is recorded yet".into())),
        },
        AuditCommand::List {
            limit,
            action,
            user,
            output,
        } => {
            let filter = AuditFilter {
                user,
                action,
                ..Default::default()
            };
            let page = st.audit.page(&filter, Cursor::Newest, limit).await.map_err(failed)?;
            if output.json {
                return print_json(&page.rows);
            }
            println!(
                "{:<8} {:<24} {:<16} {:<24} {:<8} target",
                "id", "time", "user", "action", "result"
            );
            for r in page.rows {
                println!(
                    "{:<8} {:<24} {:<16} {:<24} {:<8} {}",
                    r.id,
                    human_utc(r.at_ms),
                    r.user_name,
                    r.action,
                    r.result,
                    r.target
                );
            }
        }
    }
    Ok(())
}
