//! For any seed and any sequence of mutations, a full delta round equals the ground truth,
//! and so does the previous replica plus an incremental round.

mod common;

use std::collections::HashMap;

use common::*;
use proptest::prelude::*;
use serde_json::Value;

type Items = HashMap<String, (String, Option<String>)>;

async fn truth(s: &Sim) -> Items {
    s.dump("items")
        .await
        .into_iter()
        .map(|v| {
            (
                v["id"].as_str().expect("id").to_string(),
                (
                    v["name"].as_str().expect("n").to_string(),
                    v["parentId"].as_str().map(String::from),
                ),
            )
        })
        .collect()
}

/// One round over every drive the replica knows plus any new ones; returns the new links.
async fn round(
    s: &Sim,
    links: &mut HashMap<String, String>,
    replica: &mut HashMap<String, (String, Items)>,
) {
    for d in s.dump("drives").await {
        let id = d["id"].as_str().expect("id").to_string();
        links
            .entry(id.clone())
            .or_insert_with(|| format!("/v1.0/drives/{id}/root/delta?$top=9"));
    }
    for (drive, link) in links.iter_mut() {
        let r = s.get_raw(link, &[]).await;
        if r.status() == 404 {
            replica.remove(drive);
            continue;
        }
        let mut next = Some(link.clone());
        let items = &mut replica.entry(drive.clone()).or_default().1;
        while let Some(l) = next.take() {
            let page: Value = s.get(&l).await;
            for v in page["value"].as_array().cloned().unwrap_or_default() {
                let id = v["id"].as_str().expect("id").to_string();
                if v.get("deleted").is_some() {
                    items.remove(&id);
                } else {
                    items.insert(
                        id,
                        (
                            v["name"].as_str().expect("name").to_string(),
                            v["parentReference"]["id"].as_str().map(String::from),
                        ),
                    );
                }
            }
            next = page["@odata.nextLink"].as_str().map(String::from);
            if let Some(d) = page["@odata.deltaLink"].as_str() {
                *link = d.to_string();
            }
        }
        // A deleted folder may come back as its own tombstone only: what was under it is gone
        // once the round is applied ("only delete a folder locally if it is empty after
        // syncing all the changes", driveitem-delta).
        loop {
            let orphans: Vec<String> = items
                .iter()
                .filter(|(_, (_, parent))| parent.as_ref().is_some_and(|p| !items.contains_key(p)))
                .map(|(id, _)| id.clone())
                .collect();
            if orphans.is_empty() {
                break;
            }
            orphans.iter().for_each(|id| {
                items.remove(id);
            });
        }
    }
    links.retain(|d, _| replica.contains_key(d));
}

fn flatten(replica: &HashMap<String, (String, Items)>) -> Items {
    replica
        .values()
        .flat_map(|(_, items)| items.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn delta_rounds_equal_ground_truth(seed in 0u64..10_000, batches in prop::collection::vec(1usize..40, 1..4)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        rt.block_on(async {
            let s = start(seed, |_| {}).await;
            let mut links = HashMap::new();
            let mut replica = HashMap::new();
            round(&s, &mut links, &mut replica).await;
            prop_assert_eq!(flatten(&replica), truth(&s).await);
            for count in batches {
                let r = s.http.post(s.url("/_sim/mutate")).json(&serde_json::json!({"count": count})).send().await.expect("mutate");
                prop_assert!(r.status().is_success());
                round(&s, &mut links, &mut replica).await;
                let want = truth(&s).await;
                prop_assert_eq!(flatten(&replica), want.clone(), "incremental round");
                let mut fresh_links = HashMap::new();
                let mut fresh = HashMap::new();
                round(&s, &mut fresh_links, &mut fresh).await;
                prop_assert_eq!(flatten(&fresh), want, "full round");
            }
            Ok(())
        })?;
    }
}
