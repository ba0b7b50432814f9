//! The poll loop: reap orphaned runs, claim due schedules and run-now requests, and run each
//! job under a session advisory lock held on a dedicated connection for the whole run.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sentinel_store::{AuditEvent, Store};
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::SchedError;
use crate::clock::Clock;
use crate::cron::CronExpr;
use crate::jobs::{Job, JobRunner, RunContext};
use crate::kind::{JobKind, KindRunner, RunStatus, Trigger};

/// First half of every job lock key: keeps our advisory locks apart from anyone else's.
const LOCK_NAMESPACE: i32 = 0x5345_4E54; // "SENT"

/// The job's lock: (namespace, 32-bit hash of the job id).
pub fn lock_key(job_id: Uuid) -> (i32, i32) {
    let b = job_id.as_bytes();
    let mut h: u32 = 0x811C_9DC5;
    for x in b {
        h = (h ^ u32::from(*x)).wrapping_mul(0x0100_0193);
    }
    (LOCK_NAMESPACE, h as i32)
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Runs this poll started.
    pub started: Vec<Uuid>,
    /// Due, but the job was running elsewhere: left due for a later poll.
    pub busy: Vec<Uuid>,
    /// Runs found orphaned (their worker gone) and marked failed.
    pub orphans_failed: Vec<Uuid>,
}

struct Running {
    ctx: RunContext,
    task: JoinHandle<()>,
}

