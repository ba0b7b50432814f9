//! The scheduler against real Postgres (a fresh database per test) with a clock the test moves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sentinel_sched::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 30)
        .single()
        .expect("time")
}

/// Counts its runs; waits `hold` (or until told to stop) before finishing.
struct Counting {
    runs: AtomicUsize,
    hold: Duration,
    until_stopped: bool,
}

#[async_trait::async_trait]
impl JobRunner for Counting {
    async fn run(&self, _job: &Job, ctx: RunContext) -> Result<(), JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        ctx.set_progress(json!({"items": 42}));
        let started = std::time::Instant::now();
        loop {
            if ctx.should_stop() {
                return Err(JobError::from("cancelled".to_string()));
            }
            if !self.until_stopped && started.elapsed() >= self.hold {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn runner(hold_ms: u64, until_stopped: bool) -> Arc<Counting> {
    Arc::new(Counting {
        runs: AtomicUsize::new(0),
        hold: Duration::from_millis(hold_ms),
        until_stopped,
    })
}

async fn setup(pool: &PgPool, cron: &str) -> Uuid {
    sentinel_store::Store::from_pool(pool.clone())
        .migrate()
        .await
        .expect("migrate");
    let job = Uuid::new_v4();
    sqlx::query("INSERT INTO jobs (job_id, job_type, tenant_id) VALUES ($1, 'test', 't')")
        .bind(job)
        .execute(pool)
        .await
        .expect("job");
    sqlx::query("INSERT INTO job_schedules (schedule_id, job_id, cron_expr) VALUES ($1, $2, $3)")
        .bind(Uuid::new_v4())
        .bind(job)
        .bind(cron)
        .execute(pool)
        .await
        .expect("schedule");
    job
}

fn scheduler(pool: &PgPool, clock: Arc<ManualClock>, r: Arc<Counting>, name: &str) -> Scheduler {
    Scheduler::new(pool.clone(), clock, name)
        .with_runner("test", r)
        .with_heartbeat(Duration::from_millis(50))
}

async fn statuses(pool: &PgPool) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT status, error FROM job_runs ORDER BY started_at")
        .fetch_all(pool)
        .await
        .expect("runs")
}

#[sqlx::test(migrations = false)]
async fn a_due_schedule_runs_once_and_missed_ticks_collapse(pool: PgPool) {
    setup(&pool, "* * * * *").await;
    let clock = Arc::new(ManualClock::new(t0()));
    let r = runner(0, false);
    let s = scheduler(&pool, clock.clone(), r.clone(), "w1");
    assert!(
        s.tick().await.expect("tick").started.is_empty(),
        "not due before its first minute"
    );
    clock.advance(chrono::Duration::seconds(40));
    assert_eq!(s.tick().await.expect("tick").started.len(), 1);
    s.wait_idle().await;
    // Ten minutes of downtime: one run, not ten.
    clock.advance(chrono::Duration::minutes(10));
    assert_eq!(s.tick().await.expect("tick").started.len(), 1);
    s.wait_idle().await;
    assert!(s.tick().await.expect("tick").started.is_empty());
    assert_eq!(r.runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        statuses(&pool).await,
        vec![("success".into(), None), ("success".into(), None)]
    );
    let next: DateTime<Utc> = sqlx::query_scalar("SELECT next_run_at FROM job_schedules")
        .fetch_one(&pool)
        .await
        .expect("next");
    assert!(next > clock.now().await.expect("now"));
}

#[sqlx::test(migrations = false)]
async fn two_workers_never_run_one_job_at_once(pool: PgPool) {
    setup(&pool, "* * * * *").await;
    let clock = Arc::new(ManualClock::new(t0()));
    let r = runner(300, false);
    let a = scheduler(&pool, clock.clone(), r.clone(), "a");
    let b = scheduler(&pool, clock.clone(), r.clone(), "b");
    a.tick().await.expect("first poll schedules");
    clock.advance(chrono::Duration::minutes(1));
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    let started = ra.expect("a").started.len() + rb.expect("b").started.len();
    assert_eq!(started, 1, "exactly one worker starts the due run");
    // While it runs, the other worker's polls find the job busy.
    let again =
        b.tick().await.expect("tick").started.len() + a.tick().await.expect("tick").started.len();
    assert_eq!(again, 0);
    a.wait_idle().await;
    b.wait_idle().await;
    assert_eq!(r.runs.load(Ordering::SeqCst), 1);
}

#[sqlx::test(migrations = false)]
async fn paused_jobs_do_not_fire_until_resumed_and_run_now_runs_at_once(pool: PgPool) {
    let job = setup(&pool, "*/5 * * * *").await;
    let clock = Arc::new(ManualClock::new(t0()));
    let r = runner(0, false);
    let s = scheduler(&pool, clock.clone(), r.clone(), "w");
    s.tick().await.expect("tick");
    assert!(pause(&pool, job).await.expect("pause"));
    clock.advance(chrono::Duration::minutes(30));
    assert!(s.tick().await.expect("tick").started.is_empty(), "paused");
    assert!(matches!(
        run_now(&pool, job).await,
        Err(SchedError::Paused(_))
    ));
    assert!(resume(&pool, job).await.expect("resume"));
    assert!(
        s.tick().await.expect("tick").started.is_empty(),
        "missed ticks of a pause are not made up"
    );
    assert!(run_now(&pool, job).await.expect("run now"));
    assert_eq!(
        s.tick().await.expect("tick").started.len(),
        1,
        "run-now runs at the next poll"
    );
    s.wait_idle().await;
    clock.advance(chrono::Duration::minutes(5));
    assert_eq!(
        s.tick().await.expect("tick").started.len(),
        1,
        "the schedule fires again"
    );
    s.wait_idle().await;
    assert!(!run_now(&pool, Uuid::new_v4()).await.expect("unknown job"));
    assert_eq!(r.runs.load(Ordering::SeqCst), 2);
}

#[sqlx::test(migrations = false)]
async fn a_clock_going_backwards_never_repeats_a_tick(pool: PgPool) {
    setup(&pool, "* * * * *").await;
    let clock = Arc::new(ManualClock::new(t0()));
    let r = runner(0, false);
    let s = scheduler(&pool, clock.clone(), r.clone(), "w");
    s.tick().await.expect("tick");
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(s.tick().await.expect("tick").started.len(), 1);
    s.wait_idle().await;
    clock.advance(chrono::Duration::minutes(-45));
    assert!(
        s.tick().await.expect("tick").started.is_empty(),
        "back in time: nothing is due again"
    );
    clock.set(t0() + chrono::Duration::minutes(1));
    assert!(
        s.tick().await.expect("tick").started.is_empty(),
        "the minute that already ran does not run twice"
    );
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(s.tick().await.expect("tick").started.len(), 1);
    s.wait_idle().await;
    assert_eq!(r.runs.load(Ordering::SeqCst), 2);
}

#[sqlx::test(migrations = false)]
async fn orphaned_runs_are_failed_with_a_reason(pool: PgPool) {
    let job = setup(&pool, "0 0 1 1 *").await;
    // A run left 'running' by a worker that died: nobody holds its lock.
    sqlx::query("INSERT INTO job_runs (run_id, job_id, status, worker_id) VALUES ($1, $2, 'running', 'dead')")
        .bind(Uuid::new_v4())
        .bind(job)
        .execute(&pool)
        .await
        .expect("run");
    let s = scheduler(
        &pool,
        Arc::new(ManualClock::new(t0())),
        runner(0, false),
        "w",
    );
    assert_eq!(s.tick().await.expect("tick").orphans_failed.len(), 1);
    let (status, error) = statuses(&pool).await.remove(0);
    assert_eq!(status, "failed");
    assert!(error.unwrap_or_default().contains("orphaned"));
}

#[sqlx::test(migrations = false)]
async fn losing_the_lock_connection_stops_the_run(pool: PgPool) {
    let job = setup(&pool, "0 0 1 1 *").await;
    let r = runner(0, true);
    let s = scheduler(&pool, Arc::new(ManualClock::new(t0())), r.clone(), "w");
    run_now(&pool, job).await.expect("run now");
    assert_eq!(s.tick().await.expect("tick").started.len(), 1);
    let (_, key) = lock_key(job);
    let pid: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1::oid LIMIT 1",
    )
    .bind(key as u32 as i64)
    .fetch_one(&pool)
    .await
    .expect("lock holder");
    // Progress is readable while the job runs.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let progress: serde_json::Value = sqlx::query_scalar("SELECT progress FROM job_runs")
        .fetch_one(&pool)
        .await
        .expect("progress");
    assert_eq!(progress["items"], 42);
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&pool)
        .await
        .expect("terminate");
    s.wait_idle().await;
    let (status, error) = statuses(&pool).await.remove(0);
    assert_eq!(status, "failed");
    assert!(error.unwrap_or_default().contains("lost the job lock"));
}

