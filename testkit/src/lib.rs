//! What every end-to-end test needs: a database of its own, a simulated tenant, the
//! environment that points a binary at both, free ports, and waiting for a server to answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod graph_schema;
pub mod truth;
pub mod webhook;
use std::process::Command;
use std::time::Duration;

use sentinel_sim::{Profile, RunningFleet, RunningSim, SimConfig, SimState};
use sqlx::{Connection, PgConnection, PgPool};

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test, dropped with it: by `drop_db`, or when the test
/// panics and unwinds (so a failing test leaves no database behind).
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    /// Created by [`create_db`], so dropped with this value.
    owned: bool,
}

pub async fn create_db() -> TestDb {
    let admin = admin_url();
    let name = format!("sentinel_e2e_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect to DATABASE_URL");
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .expect("url with a database");
    let url = format!("{base}/{name}");
    let pool = PgPool::connect(&url)
        .await
        .expect("connect to test database");
    TestDb {
        name,
        url,
        pool,
        owned: true,
    }
}

impl TestDb {
    /// A database someone else owns (e.g. a benchmark's loaded tenant): never dropped.
    pub async fn existing(url: &str) -> Result<TestDb, sqlx::Error> {
        Ok(TestDb {
            name: url.rsplit('/').next().unwrap_or_default().to_string(),
            url: url.to_string(),
            pool: PgPool::connect(url).await?,
            owned: false,
        })
    }

    /// Leaves the database in place when this value goes (a bench's loaded tenant, reused).
    pub fn keep(&mut self) {
        self.owned = false;
    }

    pub async fn drop_db(self) {
        self.pool.close().await;
        // `Drop` does the rest.
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let name = self.name.clone();
        // Drop cannot await, and may run while a panicking test unwinds inside a runtime: the
        // database is dropped from a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url())
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) | Err(e) = dropped.map_err(|_| "the drop thread panicked".to_string()) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// A simulated tenant with a budget no test reaches (tests that want throttling set their own).
pub async fn spawn_sim(profile: Profile, seed: u64) -> RunningSim {
    spawn_sim_with(profile, seed, |_| {}).await
}

/// [`spawn_sim`] with some of the simulator's modes changed.
pub async fn spawn_sim_with(
    profile: Profile,
    seed: u64,
    tweak: impl FnOnce(&mut SimConfig),
) -> RunningSim {
    let mut config = SimConfig {
        profile,
        seed,
        ru_per_minute: 10_000_000,
        ..SimConfig::default()
    };
    tweak(&mut config);
    sentinel_sim::spawn(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim")
}

/// One simulated tenant as the harness reaches it: a simulator of its own, or one tenant of a
/// fleet ([`FleetTenant`]) sharing the fleet's address.
pub trait SimTenant {
    /// Where Entra and Graph answer (`http://127.0.0.1:port`).
    fn url(&self) -> String;
    /// Where this tenant's `/_sim/...` controls answer.
    fn control_url(&self) -> String;
    /// The tenant's state.
    fn state(&self) -> &SimState;
}

impl SimTenant for RunningSim {
    fn url(&self) -> String {
        RunningSim::url(self)
    }
    fn control_url(&self) -> String {
        RunningSim::url(self)
    }
    fn state(&self) -> &SimState {
        &self.state
    }
}

/// Tenant `n` of a fleet.
#[derive(Debug, Clone, Copy)]
pub struct FleetTenant<'a>(pub &'a RunningFleet, pub usize);

impl SimTenant for FleetTenant<'_> {
    fn url(&self) -> String {
        self.0.url()
    }
    fn control_url(&self) -> String {
        format!(
            "{}/_fleet/{}",
            self.0.url(),
            self.state().read_tenant().tenant_id
        )
    }
    fn state(&self) -> &SimState {
        &self.0.tenants[self.1]
    }
}

/// The variables that point the worker's and the web's configuration at `sim` for Entra and
/// Graph and at `db` (for in-process use, e.g. with `GraphConfig::from_lookup`).
pub fn sim_vars(sim: &impl SimTenant, db: &TestDb) -> Vec<(&'static str, String)> {
    let mut vars = graph_vars(sim);
    vars.push(("DATABASE_URL", db.url.clone()));
    vars
}

/// A variable lookup over `vars`, for the `from_lookup` constructors of the configurations.
pub fn lookup(vars: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    }
}

/// What `POST /_sim/{path}` answered (its JSON, or null), after checking it succeeded.
pub async fn sim_control(
    sim: &impl SimTenant,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/{path}", sim.control_url()))
        .json(&body)
        .send()
        .await
        .expect("simulator control call");
    assert!(r.status().is_success(), "/_sim/{path}: {}", r.status());
    r.json().await.unwrap_or(serde_json::Value::Null)
}

/// The simulator's log of Graph requests (the newest 10,000): `at_ms`, `route`, `status`.
pub async fn sim_requests(sim: &impl SimTenant) -> Vec<serde_json::Value> {
    reqwest::get(format!("{}/_sim/requests", sim.control_url()))
        .await
        .expect("requests")
        .json()
        .await
        .expect("JSON")
}

/// The simulator's ground truth: every object of `kind` (`users`, `items`, ...), one a line.
pub async fn sim_dump(sim: &impl SimTenant, kind: &str) -> Vec<serde_json::Value> {
    let text = reqwest::get(format!("{}/_sim/dump/{kind}", sim.control_url()))
        .await
        .expect("dump")
        .text()
        .await
        .expect("text");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The variables that point a Graph client (`GraphConfig::from_lookup`) at `sim`.
pub fn graph_vars(sim: &impl SimTenant) -> Vec<(&'static str, String)> {
    vec![
        (
            "ENTRA_TENANT_ID",
            sim.state().read_tenant().tenant_id.clone(),
        ),
        ("ENTRA_CLIENT_ID", sim.state().config.client_id.clone()),
        (
            "ENTRA_CLIENT_SECRET",
            sim.state().config.client_secret.clone(),
        ),
        ("ENTRA_AUTHORITY", sim.url()),
        ("GRAPH_BASE_URL", format!("{}/v1.0", sim.url())),
        ("GRAPH_RU_PER_MINUTE", "10000000".into()),
    ]
}

/// Points a binary (worker or web) at `sim` for Entra and Graph and at `db`, with nothing
/// else from the test's environment.
pub fn sim_env(c: &mut Command, sim: &impl SimTenant, db: &TestDb) {
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(sim_vars(sim, db))
        .env("RUST_LOG", "warn");
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until `url` answers 2xx, or panics after `timeout`.
pub async fn wait_for(url: &str, timeout: Duration) {
    wait_until_up(url, None, timeout).await
}

/// [`wait_for`] a server `child` runs, failing at once (with its exit status) if it exits.
pub async fn wait_for_process(url: &str, child: &mut std::process::Child, timeout: Duration) {
    wait_until_up(url, Some(child), timeout).await
}

async fn wait_until_up(url: &str, mut child: Option<&mut std::process::Child>, timeout: Duration) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(Ok(Some(status))) = child.as_mut().map(|c| c.try_wait()) {
            panic!("the server for {url} exited ({status}) before answering");
        }
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} did not answer within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
