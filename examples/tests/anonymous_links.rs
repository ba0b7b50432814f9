//! The example finds exactly the tenant's anonymous links, at hierarchy-root cost.

use sentinel_graph::{GraphClient, GraphConfig, SecretString};
use sentinel_sim::{Profile, SimConfig};

#[tokio::test]
async fn finds_every_anonymous_link_of_the_simulated_tenant() {
    let sim = sentinel_sim::spawn(
        SimConfig {
            profile: Profile::Small,
            seed: 3,
            ru_per_minute: 1_000_000,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("sim");
    let manifest = sentinel_sim::control::manifest(&sim.state);
    let mut config = GraphConfig::new(
        manifest.tenant_id.clone(),
        manifest.client_id.clone(),
        SecretString::from(sentinel_sim::DEFAULT_CLIENT_SECRET.to_string()),
    );
    config.graph_base_url = format!("{}/v1.0", sim.url()).parse().expect("url");
    config.authority = sim.url().parse().expect("url");
    config.ru_per_minute = 1_000_000;
    config.directory_ru_per_10s = 1_000_000;
    let client = GraphClient::new(config).expect("client");
    let links = sentinel_examples::anonymous_links(&client)
        .await
        .expect("scan");
    assert_eq!(links.len() as u64, manifest.anonymous_links);
    // Permission reads only for the candidates: far below one call per item.
    let perm_reads = (client.ru_spent() as f64) / 5.0;
    assert!(
        perm_reads < manifest.items as f64 / 10.0,
        "spent {} RU for {} items",
        client.ru_spent(),
        manifest.items
    );
    sim.shutdown().await;
}
