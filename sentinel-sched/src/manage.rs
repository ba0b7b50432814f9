//! Declaring intent: jobs and schedules created, edited and deleted by operators (the web),
//! and the run history they read. Nothing here runs a job; workers pick the rows up.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{CronExpr, RunStatus, SchedError, Trigger};

/// What an operator declares about a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Shown in lists; the job type when absent.
    pub name: Option<String>,
    /// The job's kind.
    pub job_type: String,
    /// The tenant it works on.
    pub tenant_id: String,
    /// Its configuration (checked by its kind first).
    pub config: Value,
    /// Whether its schedules fire.
    pub enabled: bool,
}

/// A schedule as the pages show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ScheduleView {
    /// The schedule's id.
    pub schedule_id: Uuid,
    /// Its job.
    pub job_id: Uuid,
    /// Standard 5-field cron, in UTC.
    pub cron_expr: String,
    /// When it fires next (computed by the next poll).
    pub next_run_at: Option<DateTime<Utc>>,
    /// Whether it fires.
    pub enabled: bool,
}

/// A job as the pages show it: its declaration, its last run and its schedules.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobView {
    /// The job's id.
    pub job_id: Uuid,
    /// Its name, if any.
    pub name: Option<String>,
    /// Its kind.
    pub job_type: String,
    /// The tenant it works on.
    pub tenant_id: String,
    /// Its configuration.
    pub config: Value,
    /// Whether its schedules fire.
    pub enabled: bool,
    /// Paused by an operator: nothing starts it until resumed.
    pub paused: bool,
    /// A run-now request not yet taken up.
    pub run_requested_at: Option<DateTime<Utc>>,
    /// When it was declared.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// How its last run ended.
    pub last_status: Option<RunStatus>,
    /// When its last run started.
    pub last_started_at: Option<DateTime<Utc>>,
    /// Its schedules.
    #[sqlx(skip)]
    pub schedules: Vec<ScheduleView>,
}

/// A run as the history shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunView {
    /// The run's id.
    pub run_id: Uuid,
    /// Its job.
    pub job_id: Uuid,
    /// Its job's name, if the job still exists.
    pub job_name: Option<String>,
    /// Its job's kind, if the job still exists.
    pub job_type: Option<String>,
    /// When the run took the job's lock.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it took (so far, while running).
    pub duration_secs: Option<f64>,
    /// How it ended, or that it runs.
    pub status: RunStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Its progress counters.
    pub progress: Value,
    /// The worker that ran it.
    pub worker_id: Option<String>,
    /// What started it.
    pub trigger: Option<Trigger>,
}

/// Which runs to list: newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only this job's runs.
    pub job_id: Option<Uuid>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this tenant's jobs.
    pub tenant_id: Option<String>,
    /// Which page, from 0.
    pub page: u32,
    /// Runs a page.
    pub per_page: u32,
}

const JOB_SELECT: &str = "SELECT j.job_id, j.name, j.job_type, j.tenant_id, j.config, j.enabled, j.paused, j.run_requested_at, \
        j.created_at, j.updated_at, r.status AS last_status, r.started_at AS last_started_at \
    FROM jobs j LEFT JOIN LATERAL (SELECT status, started_at FROM job_runs x WHERE x.job_id = j.job_id \
        ORDER BY started_at DESC LIMIT 1) r ON true";

async fn attach_schedules(pool: &PgPool, jobs: &mut [JobView]) -> Result<(), SchedError> {
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.job_id).collect();
    let schedules: Vec<ScheduleView> = sqlx::query_as(
        "SELECT schedule_id, job_id, cron_expr, next_run_at, enabled FROM job_schedules \
         WHERE job_id = ANY($1) ORDER BY created_at, schedule_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    for job in jobs.iter_mut() {
        job.schedules = schedules
            .iter()
            .filter(|s| s.job_id == job.job_id)
            .cloned()
            .collect();
    }
    Ok(())
}

/// Every job (of `tenant`, when given) with its schedules and last run, oldest first.
pub async fn list_jobs(pool: &PgPool, tenant: Option<&str>) -> Result<Vec<JobView>, SchedError> {
    let mut jobs: Vec<JobView> = sqlx::query_as(&format!(
        "{JOB_SELECT} WHERE $1::text IS NULL OR j.tenant_id = $1 ORDER BY j.created_at, j.job_id"
    ))
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    attach_schedules(pool, &mut jobs).await?;
    Ok(jobs)
}

