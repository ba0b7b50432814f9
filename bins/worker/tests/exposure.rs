//! Exposure age through the real `sentinel-worker sync`: after users share and unshare in the
//! simulated tenant, the links the store lists as opened and removed since the first scan are
//! exactly the ones the simulator's ground truth gained and lost, and what stayed keeps the time
//! the first scan saw it.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use common::*;
use sentinel_sim::Profile;
use sentinel_store::{ChangesQuery, ExposureChange, ExposureKind, PageRequest, Store};
use serde_json::json;

/// (drive, permission, kind) of every anyone and organisation link the tenant has.
async fn truth_links(sim: &sentinel_sim::RunningSim) -> BTreeSet<(String, String, ExposureKind)> {
    dump(sim, "permissions")
        .await
        .iter()
        .filter_map(|row| {
            let kind = match row["permission"]["link"]["scope"].as_str()? {
                "anonymous" => ExposureKind::AnyoneLink,
                "organization" => ExposureKind::OrganizationLink,
                _ => return None,
            };
            Some((
                row["driveId"].as_str()?.to_string(),
                row["permission"]["id"].as_str()?.to_string(),
                kind,
            ))
        })
        .collect()
}

/// (drive, item) of every item that holds permissions of its own (not a library's root).
async fn truth_unique(sim: &sentinel_sim::RunningSim) -> BTreeSet<(String, String)> {
    let roots: BTreeSet<String> = dump(sim, "items")
        .await
        .iter()
        .filter(|i| i["parentId"].is_null())
        .filter_map(|i| i["id"].as_str().map(String::from))
        .collect();
    dump(sim, "permissions")
        .await
        .iter()
        .filter(|r| r["inheritedFrom"].is_null())
        .filter_map(|r| {
            Some((
                r["driveId"].as_str()?.to_string(),
                r["itemId"].as_str()?.to_string(),
            ))
        })
        .filter(|(_, item)| !roots.contains(item))
        .collect()
}

async fn unique_listed(
    store: &Store,
    tenant: &str,
    since: DateTime<Utc>,
    change: ExposureChange,
) -> BTreeSet<(String, String)> {
    let q = ChangesQuery {
        since,
        kind: Some(ExposureKind::UniquePermissions),
        change: Some(change),
    };
    let req = PageRequest {
        per_page: 10_000,
        ..PageRequest::default()
    };
    let rows = store
        .exposure_changes(tenant, &q, &req)
        .await
        .expect("changes")
        .rows;
    assert!(rows.iter().all(|e| e.permission_id.is_none()));
    rows.into_iter().map(|e| (e.drive_id, e.item_id)).collect()
}

async fn listed(
    store: &Store,
    tenant: &str,
    since: DateTime<Utc>,
    change: ExposureChange,
) -> Vec<sentinel_store::ExposureEvent> {
    let mut out = Vec::new();
    for kind in [ExposureKind::AnyoneLink, ExposureKind::OrganizationLink] {
        let q = ChangesQuery {
            since,
            kind: Some(kind),
            change: Some(change),
        };
        let req = PageRequest {
            per_page: 10_000,
            ..PageRequest::default()
        };
        out.extend(
            store
                .exposure_changes(tenant, &q, &req)
                .await
                .expect("changes")
                .rows,
        );
    }
    out
}

fn keys(events: &[sentinel_store::ExposureEvent]) -> BTreeSet<(String, String, ExposureKind)> {
    events
        .iter()
        .map(|e| {
            let permission = e.permission_id.clone().expect("links have a permission");
            (e.drive_id.clone(), permission, e.kind)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_opened_and_removed_since_a_scan_are_the_ones_the_tenant_gained_and_lost() {
    let sim = spawn_sim(Profile::Small, 131).await;
    let db = create_db().await;
    let tenant = sim.state.read_tenant().tenant_id.clone();
    let store = Store::from_pool(db.pool.clone());
    let args = ["--permissions", "hierarchical"];
    assert_synced(&sync(&sim, &db, &args).await).await;
    let before = truth_links(&sim).await;
    let unique_before = truth_unique(&sim).await;
    let after_first = store.now().await.expect("now");
    let first_seen_before: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT drive_id || '|' || item_id || '|' || permission_id, first_seen_at \
         FROM msgraph_drive_item_permissions WHERE deleted_at IS NULL ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("first seen");

    let kinds = ["share", "unshare", "restore_inheritance", "delete_file"];
    control(&sim, "/_sim/mutate", json!({"count": 120, "kinds": kinds})).await;
    assert_synced(&sync(&sim, &db, &args).await).await;
    let after = truth_links(&sim).await;
    let unique_after = truth_unique(&sim).await;

    let opened_truth: BTreeSet<_> = after.difference(&before).cloned().collect();
    let removed_truth: BTreeSet<_> = before.difference(&after).cloned().collect();
    assert!(
        !opened_truth.is_empty() && !removed_truth.is_empty(),
        "the mutations shared and unshared"
    );
    let opened = listed(&store, &tenant, after_first, ExposureChange::Opened).await;
    let removed = listed(&store, &tenant, after_first, ExposureChange::Removed).await;
    assert_eq!(
        keys(&opened),
        opened_truth,
        "links opened since the first scan"
    );
    assert_eq!(
        keys(&removed),
        removed_truth,
        "links removed since the first scan"
    );
    assert!(
        opened
            .iter()
            .all(|e| e.first_seen_at >= after_first && e.removed_at.is_none())
    );
    assert!(
        removed
            .iter()
            .all(|e| e.removed_at.is_some_and(|r| r >= after_first))
    );

    // Items that stopped inheriting, and those that inherit again (or went away).
    let broken: BTreeSet<_> = unique_after.difference(&unique_before).cloned().collect();
    let restored: BTreeSet<_> = unique_before.difference(&unique_after).cloned().collect();
    assert!(
        !broken.is_empty() && !restored.is_empty(),
        "inheritance broke and came back"
    );
    assert_eq!(
        unique_listed(&store, &tenant, after_first, ExposureChange::Opened).await,
        broken,
        "unique permissions broken since the first scan"
    );
    assert_eq!(
        unique_listed(&store, &tenant, after_first, ExposureChange::Removed).await,
        restored,
        "items that inherit again (or went away) since the first scan"
    );

    // What both scans saw keeps the first scan's time.
    let mut kept = 0;
    for (key, first) in &first_seen_before {
        let now: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT first_seen_at FROM msgraph_drive_item_permissions \
             WHERE drive_id || '|' || item_id || '|' || permission_id = $1 AND deleted_at IS NULL",
        )
        .bind(key)
        .fetch_optional(&db.pool)
        .await
        .expect("first seen");
        if let Some(now) = now {
            assert_eq!(now, *first, "{key} was seen by both scans");
            kept += 1;
        }
    }
    assert!(kept > 0, "some permissions survived the changes");
    db.drop_db().await;
}
