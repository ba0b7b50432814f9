//! What the end-to-end benches share: finding the release binaries next to the bench, and a
//! scan by the real `sentinel-worker sync` measured from outside (the simulator's counters and
//! the worker's peak RSS).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sentinel_sim::Profile;
use serde_json::Value;

pub mod web;

/// Which simulated tenant a bench runs against.
#[derive(Debug, clap::Args)]
pub struct TenantArgs {
    /// tiny, small (~20k items), medium (~200k) or large (~1M).
    #[arg(long, default_value = "small")]
    pub profile: String,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// tiny, small, medium or large.
pub fn parse_profile(name: &str) -> Result<Profile> {
    Ok(match name {
        "tiny" => Profile::Tiny,
        "small" => Profile::Small,
        "medium" => Profile::Medium,
        "large" => Profile::Large,
        other => bail!("--profile must be tiny, small, medium or large, got '{other}'"),
    })
}

/// A binary of the workspace built next to the running bench (`target/release/<name>`).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()?
        .parent()
        .context("exe dir")?
        .join(name);
    if !path.exists() {
        bail!(
            "{} is missing: cargo build --release -p {name}",
            path.display()
        );
    }
    Ok(path)
}

/// Peak resident set of a process, in KiB, while it runs (`VmHWM` only grows).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[derive(Debug)]
pub struct Scan {
    pub wall: Duration,
    pub peak_rss_kib: u64,
    pub ru: u64,
    /// RU charged to the SharePoint budget (the directory's budget is separate).
    pub sharepoint_ru: u64,
    pub requests: u64,
    pub throttled: u64,
}

/// RU charged to the SharePoint budget, of the simulator's `/_sim/stats` (the directory's
/// delta rounds have a budget of their own).
pub fn sharepoint_ru(stats: &Value) -> u64 {
    let directory: u64 = ["/v1.0/users/delta", "/v1.0/groups/delta"]
        .iter()
        .map(|r| stats["ru_by_endpoint"][*r].as_u64().unwrap_or(0))
        .sum();
    stats["ru_spent"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(directory)
}

async fn stats(sim: &str) -> Result<Value> {
    Ok(reqwest::get(format!("{sim}/_sim/stats"))
        .await?
        .json()
        .await?)
}

/// Runs `sentinel-worker sync --permissions <mode>` against `sim` into `db`, paced to `budget`
/// RU per (simulated) minute.
pub async fn scan(
    worker: &std::path::Path,
    sim: &sentinel_sim::RunningSim,
    db: &sentinel_testkit::TestDb,
    mode: &str,
    budget: u32,
    time_scale: f64,
) -> Result<Scan> {
    run_sync(
        worker,
        sim,
        db,
        &["--permissions", mode],
        budget,
        time_scale,
    )
    .await
}

/// Runs `sentinel-worker sync <args>` against `sim` into `db`, paced to `budget` RU per
/// (simulated) minute, measured from outside.
pub async fn run_sync(
    worker: &std::path::Path,
    sim: &sentinel_sim::RunningSim,
    db: &sentinel_testkit::TestDb,
    args: &[&str],
    budget: u32,
    time_scale: f64,
) -> Result<Scan> {
    let before = stats(&sim.url()).await?;
    let mut cmd = Command::new(worker);
    cmd.arg("sync").args(args);
    if std::env::var_os("RUST_LOG").is_none() {
        // The worker's slow-statement warnings would bury the bench's own lines.
        cmd.env("RUST_LOG", "warn,sqlx::query=error");
    }
    sentinel_testkit::sim_env(&mut cmd, sim, db);
    cmd.env("GRAPH_RU_PER_MINUTE", budget.to_string())
        .env("GRAPH_BUDGET_TIME_SCALE", time_scale.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = cmd.spawn().context("start sentinel-worker")?;
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall = started.elapsed();
    if !status.success() {
        bail!("sentinel-worker sync {} failed ({status})", args.join(" "));
    }
    let after = stats(&sim.url()).await?;
    let diff = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
    let directory = |v: &Value| -> u64 {
        ["/v1.0/users/delta", "/v1.0/groups/delta"]
            .iter()
            .map(|r| v["ru_by_endpoint"][*r].as_u64().unwrap_or(0))
            .sum()
    };
    Ok(Scan {
        wall,
        peak_rss_kib: peak,
        ru: diff("ru_spent"),
        sharepoint_ru: diff("ru_spent") - (directory(&after) - directory(&before)),
        requests: diff("requests"),
        throttled: diff("throttled"),
    })
}

/// The bench's tenant served with no budget to speak of, to load a database as fast as the
/// machine allows.
pub async fn spawn_unlimited(tenant: &TenantArgs) -> Result<sentinel_sim::RunningSim> {
    Ok(sentinel_sim::spawn(
        sentinel_sim::SimConfig {
            profile: parse_profile(&tenant.profile)?,
            seed: tenant.seed,
            ru_per_minute: 100_000_000,
            ..sentinel_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?)
}

/// A new database loaded from `sim` (served by [`spawn_unlimited`]) by a hierarchical scan.
pub async fn load_database(
    worker: &std::path::Path,
    sim: &sentinel_sim::RunningSim,
    tenant: &TenantArgs,
) -> Result<sentinel_testkit::TestDb> {
    let db = sentinel_testkit::create_db().await;
    let loaded = scan(worker, sim, &db, "hierarchical", 100_000_000, 1.0).await?;
    eprintln!(
        "loaded the {} profile in {:.0?} into {}",
        tenant.profile, loaded.wall, db.url
    );
    Ok(db)
}
