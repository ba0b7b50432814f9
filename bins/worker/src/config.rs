//! The worker's configuration: built once from the environment at start-up.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use secrecy::SecretString;
use sentinel_graph::GraphConfig;

/// Everything the worker reads from its environment.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub database_url: SecretString,
    pub graph: GraphConfig,
    /// `json` for structured logs, anything else for human-readable ones.
    pub log_format: String,
    /// Where the internal control API listens (`WORKER_API_ADDR`).
    pub api_addr: std::net::SocketAddr,
    /// Seconds between scheduler polls (`SCHEDULER_POLL_SECONDS`).
    pub poll_seconds: u64,
    /// This worker's name in `job_runs` (`WORKER_ID`, default: host and process id).
    pub worker_id: String,
    /// Runs this worker holds at once (`WORKER_MAX_RUNS`, 1 to 64, default 4): more due jobs
    /// wait or go to another worker. Each run holds up to two connections of its own (its job
    /// lock and its tenant's scan lock) beside the pool's 16: size PostgreSQL's
    /// `max_connections` for workers x (16 + 2 x WORKER_MAX_RUNS + 1) and the web's.
    pub max_runs: usize,
    /// On a database without jobs, create a tenant scan (hourly) and run it at once
    /// (`WORKER_FIRST_SCAN`: `true` or `false`, default `false`).
    pub first_scan: bool,
    /// How alerts for new policy violations are sent: `ALERT_FIRST_RETRY_SECONDS` (the wait
    /// before the first retry, doubling up to an hour; default 30) and `ALERT_MAX_ATTEMPTS`
    /// (default 8). Due alerts are looked for every `SCHEDULER_POLL_SECONDS`.
    pub alerts: sentinel_alerts::AlertSettings,
}

impl WorkerConfig {
    /// Reads `DATABASE_URL`, the `ENTRA_*` variables, `GRAPH_BASE_URL`, `GRAPH_RU_PER_MINUTE`,
    /// `GRAPH_MAX_CONCURRENCY` and `LOG_FORMAT`. A missing or malformed one is an error naming it.
    pub fn from_env() -> Result<WorkerConfig> {
        let database_url = Self::database_url_from_env()?;
        let graph = GraphConfig::from_env().context("Graph configuration")?;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let api_addr = match var("WORKER_API_ADDR") {
            None => "127.0.0.1:8081".parse().context("default address")?,
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("WORKER_API_ADDR must be host:port, got '{v}'"))?,
        };
        let poll_seconds = match var("SCHEDULER_POLL_SECONDS") {
            None => 15,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => n,
                _ => bail!(
                    "SCHEDULER_POLL_SECONDS must be a whole number of seconds between 1 and 3600, got '{v}'"
                ),
            },
        };
        let max_runs = match var("WORKER_MAX_RUNS") {
            None => 4,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => bail!("WORKER_MAX_RUNS must be a whole number between 1 and 64, got '{v}'"),
            },
        };
        let first_scan = match var("WORKER_FIRST_SCAN").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(v) => bail!("WORKER_FIRST_SCAN must be true or false, got '{v}'"),
        };
        let mut alerts = sentinel_alerts::AlertSettings::default();
        if let Some(v) = var("ALERT_FIRST_RETRY_SECONDS") {
            match v.parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => alerts.first_retry = Duration::from_secs(n),
                _ => bail!(
                    "ALERT_FIRST_RETRY_SECONDS must be a whole number of seconds between 1 and 3600, got '{v}'"
                ),
            }
        }
        if let Some(v) = var("ALERT_MAX_ATTEMPTS") {
            match v.parse::<u32>() {
                Ok(n) if (1..=50).contains(&n) => alerts.max_attempts = n,
                _ => bail!("ALERT_MAX_ATTEMPTS must be a whole number between 1 and 50, got '{v}'"),
            }
        }
        let host = var("HOSTNAME").unwrap_or_else(|| "worker".into());
        Ok(WorkerConfig {
            database_url,
            graph,
            log_format: std::env::var("LOG_FORMAT").unwrap_or_default(),
            api_addr,
            poll_seconds,
            first_scan,
            max_runs,
            alerts,
            worker_id: var("WORKER_ID").unwrap_or_else(|| format!("{host}-{}", std::process::id())),
        })
    }

    /// `DATABASE_URL` alone: all that `migrate` needs (the database is prepared before the
    /// app registration exists).
    pub fn database_url_from_env() -> Result<SecretString> {
        let url = sentinel_store::check_database_url(std::env::var("DATABASE_URL").ok().as_deref())
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(SecretString::from(url))
    }
}
