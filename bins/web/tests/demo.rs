//! The README's demo command, driven for real: it brings the stack up against the simulated
//! tenant, the first scan completes, and Ctrl-C stops everything.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the demo printed (its processes' logs included), read as it comes: an unread pipe would
/// fill and block a process writing to it, and a failure shows what the stack said.
#[derive(Clone, Default)]
struct Printed(Arc<Mutex<String>>);

impl Printed {
    fn collect(&self, from: impl std::io::Read + Send + 'static) {
        let sink = self.0.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
    }

    fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

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
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/demo.sh");
    let printed = Printed::default();
    printed.collect(demo.stdout.take().expect("stdout"));
    printed.collect(demo.stderr.take().expect("stderr"));
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
        let runs: Value = match client.get(format!("{base}/api/runs")).send().await {
            Ok(r) => r.json().await.expect("json"),
            Err(e) => panic!("/api/runs: {e}; the demo printed:\n{}", printed.text()),
        };
        let done = runs["runs"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["status"] != "running").cloned());
        if let Some(run) = done {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "no finished run: {runs}; the demo printed:\n{}",
            printed.text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        run["status"],
        "success",
        "{run}; the demo printed:\n{}",
        printed.text()
    );
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
    tokio::task::spawn_blocking(move || demo.wait())
        .await
        .expect("join")
        .expect("demo exit");
    // The reader threads end with the pipes; give them a moment to take the last lines.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let printed = printed.text();
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
