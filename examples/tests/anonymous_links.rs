//! The example finds exactly the tenant's anonymous links, at hierarchy-root cost.

mod common;

use sentinel_sim::Profile;

#[tokio::test]
async fn finds_every_anonymous_link_of_the_simulated_tenant() {
    let (sim, manifest, client) = common::tenant_and_client(Profile::Small, 3).await;
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
