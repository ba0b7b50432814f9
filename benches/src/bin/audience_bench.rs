//! Effective access against the scan's own view refreshes: loads a simulated tenant with the real
//! worker, then times, in the same run and the same database, refreshing every materialized view
//! the scan refreshes, computing and storing every holder's audience and every person's reach
//! (`Store::refresh_audiences`, what a scan does after its views when the directory changed), and
//! reading `/people`'s first page from the stored reach (`Store::people_reach`), each the median
//! of `--rounds`. Prints them and their ratios to the refreshes (target: effective access ≤ 2x
//! the refreshes).
//!
//! With `--check N` (default 1,000), it also compares N items' stored audiences and N people's
//! reach with the simulator's ground truth, and exits 1 on any difference.
//!
//! Then (`--changes N`, default 200; 0 skips it) users make N changes to files and sharing in the
//! simulated tenant, the worker scans again (incrementally), and the bench times recomputing
//! what those changes touched (`Store::recompute_changed_since`, what that scan's `refresh_mv`
//! did), with the rows recomputed against the rows changed.
//!
//!   cargo build --release -p sentinel-worker -p sentinel-benches
//!   target/release/audience_bench --profile medium
//!
//! Needs PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use sentinel_benches::{TenantArgs, load_database, sibling_binary, spawn_unlimited};
use sentinel_store::Store;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    tenant: TenantArgs,
    /// Timed repetitions of each; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// A database already scanned from the same profile and seed: skips the scan (and is
    /// kept afterwards).
    #[arg(long)]
    database_url: Option<String>,
    /// Also compare a sample of this many items' audiences and people's reach with the
    /// simulator's ground truth (exit 1 on any difference); 0 skips it.
    #[arg(long, default_value_t = 1000)]
    check: usize,
    /// Changes users make before the incremental scan; 0 skips it (as does `--database-url`).
    #[arg(long, default_value_t = 200)]
    changes: usize,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let worker = sibling_binary("sentinel-worker")?;
    let sim = spawn_unlimited(&args.tenant).await?;
    // The check reads the simulator's whole audience dump (every item's readers by id) into
    // memory: on the large profile that outgrew 24 GiB and the bench was killed, after the
    // load. Said before the load instead.
    let tenant_items = sentinel_sim::control::manifest(&sim.state).items;
    if args.check > 0 && tenant_items > MAX_ITEMS_CHECKED {
        anyhow::bail!(
            "--check reads the simulator's whole audience dump, too large in memory for {tenant_items} items \
             (at most {MAX_ITEMS_CHECKED}): pass --check 0, or check the medium profile"
        );
    }
    let db = match &args.database_url {
        Some(url) => sentinel_testkit::TestDb::existing(url).await?,
        None => load_database(&worker, &sim, &args.tenant).await?,
    };
    let store = Store::from_pool(db.pool.clone());
    let tenant = sim.state.read_tenant().tenant_id.clone();
    let views: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT mv_name FROM mv_dependencies ORDER BY 1")
            .fetch_all(&db.pool)
            .await?;
    let (mut refreshes, mut audiences, mut reaches) = (Vec::new(), Vec::new(), Vec::new());
    let (mut holders, mut people) = (0, 0);
    for _ in 0..args.rounds.max(1) {
        let started = Instant::now();
        for v in &views {
            store.refresh_view(&tenant, v).await?;
        }
        refreshes.push(started.elapsed());
        let started = Instant::now();
        holders = store.refresh_audiences(&tenant).await?.holders;
        audiences.push(started.elapsed());
        let started = Instant::now();
        people = store
            .people_reach(&tenant, &Default::default(), &Default::default())
            .await?
            .total;
        reaches.push(started.elapsed());
    }
    let items = store.item_audiences(&tenant).await?.len();
    let (refresh, audience, reach) = (median(refreshes), median(audiences), median(reaches));
    let ratio = |d: Duration| d.as_secs_f64() / refresh.as_secs_f64().max(1e-9);
    let checked = if args.check > 0 {
        Some(check_against_truth(&sim, &store, &tenant, args.check).await?)
    } else {
        None
    };
    // A database scanned earlier holds delta links of another simulator run: no incremental
    // scan can follow them.
    let incremental = if args.changes > 0 && args.database_url.is_none() {
        Some(incremental(&worker, &sim, &db, &store, &tenant, args.changes, audience).await?)
    } else {
        None
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "profile": args.tenant.profile, "seed": args.tenant.seed,
            "items_with_an_audience": items, "holders": holders, "people": people,
            "views": views.len(), "refresh_all_views_ms": refresh.as_millis(),
            "audiences_and_reach_stored_ms": audience.as_millis(),
            "stored_vs_refreshes": ratio(audience),
            "people_page_ms": reach.as_millis(),
            "checked_against_truth": checked, "incremental": incremental,
        }))?
    );
    if checked.as_ref().is_some_and(|c| c["differing"] != 0) {
        anyhow::bail!("the store differs from the simulator's ground truth: {checked:?}");
    }
    Ok(())
}

