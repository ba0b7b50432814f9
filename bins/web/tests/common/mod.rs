//! The whole stack for browser tests: a simulated tenant, a fresh database, the real
//! `sentinel-worker` and `sentinel-web` binaries, a recording proxy in front of the web (every
//! response the browser sees is kept, to look for leaked tokens), and headless Chromium.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod proxy;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use sentinel_sim::{Profile, RunningSim};
use sentinel_testkit::{
    TestDb, create_db, free_port, sim_env, spawn_sim, wait_for, wait_for_process,
};
use serde_json::json;

pub const WEB_BIN: &str = env!("CARGO_BIN_EXE_sentinel-web");

/// Where `cargo test` put this test's binaries' siblings (`target/<profile>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf()
}

/// The worker binary, built by `cargo test --workspace` next to this test's binary.
fn worker_bin() -> PathBuf {
    let bin = bin_dir().join("sentinel-worker");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p sentinel-worker` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// Child processes, killed when dropped (so a failing test leaves none behind).
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            kill(child);
        }
    }
}

pub struct Stack {
    sim: Option<RunningSim>,
    pub db: TestDb,
    processes: Processes,
    pub proxy: proxy::Recorder,
    /// What the browser uses: the proxy in front of the web.
    pub url: String,
    pub worker_url: String,
    pub tenant: String,
}

fn kill(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

impl Stack {
    pub async fn start(profile: Profile, seed: u64) -> Stack {
        let sim = spawn_sim(profile, seed).await;
        let db = create_db().await;
        let tenant = sim.state.read_tenant().tenant_id.clone();
        let worker_port = free_port();
        let worker_url = format!("http://127.0.0.1:{worker_port}");
        let mut worker = Command::new(worker_bin());
        worker.arg("serve");
        sim_env(&mut worker, &sim, &db);
        let worker = worker
            .env("WORKER_API_ADDR", format!("127.0.0.1:{worker_port}"))
            .env("SCHEDULER_POLL_SECONDS", "1")
            .env("ALERT_FIRST_RETRY_SECONDS", "1")
            .env("WORKER_ID", "browser-test-worker")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn worker");
        let mut processes = Processes(vec![worker]);
        wait_for_process(
            &format!("{worker_url}/health"),
            &mut processes.0[0],
            Duration::from_secs(60),
        )
        .await;
        let web_port = free_port();
        let web_url = format!("http://127.0.0.1:{web_port}");
        let proxy = proxy::Recorder::start(&web_url).await;
        let mut web = Command::new(WEB_BIN);
        sim_env(&mut web, &sim, &db);
        let web = web
            .env("WEB_ADDR", format!("127.0.0.1:{web_port}"))
            .env("WEB_PUBLIC_URL", &proxy.url)
            .env("WORKER_API_URL", &worker_url)
            .spawn()
            .expect("spawn web");
        processes.0.push(web);
        wait_for_process(
            &format!("{web_url}/health"),
            &mut processes.0[1],
            Duration::from_secs(60),
        )
        .await;
        Stack {
            url: proxy.url.clone(),
            sim: Some(sim),
            db,
            processes,
            proxy,
            worker_url,
            tenant,
        }
    }

    pub fn sim(&self) -> &RunningSim {
        self.sim.as_ref().expect("the simulator was stopped")
    }

    /// Stops the simulated tenant: Graph and Entra are gone from now on.
    pub async fn stop_sim(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
    }

    pub async fn stop(mut self) {
        drop(std::mem::replace(
            &mut self.processes,
            Processes(Vec::new()),
        ));
        self.stop_sim().await;
        self.db.drop_db().await;
    }

    /// Every token the simulator has issued so far.
    pub async fn issued_tokens(&self) -> Vec<String> {
        reqwest::get(format!("{}/_sim/tokens", self.sim().url()))
            .await
            .expect("tokens")
            .json()
            .await
            .expect("json")
    }

    pub async fn manifest(&self) -> serde_json::Value {
        reqwest::get(format!("{}/_sim/manifest", self.sim().url()))
            .await
            .expect("manifest")
            .json()
            .await
            .expect("json")
    }

    /// Distinct sharing links per scope in the simulated tenant: (drive, permission id) pairs.
    /// Every sharing link of the tenant once: (drive, permission, scope).
    pub async fn links(&self) -> std::collections::BTreeSet<(String, String, String)> {
        let text = reqwest::get(format!("{}/_sim/dump/permissions", self.sim().url()))
            .await
            .expect("dump")
            .text()
            .await
            .expect("text");
        let mut links = std::collections::BTreeSet::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            let Some(scope) = v["permission"]["link"]["scope"].as_str() else {
                continue;
            };
            let (drive, id) = (v["driveId"].to_string(), v["permission"]["id"].to_string());
            links.insert((drive, id, scope.to_string()));
        }
        links
    }

    /// Links per scope, each counted once however many items it reaches.
    pub async fn distinct_links(&self) -> std::collections::HashMap<String, i64> {
        let mut counts = std::collections::HashMap::new();
        for (_, _, scope) in self.links().await {
            *counts.entry(scope).or_insert(0) += 1;
        }
        counts
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect(sql)
    }
}

/// Signs in through the simulator's Entra with a cookie-keeping client; returns it and the
/// session's CSRF token.
pub async fn signed_in(base: &str, user: usize) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let page = client
        .get(format!("{base}/auth/login"))
        .send()
        .await
        .expect("login");
    let authorize = page.url().clone();
    let html = page.text().await.expect("html");
    let marker = format!("id=\"user-{user}\" href=\"");
    let start = html.find(&marker).expect("demo user link") + marker.len();
    let href = html[start..]
        .split('"')
        .next()
        .expect("href")
        .replace("&amp;", "&");
    let landed = client
        .get(authorize.join(&href).expect("url"))
        .send()
        .await
        .expect("pick user");
    assert_eq!(landed.url().path(), "/analytics");
    let html = landed.text().await.expect("html");
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("csrf field") + marker.len();
    let csrf = html[start..].split('"').next().expect("token").to_string();
    (client, csrf)
}

/// Headless Chromium from Debian's packages, through chromedriver.
pub struct Browser {
    pub client: Client,
    driver: Processes,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) must be installed: scripts/test.sh installs it");
        let driver = Processes(vec![driver]);
        let url = format!("http://127.0.0.1:{port}");
        wait_for(&format!("{url}/status"), Duration::from_secs(30)).await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-dev-shm-usage", "--window-size=1400,1100"]
            }),
        );
        let client = ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("start Chromium");
        Browser { client, driver }
    }

    pub async fn stop(mut self) {
        let _ = self.client.close().await;
        drop(std::mem::replace(&mut self.driver, Processes(Vec::new())));
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect(url);
    }

    /// Clicks something that navigates, and waits until the next page has loaded.
    pub async fn click(&self, css: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        self.navigate_by(el).await;
    }

    /// Clicks `el` and waits for the page it leads to.
    pub async fn navigate_by(&self, el: fantoccini::elements::Element) {
        let old = self.client.find(Locator::Css("html")).await.expect("html");
        el.click().await.unwrap_or_else(|e| panic!("click: {e}"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        // The old document goes stale once the browser has navigated away from it.
        while old.tag_name().await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the click did not navigate"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        loop {
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await;
            if state
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .as_deref()
                == Some("complete")
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the next page did not load"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        let el = match self.client.find(Locator::Css(css)).await {
            Ok(el) => el,
            Err(e) => panic!(
                "{css}: {e}\nat {}:\n{}",
                self.path().await,
                self.source().await
            ),
        };
        el.text().await.expect("text")
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .attr(name)
            .await
            .expect("attr")
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    }

    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.expect("url");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    pub async fn source(&self) -> String {
        self.client.source().await.expect("source")
    }

    /// Signs in through the simulator's Entra page as demo user `n` (0 admin, 1 reader).
    pub async fn sign_in(&self, base: &str, n: usize) {
        self.goto(&format!("{base}/analytics")).await;
        self.click(&format!("#user-{n}")).await;
        let path = self.path().await;
        assert!(
            path.starts_with("/analytics"),
            "after sign-in at {path}: {}",
            self.source().await
        );
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        el.clear().await.expect("clear");
        el.send_keys(value).await.expect("type");
    }

    /// Saves a screenshot when `SENTINEL_SCREENSHOTS` names a directory (how docs/ gets them).
    pub async fn screenshot(&self, name: &str) {
        if let Ok(dir) = std::env::var("SENTINEL_SCREENSHOTS") {
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::create_dir_all(&dir).expect("screenshot dir");
            std::fs::write(format!("{dir}/{name}.png"), png).expect("write screenshot");
        }
    }

    /// Polls `check` on fresh loads of `url` until it holds or `timeout` passes.
    pub async fn wait_until(
        &self,
        url: &str,
        timeout: Duration,
        what: &str,
        check: impl AsyncFn(&Browser) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.goto(url).await;
            if check(self).await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {timeout:?}; page: {}",
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
