//! The worker's configuration: built once from the environment at start-up.

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
}

impl WorkerConfig {
    /// Reads `DATABASE_URL`, the `ENTRA_*` variables, `GRAPH_BASE_URL`, `GRAPH_RU_PER_MINUTE`,
    /// `GRAPH_MAX_CONCURRENCY` and `LOG_FORMAT`. A missing or malformed one is an error naming it.
    pub fn from_env() -> Result<WorkerConfig> {
        let database_url = match std::env::var("DATABASE_URL") {
            Ok(v) if v.starts_with("postgres://") || v.starts_with("postgresql://") => v,
            Ok(v) if !v.is_empty() => bail!(
                "DATABASE_URL must be a postgres:// URL, got '{}'",
                redact(&v)
            ),
            _ => {
                bail!("DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/sentinel)")
            }
        };
        let graph = GraphConfig::from_env().context("Graph configuration")?;
        Ok(WorkerConfig {
            database_url: SecretString::from(database_url),
            graph,
            log_format: std::env::var("LOG_FORMAT").unwrap_or_default(),
        })
    }
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}
