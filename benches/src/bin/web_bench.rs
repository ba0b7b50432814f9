//! The dashboard under load: scans a simulated tenant with the real worker, starts the real
//! `sentinel-web`, signs in through the simulator's Entra, then drives `/analytics` and the
//! drill-down pages with `wrk` (Debian package `wrk`) on loopback and prints each page's
//! latency percentiles next to `/health` (the HTTP stack alone) measured in the same run.
//!
//!   cargo build --release -p sentinel-worker -p sentinel-web -p sentinel-benches
//!   target/release/web_bench --profile large
//!
//! Needs PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use anyhow::{Result, bail};
use clap::Parser;
use sentinel_benches::web::{busiest_pages, sign_in, start_web, wrk};
use sentinel_benches::{TenantArgs, load_database, sibling_binary, spawn_unlimited};
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    tenant: TenantArgs,
    /// Seconds of load per page.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Connections kept open by wrk.
    #[arg(long, default_value_t = 4)]
    connections: u32,
    /// A database already scanned from the same profile and seed: skips the scan (and is
    /// kept afterwards).
    #[arg(long)]
    database_url: Option<String>,
    /// Keep the database this run loads (its URL is printed), for `--database-url` next time.
    #[arg(long)]
    keep_database: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let worker = sibling_binary("sentinel-worker")?;
    let sim = spawn_unlimited(&args.tenant).await?;
    let mut db = match &args.database_url {
        Some(url) => sentinel_testkit::TestDb::existing(url).await?,
        None => load_database(&worker, &sim, &args.tenant).await?,
    };
    if args.keep_database {
        // Kept even when a page fails below: that database is what to look at.
        eprintln!("kept {}", db.url);
        db.keep();
    }
    let (pages, _) = busiest_pages(&db.pool).await?;

    let (server, base) = start_web(&sim, &db, &[]).await?;
    let cookie = sign_in(&base, 0).await?;

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut results = Vec::new();
    for page in &pages {
        // Every page must answer 200 to the signed-in user (a redirect would measure sign-in).
        let status = http
            .get(format!("{base}{page}"))
            .header("Cookie", &cookie)
            .send()
            .await?
            .status();
        if status != reqwest::StatusCode::OK {
            bail!("{page} answered {status}");
        }
        let measured = wrk(&base, page, &cookie, args.connections, args.seconds)?;
        // Failures under load (timeouts, 5xx) are a finding: reported with the page's figures,
        // and the run exits non-zero once every page is measured.
        if measured["errors"].as_f64().unwrap_or(0.0) > 0.0 {
            eprintln!(
                "{} requests to {page} failed under load",
                measured["errors"]
            );
        }
        results.push(measured);
    }
    let health_p95 = results[0]["p95_ms"].as_f64().unwrap_or(0.0).max(0.001);
    for r in &mut results {
        let p95 = r["p95_ms"].as_f64().unwrap_or(0.0);
        r["p95_vs_health"] = json!(p95 / health_p95);
    }
    let manifest = sentinel_sim::control::manifest(&sim.state);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "profile": args.tenant.profile, "seed": args.tenant.seed, "items": manifest.items, "sites": manifest.sites,
            "connections": args.connections, "seconds_per_page": args.seconds, "pages": results,
        }))?
    );
    let failed = results
        .iter()
        .any(|r| r["errors"].as_f64().unwrap_or(0.0) > 0.0);
    drop(server);
    sim.shutdown().await;
    if args.database_url.is_none() {
        db.drop_db().await;
    }
    if failed {
        bail!("some requests failed under load (see each page's errors)");
    }
    Ok(())
}
