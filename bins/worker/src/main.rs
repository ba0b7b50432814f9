//! `sentinel-worker`: applies the schema and ingests a Microsoft 365 tenant into Postgres.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sentinel_worker::config::WorkerConfig;
use sentinel_worker::{serve, sync, tenants};

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
    /// Make the database ready (idempotent) and exit. Reads only DATABASE_URL.
    Migrate,
    /// Migrate, ingest the tenant once (graph_ingest), refresh the views (refresh_mv), exit 0 on success.
    Sync(sync::SyncArgs),
    /// The tenants this deployment scans (list, add, enable, disable, band). Reads only DATABASE_URL.
    #[command(subcommand)]
    Tenants(tenants::TenantsCommand),
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

/// A configuration error: one line, exit code 2.
fn config_error(e: anyhow::Error) -> ExitCode {
    eprintln!("sentinel-worker: {e:#}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        // Preparing the database needs only DATABASE_URL (no app registration yet).
        Command::Migrate => {
            let url = match WorkerConfig::database_url_from_env() {
                Ok(url) => url,
                Err(e) => return config_error(e),
            };
            init_logging(&std::env::var("LOG_FORMAT").unwrap_or_default());
            sync::migrate(&url).await
        }
        Command::Tenants(command) => {
            let url = match WorkerConfig::database_url_from_env() {
                Ok(url) => url,
                Err(e) => return config_error(e),
            };
            init_logging(&std::env::var("LOG_FORMAT").unwrap_or_default());
            tenants::run(&url, command).await
        }
        command => {
            let config = match WorkerConfig::from_env() {
                Ok(c) => c,
                Err(e) => return config_error(e),
            };
            init_logging(&config.log_format);
            match command {
                Command::Sync(args) => sync::run(&config, args).await,
                Command::Migrate => sync::migrate(&config.database_url).await,
                Command::Tenants(command) => tenants::run(&config.database_url, command).await,
                Command::Serve => serve::run(&config).await,
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sentinel-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
