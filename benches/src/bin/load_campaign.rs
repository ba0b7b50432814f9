//! The load campaign of `docs/reliability.md`: the dashboard under `--readers` concurrent
//! readers (wrk, spread over five pages) plus `--live-users` signed-in users each using the live
//! Graph panel at their own share, for `--seconds`, while a from-scratch scan of the same tenant
//! runs paced to `--budget` RU a minute, which the simulator enforces for the one app both
//! processes use. It prints p95 per page and the errors, and the scan's SharePoint RU a minute
//! and Graph's 429s in a quiet window before and one after, against the loaded window between.
//!
//!   cargo build --release -p sentinel-worker -p sentinel-web -p sentinel-benches
//!   target/release/load_campaign --profile large
//!
//! Needs PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`)
//! and `wrk` (Debian package `wrk`).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use sentinel_benches::web::{KillOnDrop, sign_in, start_web, wrk_command, wrk_report};
use sentinel_benches::{TenantArgs, load_database, parse_profile, sibling_binary, spawn_unlimited};
use sentinel_sim::{RunningSim, SimConfig};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    tenant: TenantArgs,
    /// Connections reading cached pages, spread evenly over five pages.
    #[arg(long, default_value_t = 32)]
    readers: u32,
    /// Signed-in users each asking the live panel for an item's permissions at their share
    /// (12 a minute: 60 RU).
    #[arg(long, default_value_t = 10)]
    live_users: usize,
    /// Seconds of each window (quiet, loaded, quiet).
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Seconds the scan runs before the first window (past the directory, into the libraries).
    #[arg(long, default_value_t = 60)]
    warmup: u64,
    /// The app's SharePoint budget, RU a minute (6,250: the largest band).
    #[arg(long, default_value_t = 6_250)]
    budget: u32,
    /// The worker's `GRAPH_LIVE_SHARE_PERCENT` (the web keeps 10): 1 has the scan pace to 99%
    /// of the budget, as scans did before they left the live panel its share.
    #[arg(long, default_value_t = 10)]
    worker_live_share_percent: u32,
    /// A database already scanned from the same profile and seed: skips loading it.
    #[arg(long)]
    database_url: Option<String>,
    /// Keep the database this run loads (its URL is printed), for `--database-url` next time.
    #[arg(long)]
    keep_database: bool,
}

/// SharePoint RU spent so far and Graph's 429/503 answers, from the simulator's own accounting.
async fn counters(sim: &RunningSim) -> Result<(u64, u64)> {
    let s: Value = reqwest::get(format!("{}/_sim/stats", sim.url()))
        .await?
        .json()
        .await?;
    Ok((
        sentinel_benches::sharepoint_ru(&s),
        s["throttled"].as_u64().unwrap_or(0),
    ))
}

/// Live look-ups of `users` (cookies), each every 5 s over `items`, until `stop`; returns
/// (answered from Graph, answered 429: the live budget spent or Graph throttling, failed, p95 ms).
async fn live_readers(
    base: String,
    users: Vec<String>,
    items: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
) -> Result<(u64, u64, u64, f64)> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let tasks = users.into_iter().enumerate().map(|(n, cookie)| {
        let (http, base, items, stop) = (http.clone(), base.clone(), items.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = (0u64, 0u64, 0u64, Vec::new());
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut k = n;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (drive, item) = &items[k % items.len()];
                k += 7;
                let started = Instant::now();
                let status = http
                    .get(format!(
                        "{base}/api/graph/drive-item-permissions?driveId={drive}&itemId={item}"
                    ))
                    .header("Cookie", &cookie)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                seen.3.push(started.elapsed().as_secs_f64() * 1000.0);
                match status {
                    200 => seen.0 += 1,
                    429 => seen.1 += 1,
                    _ => seen.2 += 1,
                }
            }
            seen
        })
    });
    let mut total = (0, 0, 0, Vec::new());
    for t in futures::future::join_all(tasks).await {
        let t = t.context("a live reader panicked")?;
        total.0 += t.0;
        total.1 += t.1;
        total.2 += t.2;
        total.3.extend(t.3);
    }
    total.3.sort_by(f64::total_cmp);
    let p95 = total
        .3
        .get(total.3.len() * 95 / 100)
        .copied()
        .unwrap_or(0.0);
    Ok((total.0, total.1, total.2, p95))
}

