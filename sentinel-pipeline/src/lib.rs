#![warn(missing_docs)]
//! Where Microsoft Graph meets the Princeton Sentinel store.
//!
//! [`stage`] has composable async stages (source → transform → batch → sink) joined by bounded
//! channels; the ingestion pipelines are built from them: users, groups with membership, sites,
//! drives (libraries and OneDrives), drive items (a delta round per drive, drives in parallel)
//! and permissions (`exhaustive` or `hierarchical`). [`job`] runs them; [`kinds`] are the
//! `graph_ingest` and `refresh_mv` jobs as the scheduler runs them and the web checks them.

pub mod cadence;
pub mod convert;
mod directory;
mod drives;
pub mod job;
pub mod kinds;
mod permissions;
pub mod progress;
mod rounds;
pub mod stage;

pub use job::{
    GraphIngestConfig, IngestReport, PermissionMode, Resource, run_graph_ingest, run_refresh_mv,
};
pub use kinds::{GraphIngest, NoConfig, RefreshMv, job_kinds, schedule_first_scan, tenant_client};
pub use progress::{Phase, Progress, ProgressSnapshot};

/// An error of a pipeline run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Graph failed (after the client's retries).
    #[error(transparent)]
    Graph(#[from] sentinel_graph::GraphError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] sentinel_store::StoreError),
    /// A downstream stage stopped (its own error is reported instead).
    #[error("a downstream stage stopped")]
    Closed,
    /// A stage failed for a reason of its own.
    #[error("{0}")]
    Stage(String),
    /// The run could not cover everything: it must not be reported as a success.
    #[error("incomplete: {0}")]
    Incomplete(String),
    /// The job's configuration does not check out.
    #[error("invalid job configuration: {0}")]
    Config(String),
    /// Stopped on request (shutdown) at a safe point.
    #[error("cancelled")]
    Cancelled,
}