/// Makes `changes` changes to files and sharing, scans again, and times recomputing what they
/// touched against `whole` (recomputing everything).
async fn incremental(
    worker: &std::path::Path,
    sim: &sentinel_sim::RunningSim,
    db: &sentinel_testkit::TestDb,
    store: &Store,
    tenant: &str,
    changes: usize,
    whole: Duration,
) -> Result<serde_json::Value> {
    let before = store.now().await?;
    let kinds = [
        "create_file",
        "modify",
        "move",
        "delete_file",
        "share",
        "unshare",
        "break_inheritance",
        "restore_inheritance",
    ];
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/mutate", sim.url()))
        .json(&json!({"count": changes, "kinds": kinds}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "/_sim/mutate: {}", r.status());
    sentinel_benches::scan(worker, sim, db, "hierarchical", 100_000_000, 1.0).await?;
    let started = Instant::now();
    let done = store.recompute_changed_since(tenant, before).await?;
    let took = started.elapsed();
    let all: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM msgraph_drives WHERE tenant_id = $1 AND deleted_at IS NULL),
                (SELECT count(*) FROM holder_audiences WHERE tenant_id = $1)",
    )
    .bind(tenant)
    .fetch_one(&db.pool)
    .await?;
    Ok(json!({
        "changes_made": changes, "rows_changed": done.rows_changed, "whole": done.whole,
        "libraries_recomputed": done.libraries, "libraries": all.0,
        "holders_recomputed": done.holders, "holders": all.1,
        "holders_recomputed_per_row_changed": done.holders as f64 / (done.rows_changed.max(1)) as f64,
        "recompute_ms": took.as_millis(), "whole_ms": whole.as_millis(),
        "recompute_vs_whole": took.as_secs_f64() / whole.as_secs_f64().max(1e-9),
    }))
}

/// The largest tenant whose audience dump `--check` reads whole (the medium profile has
/// about 203,000 items).
const MAX_ITEMS_CHECKED: u64 = 300_000;

/// Compares `n` items' stored audiences and `n` people's reach, spread evenly over the
/// simulator's dumps, with its ground truth; the counts and the first differences.
async fn check_against_truth(
    sim: &sentinel_sim::RunningSim,
    store: &Store,
    tenant: &str,
    n: usize,
) -> Result<serde_json::Value> {
    use std::collections::{HashMap, HashSet};

    use sentinel_testkit::truth::{expected_audience, expected_reach, reach_figures};
    let guests: HashSet<String> = sentinel_testkit::sim_dump(sim, "users")
        .await
        .iter()
        .filter(|u| u["guest"] == true)
        .filter_map(|u| u["id"].as_str().map(String::from))
        .collect();
    let stored: HashMap<(String, String), sentinel_store::ItemAudience> = store
        .item_audiences(tenant)
        .await?
        .into_iter()
        .map(|r| ((r.drive_id, r.item_id), r.audience))
        .collect();
    let mut differing = Vec::new();
    let items = sentinel_testkit::sim_dump(sim, "audience").await;
    let mut checked_items = 0;
    for t in items.iter().step_by((items.len() / n).max(1)).take(n) {
        let key = (
            t["driveId"].as_str().unwrap_or("").to_string(),
            t["itemId"].as_str().unwrap_or("").to_string(),
        );
        let (want, have) = (
            expected_audience(t, &guests),
            stored.get(&key).cloned().unwrap_or_default(),
        );
        if want != have {
            differing.push(format!("item {key:?}: store {have:?}, truth {want:?}"));
        }
        checked_items += 1;
    }
    let everyone = sentinel_store::PageRequest {
        per_page: 10_000,
        ..Default::default()
    };
    let reach: HashMap<String, sentinel_store::PersonReach> = store
        .people_reach(tenant, &Default::default(), &everyone)
        .await?
        .rows
        .into_iter()
        .map(|r| (r.person_id.clone(), r))
        .collect();
    let people = sentinel_testkit::sim_dump(sim, "reach").await;
    let mut checked_people = 0;
    for t in people.iter().step_by((people.len() / n).max(1)).take(n) {
        let id = t["personId"].as_str().unwrap_or("");
        let (want, have) = (expected_reach(t), reach.get(id).map(reach_figures));
        if have.as_ref() != Some(&want) {
            differing.push(format!("person {id}: store {have:?}, truth {want:?}"));
        }
        checked_people += 1;
    }
    Ok(json!({
        "items": checked_items, "people": checked_people, "differing": differing.len(),
        "first_differences": &differing[..differing.len().min(5)],
    }))
}
