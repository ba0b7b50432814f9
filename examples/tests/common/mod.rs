//! A simulated tenant and a client configured for it.

use sentinel_graph::{GraphClient, GraphConfig, SecretString};
use sentinel_sim::{Manifest, Profile, RunningSim, SimConfig};

pub async fn tenant_and_client(profile: Profile, seed: u64) -> (RunningSim, Manifest, GraphClient) {
    let config = SimConfig {
        profile,
        seed,
        ru_per_minute: 1_000_000,
        ..SimConfig::default()
    };
    let sim = sentinel_sim::spawn(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let manifest = sentinel_sim::control::manifest(&sim.state);
    let secret = SecretString::from(sentinel_sim::DEFAULT_CLIENT_SECRET.to_string());
    let mut graph = GraphConfig::new(
        manifest.tenant_id.clone(),
        manifest.client_id.clone(),
        secret,
    );
    graph.graph_base_url = format!("{}/v1.0", sim.url()).parse().expect("url");
    graph.authority = sim.url().parse().expect("url");
    graph.ru_per_minute = 1_000_000;
    graph.directory_ru_per_10s = 1_000_000;
    let client = GraphClient::new(graph).expect("client");
    (sim, manifest, client)
}
