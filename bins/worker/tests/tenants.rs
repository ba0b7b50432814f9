//! Many tenants in one database, scanned by one deployment with its one app registration: each
//! tenant is read with its own token into its own rows, a disabled tenant's jobs wait, and a
//! tenant that never consented says so.

mod common;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sentinel_sim::{Profile, RunningFleet, SimConfig, spawn_fleet};

async fn fleet_of(seeds: &[u64]) -> RunningFleet {
    let configs = seeds
        .iter()
        .map(|&seed| SimConfig {
            profile: Profile::Tiny,
            seed,
            ru_per_minute: 10_000_000,
            ..SimConfig::default()
        })
        .collect();
    spawn_fleet(configs, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("fleet")
}

fn tenant_id(fleet: &RunningFleet, n: usize) -> String {
    fleet.tenants[n].read_tenant().tenant_id.clone()
}

/// `sentinel-worker <args>` for the deployment whose home tenant is the fleet's first.
async fn worker(fleet: &RunningFleet, db: &TestDb, args: &[&str]) -> Output {
    let mut c = worker_command(&FleetTenant(fleet, 0), db, args);
    tokio::task::spawn_blocking(move || c.output().expect("run worker"))
        .await
        .expect("join")
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_is_read_with_its_own_token_into_its_own_rows() {
    let fleet = fleet_of(&[411, 412]).await;
    let db = create_db().await;
    let (home, other) = (tenant_id(&fleet, 0), tenant_id(&fleet, 1));
    let added = worker(
        &fleet,
        &db,
        &["tenants", "add", &other, "--name", "Fabrikam", "--no-scan"],
    )
    .await;
    assert!(succeeded(&added).contains(&format!("added tenant {other}")));
    let again = worker(&fleet, &db, &["tenants", "add", &other]).await;
    assert!(!again.status.success(), "a tenant is added once");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already added"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // The home tenant (ENTRA_TENANT_ID) by default, the other by --tenant: one app, two tokens.
    // Each scan's end recomputes its own tenant's audiences and reach, not every tenant's.
    let audiences_computed = |id: String| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
                "SELECT last_refreshed_at FROM audience_refresh_log WHERE tenant_id = $1",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await
            .expect("audience stamp")
        }
    };
    succeeded(&worker(&fleet, &db, &["sync"]).await);
    let home_computed = audiences_computed(home.clone()).await;
    assert!(
        home_computed.is_some(),
        "the home tenant's scan computed its audiences"
    );
    succeeded(&worker(&fleet, &db, &["sync", "--tenant", &other]).await);
    assert!(
        audiences_computed(other.clone()).await.is_some(),
        "and the other's its own"
    );
    assert_eq!(
        audiences_computed(home.clone()).await,
        home_computed,
        "the other tenant's scan left the home tenant's audiences as they were"
    );
    assert_matches_truth(&FleetTenant(&fleet, 0), &db).await;
    assert_matches_truth(&FleetTenant(&fleet, 1), &db).await;
    // Each tenant's data equals its own truth, so each was read with its own token (Graph
    // routes a request by its token's tenant). Each tenant issued one.
    for id in [&home, &other] {
        let tokens: Vec<serde_json::Value> =
            reqwest::get(format!("{}/_fleet/{id}/_sim/tokens", fleet.url()))
                .await
                .expect("tokens")
                .json()
                .await
                .expect("json");
        assert!(
            !tokens.is_empty(),
            "tenant {id} issued the token its data was read with"
        );
    }
    let tenants_of_rows: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tenant_id FROM msgraph_users UNION SELECT DISTINCT tenant_id FROM msgraph_drive_items ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("tenants");
    let mut both = vec![home.clone(), other.clone()];
    both.sort();
    assert_eq!(tenants_of_rows, both);

    succeeded(&worker(&fleet, &db, &["tenants", "band", &other, "2"]).await);
    let listed = succeeded(&worker(&fleet, &db, &["tenants", "list"]).await);
    let line = |id: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(line(&other), format!("{other}\tFabrikam\ttrue\tgranted\t2"));
    assert_eq!(line(&home), format!("{home}\t\ttrue\tgranted\t-"));
    let audited: Option<String> = sqlx::query_scalar(
        "SELECT tenant_id FROM audit_events WHERE action = 'tenant.add' AND entity_id = $1",
    )
    .bind(&other)
    .fetch_optional(&db.pool)
    .await
    .expect("audit");
    assert_eq!(audited.as_deref(), Some(other.as_str()));
    db.drop_db().await;
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_never_consented_fails_its_run_and_says_so() {
    let fleet = fleet_of(&[421]).await;
    let db = create_db().await;
    // A tenant the app was never consented in: Entra refuses the token (AADSTS90002 here).
    let stranger = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    succeeded(&worker(&fleet, &db, &["tenants", "add", stranger, "--no-scan"]).await);
    let out = worker(&fleet, &db, &["sync", "--tenant", stranger]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("connecting to tenant {stranger}")),
        "{stderr}"
    );
    let listed = succeeded(&worker(&fleet, &db, &["tenants", "list"]).await);
    let line = listed
        .lines()
        .find(|l| l.starts_with(stranger))
        .unwrap_or_default();
    assert!(
        line.contains("\tmissing (") && line.contains("AADSTS90002"),
        "the list says consent is missing, and what Entra said: {line}"
    );
    let bad = worker(&fleet, &db, &["tenants", "band", stranger, "9"]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("a band is 1 to 5"));
    let unknown = worker(&fleet, &db, &["tenants", "disable", "nobody.example"]).await;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no tenant 'nobody.example'"));
    db.drop_db().await;
    fleet.shutdown().await;
}

