//! Jobs as the scheduler sees them, what runs them, and the operations on them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::SchedError;

/// A job row (`jobs`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Job {
    /// The job's id.
    pub job_id: Uuid,
    /// Its kind (`jobs.job_type`).
    pub job_type: String,
    /// The tenant it works on.
    pub tenant_id: String,
    /// Its configuration, checked by its kind before each run.
    pub config: Value,
}

/// What a running job can see: whether to stop, and where to put its progress.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// This run's id (`job_runs.run_id`).
    pub run_id: Uuid,
    stop: Arc<AtomicBool>,
    progress: Arc<Mutex<Value>>,
}

impl RunContext {
    pub(crate) fn new(run_id: Uuid) -> RunContext {
        RunContext {
            run_id,
            stop: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(Mutex::new(Value::Null)),
        }
    }
    /// Set when the run must end at its next safe point (shutdown, or its lock was lost).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }
    /// Whether the run must stop at its next safe point.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    /// Progress readable while the job runs (stored in `job_runs.progress`).
    pub fn set_progress(&self, v: Value) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }
    pub(crate) fn progress(&self) -> Value {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Runs jobs of one `job_type`.
#[async_trait::async_trait]
pub trait JobRunner: Send + Sync {
    /// Runs the job; `Err` (with its causes) is recorded on the failed run.
    async fn run(&self, job: &Job, ctx: RunContext) -> Result<(), crate::JobError>;
}

/// Asks for one run of the job at the next poll. `false` when there is no such job.
pub async fn run_now(pool: &PgPool, job_id: Uuid) -> Result<bool, SchedError> {
    let paused: Option<bool> = sqlx::query_scalar("SELECT paused FROM jobs WHERE job_id = $1")
        .bind(job_id)
        .fetch_optional(pool)
        .await?;
    match paused {
        None => Ok(false),
        Some(true) => Err(SchedError::Paused(job_id)),
        Some(false) => {
            sqlx::query("UPDATE jobs SET run_requested_at = now() WHERE job_id = $1")
                .bind(job_id)
                .execute(pool)
                .await?;
            Ok(true)
        }
    }
}

/// Stops new runs of the job (its schedules stay but do not fire). `false` when there is no such job.
pub async fn pause(pool: &PgPool, job_id: Uuid) -> Result<bool, SchedError> {
    let n = sqlx::query("UPDATE jobs SET paused = true, run_requested_at = NULL, updated_at = now() WHERE job_id = $1")
        .bind(job_id)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Lets the job's schedules fire again, from their next time after now (ticks missed while
/// paused are not made up). `false` when there is no such job.
pub async fn resume(pool: &PgPool, job_id: Uuid) -> Result<bool, SchedError> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query("UPDATE jobs SET paused = false, updated_at = now() WHERE job_id = $1")
        .bind(job_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // Recomputed at the next poll, from that poll's clock.
    sqlx::query("UPDATE job_schedules SET next_run_at = NULL WHERE job_id = $1")
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n > 0)
}
