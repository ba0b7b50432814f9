//! The `sentinel-sim` binary: serves with the documented flags, refuses bad ones in one line.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sentinel-sim");

fn run_bad(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn bad_flags_exit_non_zero_with_a_clear_message() {
    for (args, needle) in [
        (vec!["--profile", "huge"], "unknown profile 'huge'"),
        (vec!["--faults", "429=2"], "must be between 0 and 1"),
        (vec!["--faults", "explode=0.1"], "unknown fault 'explode'"),
        (
            vec!["--time-scale", "0"],
            "--time-scale must be a positive number",
        ),
        (vec!["--addr", "nowhere"], "invalid value 'nowhere'"),
    ] {
        let (code, err) = run_bad(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn serves_the_manifest_on_the_given_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = Command::new(BIN)
        .args([
            "--profile",
            "tiny",
            "--seed",
            "7",
            "--addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let got = rt.block_on(async {
            reqwest::get(format!("http://127.0.0.1:{port}/_sim/manifest"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        });
        if let Some(b) = got {
            break b;
        }
        assert!(Instant::now() < deadline, "simulator did not come up");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    let m: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(m["seed"], 7);
    assert_eq!(m["client_id"], sentinel_sim::DEFAULT_CLIENT_ID);
    assert!(m["items"].as_u64().expect("items") > 100);
    assert!(m["tenant_id"].as_str().expect("tid").len() == 36);
}