#[sqlx::test(migrations = false)]
async fn shutdown_stops_running_jobs_and_records_them_honestly(pool: PgPool) {
    let job = setup(&pool, "0 0 1 1 *").await;
    let r = runner(0, true);
    let s = scheduler(&pool, Arc::new(ManualClock::new(t0())), r.clone(), "w");
    run_now(&pool, job).await.expect("run now");
    s.tick().await.expect("tick");
    s.shutdown().await;
    let (status, error) = statuses(&pool).await.remove(0);
    assert_eq!(status, "failed");
    assert!(error.unwrap_or_default().contains("stopped by shutdown"));
    run_now(&pool, job).await.expect("run now");
    assert!(
        s.tick().await.expect("tick").started.is_empty(),
        "no claims after shutdown"
    );
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action LIKE 'job.run_%'")
            .fetch_one(&pool)
            .await
            .expect("audit");
    assert_eq!(events, 2, "start and failure are audited");
}

/// Counts to its configured limit, refusing a limit of zero.
struct CountTo;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CountToConfig {
    limit: u32,
}

#[async_trait::async_trait]
impl JobKind for CountTo {
    const NAME: &'static str = "test";
    type Config = CountToConfig;
    fn validate(c: &CountToConfig) -> Result<(), String> {
        if c.limit == 0 {
            return Err("limit must be at least 1".into());
        }
        Ok(())
    }
    async fn run(&self, _: &Job, c: CountToConfig, ctx: RunContext) -> Result<(), JobError> {
        ctx.set_progress(json!({"counted": c.limit}));
        if c.limit > 5 {
            let io = std::io::Error::other("the counter overflowed");
            return Err(JobError::failed(format!("counting to {}", c.limit), io));
        }
        Ok(())
    }
}