/// A job by id, with its schedules.
pub async fn get_job(pool: &PgPool, job_id: Uuid) -> Result<Option<JobView>, SchedError> {
    let mut jobs: Vec<JobView> = sqlx::query_as(&format!("{JOB_SELECT} WHERE j.job_id = $1"))
        .bind(job_id)
        .fetch_all(pool)
        .await?;
    attach_schedules(pool, &mut jobs).await?;
    Ok(jobs.pop())
}

/// `$1` is the job's id; `$2`.. the spec's columns, in [`SPEC_COLUMNS`] order.
fn bind_spec<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    job_id: Uuid,
    spec: &'q JobSpec,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(job_id)
        .bind(&spec.job_type)
        .bind(&spec.tenant_id)
        .bind(&spec.config)
        .bind(spec.enabled)
        .bind(&spec.name)
}

/// The columns [`bind_spec`] binds as `$2`..`$6`.
const SPEC_COLUMNS: [&str; 5] = ["job_type", "tenant_id", "config", "enabled", "name"];

/// Declares a job; returns its id.
pub async fn create_job(pool: &PgPool, spec: &JobSpec) -> Result<Uuid, SchedError> {
    let id = Uuid::new_v4();
    let sql = format!(
        "INSERT INTO jobs (job_id, {}) VALUES ($1, $2, $3, $4, $5, $6)",
        SPEC_COLUMNS.join(", ")
    );
    bind_spec(sqlx::query(&sql), id, spec).execute(pool).await?;
    Ok(id)
}

/// Replaces what was declared about a job. `false` when there is no such job.
pub async fn update_job(pool: &PgPool, job_id: Uuid, spec: &JobSpec) -> Result<bool, SchedError> {
    let set: Vec<String> = SPEC_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 2))
        .collect();
    let sql = format!(
        "UPDATE jobs SET {}, updated_at = now() WHERE job_id = $1",
        set.join(", ")
    );
    let n = bind_spec(sqlx::query(&sql), job_id, spec)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Switches a job's schedules on or off. `false` when there is no such job.
