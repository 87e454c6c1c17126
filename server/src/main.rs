#![recursion_limit = "256"]
//! pg-console: operate a Patroni PostgreSQL cluster from the browser.

mod auth;
mod backups;
mod cli;
mod config;
mod health;
mod jobs_ws;
mod logs;
mod overview_ws;
mod router;
mod secrets;
mod state;
mod stats_auth;
mod timeline_csv;

use cli::Command;
use config::Config;

fn main() -> std::process::ExitCode {
    let args = cli::parse();
    let command = args.command.unwrap_or(Command::Serve);
    if let Command::Completions { shell } = command {
        cli::print_completions(shell);
        return std::process::ExitCode::SUCCESS;
    }
    let cfg = match Config::load(args.config.as_deref(), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    match command {
        Command::Serve => serve(cfg),
        Command::Config => {
            print!("{}", toml::to_string_pretty(&cfg).expect("config serialises"));
            std::process::ExitCode::SUCCESS
        }
        Command::Healthcheck => match health::check(cfg.listen) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pg-console: unhealthy: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        operator => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(cli::admin::run(&cfg, operator)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pg-console: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}

fn fail(msg: &str) -> std::process::ExitCode {
    eprintln!("pg-console: {msg}");
    std::process::ExitCode::from(2)
}

fn serve(cfg: Config) -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log).unwrap_or_else(|_| "info".into());
    match cfg.log_format {
        config::LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        config::LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
    }
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
