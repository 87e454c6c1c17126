//! Operator CLI on the console's database (same binary):
//! users, sessions, audit verification, the route/rule table.

use std::io::{BufRead, IsTerminal};

use domain::authz::UserRole;
use domain::users::{Actor, StepUp, UserAdmin};

use crate::config::Config;
use crate::state::AppState;

pub const USAGE: &str = "\
  pg-console user add NAME --role viewer|operator|admin   (password from a prompt or stdin)
  pg-console user passwd NAME                             (password from a prompt or stdin)
  pg-console user set-role NAME ROLE                      (ends the user's sessions)
  pg-console user disable NAME | enable NAME              (disable ends the user's sessions)
  pg-console user list
  pg-console session list [--user NAME]
  pg-console session revoke SESSION_ID_PREFIX | --user NAME
  pg-console audit verify [--head LINE]                   (the whole chain; exit 1 if it is broken; LINE: a head kept elsewhere)
  pg-console audit head                                   (the chain's head as a signed line, to keep outside the console)
  pg-console routes                                       (every page, server function and route with its rule; exit 1 if one has none)
";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

fn usage(msg: &str) -> CliError {
    CliError::Usage(format!("{msg}\nusage:\n{USAGE}"))
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
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
                return Err(CliError::Failed("the passwords differ; nothing was changed".into()));
            }
        }
        Ok(p)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(failed)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

fn role_arg(s: Option<&String>) -> Result<UserRole, CliError> {
    let s = s.ok_or_else(|| usage("a role is needed"))?;
    UserRole::parse(s).ok_or_else(|| usage(&format!("unknown role {s:?}: use viewer, operator or admin")))
}

fn fmt_time(ms: i64) -> String {
    let secs = ms / 1000;
    let (d, s) = (secs / 86_400, secs % 86_400);
    // Civil date from days since epoch (Howard Hinnant's algorithm).
    let z = d + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        s / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

pub async fn run(cfg: &Config, args: &[String]) -> Result<(), CliError> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    if a.first() == Some(&"routes") {
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
        return if unruled == 0 {
            Ok(())
        } else {
            Err(CliError::Failed(format!("{unruled} route(s) without a rule")))
        };
    }
    let st = AppState::open(cfg, crate::state::Mode::Cli).await.map_err(failed)?;
    match a.as_slice() {
        ["user", "add", name, rest @ ..] => {
            let role = match rest {
                ["--role", r] => role_arg(Some(&r.to_string()))?,
                _ => return Err(usage("user add needs --role")),
            };
            let pw = read_password(true)?;
            let u = admin(&st)
                .add(&Actor::cli(), Some(&StepUp::local()), name, role, &pw)
                .await
                .map_err(failed)?;
            println!("created user {} ({})", u.name, u.role.as_str());
        }
        ["user", "passwd", name] => {
            let pw = read_password(true)?;
            let ended = admin(&st)
                .set_password(&Actor::cli(), &StepUp::local(), name, &pw)
                .await
                .map_err(failed)?;
            println!("password of {name} changed; {ended} session(s) ended");
        }
        ["user", "set-role", name, role] => {
            let role = role_arg(Some(&role.to_string()))?;
            let ended = admin(&st)
                .set_role(&Actor::cli(), &StepUp::local(), name, role)
                .await
                .map_err(failed)?;
            println!("{name} is now {}; {ended} session(s) ended", role.as_str());
        }
        ["user", cmd @ ("disable" | "enable"), name] => {
            let ended = admin(&st)
                .set_disabled(&Actor::cli(), &StepUp::local(), name, *cmd == "disable")
                .await
                .map_err(failed)?;
            println!("{name} {cmd}d; {ended} session(s) ended");
        }
        ["user", "list"] => {
            println!("{:<24} {:<9} {:<9} {:<8} created", "name", "role", "state", "failures");
            for u in st.users.list().await.map_err(failed)? {
                let state = if u.disabled {
                    "disabled"
                } else if u.locked_until_ms > domain::now_ms() {
                    "locked"
                } else {
                    "active"
                };
                println!(
                    "{:<24} {:<9} {:<9} {:<8} {}",
                    u.name,
                    u.role.as_str(),
                    state,
                    u.failed_logins,
                    fmt_time(u.created_at_ms)
                );
            }
        }
        ["session", "list", rest @ ..] => {
            let user = match rest {
                [] => None,
                ["--user", n] => Some(*n),
                _ => return Err(usage("session list [--user NAME]")),
            };
            println!(
                "{:<18} {:<20} {:<9} {:<16} {:<21} last seen",
                "id", "user", "role", "from", "since"
            );
            for s in st.sessions.list(user).await.map_err(failed)? {
                println!(
                    "{:<18} {:<20} {:<9} {:<16} {:<21} {}",
                    &s.sid[..16],
                    s.user_name,
                    s.role.as_str(),
                    s.source_ip,
                    fmt_time(s.created_at_ms),
                    fmt_time(s.last_seen_ms)
                );
            }
        }
        ["session", "revoke", "--user", name] => {
            let n = admin(&st)
                .revoke_user_sessions(&Actor::cli(), &StepUp::local(), name)
                .await
                .map_err(failed)?;
            println!("{n} session(s) of {name} revoked");
        }
        ["session", "revoke", prefix] => {
            let user = admin(&st)
                .revoke_session(&Actor::cli(), Some(&StepUp::local()), prefix)
                .await
                .map_err(failed)?;
            println!("session {prefix}… of {user} revoked");
        }
        ["audit", "verify", rest @ ..] => {
            let expected = match rest {
                [] => None,
                ["--head", line] => Some(*line),
                _ => return Err(usage("audit verify [--head LINE]")),
            };
            let status = st.audit.verify().await.map_err(failed)?;
            println!("audit log: {status}");
            if status.is_broken() {
                return Err(CliError::Failed("the audit log was altered (see above)".into()));
            }
            if let Some(line) = expected {
                st.audit.check_kept_head(line).await.map_err(failed)?;
                println!("the head you kept is in the log, unchanged");
            }
        }
        ["audit", "head"] => match st.audit.signed_head() {
            Some(line) => println!("{line}"),
            None => return Err(CliError::Failed("no head is recorded yet".into())),
        },
        _ => return Err(usage("unknown command")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::fmt_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(super::fmt_time(1_795_900_000_000), "2026-11-28 21:06:40Z");
    }
}
