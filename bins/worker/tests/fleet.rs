//! Several real `sentinel-worker serve` processes sharing one database.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use rand::{Rng, SeedableRng};
use sentinel_sim::Profile;
use uuid::Uuid;

fn spawn_worker(sim: &sentinel_sim::RunningSim, db: &TestDb, name: &str) -> Child {
    let port = sentinel_testkit::free_port();
    worker_command(sim, db, &["serve"])
        .env("WORKER_API_ADDR", format!("127.0.0.1:{port}"))
        .env("SCHEDULER_POLL_SECONDS", "1")
        .env("WORKER_ID", name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker")
}

fn stop(mut child: Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

type Run = (
    Uuid,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    String,
    Option<String>,
);

async fn runs(db: &TestDb) -> Vec<Run> {
    sqlx::query_as("SELECT job_id, started_at, finished_at, status, trigger FROM job_runs ORDER BY job_id, started_at")
        .fetch_all(&db.pool)
        .await
        .expect("runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_run_every_due_schedule_and_never_overlap_a_job() {
    let sim = spawn_sim(Profile::Tiny, 301).await;
    let db = create_db().await;
    sentinel_store::Store::from_pool(db.pool.clone())
        .migrate()
        .await
        .expect("migrate");
    let jobs: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    for j in &jobs {
        sqlx::query(
            "INSERT INTO jobs (job_id, job_type, tenant_id) VALUES ($1, 'refresh_mv', 't')",
        )
        .bind(j)
        .execute(&db.pool)
        .await
        .expect("job");
        sqlx::query("INSERT INTO job_schedules (schedule_id, job_id, cron_expr) VALUES ($1, $2, '* * * * *')")
            .bind(Uuid::new_v4())
            .bind(j)
            .execute(&db.pool)
            .await
            .expect("schedule");
    }
    let workers: Vec<Child> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| spawn_worker(&sim, &db, n))
        .collect();
    let start: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&db.pool)
        .await
        .expect("now");
    // Run until two minute boundaries have passed, asking for extra runs now and then.
    let mut rng = rand::rngs::StdRng::seed_from_u64(301);
    let deadline = Instant::now() + Duration::from_secs(150);
    let boundaries = loop {
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&db.pool)
            .await
            .expect("now");
        let crossed = (now.timestamp() / 60 - start.timestamp() / 60) as usize;
        if crossed >= 2 && now.timestamp() % 60 >= 15 {
            break crossed;
        }
        assert!(Instant::now() < deadline, "took too long");
        let j = jobs[rng.random_range(0..jobs.len())];
        sqlx::query("UPDATE jobs SET run_requested_at = now() WHERE job_id = $1")
            .bind(j)
            .execute(&db.pool)
            .await
            .expect("run-now");
        tokio::time::sleep(Duration::from_millis(700)).await;
    };
    for w in workers {
        stop(w);
    }
    let all = runs(&db).await;
    let mut by_job: BTreeMap<Uuid, Vec<&Run>> = BTreeMap::new();
    for r in &all {
        by_job.entry(r.0).or_default().push(r);
    }
    for job in &jobs {
        let rs = by_job.get(job).cloned().unwrap_or_default();
        let scheduled: Vec<&&Run> = rs
            .iter()
            .filter(|r| r.4.as_deref() == Some("schedule"))
            .collect();
        for k in 1..=boundaries {
            let minute =
                DateTime::<Utc>::from_timestamp((start.timestamp() / 60 + k as i64) * 60, 0)
                    .expect("minute");
            let ran = scheduled
                .iter()
                .any(|r| r.1 >= minute && r.1 < minute + chrono::Duration::seconds(20));
            assert!(
                ran,
                "job {job}: the schedule due at {minute} did not run (runs: {rs:?})"
            );
        }
        for pair in rs.windows(2) {
            let finished = pair[0].2.expect("finished");
            assert!(
                pair[1].1 >= finished,
                "runs of {job} overlap: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
        assert!(rs.iter().all(|r| r.3 == "success"), "{rs:?}");
    }
    let workers_used: i64 = sqlx::query_scalar("SELECT count(DISTINCT worker_id) FROM job_runs")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert!(workers_used >= 2, "the work was shared");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_run_is_failed_and_the_next_runs_elsewhere() {
    let sim = spawn_sim(Profile::Small, 302).await;
    // Slow the tenant down so the ingestion is surely still running when its worker dies.
    control(
        &sim,
        "/_sim/faults",
        serde_json::json!({"rates": {"slow": 1.0}, "slow_ms": 50}),
    )
    .await;
    let db = create_db().await;
    sentinel_store::Store::from_pool(db.pool.clone())
        .migrate()
        .await
        .expect("migrate");
    let job = Uuid::new_v4();
    let tid = sim.state.read_tenant().tenant_id.clone();
    sqlx::query("INSERT INTO jobs (job_id, job_type, tenant_id, config, run_requested_at) VALUES ($1, 'graph_ingest', $2, '{\"permission_mode\": \"exhaustive\"}', now())")
        .bind(job)
        .bind(&tid)
        .execute(&db.pool)
        .await
        .expect("job");
    let mut a = spawn_worker(&sim, &db, "a");
    let deadline = Instant::now() + Duration::from_secs(60);
    let running_on = loop {
        let w: Option<String> =
            sqlx::query_scalar("SELECT worker_id FROM job_runs WHERE status = 'running'")
                .fetch_optional(&db.pool)
                .await
                .expect("q");
        if let Some(w) = w {
            break w;
        }
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(running_on, "a");
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill().expect("kill -9");
    let _ = a.wait();
    let b = spawn_worker(&sim, &db, "b");
    // Within a couple of polls the orphan is failed with a reason.
    let reason = loop {
        let r: Option<Option<String>> = sqlx::query_scalar(
            "SELECT error FROM job_runs WHERE worker_id = 'a' AND status = 'failed'",
        )
        .fetch_optional(&db.pool)
        .await
        .expect("q");
        if let Some(r) = r {
            break r.unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "the orphan was never failed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(reason.contains("orphaned"), "{reason}");
    control(&sim, "/_sim/faults", serde_json::json!({})).await;
    sqlx::query("UPDATE jobs SET run_requested_at = now() WHERE job_id = $1")
        .bind(job)
        .execute(&db.pool)
        .await
        .expect("run-now");
    let finished = loop {
        let s: Option<(String, String)> = sqlx::query_as(
            "SELECT worker_id, status FROM job_runs WHERE worker_id <> 'a' AND status <> 'running'",
        )
        .fetch_optional(&db.pool)
        .await
        .expect("q");
        if let Some(s) = s {
            break s;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(90),
            "the next run never finished"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    stop(b);
    assert_eq!(
        finished,
        ("b".to_string(), "success".to_string()),
        "the next run happened on the other worker"
    );
    assert_matches_truth(&sim, &db).await;
    db.drop_db().await;
}