#[sqlx::test(migrations = false)]
async fn a_kind_runs_with_its_checked_config_and_a_failure_keeps_its_cause(pool: PgPool) {
    let job = setup(&pool, "* * * * *").await;
    let clock = Arc::new(ManualClock::new(t0()));
    let s = Scheduler::new(pool.clone(), clock.clone(), "w1").with_kind(CountTo);
    for config in [
        json!({"limit": 3}),
        json!({"limit": 0}),
        json!({"limit": 9}),
    ] {
        sqlx::query("UPDATE jobs SET config = $2 WHERE job_id = $1")
            .bind(job)
            .bind(&config)
            .execute(&pool)
            .await
            .expect("config");
        assert!(sentinel_sched::run_now(&pool, job).await.expect("run now"));
        assert_eq!(s.tick().await.expect("tick").started.len(), 1);
        s.wait_idle().await;
    }
    assert_eq!(
        statuses(&pool).await,
        vec![
            ("success".into(), None),
            (
                "failed".into(),
                Some("test config: limit must be at least 1".into())
            ),
            (
                "failed".into(),
                Some("counting to 9: the counter overflowed".into())
            ),
        ]
    );
    let progress: serde_json::Value =
        sqlx::query_scalar("SELECT progress FROM job_runs ORDER BY started_at LIMIT 1")
            .fetch_one(&pool)
            .await
            .expect("progress");
    assert_eq!(progress, json!({"counted": 3}));
}

#[sqlx::test(migrations = false)]
async fn a_worker_holds_no_more_runs_than_its_slots_and_the_rest_stay_due(pool: PgPool) {
    setup(&pool, "* * * * *").await;
    setup(&pool, "* * * * *").await;
    let clock = Arc::new(ManualClock::new(t0()));
    let r = runner(0, true);
    let one = scheduler(&pool, clock.clone(), r.clone(), "w1").with_max_runs(1);
    assert!(
        one.tick().await.expect("tick").started.is_empty(),
        "not due before the first minute"
    );
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(one.tick().await.expect("tick").started.len(), 1, "one slot");
    assert!(
        one.tick().await.expect("tick").started.is_empty(),
        "its slot is taken"
    );
    // The other due job waits for a free slot, here or on another worker.
    let other = scheduler(&pool, clock.clone(), r.clone(), "w2").with_max_runs(1);
    assert_eq!(other.tick().await.expect("tick").started.len(), 1);
    one.shutdown().await;
    other.shutdown().await;
}
