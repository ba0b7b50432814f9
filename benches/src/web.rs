//! What the dashboard benches share: the real `sentinel-web` started against a simulator and a
//! database, signing in through the simulator's Entra, and `wrk` (Debian package `wrk`) runs
//! read back as latency percentiles.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Prints what the benches read: latency percentiles (microseconds) and error counts.
const WRK_REPORT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("REPORT %d %d %d %d %d\n", latency:percentile(50), latency:percentile(95),
    latency:percentile(99), summary.requests, e.connect + e.read + e.write + e.status + e.timeout))
end
"#;

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sentinel-web` on a free port against `sim` and `db`, with `extra` environment;
/// returns it and its base URL once `/health` answers.
pub async fn start_web(
    sim: &sentinel_sim::RunningSim,
    db: &sentinel_testkit::TestDb,
    extra: &[(&str, String)],
) -> Result<(KillOnDrop, String)> {
    let web = crate::sibling_binary("sentinel-web")?;
    let port = sentinel_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(&web);
    sentinel_testkit::sim_env(&mut cmd, sim, db);
    cmd.env("WEB_ADDR", format!("127.0.0.1:{port}"))
        .env("WEB_PUBLIC_URL", &base)
        .env("WORKER_API_URL", "http://127.0.0.1:9")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut server = KillOnDrop(cmd.spawn().context("start sentinel-web")?);
    sentinel_testkit::wait_for_process(
        &format!("{base}/health"),
        &mut server.0,
        Duration::from_secs(30),
    )
    .await;
    Ok((server, base))
}

/// Signs in as the simulator's `user`-th user (the first is an admin, the second a reader;
/// give others a role with `/_sim/auth` first); returns the session cookie.
pub async fn sign_in(base: &str, user: usize) -> Result<String> {
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
        .replace("&amp;", "&")
        .replace("login_hint_user=0", &format!("login_hint_user={user}"));
    let landed = client.get(authorize.join(&href)?).send().await?;
    if landed.url().path() != "/analytics" {
        bail!("sign-in of user {user} ended at {}", landed.url());
    }
    let cookies = reqwest::cookie::CookieStore::cookies(jar.as_ref(), &base.parse()?)
        .context("no session cookie after sign-in")?;
    Ok(cookies.to_str()?.to_string())
}

/// `wrk` against `base{path}` for `seconds` with `connections` open: latency percentiles in
/// milliseconds, requests per second and failed requests (non-2xx/3xx answers and socket errors).
pub fn wrk(base: &str, path: &str, cookie: &str, connections: u32, seconds: u32) -> Result<Value> {
    let out = wrk_command(base, path, cookie, connections, seconds)?
        .output()
        .context("run wrk (Debian package wrk)")?;
    wrk_report(path, seconds, &String::from_utf8_lossy(&out.stdout))
}

/// The `wrk` command of [`wrk`], to run several at once.
pub fn wrk_command(
    base: &str,
    path: &str,
    cookie: &str,
    connections: u32,
    seconds: u32,
) -> Result<Command> {
    // A script per run: several may start at once, and rewriting a shared file under a wrk
    // that is reading it leaves that one without its report.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let script =
        std::env::temp_dir().join(format!("sentinel_wrk_{}_{run}.lua", std::process::id()));
    std::fs::write(&script, WRK_REPORT)?;
    let mut c = Command::new("wrk");
    // wrk wants at least one connection per thread.
    c.arg(format!("-t{}", connections.clamp(1, 2)))
        .arg(format!("-c{}", connections.max(1)))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .args(["-H", &format!("Cookie: {cookie}")])
        .arg(format!("{base}{path}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    Ok(c)
}

/// Reads the report line the script prints.
pub fn wrk_report(path: &str, seconds: u32, stdout: &str) -> Result<Value> {
    let report: Vec<f64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REPORT "))
        .with_context(|| format!("wrk printed no report for {path}: {stdout}"))?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [p50, p95, p99, requests, errors] = report[..] else {
        bail!("unexpected wrk report for {path}: {stdout}");
    };
    Ok(
        json!({"path": path, "p50_ms": p50 / 1000.0, "p95_ms": p95 / 1000.0, "p99_ms": p99 / 1000.0,
              "requests": requests, "requests_per_sec": requests / seconds.max(1) as f64, "errors": errors}),
    )
}

/// The pages the benches load: `/health` (the HTTP stack alone, the baseline), `/analytics`,
/// the busiest site, its biggest library and that library's item with the most grants; and
/// up to 200 shared items of that library for live look-ups.
pub async fn busiest_pages(pool: &sqlx::PgPool) -> Result<(Vec<String>, Vec<(String, String)>)> {
    let (site, drive): (String, String) = sqlx::query_as(
        "SELECT d.site_id, d.id FROM msgraph_drives d JOIN msgraph_drive_items i ON i.drive_id = d.id \
         WHERE d.site_id IS NOT NULL AND i.deleted_at IS NULL GROUP BY d.site_id, d.id ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await?;
    let items: Vec<String> = sqlx::query_scalar(
        "SELECT item_id FROM msgraph_drive_item_permission_grants WHERE drive_id = $1 AND deleted_at IS NULL \
         GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT 200",
    )
    .bind(&drive)
    .fetch_all(pool)
    .await?;
    let item = items
        .first()
        .context("the busiest library has no shared item")?;
    // The member in the most groups: their page walks the most group chains.
    let person: String = sqlx::query_scalar(
        "SELECT m.member_id FROM msgraph_group_members m \
         JOIN msgraph_users u ON u.tenant_id = m.tenant_id AND u.id = m.member_id \
         WHERE m.member_type = 'user' AND m.deleted_at IS NULL AND NOT u.is_guest \
         GROUP BY m.member_id ORDER BY count(*) DESC, m.member_id LIMIT 1",
    )
    .fetch_one(pool)
    .await?;
    let pages = vec![
        "/health".to_string(),
        "/analytics".to_string(),
        format!("/sites/{site}"),
        format!("/drives/{drive}"),
        format!("/drives/{drive}/items/{item}"),
        "/people".to_string(),
        format!("/people/{person}"),
        "/audiences".to_string(),
    ];
    let items = items.iter().map(|i| (drive.clone(), i.clone())).collect();
    Ok((pages, items))
}