pub async fn set_job_enabled(
    pool: &PgPool,
    job_id: Uuid,
    enabled: bool,
) -> Result<bool, SchedError> {
    let n = sqlx::query("UPDATE jobs SET enabled = $2, updated_at = now() WHERE job_id = $1")
        .bind(job_id)
        .bind(enabled)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Deletes a job and its schedules; its run history stays. A run in progress finishes.
pub async fn delete_job(pool: &PgPool, job_id: Uuid) -> Result<bool, SchedError> {
    let n = sqlx::query("DELETE FROM jobs WHERE job_id = $1")
        .bind(job_id)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Adds a schedule; its first time is computed by the next poll. `None` when there is no such job.
pub async fn add_schedule(
    pool: &PgPool,
    job_id: Uuid,
    cron: &CronExpr,
    enabled: bool,
) -> Result<Option<Uuid>, SchedError> {
    let id = Uuid::new_v4();
    let n = sqlx::query(
        "INSERT INTO job_schedules (schedule_id, job_id, cron_expr, enabled) \
         SELECT $1, job_id, $3, $4 FROM jobs WHERE job_id = $2",
    )
    .bind(id)
    .bind(job_id)
    .bind(cron.to_string())
    .bind(enabled)
    .execute(pool)
    .await?
    .rows_affected();
    Ok((n > 0).then_some(id))
}

/// Changes a schedule's expression or switch; its next time is recomputed by the next poll.
/// Returns the schedule's job, or `None` when there is no such schedule.
pub async fn update_schedule(
    pool: &PgPool,
    schedule_id: Uuid,
    cron: &CronExpr,
    enabled: bool,
) -> Result<Option<Uuid>, SchedError> {
    Ok(sqlx::query_scalar(
        "UPDATE job_schedules SET cron_expr = $2, enabled = $3, next_run_at = NULL \
         WHERE schedule_id = $1 RETURNING job_id",
    )
    .bind(schedule_id)
    .bind(cron.to_string())
    .bind(enabled)
    .fetch_optional(pool)
    .await?)
}

/// Deletes a schedule; returns its job, or `None` when there is no such schedule.
pub async fn delete_schedule(pool: &PgPool, schedule_id: Uuid) -> Result<Option<Uuid>, SchedError> {
    Ok(
        sqlx::query_scalar("DELETE FROM job_schedules WHERE schedule_id = $1 RETURNING job_id")
            .bind(schedule_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The tenant of the job a schedule belongs to, if the schedule exists.
pub async fn schedule_tenant(
    pool: &PgPool,
    schedule_id: Uuid,
) -> Result<Option<String>, SchedError> {
    Ok(sqlx::query_scalar(
        "SELECT j.tenant_id FROM job_schedules s JOIN jobs j ON j.job_id = s.job_id WHERE s.schedule_id = $1",
    )
    .bind(schedule_id)
    .fetch_optional(pool)
    .await?)
}

/// What the worker's control API reports: every job with its schedules (and their next
/// times) and its running run, if any, oldest job first.
pub async fn job_status(pool: &PgPool) -> Result<Vec<serde_json::Value>, SchedError> {
    Ok(sqlx::query_scalar(
        "SELECT json_build_object('job_id', j.job_id, 'job_type', j.job_type, 'tenant_id', j.tenant_id, 'name', j.name, \
           'enabled', j.enabled, 'paused', j.paused, 'run_requested_at', j.run_requested_at, \
           'schedules', coalesce((SELECT json_agg(json_build_object('schedule_id', s.schedule_id, 'cron_expr', s.cron_expr, \
              'next_run_at', s.next_run_at, 'enabled', s.enabled)) FROM job_schedules s WHERE s.job_id = j.job_id), '[]'::json), \
           'running', (SELECT json_build_object('run_id', r.run_id, 'started_at', r.started_at, 'worker_id', r.worker_id, \
              'progress', r.progress) FROM job_runs r WHERE r.job_id = j.job_id AND r.status = 'running' LIMIT 1)) \
         FROM jobs j ORDER BY j.created_at",
    )
    .fetch_all(pool)
    .await?)
}

/// A page of the run history, newest first, and the number of runs matching the filter.
pub async fn list_runs(
    pool: &PgPool,
    filter: &RunFilter,
) -> Result<(Vec<RunView>, i64), SchedError> {
    let per_page = i64::from(filter.per_page.clamp(1, 10_000));
    let cond = "($1::uuid IS NULL OR r.job_id = $1) AND ($2::text IS NULL OR r.status = $2) \
                AND ($3::text IS NULL OR j.tenant_id = $3)";
    let rows = sqlx::query_as(&format!(
        "SELECT r.run_id, r.job_id, j.name AS job_name, j.job_type, r.started_at, r.finished_at, \
                extract(epoch FROM (coalesce(r.finished_at, clock_timestamp()) - r.started_at))::float8 AS duration_secs, \
                r.status, r.error, r.progress, r.worker_id, r.trigger \
         FROM job_runs r LEFT JOIN jobs j ON j.job_id = r.job_id WHERE {cond} \
         ORDER BY r.started_at DESC, r.run_id LIMIT $4 OFFSET $5"
    ))
    .bind(filter.job_id)
    .bind(filter.status.map(RunStatus::as_str))
    .bind(&filter.tenant_id)
    .bind(per_page)
    .bind(i64::from(filter.page) * per_page)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM job_runs r LEFT JOIN jobs j ON j.job_id = r.job_id WHERE {cond}"
    ))
    .bind(filter.job_id)
    .bind(filter.status.map(RunStatus::as_str))
    .bind(&filter.tenant_id)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// For a tenant without any job, creates `spec` with a schedule and asks for a run at once
/// (a first start that should begin working unattended). `None` when the tenant of `spec`
/// already has jobs. Workers starting together create it once: the check and the insert hold
/// a table lock.
pub async fn create_first_job(
    pool: &PgPool,
    spec: &JobSpec,
    cron: &CronExpr,
) -> Result<Option<Uuid>, SchedError> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE tenant_id = $1)")
        .bind(&spec.tenant_id)
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(None);
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO jobs (job_id, job_type, tenant_id, config, enabled, name, run_requested_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now())",
    )
    .bind(id)
    .bind(&spec.job_type)
    .bind(&spec.tenant_id)
    .bind(&spec.config)
    .bind(spec.enabled)
    .bind(&spec.name)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO job_schedules (schedule_id, job_id, cron_expr, enabled) VALUES ($1, $2, $3, true)")
        .bind(Uuid::new_v4())
        .bind(id)
        .bind(cron.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(id))
}
