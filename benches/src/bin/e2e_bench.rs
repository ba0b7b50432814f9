//! The end-to-end scan bench: a full first scan of a simulated tenant by the real
//! `sentinel-worker sync`, then an incremental rescan after a share of the tenant changed.
//! Prints RU spent, requests, 429s, wall time, items/s and the worker's peak RSS next to the
//! baselines computed from the tenant's documented costs, as ratios.
//!
//!   cargo build --release -p sentinel-worker -p sentinel-benches
//!   target/release/e2e_bench --profile large --mode hierarchical
//!
//! Needs PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use anyhow::{Result, bail};
use clap::Parser;
use sentinel_benches::{TenantArgs, parse_profile, scan, sibling_binary};
use sentinel_sim::SimConfig;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    tenant: TenantArgs,
    /// hierarchical or exhaustive.
    #[arg(long, default_value = "hierarchical")]
    mode: String,
    /// The simulator's SharePoint budget (RU per minute; the worker paces itself to it). 0: no
    /// budget in practice.
    #[arg(long, default_value_t = 0)]
    ru_per_minute: u32,
    /// Simulated seconds per real second (60: a budget minute lasts one second).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Latency added to each Graph request, milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of the tenant changed (simulator mutations, as a percentage of items) before the
    /// rescan; 0 skips the rescan.
    #[arg(long, default_value_t = 1.0)]
    change_pct: f64,
    /// Only these kinds of change (comma-separated simulator kinds, e.g.
    /// create_file,modify,rename,move,delete_file); default: the simulator's whole mix.
    #[arg(long, value_delimiter = ',')]
    change_kinds: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let profile = parse_profile(&args.tenant.profile)?;
    if !matches!(args.mode.as_str(), "hierarchical" | "exhaustive") {
        bail!(
            "--mode must be hierarchical or exhaustive, got '{}'",
            args.mode
        );
    }
    let worker = sibling_binary("sentinel-worker")?;
    let budget = if args.ru_per_minute == 0 {
        100_000_000
    } else {
        args.ru_per_minute
    };
    let sim = sentinel_sim::spawn(
        SimConfig {
            profile,
            seed: args.tenant.seed,
            ru_per_minute: budget,
            time_scale: args.time_scale,
            latency_ms: args.latency_ms,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let manifest: Value = reqwest::get(format!("{}/_sim/manifest", sim.url()))
        .await?
        .json()
        .await?;
    let m = |k: &str| manifest[k].as_u64().unwrap_or(0);
    let (items, folders, drives, unique) = (
        m("items"),
        m("folders"),
        m("drives"),
        m("unique_permission_items"),
    );
    let (sites, users) = (m("sites"), m("users"));
    let db = sentinel_testkit::create_db().await;

    // The simulator's budget minute lasts 60/time_scale s; the worker is told so.
    let first = scan(&worker, &sim, &db, &args.mode, budget, args.time_scale).await?;
    // Baselines from the documented costs, on the SharePoint budget (the directory's is separate).
    // The floor for the mode: the inventory (sites: a page per 200, and per site a drive list
    // and a subsite list, 2 RU each; OneDrives: 1 RU per user; items: a delta page per drive
    // and per 200 items, 2 RU)
    // plus 5 RU per permission read we cannot avoid: every hierarchy root (drive roots and items
    // with unique permissions) in hierarchical mode, every item in exhaustive mode.
    let inventory_floor =
        2 * (sites.div_ceil(200) + 2 * sites) + users + 2 * (items.div_ceil(200) + drives);
    let permission_reads = if args.mode == "hierarchical" {
        unique + drives
    } else {
        items
    };
    let floor = inventory_floor + 5 * permission_reads;
    // What a per-file script spends: list children of every folder (2 RU), read every item's
    // permissions (5 RU).
    let per_file =
        2 * (sites.div_ceil(200) + 2 * sites) + users + 2 * (folders + drives) + 5 * items;

    let mut report = json!({
        "profile": args.tenant.profile, "seed": args.tenant.seed, "mode": args.mode, "items": items,
        "budget_ru_per_minute": args.ru_per_minute, "time_scale": args.time_scale, "latency_ms": args.latency_ms,
        "first_scan": {
            "ru": first.ru, "sharepoint_ru": first.sharepoint_ru, "requests": first.requests, "throttled_429": first.throttled,
            "throttled_share": first.throttled as f64 / first.requests.max(1) as f64,
            "wall_secs": first.wall.as_secs_f64(), "items_per_sec": items as f64 / first.wall.as_secs_f64(),
            "peak_rss_mib": first.peak_rss_kib as f64 / 1024.0,
        },
        "baselines": {
            "floor_ru": floor, "ru_vs_floor": first.sharepoint_ru as f64 / floor as f64,
            "per_file_ru": per_file, "per_file_vs_ours": per_file as f64 / first.sharepoint_ru.max(1) as f64,
        },
    });
    if args.ru_per_minute > 0 {
        // The wall time a perfectly paced scan needs: RU spent over the budget (in real time).
        let ideal = first.sharepoint_ru as f64 / args.ru_per_minute as f64 * 60.0 / args.time_scale;
        report["baselines"]["paced_wall_secs"] = json!(ideal);
        report["baselines"]["wall_vs_paced"] = json!(first.wall.as_secs_f64() / ideal);
    }
    if args.change_pct > 0.0 {
        let before_changes = sim.state.read_tenant().seq;
        let count = ((items as f64) * args.change_pct / 100.0).round().max(1.0) as u64;
        let r = reqwest::Client::new()
            .post(format!("{}/_sim/mutate", sim.url()))
            .json(&if args.change_kinds.is_empty() {
                json!({"count": count})
            } else {
                json!({"count": count, "kinds": args.change_kinds})
            })
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("mutate failed: {}", r.text().await?);
        }
        let changes: Value = r.json().await?;
        let floor = sentinel_sim::control::rescan_floor(
            &sim.state,
            before_changes,
            args.mode == "hierarchical",
        );
        let rescan = scan(&worker, &sim, &db, &args.mode, budget, args.time_scale).await?;
        report["rescan"] = json!({
            "mutations": count, "by_kind": changes["by_kind"], "ru": rescan.ru, "sharepoint_ru": rescan.sharepoint_ru, "requests": rescan.requests,
            "wall_secs": rescan.wall.as_secs_f64(), "ru_vs_first": rescan.ru as f64 / first.ru.max(1) as f64,
        });
        // What no rescan can avoid given what delta reports (`rescan_floor`); the per-file
        // script's cost to see the same changes is the per-file baseline again.
        report["rescan"]["floor_ru"] = json!(floor.ru());
        report["rescan"]["floor_permission_reads"] = json!(floor.permission_reads);
        report["rescan"]["ru_vs_floor"] =
            json!(rescan.sharepoint_ru as f64 / floor.ru().max(1) as f64);
        report["rescan"]["per_file_vs_ours"] =
            json!(per_file as f64 / rescan.sharepoint_ru.max(1) as f64);
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    sim.shutdown().await;
    db.drop_db().await;
    Ok(())
}
