//! The freshness bench (issue 17): a simulated day of people changing files, a few drives
//! taking most of the changes (the simulator's activity model), read by the real
//! `sentinel-worker sync` at a fixed hourly cadence and at an adaptive one (run every few
//! minutes, each drive read when due, `--max-staleness-minutes`). From the simulator's own
//! account it prints, per cadence, the median and p95 delay from a change to the delta round
//! that returned it, and the SharePoint RU spent per simulated hour.
//!
//!   cargo build --release -p sentinel-worker -p sentinel-benches
//!   target/release/freshness_bench --profile medium --hours 24 --time-scale 60
//!
//! Time runs `--time-scale` times faster for the simulator and the worker's pacing alike; the
//! worker's staleness limit is given in real minutes (`--max-staleness-minutes` divided by the
//! scale), its waits are measured on the database's clock, and its runs' own durations count,
//! scaled like the rest: a scale too high for the machine makes both cadences look slower.
//! Needs PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use sentinel_benches::{TenantArgs, parse_profile, run_sync, sharepoint_ru, sibling_binary};
use sentinel_sim::SimConfig;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    tenant: TenantArgs,
    /// Simulated hours of activity measured per cadence.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Simulated hours of the same activity and cadence before the measured ones: the
    /// generated tenant's history says nothing of which drives the model keeps busy, and an
    /// adaptive cadence learns it only by reading them (every drive is read within the maximum
    /// staleness). Default: the maximum staleness.
    #[arg(long)]
    warmup_hours: Option<f64>,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 60.0)]
    time_scale: f64,
    /// Changes per simulated hour across the tenant.
    #[arg(long, default_value_t = 300.0)]
    changes_per_hour: f64,
    /// Zipf exponent of the changes over the drives (0: even).
    #[arg(long, default_value_t = 1.1)]
    hot_exponent: f64,
    /// Simulated minutes between runs at the adaptive cadence.
    #[arg(long, default_value_t = 5)]
    run_every_minutes: u32,
    /// The most a drive may go unread at the adaptive cadence, in simulated minutes.
    #[arg(long, default_value_t = 240)]
    max_staleness_minutes: u32,
    /// The tenant's SharePoint RU per minute (band 1: 1,250).
    #[arg(long, default_value_t = 1_250)]
    budget: u32,
    /// Cadences to measure: fixed (hourly) and adaptive.
    #[arg(long, value_delimiter = ',', default_value = "fixed,adaptive")]
    cadences: Vec<String>,
}

async fn get(url: String) -> Result<Value> {
    Ok(reqwest::get(&url).await?.error_for_status()?.json().await?)
}

