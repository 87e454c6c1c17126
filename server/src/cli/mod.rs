//! The command line (clap, derive): `serve` (the default), `config`,
//! `healthcheck`, the operator commands on the console's database (users,
//! sessions, the audit log, the route/rule table) and shell completions.
//! `pg-console serve --help` lists the settings from the one settings table.

pub mod admin;

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "pg-console",
    about = "A web console for the postgresql-cluster stack (Patroni + HAProxy)",
    after_help = "Settings come from the defaults (which run the demo stack), then the TOML file given by \
                  --config or PGC_CONFIG, then PGC_* environment variables: `pg-console serve --help` lists them."
)]
pub struct Cli {
    /// The TOML settings file.
    #[arg(short, long, global = true, env = "PGC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web console (the default when no command is given).
    Serve,
    /// Print the effective configuration (TOML).
    Config,
    /// Ask the running console's /healthz (exit 0 when healthy).
    Healthcheck,
    /// Accounts: add, passwd, set-role, disable, enable, list.
    #[command(subcommand)]
    User(UserCommand),
    /// Sessions: list, revoke.
    #[command(subcommand)]
    Session(SessionCommand),
    /// The audit log: verify the chain, print its signed head, list entries.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Every page, server function and route with its rule (exit 1 if one has none).
    Routes,
    /// Print a shell completion script (e.g. `pg-console completions bash > /etc/bash_completion.d/pg-console`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `--json`: one JSON document on stdout, for scripts.
#[derive(Debug, Args)]
pub struct Output {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (the password from a prompt or stdin, never argv).
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
    },
    /// Set a user's password (from a prompt or stdin); ends their sessions.
    Passwd { name: String },
    /// Change a user's role; ends their sessions.
    SetRole {
        name: String,
        #[arg(value_enum)]
        role: Role,
    },
    /// Disable a user; ends their sessions.
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// List the users.
    List(Output),
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List the sessions, of everyone or of one user.
    List {
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// End a session (by the start of its id) or every session of a user.
    Revoke {
        /// The first characters of a session id, as `session list` shows it.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id_prefix: Option<String>,
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole chain (exit 1 if it was altered).
    Verify {
        /// A head line kept elsewhere (`audit head`): it must still be in the log.
        #[arg(long, value_name = "LINE")]
        head: Option<String>,
    },
    /// Print the chain's head as a signed line, to keep outside the console.
    Head,
    /// List entries, newest first.
    List {
        /// At most this many entries (1 to 500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=500))]
        limit: i64,
        /// Only this action (e.g. op_execute, login).
        #[arg(long)]
        action: Option<String>,
        /// Only this user.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl From<Role> for domain::authz::UserRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Viewer => Self::Viewer,
            Role::Operator => Self::Operator,
            Role::Admin => Self::Admin,
        }
    }
}

/// The whole command with what only runtime knows: the version line and,
/// on `serve --help`, the settings table.
pub fn command() -> clap::Command {
    let version = format!("{} ({})", crate::health::VERSION, crate::health::revision());
    Cli::command().version(version).mut_subcommand("serve", |c| {
        c.after_long_help(format!(
            "Settings (TOML key, env variable, default):\n{}",
            Config::help_table()
        ))
        .after_help("`pg-console serve --help` lists every setting.")
    })
}

/// The parsed command line; `--help`, `--version` and usage errors end
/// the process here (clap's messages, exit 0 or 2).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `pg-console completions SHELL`.
pub fn print_completions(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut command(), "pg-console", &mut std::io::stdout());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let m = command().try_get_matches_from(std::iter::once("pg-console").chain(args.iter().copied()))?;
        Cli::from_arg_matches(&m)
    }

    #[test]
    fn no_command_means_serve_and_flags_go_anywhere() {
        assert!(parse(&[]).unwrap().command.is_none());
        let c = parse(&["user", "list", "--json", "--config", "x.toml"]).unwrap();
        assert_eq!(c.config, Some(PathBuf::from("x.toml")));
        assert!(matches!(
            c.command,
            Some(Command::User(UserCommand::List(Output { json: true })))
        ));
    }

    #[test]
    fn mistakes_get_clap_errors_with_suggestions() {
        let e = parse(&["user", "ad", "x"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidSubcommand);
        assert!(e.to_string().contains("similar subcommand exists: 'add'"), "{e}");
        let e = parse(&["user", "add", "x", "--role", "root"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(e.to_string().contains("viewer, operator, admin"), "{e}");
        let e = parse(&["session", "revoke"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let e = parse(&["session", "revoke", "abc", "--user", "x"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let e = parse(&["audit", "list", "--limit", "0"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn serve_help_lists_every_setting_of_the_table() {
        let help = command()
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for s in crate::config::SETTINGS {
            assert!(
                help.contains(s.key) && help.contains(s.env),
                "{} missing from serve --help",
                s.key
            );
        }
    }

    /// One command's usage with every flag spelled out (clap's own usage
    /// folds them into `[OPTIONS]`): `pg-console session list [--user <NAME>] [--json]`.
    fn usage_line(path: &str, c: &clap::Command) -> String {
        let value = |a: &clap::Arg, name: String| {
            let choices: Vec<String> = a
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect();
            if choices.is_empty() {
                name
            } else {
                choices.join("|")
            }
        };
        let mut line = format!("pg-console {path}");
        let args = c.get_arguments().filter(|a| !a.is_global_set() && a.get_id() != "help");
        let (positional, options): (Vec<&clap::Arg>, Vec<&clap::Arg>) = args.partition(|a| a.is_positional());
        for a in options {
            let flag = format!("--{}", a.get_long().unwrap());
            let value = match a.get_action() {
                clap::ArgAction::SetTrue => String::new(),
                _ => {
                    let name = a
                        .get_value_names()
                        .map(|v| v[0].to_string())
                        .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
                    format!(" <{}>", value(a, name))
                }
            };
            let part = format!("{flag}{value}");
            line.push_str(&if a.is_required_set() {
                format!(" {part}")
            } else {
                format!(" [{part}]")
            });
        }
        for a in positional {
            let name = value(a, a.get_id().as_str().to_uppercase());
            line.push_str(&if a.is_required_set() {
                format!(" <{name}>")
            } else {
                format!(" [{name}]")
            });
        }
        line
    }

    /// Every operator command's usage line, as the README's CLI block shows it.
    fn usage_lines() -> Vec<String> {
        fn walk(path: &str, c: &clap::Command, out: &mut Vec<String>) {
            let subs: Vec<&clap::Command> = c.get_subcommands().filter(|s| s.get_name() != "help").collect();
            if subs.is_empty() {
                out.push(usage_line(path, c));
            }
            for s in subs {
                walk(&format!("{path} {}", s.get_name()), s, out);
            }
        }
        let mut root = command();
        root.build();
        let mut out = Vec::new();
        for s in ["user", "session", "audit", "routes", "completions"] {
            walk(s, root.find_subcommand(s).unwrap(), &mut out);
        }
        out
    }

    #[test]
    fn the_readme_shows_every_command_as_help_does() {
        let readme = include_str!("../../../README.md");
        let block: Vec<&str> = readme
            .split("<!-- cli-usage: generated from --help, checked by a unit test -->")
            .nth(1)
            .and_then(|s| s.split("```sh\n").nth(1))
            .and_then(|s| s.split("```").next())
            .expect("the README's CLI block")
            .lines()
            .map(|l| l.split("  #").next().unwrap().trim())
            .filter(|l| !l.is_empty())
            .collect();
        let expected = usage_lines();
        assert_eq!(
            block,
            expected,
            "the README's CLI block differs from --help; it should read:\n{}",
            expected.join("\n")
        );
    }
}
