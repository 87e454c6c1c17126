#![recursion_limit = "256"]
//! pg-console: operate a Patroni PostgreSQL cluster from the browser.

mod auth;
mod backups;
mod cli;
mod config;
mod health;
mod jobs_ws;
mod router;
mod secrets;
mod state;
mod stats_auth;

use std::path::PathBuf;

use config::Config;

const USAGE: &str = "\
pg-console — a web console for the postgresql-cluster stack (Patroni + HAProxy)

USAGE:
  pg-console [--config FILE] [serve]     run the web console (default)
  pg-console [--config FILE] config      print the effective configuration (TOML)
  pg-console [--config FILE] healthcheck ask the running console's /healthz (exit 0 when healthy)
  pg-console --help | --version
{CLI}
Settings come from the defaults (which run the demo stack), then the TOML file
given by --config or PGC_CONFIG, then PGC_* environment variables.

SETTINGS:
";

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut config_file: Option<PathBuf> = std::env::var_os("PGC_CONFIG").map(PathBuf::from);
    let mut command = String::from("serve");
    let mut rest: Vec<String> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" | "help" if rest.is_empty() => {
                print!("{}{}", USAGE.replace("{CLI}", cli::USAGE), Config::help_table());
                return std::process::ExitCode::SUCCESS;
            }
            "-V" | "--version" => {
                println!("pg-console {} ({})", health::VERSION, health::revision());
                return std::process::ExitCode::SUCCESS;
            }
            "-c" | "--config" => match args.next() {
                Some(f) => config_file = Some(PathBuf::from(f)),
                None => return fail("--config needs a file path"),
            },
            "serve" | "config" | "healthcheck" if rest.is_empty() => command = arg,
            "user" | "session" | "audit" | "routes" if rest.is_empty() => {
                command = "cli".into();
                rest.push(arg);
            }
            _ if command == "cli" => rest.push(arg),
            other => return fail(&format!("unknown argument {other:?}; see pg-console --help")),
        }
    }

    let cfg = match Config::load(config_file.as_deref(), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    match command.as_str() {
        "config" => {
            print!("{}", toml::to_string_pretty(&cfg).expect("config serialises"));
            std::process::ExitCode::SUCCESS
        }
        "healthcheck" => match health::check(cfg.listen) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pg-console: unhealthy: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        "cli" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(cli::run(&cfg, &rest)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(cli::CliError::Usage(m)) => fail(&m),
                Err(cli::CliError::Failed(m)) => {
                    eprintln!("pg-console: {m}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        _ => serve(cfg),
    }
}

fn fail(msg: &str) -> std::process::ExitCode {
    eprintln!("pg-console: {msg}");
    std::process::ExitCode::from(2)
}

fn serve(cfg: Config) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cfg.log).unwrap_or_else(|_| "info".into()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(router::run(cfg)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("pg-console: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