/// Starts (or starts afresh, its account with it) the simulator's activity model.
async fn start_activity(sim: &sentinel_sim::RunningSim, args: &Args) -> Result<()> {
    reqwest::Client::new()
        .post(format!("{}/_sim/activity", sim.url()))
        .json(&json!({"changesPerHour": args.changes_per_hour, "hotExponent": args.hot_exponent}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Runs at a cadence, counted.
#[derive(Default)]
struct Runs {
    count: u32,
    time: Duration,
    /// When the last run started, from the first run's start.
    last_start: Duration,
}

impl Runs {
    /// Runs `run` every `every` (real time) until `end` has passed; a run longer than `every`
    /// is followed by the next at once. Each run's duration goes to stderr under `label`, so
    /// a scale too high for the machine shows while the bench runs.
    async fn until(
        &mut self,
        label: &str,
        end: Duration,
        every: Duration,
        run: impl AsyncFn() -> Result<sentinel_benches::Scan>,
    ) -> Result<()> {
        let started = Instant::now();
        let mut next = Duration::ZERO;
        while next < end {
            if let Some(wait) = next.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            self.last_start = started.elapsed();
            let wall = run().await?.wall;
            self.time += wall;
            self.count += 1;
            eprintln!("{label}: run {} in {wall:.1?}", self.count);
            next += every;
        }
        Ok(())
    }
}

/// One cadence over a fresh simulator and database: a first scan, then `hours` of activity.
async fn measure(args: &Args, worker: &std::path::Path, cadence: &str) -> Result<Value> {
    let sim = sentinel_sim::spawn(
        SimConfig {
            profile: parse_profile(&args.tenant.profile)?,
            seed: args.tenant.seed,
            ru_per_minute: args.budget,
            time_scale: args.time_scale,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let db = sentinel_testkit::create_db().await;
    let staleness_real = (f64::from(args.max_staleness_minutes) / args.time_scale)
        .round()
        .max(1.0)
        .to_string();
    let mut sync_args = vec!["--permissions", "hierarchical"];
    let every_min = if cadence == "adaptive" {
        sync_args.extend(["--max-staleness-minutes", &staleness_real]);
        f64::from(args.run_every_minutes)
    } else {
        60.0
    };
    let first = run_sync(worker, &sim, &db, &sync_args, args.budget, args.time_scale).await?;
    eprintln!("{cadence}: first scan in {:.0?}", first.wall);
    let real = |sim_minutes: f64| Duration::from_secs_f64(sim_minutes * 60.0 / args.time_scale);
    let warmup = args
        .warmup_hours
        .unwrap_or(f64::from(args.max_staleness_minutes) / 60.0);
    // The same model (its drive ranking comes from the seed) before and during the measure.
    start_activity(&sim, args).await?;
    let mut runs = Runs::default();
    let warming = format!("{cadence} warm-up");
    runs.until(&warming, real(warmup * 60.0), real(every_min), async || {
        run_sync(worker, &sim, &db, &sync_args, args.budget, args.time_scale).await
    })
    .await?;
    eprintln!(
        "{cadence}: warmed up over {warmup} simulated hours in {} runs",
        runs.count
    );
    reqwest::Client::new()
        .delete(format!("{}/_sim/stats", sim.url()))
        .send()
        .await?
        .error_for_status()?;
    start_activity(&sim, args).await?;
    let mut runs = Runs::default();
    runs.until(
        cadence,
        real(args.hours * 60.0),
        real(every_min),
        async || run_sync(worker, &sim, &db, &sync_args, args.budget, args.time_scale).await,
    )
    .await?;
    let (count, run_time) = (runs.count, runs.time);
    // The hours the runs paid for: each run reads what changed since the one before, so the
    // first pays for the interval before the measure and the last for none after it. (Up to
    // the end of the last run instead, six hourly runs were divided by 5.4 hours.)
    let elapsed_sim_hours =
        (runs.last_start + real(every_min)).as_secs_f64() * args.time_scale / 3_600.0;
    let activity = get(format!("{}/_sim/activity", sim.url())).await?;
    let stats = get(format!("{}/_sim/stats", sim.url())).await?;
    let ru = sharepoint_ru(&stats);
    sim.shutdown().await;
    db.drop_db().await;
    let minutes = |v: &Value| (v.as_f64().unwrap_or(0.0) / 6.0).round() / 10.0;
    Ok(json!({
        "cadence": cadence,
        "profile": args.tenant.profile,
        "simulated_hours": (elapsed_sim_hours * 10.0).round() / 10.0,
        "runs": count,
        "mean_run_s": (run_time.as_secs_f64() / f64::from(count.max(1)) * 10.0).round() / 10.0,
        "changes": activity["changes"],
        "drives": activity["drives"],
        "drives_changed": activity["drivesChanged"],
        "read": activity["read"],
        "unread_at_end": activity["unread"],
        "median_delay_min": minutes(&activity["delaySecs"]["median"]),
        "p95_delay_min": minutes(&activity["delaySecs"]["p95"]),
        "max_delay_min": minutes(&activity["delaySecs"]["max"]),
        "sharepoint_ru": ru,
        "ru_per_hour": (ru as f64 / elapsed_sim_hours).round(),
        "throttled": stats["throttled"],
        "ru_by_endpoint": stats["ru_by_endpoint"],
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        bail!("--time-scale must be a positive number");
    }
    if !(args.hours.is_finite() && args.hours > 0.0) {
        bail!("--hours must be a positive number");
    }
    if let Some(bad) = args
        .cadences
        .iter()
        .find(|c| !["fixed", "adaptive"].contains(&c.as_str()))
    {
        bail!("--cadences takes fixed and adaptive, got '{bad}'");
    }
    let worker = sibling_binary("sentinel-worker").context("the worker binary")?;
    let mut results = Vec::new();
    for cadence in &args.cadences {
        let r = measure(&args, &worker, cadence).await?;
        println!("{r}");
        results.push(r);
    }
    let of = |name: &str| results.iter().find(|r| r["cadence"] == name);
    if let (Some(fixed), Some(adaptive)) = (of("fixed"), of("adaptive")) {
        let ratio = |a: &Value, b: &Value, k: &str| {
            let (a, b) = (a[k].as_f64().unwrap_or(0.0), b[k].as_f64().unwrap_or(0.0));
            (a / b * 100.0).round() / 100.0
        };
        println!(
            "{}",
            json!({"median_delay_fixed_over_adaptive": ratio(fixed, adaptive, "median_delay_min"),
                   "p95_delay_fixed_over_adaptive": ratio(fixed, adaptive, "p95_delay_min"),
                   "ru_per_hour_adaptive_over_fixed": ratio(adaptive, fixed, "ru_per_hour")})
        );
    }
    Ok(())
}