fn serve(fleet: &RunningFleet, db: &TestDb) -> Child {
    let port = sentinel_testkit::free_port();
    worker_command(&FleetTenant(fleet, 0), db, &["serve"])
        .env("WORKER_API_ADDR", format!("127.0.0.1:{port}"))
        .env("SCHEDULER_POLL_SECONDS", "1")
        .env("WORKER_FIRST_SCAN", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker")
}

/// Successful runs of each tenant's jobs, in the order of `tenants`.
async fn successes(db: &TestDb, tenants: &[&str]) -> Vec<i64> {
    let mut out = Vec::new();
    for t in tenants {
        out.push(
            sqlx::query_scalar(
                "SELECT count(*) FROM job_runs r JOIN jobs j USING (job_id) \
                 WHERE j.tenant_id = $1 AND r.status = 'success'",
            )
            .bind(t)
            .fetch_one(&db.pool)
            .await
            .expect("runs"),
        );
    }
    out
}

async fn wait_for_runs(db: &TestDb, tenants: &[&str], want: &[i64]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = successes(db, tenants).await;
        if got.iter().zip(want).all(|(g, w)| g >= w) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "runs {got:?}, waited for {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_scans_every_enabled_tenant_and_a_disabled_one_waits() {
    let fleet = fleet_of(&[431, 432]).await;
    let db = create_db().await;
    let (home, other) = (tenant_id(&fleet, 0), tenant_id(&fleet, 1));
    // Added before the worker starts: `tenants add` schedules its scan, the worker's first
    // start schedules the home tenant's.
    let added = succeeded(&worker(&fleet, &db, &["tenants", "add", &other]).await);
    assert!(added.contains("scheduled its hourly scan"), "{added}");
    let mut w = serve(&fleet, &db);
    wait_for_runs(&db, &[&home, &other], &[1, 1]).await;
    assert_matches_truth(&FleetTenant(&fleet, 0), &db).await;
    assert_matches_truth(&FleetTenant(&fleet, 1), &db).await;

    succeeded(&worker(&fleet, &db, &["tenants", "disable", &other]).await);
    sqlx::query("UPDATE jobs SET run_requested_at = now()")
        .execute(&db.pool)
        .await
        .expect("run now");
    // The home tenant's run proves the worker looked at both jobs since.
    wait_for_runs(&db, &[&home], &[2]).await;
    assert_eq!(
        successes(&db, &[&other]).await,
        [1],
        "a disabled tenant's job waits"
    );
    let waiting: bool =
        sqlx::query_scalar("SELECT run_requested_at IS NOT NULL FROM jobs WHERE tenant_id = $1")
            .bind(&other)
            .fetch_one(&db.pool)
            .await
            .expect("job");
    assert!(waiting, "its request stays, to run once enabled");
    succeeded(&worker(&fleet, &db, &["tenants", "enable", &other]).await);
    wait_for_runs(&db, &[&other], &[2]).await;

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &w.id().to_string()])
        .status();
    let _ = w.wait();
    db.drop_db().await;
    fleet.shutdown().await;
}
