#![warn(missing_docs)]
//! Postgres-polling job scheduler for Princeton Sentinel.
//!
//! Operators declare jobs and schedules (rows); every worker polls: due schedules
//! (`next_run_at <= now()`, claimed `FOR UPDATE SKIP LOCKED`) and run-now requests start a run
//! under a session advisory lock derived from the job id, held on a dedicated connection for the
//! whole run (a heartbeat stops the run if that connection dies). A run left `running` whose lock
//! anyone can take is an orphan and is marked failed. Standard 5-field cron, in UTC, on the
//! database's clock; a missed schedule runs once, not once per missed tick. The scheduler knows
//! nothing of Graph: jobs are run by the [`JobKind`]s (or [`JobRunner`]s) the binary registers.

pub mod clock;
pub mod cron;
pub mod jobs;
pub mod kind;
pub mod manage;
pub mod scheduler;

/// The connection pool every function of this crate takes (re-exported so callers need not
/// depend on sqlx).
pub use sqlx::PgPool;

pub use clock::{Clock, DbClock, ManualClock};
pub use cron::{CronError, CronExpr};
pub use jobs::{Job, JobRunner, RunContext, pause, resume, run_now};
pub use kind::{JobError, JobKind, KindSpec, RunStatus, Trigger};
pub use scheduler::{Scheduler, TickReport, lock_key};

impl SchedError {
    /// The statement ran past the connection's `statement_timeout` and was cancelled.
    pub fn is_timeout(&self) -> bool {
        match self {
            SchedError::Database(sqlx::Error::Database(e)) => e.code().as_deref() == Some("57014"),
            _ => false,
        }
    }

    /// Postgres refused a value the caller passed (SQLSTATE class 22, "data exception": a NUL
    /// character in text, a number out of range, ...): the input is at fault, not the database.
    pub fn is_bad_value(&self) -> bool {
        match self {
            SchedError::Database(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|c| c.starts_with("22"))
            }
            _ => false,
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: the stop a scheduler loop (and any server running beside
/// it) waits on to finish its current work and exit.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// An error of the scheduler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A cron expression was refused.
    #[error(transparent)]
    Cron(#[from] CronError),
    /// The job is paused, so it cannot run now.
    #[error("job {0} is paused: resume it first")]
    Paused(uuid::Uuid),
}
