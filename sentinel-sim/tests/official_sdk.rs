//! Microsoft's own Graph SDK for Python (`msgraph-sdk`) walks the simulator as a real tenant:
//! the SDK's URL forms, paging, models and `$batch` must all work, so that teams can test their
//! own tools against `sentinel-sim`. The walk is `tests/sdk/walk.py`; the SDK is installed by
//! `scripts/install-graph-sdk.sh` (which `scripts/test.sh` runs first).

use std::process::Command;

use sentinel_sim::{Profile, SimConfig};

#[tokio::test(flavor = "multi_thread")]
async fn microsofts_python_sdk_walks_the_tenant() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let install = Command::new(format!("{root}/scripts/install-graph-sdk.sh"))
        .output()
        .expect("run scripts/install-graph-sdk.sh");
    assert!(
        install.status.success(),
        "installing msgraph-sdk failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let python = String::from_utf8_lossy(&install.stdout).trim().to_string();

    let config = SimConfig {
        profile: Profile::Tiny,
        seed: 11,
        ru_per_minute: 1_000_000,
        ..SimConfig::default()
    };
    let secret = config.client_secret.clone();
    let sim = sentinel_sim::spawn(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts");
    // Subsites for the walk to find (a tiny tenant may have none).
    {
        let mut rng = sim.state.lock_rng();
        let mut t = sim.state.write_tenant();
        sentinel_sim::mutate::apply_random(
            &mut t,
            &mut rng,
            2,
            0,
            Some(&["create_subsite".into()]),
        );
    }
    let url = sim.url();
    let walk = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/walk.py"))
            .env("SIM_URL", url)
            .env("SIM_SECRET", secret)
            .output()
            .expect("run the walk")
    })
    .await
    .expect("walk");
    let stats = sim.state.lock_stats().clone();
    sim.shutdown().await;
    let out = String::from_utf8_lossy(&walk.stdout);
    assert!(
        walk.status.success(),
        "the SDK's walk failed:\n{out}\n{}",
        String::from_utf8_lossy(&walk.stderr)
    );
    // The SDK spoke its own dialect: the simulator served it by the canonical routes.
    for route in [
        "/v1.0/users/delta",
        "/v1.0/groups/delta",
        "/v1.0/sites/getAllSites",
        "/v1.0/sites/{site_id}/sites",
        "/v1.0/groups/{group_id}/sites/root",
        "/v1.0/drives/{drive_id}/root/delta",
        "/v1.0/$batch",
    ] {
        assert!(
            stats
                .by_endpoint
                .get(route)
                .and_then(|s| s.get(&200))
                .is_some(),
            "{route} was never answered 200: {:?}",
            stats.by_endpoint
        );
    }
    assert!(!out.contains("FAIL"), "{out}");
}