/// The scan's SharePoint RU a minute and the 429s over one quiet window.
async fn quiet_window(sim: &RunningSim, seconds: u32) -> Result<Value> {
    let (ru, throttled) = counters(sim).await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds as u64)).await;
    let (ru2, throttled2) = counters(sim).await?;
    Ok(json!({
        "scan_ru_per_min": (ru2 - ru) as f64 * 60.0 / started.elapsed().as_secs_f64(),
        "throttled": throttled2 - throttled,
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let profile = parse_profile(&args.tenant.profile)?;
    let worker = sibling_binary("sentinel-worker")?;

    // The dashboard's database: loaded once, without a budget, from a simulator of its own.
    let mut db = match &args.database_url {
        Some(url) => sentinel_testkit::TestDb::existing(url).await?,
        None => {
            let loader = spawn_unlimited(&args.tenant).await?;
            let db = load_database(&worker, &loader, &args.tenant).await?;
            loader.shutdown().await;
            db
        }
    };
    let (pages, items) = sentinel_benches::web::busiest_pages(&db.pool).await?;

    // The same tenant (same seed), now with the app's budget enforced: the web's live panel
    // and the scan spend it together, as they would against Graph.
    let sim = sentinel_sim::spawn(
        SimConfig {
            profile,
            seed: args.tenant.seed,
            ru_per_minute: args.budget,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let budget = [("GRAPH_RU_PER_MINUTE", args.budget.to_string())];
    let (server, base) = start_web(&sim, &db, &budget).await?;

    // Readers: the admin for the cached pages; users given the reader role for the live panel.
    let admin = sign_in(&base, 0).await?;
    let candidates: Vec<(usize, String)> = sim
        .state
        .read_tenant()
        .users
        .iter()
        .enumerate()
        .skip(2)
        .filter(|(_, u)| u.account_enabled && !u.guest)
        .take(args.live_users)
        .map(|(n, u)| (n, u.upn.clone()))
        .collect();
    let roles: serde_json::Map<String, Value> = candidates
        .iter()
        .map(|(_, upn)| (upn.clone(), json!([sentinel_sim::ROLE_READER])))
        .collect();
    let set = reqwest::Client::new()
        .post(format!("{}/_sim/auth", sim.url()))
        .json(&json!({ "roles": roles }))
        .send()
        .await?;
    if !set.status().is_success() {
        bail!("/_sim/auth answered {}", set.status());
    }
    let mut live_cookies = Vec::new();
    for (n, _) in &candidates {
        live_cookies.push(sign_in(&base, *n).await?);
    }

    // The scan: from scratch into a database of its own, paced to the budget.
    let scan_db = sentinel_testkit::create_db().await;
    let mut cmd = Command::new(&worker);
    cmd.args(["sync", "--permissions", "hierarchical"]);
    sentinel_testkit::sim_env(&mut cmd, &sim, &scan_db);
    cmd.env("GRAPH_RU_PER_MINUTE", args.budget.to_string())
        .env(
            "GRAPH_LIVE_SHARE_PERCENT",
            args.worker_live_share_percent.to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut scanning = KillOnDrop(cmd.spawn().context("start sentinel-worker sync")?);
    eprintln!("scan started; warming up for {} s", args.warmup);
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;

    let before = quiet_window(&sim, args.seconds).await?;
    eprintln!("quiet window: {before}");

    // The loaded window: wrk per page (readers shared out), live users, the scan going on.
    let (ru, throttled) = counters(&sim).await?;
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let live = tokio::spawn(live_readers(
        base.clone(),
        live_cookies,
        items,
        stop.clone(),
    ));
    let per_page = args.readers as usize / pages.len();
    let mut runs = Vec::new();
    for (n, page) in pages.iter().enumerate() {
        let extra = usize::from(n < args.readers as usize % pages.len());
        let connections = (per_page + extra).max(1) as u32;
        let child = wrk_command(&base, page, &admin, connections, args.seconds)?
            .spawn()
            .context("run wrk (Debian package wrk)")?;
        runs.push((page.clone(), connections, child));
    }
    let mut results = Vec::new();
    for (page, connections, child) in runs {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        let mut r = wrk_report(&page, args.seconds, &String::from_utf8_lossy(&out.stdout))?;
        r["connections"] = json!(connections);
        results.push(r);
    }
    stop.store(true, Ordering::Relaxed);
    let (answered, refused, failed, live_p95) = live.await??;
    let (ru2, throttled2) = counters(&sim).await?;
    // The window lasts until the last wrk and live reader are done: a little over `seconds`.
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    // A live look-up costs 5 RU (a permission read); the rest is the scan's.
    let live_ru = answered * 5;
    let loaded = json!({
        "seconds": minutes * 60.0,
        "scan_ru_per_min": (ru2 - ru - live_ru) as f64 / minutes,
        "live_ru_per_min": live_ru as f64 / minutes,
        "throttled": throttled2 - throttled,
        "live": {"answered": answered, "answered_429": refused, "failed": failed, "p95_ms": live_p95},
    });
    eprintln!("loaded window: {loaded}");
    let after = quiet_window(&sim, args.seconds).await?;
    eprintln!("quiet window: {after}");
    let still_scanning = scanning.0.try_wait()?.is_none();

    let quiet = (before["scan_ru_per_min"].as_f64().unwrap_or(0.0)
        + after["scan_ru_per_min"].as_f64().unwrap_or(0.0))
        / 2.0;
    let manifest = sentinel_sim::control::manifest(&sim.state);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "profile": args.tenant.profile, "seed": args.tenant.seed, "items": manifest.items,
            "budget_ru_per_min": args.budget, "worker_live_share_percent": args.worker_live_share_percent, "readers": args.readers, "live_users": candidates.len(),
            "seconds": args.seconds, "pages": results,
            "scan": {"quiet_before": before, "loaded": loaded, "quiet_after": after,
                     "loaded_vs_quiet": loaded["scan_ru_per_min"].as_f64().unwrap_or(0.0) / quiet.max(1.0),
                     "still_running_at_the_end": still_scanning},
        }))?
    );
    drop(scanning);
    drop(server);
    sim.shutdown().await;
    scan_db.drop_db().await;
    if args.keep_database {
        db.keep();
    }
    if args.database_url.is_none() {
        db.drop_db().await;
    }
    Ok(())
}