/// A scheduler for one worker. Several workers may share a database.
pub struct Scheduler {
    pool: PgPool,
    store: Store,
    /// Opens the dedicated connections that hold run locks.
    connect: PgConnectOptions,
    clock: Arc<dyn Clock>,
    runners: HashMap<String, Arc<dyn JobRunner>>,
    worker_id: String,
    heartbeat: Duration,
    stopping: AtomicBool,
    running: Arc<Mutex<HashMap<Uuid, Running>>>,
    /// Runs this worker holds at once; what is due beyond them waits for a free slot here or
    /// is claimed by another worker.
    max_runs: usize,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Run locks are held on dedicated connections opened with the pool's options.
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>, worker_id: &str) -> Scheduler {
        Scheduler {
            store: Store::from_pool(pool.clone()),
            connect: (*pool.connect_options()).clone(),
            pool,
            clock,
            runners: HashMap::new(),
            worker_id: worker_id.to_string(),
            heartbeat: Duration::from_secs(5),
            stopping: AtomicBool::new(false),
            running: Arc::new(Mutex::new(HashMap::new())),
            max_runs: 32,
        }
    }

    /// At most `n` runs at once on this worker (at least 1). Each run holds a connection of
    /// its own (its lock), so this also bounds the worker's connections; with several workers,
    /// it spreads the due jobs over them rather than the first to poll taking them all.
    pub fn with_max_runs(mut self, n: usize) -> Scheduler {
        self.max_runs = n.max(1);
        self
    }

    /// Runs the jobs of kind `K` with `kind` (each run's configuration checked first).
    pub fn with_kind<K: JobKind>(self, kind: K) -> Scheduler {
        self.with_runner(K::NAME, Arc::new(KindRunner(kind)))
    }

    /// Runs the jobs of `job_type` with `runner` (a [`JobKind`] checks configurations first: prefer `with_kind`).
    pub fn with_runner(mut self, job_type: &str, runner: Arc<dyn JobRunner>) -> Scheduler {
        self.runners.insert(job_type.to_string(), runner);
        self
    }

    /// How often a run checks that its lock connection is alive (and stores progress).
    pub fn with_heartbeat(mut self, every: Duration) -> Scheduler {
        self.heartbeat = every;
        self
    }

    /// One poll. Stops claiming once `shutdown` was called.
    pub async fn tick(&self) -> Result<TickReport, SchedError> {
        let mut report = TickReport {
            orphans_failed: self.reap_orphans().await?,
            ..TickReport::default()
        };
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(report);
        }
        let now = self.clock.now().await?;
        self.schedule_new(now).await?;
        let mut tx = self.pool.begin().await?;
        // A disabled tenant's jobs wait (their due ticks stay due, and run once it is enabled).
        let due: Vec<(Option<Uuid>, Uuid, Option<String>)> = sqlx::query_as(
            "SELECT s.schedule_id, s.job_id, s.cron_expr FROM job_schedules s JOIN jobs j ON j.job_id = s.job_id \
             WHERE s.enabled AND j.enabled AND NOT j.paused AND s.next_run_at <= $1 \
               AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.tenant_id = j.tenant_id AND NOT t.enabled) \
             ORDER BY s.next_run_at FOR UPDATE OF s SKIP LOCKED LIMIT 32",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let requested: Vec<(Option<Uuid>, Uuid, Option<String>)> = sqlx::query_as(
            "SELECT NULL::uuid, job_id, NULL::text FROM jobs j WHERE run_requested_at IS NOT NULL AND enabled AND NOT paused \
               AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.tenant_id = j.tenant_id AND NOT t.enabled) \
             FOR UPDATE OF j SKIP LOCKED LIMIT 32",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed: Vec<(Job, RunContext, PgConnection)> = Vec::new();
        for (schedule_id, job_id, cron_expr) in requested.into_iter().chain(due) {
            if self.running.lock().await.len() + claimed.len() >= self.max_runs {
                // No free slot: the rest stay due, for the next poll or another worker.
                break;
            }
            if claimed.iter().any(|(j, _, _)| j.job_id == job_id)
                || self.running.lock().await.contains_key(&job_id)
            {
                // Already starting or running here: the tick stays due and runs once this run ends.
                report.busy.push(job_id);
                continue;
            }
            let mut conn = PgConnection::connect_with(&self.connect).await?;
            let (ns, key) = lock_key(job_id);
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(ns)
                .bind(key)
                .fetch_one(&mut conn)
                .await?;
            if !locked {
                // Running on another worker: the tick stays due and runs once that run ends.
                report.busy.push(job_id);
                let _ = conn.close().await;
                continue;
            }
            match schedule_id {
                Some(id) => self.advance(&mut tx, id, cron_expr.as_deref(), now).await?,
                None => {
                    sqlx::query("UPDATE jobs SET run_requested_at = NULL WHERE job_id = $1")
                        .bind(job_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let job: Job = sqlx::query_as(
                "SELECT job_id, job_type, tenant_id, config FROM jobs WHERE job_id = $1",
            )
            .bind(job_id)
            .fetch_one(&mut *tx)
            .await?;
            let ctx = RunContext::new(Uuid::new_v4());
            let trigger = if schedule_id.is_some() {
                Trigger::Schedule
            } else {
                Trigger::RunNow
            };
            sqlx::query(
                // Started = when the run holds the lock (the database's clock), not when the poll began.
                "INSERT INTO job_runs (run_id, job_id, started_at, status, worker_id, trigger) \
                 VALUES ($1, $2, clock_timestamp(), $5, $3, $4)",
            )
            .bind(ctx.run_id)
            .bind(job_id)
            .bind(&self.worker_id)
            .bind(trigger)
            .bind(RunStatus::Running)
            .execute(&mut *tx)
            .await?;
            claimed.push((job, ctx, conn));
        }
        tx.commit().await?;
        for (job, ctx, conn) in claimed {
            report.started.push(ctx.run_id);
            self.start(job, ctx, conn).await;
        }
        Ok(report)
    }

    /// Gives schedules that have no next time (new, or resumed) their next time after `now`.
    async fn schedule_new(&self, now: DateTime<Utc>) -> Result<(), SchedError> {
        let fresh: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT schedule_id, cron_expr FROM job_schedules WHERE next_run_at IS NULL AND enabled")
                .fetch_all(&self.pool)
                .await?;
        for (id, expr) in fresh {
            let next = CronExpr::from_str(&expr)
                .ok()
                .and_then(|c| c.next_after(now));
            if next.is_none() {
                tracing::warn!(schedule = %id, %expr, "schedule has an invalid cron expression; disabling it");
                sqlx::query("UPDATE job_schedules SET enabled = false WHERE schedule_id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                continue;
            }
            sqlx::query("UPDATE job_schedules SET next_run_at = $2 WHERE schedule_id = $1 AND next_run_at IS NULL")
                .bind(id)
                .bind(next)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The next time after `now`: missed ticks collapse into the one run being started.
    async fn advance(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        schedule_id: Uuid,
        expr: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), SchedError> {
        let next = expr
            .and_then(|e| CronExpr::from_str(e).ok())
            .and_then(|c| c.next_after(now));
        sqlx::query("UPDATE job_schedules SET next_run_at = $2, enabled = enabled AND $2 IS NOT NULL WHERE schedule_id = $1")
            .bind(schedule_id)
            .bind(next)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn start(&self, job: Job, ctx: RunContext, conn: PgConnection) {
        let runner = self.runners.get(&job.job_type).cloned();
        let pool = self.pool.clone();
        let store = self.store.clone();
        let heartbeat = self.heartbeat;
        let running = self.running.clone();
        let worker = self.worker_id.clone();
        let job_id = job.job_id;
        let task_ctx = ctx.clone();
        let task = tokio::spawn(async move {
            let ctx = task_ctx;
            let conn = Arc::new(Mutex::new(conn));
            audit(&store, "job.run_started", &job, &ctx, &worker, None).await;
            let lost = Arc::new(AtomicBool::new(false));
            let beat = tokio::spawn(heartbeat_loop(
                conn.clone(),
                pool.clone(),
                ctx.clone(),
                lost.clone(),
                heartbeat,
            ));
            let outcome = match &runner {
                Some(r) => r.run(&job, ctx.clone()).await.map_err(|e| e.chain()),
                None => Err(format!("no runner for job type '{}'", job.job_type)),
            };
            beat.abort();
            let outcome = match outcome {
                _ if lost.load(Ordering::SeqCst) => {
                    Err("lost the job lock (its database connection died); stopped".to_string())
                }
                Ok(()) if ctx.should_stop() => Ok(()),
                Err(e) if ctx.should_stop() => Err(format!("stopped by shutdown: {e}")),
                other => other,
            };
            let (status, error) = match &outcome {
                Ok(()) => (RunStatus::Success, None),
                Err(e) => (RunStatus::Failed, Some(e.clone())),
            };
            let recorded = sqlx::query(
                "UPDATE job_runs SET status = $2, error = $3, finished_at = now(), progress = $4 WHERE run_id = $1 AND status = 'running'",
            )
            .bind(ctx.run_id)
            .bind(status)
            .bind(&error)
            .bind(sqlx::types::Json(ctx.progress()))
            .execute(&pool)
            .await;
            if let Err(e) = recorded {
                tracing::error!(run = %ctx.run_id, error = %e, "could not record the end of a run");
            }
            audit(
                &store,
                if error.is_none() {
                    "job.run_succeeded"
                } else {
                    "job.run_failed"
                },
                &job,
                &ctx,
                &worker,
                error.as_deref(),
            )
            .await;
            // Release the lock on the connection that took it, only now that the run is recorded.
            let mut c = conn.lock().await;
            let (ns, key) = lock_key(job_id);
            let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(ns)
                .bind(key)
                .execute(&mut *c)
                .await;
            running.lock().await.remove(&job_id);
        });
        self.running
            .lock()
            .await
            .insert(job_id, Running { ctx, task });
    }

    /// Fails runs marked `running` whose lock nobody holds: their worker is gone.
    async fn reap_orphans(&self) -> Result<Vec<Uuid>, SchedError> {
        let candidates: Vec<(Uuid, Uuid)> =
            sqlx::query_as("SELECT run_id, job_id FROM job_runs WHERE status = 'running'")
                .fetch_all(&self.pool)
                .await?;
        let mut failed = Vec::new();
        for (run_id, job_id) in candidates {
            if self.running.lock().await.contains_key(&job_id) {
                continue;
            }
            let mut conn = self.pool.acquire().await?;
            let (ns, key) = lock_key(job_id);
            let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(ns)
                .bind(key)
                .fetch_one(&mut *conn)
                .await?;
            if !free {
                continue;
            }
            let n = sqlx::query(
                "UPDATE job_runs SET status = 'failed', finished_at = now(), \
                 error = 'orphaned: its worker stopped without finishing it (the job lock was free)' \
                 WHERE run_id = $1 AND status = 'running'",
            )
            .bind(run_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(ns)
                .bind(key)
                .execute(&mut *conn)
                .await?;
            if n > 0 {
                tracing::warn!(run = %run_id, job = %job_id, "orphaned run marked failed");
                failed.push(run_id);
            }
        }
        Ok(failed)
    }

    /// Polls every `every` until `shutdown` is called.
    pub async fn run_loop(self: Arc<Self>, every: Duration) {
        while !self.stopping.load(Ordering::SeqCst) {
            if let Err(e) = self.tick().await {
                tracing::error!(error = %e, "scheduler poll failed");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Stops claiming, asks running jobs to stop at a safe point, and waits for them to be recorded.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let tasks: Vec<JoinHandle<()>> = {
            let mut running = self.running.lock().await;
            running.values().for_each(|r| r.ctx.request_stop());
            running.drain().map(|(_, r)| r.task).collect()
        };
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Waits until no run of this scheduler is in progress.
    pub async fn wait_idle(&self) {
        loop {
            if self.running.lock().await.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Progress of this worker's running jobs.
    pub async fn running_progress(&self) -> Vec<(Uuid, serde_json::Value)> {
        self.running
            .lock()
            .await
            .iter()
            .map(|(job, r)| (*job, r.ctx.progress()))
            .collect()
    }
}

/// Keeps checking the lock's connection; on failure, stops the run (its lock is gone, so
/// another worker could start the same job). Stores progress as it goes.
async fn heartbeat_loop(
    conn: Arc<Mutex<PgConnection>>,
    pool: PgPool,
    ctx: RunContext,
    lost: Arc<AtomicBool>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let alive = {
            let mut c = conn.lock().await;
            sqlx::query("SELECT 1").execute(&mut *c).await.is_ok()
        };
        if !alive {
            tracing::error!(run = %ctx.run_id, "job lock connection lost: stopping the run");
            lost.store(true, Ordering::SeqCst);
            ctx.request_stop();
            return;
        }
        let _ = sqlx::query(
            "UPDATE job_runs SET progress = $2 WHERE run_id = $1 AND status = 'running'",
        )
        .bind(ctx.run_id)
        .bind(sqlx::types::Json(ctx.progress()))
        .execute(&pool)
        .await;
    }
}

async fn audit(
    store: &Store,
    action: &str,
    job: &Job,
    ctx: &RunContext,
    worker: &str,
    error: Option<&str>,
) {
    let event = AuditEvent {
        actor_name: Some(format!("sentinel-worker {worker}")),
        action: action.to_string(),
        entity_type: Some("job".into()),
        entity_id: Some(job.job_id.to_string()),
        details: json!({"run_id": ctx.run_id, "job_type": job.job_type, "error": error}),
        tenant_id: Some(job.tenant_id.clone()),
        ..AuditEvent::default()
    };
    if let Err(e) = store.audit(&event).await {
        tracing::warn!(error = %e, action, "could not write audit event");
    }
}
