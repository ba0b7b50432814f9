//! The fleet bench (issue 17): the simulator serves many tenants of mixed sizes and budget bands
//! on one address, as Microsoft does; each tenant is added to one database with its band
//! (`sentinel-worker tenants add --band`), and 1, 2 and 3 real `sentinel-worker serve` processes
//! scan them all. From each tenant's own accounting in the simulator it prints the SharePoint RU
//! spent per (simulated) minute against the sum of the budgets, the 429s, and the most RU any
//! tenant was charged in one sliding minute against its budget.
//!
//!   cargo build --release -p sentinel-worker -p sentinel-benches
//!   target/release/fleet_bench --tenants 12 --workers 1,2,3
//!
//! Needs PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use sentinel_benches::sibling_binary;
use sentinel_sim::{Profile, RunningFleet, SimConfig, spawn_fleet};
use sentinel_testkit::{FleetTenant, TestDb, sim_env};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Tenants in the fleet: every third is small (~20k items), the others tiny; bands 1 to 5
    /// in turn (1,250 to 6,250 RU per minute).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=100))]
    tenants: u64,
    /// Numbers of worker processes to run, one fleet each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    workers: Vec<usize>,
    /// Simulated seconds per real second (60: a budget minute lasts one second), for the
    /// simulator and the workers alike.
    #[arg(long, default_value_t = 60.0)]
    time_scale: f64,
    #[arg(long, default_value_t = 100)]
    seed: u64,
    /// Give up on a round after this many real seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

fn band_of(n: u64) -> u32 {
    (n % 5) as u32 + 1
}

fn configs(args: &Args) -> Vec<SimConfig> {
    (0..args.tenants)
        .map(|n| SimConfig {
            profile: if n % 3 == 0 {
                Profile::Small
            } else {
                Profile::Tiny
            },
            seed: args.seed + n,
            ru_per_minute: 1_250 * band_of(n),
            time_scale: args.time_scale,
            ..SimConfig::default()
        })
        .collect()
}

fn run(worker: &std::path::Path, fleet: &RunningFleet, db: &TestDb, args: &[&str]) -> Result<()> {
    let mut c = Command::new(worker);
    c.args(args);
    sim_env(&mut c, &FleetTenant(fleet, 0), db);
    let out = c.output().context("run sentinel-worker")?;
    if !out.status.success() {
        bail!(
            "sentinel-worker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn serve(
    worker: &std::path::Path,
    fleet: &RunningFleet,
    db: &TestDb,
    n: usize,
    time_scale: f64,
) -> Result<Child> {
    let mut c = Command::new(worker);
    c.arg("serve");
    sim_env(&mut c, &FleetTenant(fleet, 0), db);
    c.env(
        "WORKER_API_ADDR",
        format!("127.0.0.1:{}", sentinel_testkit::free_port()),
    )
    .env("SCHEDULER_POLL_SECONDS", "1")
    .env("WORKER_ID", format!("worker-{n}"))
    .env("GRAPH_BUDGET_TIME_SCALE", time_scale.to_string())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    Ok(c.spawn()?)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// One round: a fresh fleet and database, every tenant added, `workers` processes until every
/// tenant's first scan is done.
async fn round(args: &Args, worker: &std::path::Path, workers: usize) -> Result<Value> {
    let fleet = spawn_fleet(configs(args), "127.0.0.1:0".parse()?).await?;
    let db = sentinel_testkit::create_db().await;
    let ids: Vec<String> = fleet
        .tenants
        .iter()
        .map(|t| t.read_tenant().tenant_id.clone())
        .collect();
    for (n, id) in ids.iter().enumerate() {
        let band = band_of(n as u64).to_string();
        run(
            worker,
            &fleet,
            &db,
            &["tenants", "add", id, "--band", &band],
        )?;
    }
    let started = Instant::now();
    let children: Vec<Child> = (0..workers)
        .map(|n| serve(worker, &fleet, &db, n, args.time_scale))
        .collect::<Result<_>>()?;
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let outcome = loop {
        let (done, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(DISTINCT j.tenant_id) FILTER (WHERE r.status = 'success'), \
                    count(*) FILTER (WHERE r.status = 'failed') \
             FROM job_runs r JOIN jobs j USING (job_id) WHERE j.job_type = 'graph_ingest'",
        )
        .fetch_one(&db.pool)
        .await?;
        if failed > 0 {
            let errors: Vec<Option<String>> =
                sqlx::query_scalar("SELECT error FROM job_runs WHERE status = 'failed'")
                    .fetch_all(&db.pool)
                    .await?;
            break Err(anyhow::anyhow!("{failed} scans failed: {errors:?}"));
        }
        if done as usize == ids.len() {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "{done} of {} tenants scanned in time",
                ids.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let wall = started.elapsed();
    for c in children {
        stop(c);
    }
    outcome?;
    let by_worker: Vec<(String, i64)> = sqlx::query_as(
        "SELECT worker_id, count(*) FROM job_runs r JOIN jobs j USING (job_id) \
         WHERE j.job_type = 'graph_ingest' GROUP BY worker_id ORDER BY worker_id",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut tenants = Vec::new();
    let (mut spent, mut budgets, mut throttled, mut over) = (0u64, 0u64, 0u64, 0usize);
    let mut worst = 0f64;
    for id in &ids {
        let s: Value = reqwest::get(format!("{}/_fleet/{id}/_sim/stats", fleet.url()))
            .await?
            .json()
            .await?;
        let sharepoint = sentinel_benches::sharepoint_ru(&s);
        let peak = s["sharepoint_peak_minute_ru"].as_u64().unwrap_or(0);
        let budget = s["sharepoint_ru_per_minute"].as_u64().unwrap_or(0);
        spent += sharepoint;
        budgets += budget;
        throttled += s["throttled"].as_u64().unwrap_or(0);
        over += usize::from(peak > budget);
        worst = worst.max(peak as f64 / budget.max(1) as f64);
        tenants.push(
            json!({"tenant": id, "budget": budget, "peak_minute_ru": peak,
                            "sharepoint_ru": sharepoint, "throttled": s["throttled"]}),
        );
    }
    let minutes = wall.as_secs_f64() * args.time_scale / 60.0;
    fleet.shutdown().await;
    db.drop_db().await;
    Ok(json!({
        "workers": workers,
        "tenants": ids.len(),
        "wall_s": (wall.as_secs_f64() * 10.0).round() / 10.0,
        "simulated_minutes": (minutes * 10.0).round() / 10.0,
        "sharepoint_ru": spent,
        "ru_per_minute": (spent as f64 / minutes).round(),
        "sum_of_budgets_per_minute": budgets,
        "share_of_budgets": ((spent as f64 / minutes) / budgets as f64 * 1000.0).round() / 1000.0,
        "throttled": throttled,
        "tenants_over_budget_in_a_minute": over,
        "worst_minute_over_budget": (worst * 1000.0).round() / 1000.0,
        "scans_by_worker": by_worker,
        "per_tenant": tenants,
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        bail!("--time-scale must be a positive number");
    }
    if args.workers.iter().any(|&w| w == 0 || w > 16) {
        bail!("--workers takes numbers of processes from 1 to 16, e.g. 1,2,3");
    }
    let worker = sibling_binary("sentinel-worker")?;
    for &w in &args.workers {
        let r = round(&args, &worker, w).await?;
        println!("{r}");
    }
    Ok(())
}
