//! Effective access against the scan's own view refreshes: loads a simulated tenant with the real
//! worker, then times, in the same run and the same database, refreshing every materialized view
//! the scan refreshes, computing and storing every holder's audience (`Store::refresh_audiences`,
//! what each scan does after its views) and every person's reach (`Store::people_reach`, what
//! `/people` asks), each the median of `--rounds`. Prints them and their ratios to the refreshes
//! (target: effective access ≤ 2x the refreshes).
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
    let everyone = sentinel_store::PageRequest {
        per_page: 1,
        ..Default::default()
    };
    for _ in 0..args.rounds.max(1) {
        let started = Instant::now();
        for v in &views {
            store.refresh_view(v).await?;
        }
        refreshes.push(started.elapsed());
        let started = Instant::now();
        holders = store.refresh_audiences(&tenant).await?;
        audiences.push(started.elapsed());
        let started = Instant::now();
        people = store
            .people_reach(&tenant, &Default::default(), &everyone)
            .await?
            .total;
        reaches.push(started.elapsed());
    }
    let items = store.item_audiences(&tenant).await?.len();
    let (refresh, audience, reach) = (median(refreshes), median(audiences), median(reaches));
    let ratio = |d: Duration| d.as_secs_f64() / refresh.as_secs_f64().max(1e-9);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "profile": args.tenant.profile, "seed": args.tenant.seed,
            "items_with_an_audience": items, "holders": holders, "people": people,
            "views": views.len(), "refresh_all_views_ms": refresh.as_millis(),
            "all_audiences_ms": audience.as_millis(), "audiences_vs_refreshes": ratio(audience),
            "all_reach_ms": reach.as_millis(), "reach_vs_refreshes": ratio(reach),
        }))?
    );
    Ok(())
}
