//! `sentinel-worker`: applies the schema and ingests a Microsoft 365 tenant into Postgres.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sentinel_worker::config::WorkerConfig;
use sentinel_worker::{serve, sync};

#[derive(Debug, Parser)]
#[command(name = "sentinel-worker", version, about = "Princeton Sentinel worker")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scheduler loop, the jobs and the control API (the default).
    Serve,
    /// Make the database ready (idempotent) and exit.
    Migrate,
    /// Migrate, ingest the tenant once (graph_ingest), refresh the views (refresh_mv), exit 0 on success.
    Sync(sync::SyncArgs),
}

fn init_logging(format: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match WorkerConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sentinel-worker: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(&config).await,
        Command::Migrate => sync::migrate(&config).await,
        Command::Sync(args) => sync::run(&config, args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sentinel-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
