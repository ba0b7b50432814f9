//! The custom pipeline reports exactly the items an anonymous link reaches.

mod common;

use std::collections::BTreeSet;

use sentinel_sim::Profile;

#[tokio::test]
async fn reports_exactly_the_items_reachable_by_anonymous_links() {
    let (sim, m, client) = common::tenant_and_client(Profile::Tiny, 5).await;
    let drives = sentinel_examples::all_drives(&client)
        .await
        .expect("drives");
    let (lines, report) = sentinel_examples::exposure::anonymous_exposure(&client, drives)
        .await
        .expect("report");
    let got: BTreeSet<String> = lines
        .iter()
        .map(|l| l.split(',').nth(1).expect("item id").to_string())
        .collect();
    let dump = reqwest::get(format!("{}/_sim/dump/permissions", sim.url()))
        .await
        .expect("dump")
        .text()
        .await
        .expect("text");
    let want: BTreeSet<String> = dump
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .filter(|p| p["permission"]["link"]["scope"] == "anonymous")
        .map(|p| p["itemId"].as_str().expect("id").to_string())
        .collect();
    assert!(!want.is_empty(), "the tenant has anonymous links");
    assert_eq!(got, want);
    assert_eq!(
        report.stage("drive items").map(|s| s.items_out),
        Some(m.items),
        "every live item passed through"
    );
    assert_eq!(
        report.stage("anonymous only").map(|s| s.items_out),
        Some(want.len() as u64)
    );
}
