//! The README's demo command, driven for real: it brings the stack up against the simulated
//! tenant, the first scan completes, and Ctrl-C stops everything.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_command_brings_up_a_dashboard_whose_first_scan_completes() {
    let db = sentinel_testkit::create_db().await;
    let (web, sim, worker) = (
        sentinel_testkit::free_port(),
        sentinel_testkit::free_port(),
        sentinel_testkit::free_port(),
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/demo.sh");
    let mut demo = Command::new("bash")
        .arg(script)
        .env("DATABASE_URL", &db.url)
        .env("DEMO_BIN_DIR", common::bin_dir())
        .env("DEMO_PROFILE", "tiny")
        .env("DEMO_PORT", web.to_string())
        .env("DEMO_SIM_PORT", sim.to_string())
        .env("DEMO_WORKER_PORT", worker.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run scripts/demo.sh");
    let base = format!("http://127.0.0.1:{web}");
    sentinel_testkit::wait_for_process(
        &format!("{base}/health"),
        &mut demo,
        Duration::from_secs(120),
    )
    .await;

    let (client, _) = common::signed_in(&base, 0).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        let runs: Value = client
            .get(format!("{base}/api/runs"))
            .send()
            .await
            .expect("runs")
            .json()
            .await
            .expect("json");
        let done = runs["runs"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["status"] != "running").cloned());
        if let Some(run) = done {
            break run;
        }
        assert!(Instant::now() < deadline, "no finished run: {runs}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["job_name"], "Tenant scan");
    let page = client
        .get(format!("{base}/analytics"))
        .send()
        .await
        .expect("analytics")
        .text()
        .await
        .expect("html");
    assert!(page.contains("Cached (DB): last refreshed at"), "{page}");
    let runs_page = client
        .get(format!("{base}/runs"))
        .send()
        .await
        .expect("runs")
        .text()
        .await
        .expect("html");
    assert!(runs_page.contains("Tenant scan") && runs_page.contains("success"));

    // Ctrl-C (SIGINT to the script) stops the simulator, the worker and the web.
    Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .expect("kill");
    let out = tokio::task::spawn_blocking(move || demo.wait_with_output())
        .await
        .expect("join")
        .expect("demo output");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("http://127.0.0.1:{web}")),
        "{printed}"
    );
    assert!(printed.contains("Sentinel.Admin"), "{printed}");
    for port in [web, sim, worker] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers after Ctrl-C"
        );
    }
    db.drop_db().await;
}

/// The compose demo overlay names the simulator's tenant in `.env.demo`; it must be the tenant
/// the overlay's `--profile` and `--seed` generate.
#[test]
fn the_compose_demo_names_the_tenant_its_simulator_generates() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let overlay =
        std::fs::read_to_string(format!("{root}/docker-compose.demo.yml")).expect("overlay");
    assert!(
        overlay.contains(r#""--profile", "small", "--seed", "7""#),
        "the overlay runs small, seed 7"
    );
    let env = std::fs::read_to_string(format!("{root}/.env.demo")).expect(".env.demo");
    let tenant = env
        .lines()
        .find_map(|l| l.strip_prefix("ENTRA_TENANT_ID="))
        .expect("ENTRA_TENANT_ID in .env.demo");
    let generated = sentinel_sim::generate::generate(sentinel_sim::Profile::Small, 7);
    assert_eq!(tenant, generated.tenant_id);
}
