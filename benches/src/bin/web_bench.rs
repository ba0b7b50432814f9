//! The dashboard under load: scans a simulated tenant with the real worker, starts the real
//! `sentinel-web`, signs in through the simulator's Entra, then drives `/analytics` and the
//! drill-down pages with `wrk` (Debian package `wrk`) on loopback and prints each page's
//! latency percentiles next to `/health` (the HTTP stack alone) measured in the same run.
//!
//!   cargo build --release -p sentinel-worker -p sentinel-web -p sentinel-benches
//!   target/release/web_bench --profile large
//!
//! Needs PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use sentinel_benches::{TenantArgs, parse_profile, scan, sibling_binary};
use sentinel_sim::SimConfig;
use serde_json::{Value, json};

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
}

/// Prints what the bench reads: latency percentiles (microseconds) and error counts.
const WRK_REPORT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("REPORT %d %d %d %d %d\n", latency:percentile(50), latency:percentile(95),
    latency:percentile(99), summary.requests, e.connect + e.read + e.write + e.status + e.timeout))
end
"#;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Signs in as the simulator's first demo user (an admin); returns the session cookie.
async fn sign_in(base: &str) -> Result<String> {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()?;
    let page = client.get(format!("{base}/auth/login")).send().await?;
    let authorize = page.url().clone();
    let html = page.text().await?;
    let marker = "id=\"user-0\" href=\"";
    let start = html
        .find(marker)
        .context("the simulator's sign-in page lists no demo user")?
        + marker.len();
    let href = html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&");
    let landed = client.get(authorize.join(&href)?).send().await?;
    if landed.url().path() != "/analytics" {
        bail!("sign-in ended at {}", landed.url());
    }
    let cookies = reqwest::cookie::CookieStore::cookies(jar.as_ref(), &base.parse()?)
        .context("no session cookie after sign-in")?;
    Ok(cookies.to_str()?.to_string())
}

/// Latency of `path` under load: (p50, p95, p99) in milliseconds and requests served.
fn load(base: &str, path: &str, cookie: &str, args: &Args) -> Result<Value> {
    let script = std::env::temp_dir().join(format!("web_bench_{}.lua", std::process::id()));
    std::fs::write(&script, WRK_REPORT)?;
    let out = Command::new("wrk")
        // wrk wants at least one connection per thread.
        .arg(format!("-t{}", args.connections.clamp(1, 2)))
        .arg(format!("-c{}", args.connections.max(1)))
        .arg(format!("-d{}s", args.seconds))
        .arg("-s")
        .arg(&script)
        .args(["-H", &format!("Cookie: {cookie}")])
        .arg(format!("{base}{path}"))
        .output()
        .context("run wrk (Debian package wrk)")?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("REPORT "))
        .with_context(|| format!("wrk printed no report for {path}: {text}"))?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [p50, p95, p99, requests, errors] = report[..] else {
        bail!("unexpected wrk report for {path}: {text}");
    };
    if errors > 0.0 {
        bail!("{errors} requests to {path} failed under load");
    }
    Ok(
        json!({"path": path, "p50_ms": p50 / 1000.0, "p95_ms": p95 / 1000.0, "p99_ms": p99 / 1000.0,
              "requests_per_sec": requests / args.seconds as f64}),
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let profile = parse_profile(&args.tenant.profile)?;
    let worker = sibling_binary("sentinel-worker")?;
    let web = sibling_binary("sentinel-web")?;
    let sim = sentinel_sim::spawn(
        SimConfig {
            profile,
            seed: args.tenant.seed,
            ru_per_minute: 100_000_000,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let db = match &args.database_url {
        Some(url) => sentinel_testkit::TestDb::existing(url).await?,
        None => {
            let db = sentinel_testkit::create_db().await;
            let loaded = scan(&worker, &sim, &db, "hierarchical", 100_000_000, 1.0).await?;
            eprintln!(
                "loaded the {} profile in {:.0?}",
                args.tenant.profile, loaded.wall
            );
            db
        }
    };

    // The busiest site, its biggest library, and the shared item with the most grants there.
    let (site, drive): (String, String) = sqlx::query_as(
        "SELECT d.site_id, d.id FROM msgraph_drives d JOIN msgraph_drive_items i ON i.drive_id = d.id \
         WHERE d.site_id IS NOT NULL AND i.deleted_at IS NULL GROUP BY d.site_id, d.id ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await?;
    let item: String = sqlx::query_scalar(
        "SELECT item_id FROM msgraph_drive_item_permission_grants WHERE drive_id = $1 AND deleted_at IS NULL \
         GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT 1",
    )
    .bind(&drive)
    .fetch_one(&db.pool)
    .await?;

    let port = sentinel_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(&web);
    sentinel_testkit::sim_env(&mut cmd, &sim, &db);
    cmd.env("WEB_ADDR", format!("127.0.0.1:{port}"))
        .env("WEB_PUBLIC_URL", &base)
        .env("WORKER_API_URL", "http://127.0.0.1:9")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut server = KillOnDrop(cmd.spawn().context("start sentinel-web")?);
    sentinel_testkit::wait_for_process(
        &format!("{base}/health"),
        &mut server.0,
        Duration::from_secs(30),
    )
    .await;
    let cookie = sign_in(&base).await?;

    let pages = [
        "/health".to_string(),
        "/analytics".to_string(),
        format!("/sites/{site}"),
        format!("/drives/{drive}"),
        format!("/drives/{drive}/items/{item}"),
    ];
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
        results.push(load(&base, page, &cookie, &args)?);
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
    drop(server);
    sim.shutdown().await;
    if args.database_url.is_none() {
        db.drop_db().await;
    }
    Ok(())
}
