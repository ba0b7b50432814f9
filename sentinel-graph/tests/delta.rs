//! Delta rounds against the simulated tenant: full and incremental rounds, removals,
//! duplicates, resyncs, repeated links, hierarchical sharing.

mod common;

use std::collections::HashSet;

use common::*;
use futures::StreamExt;
use sentinel_graph::{DeltaEvent, DeltaStart, DriveDeltaOptions, GraphError};
use serde_json::json;

#[tokio::test]
async fn full_then_incremental_rounds_match_ground_truth_after_mutations() {
    let t = spawn_tenant(11, |_| {}).await;
    let drives = t.drive_ids().await;
    let mut replica = Replica::default();
    replica
        .sync(&t.client, &drives, &DriveDeltaOptions::default())
        .await
        .expect("full round");
    assert_same_items(&replica.view(), &t.truth_items().await);

    let report = t.mutate(60).await;
    assert_eq!(report["applied"], 60);
    // The changes may add libraries (a new subsite's): they get their first round now.
    let drives = t.drive_ids().await;
    replica
        .sync(&t.client, &drives, &DriveDeltaOptions::default())
        .await
        .expect("incremental round");
    assert_same_items(&replica.view(), &t.truth_items().await);
    assert_eq!(replica.resyncs, 0);
}

#[tokio::test]
async fn deleted_items_come_back_without_a_name() {
    let t = spawn_tenant(12, |_| {}).await;
    let drive = t.drive_ids().await.remove(0);
    let mut replica = Replica::default();
    replica
        .sync(
            &t.client,
            std::slice::from_ref(&drive),
            &DriveDeltaOptions::default(),
        )
        .await
        .expect("round");
    let victim = replica
        .items
        .values()
        .find(|i| !i.is_root() && !i.is_folder())
        .expect("a file")
        .id
        .clone();
    {
        let mut tenant = t.sim.state.write_tenant();
        let (d, i) = tenant.parse_item_id(&victim).expect("sim id");
        sentinel_sim::mutate::delete_subtree(&mut tenant, d, i);
    }
    let link = replica.links[&drive].clone();
    let mut stream = t
        .client
        .drive_delta(
            &drive,
            DeltaStart::Link(link),
            &DriveDeltaOptions::default(),
        )
        .expect("stream");
    let mut seen = Vec::new();
    while let Some(ev) = stream.next().await {
        if let DeltaEvent::Page(items) = ev.expect("page") {
            seen.extend(items);
        }
    }
    let deleted = seen
        .iter()
        .find(|i| i.id == victim)
        .expect("deleted item reported");
    assert!(deleted.is_deleted());
    assert_eq!(
        deleted.name, None,
        "SharePoint omits the name of deleted items"
    );
}

#[tokio::test]
async fn duplicates_and_empty_pages_do_not_change_the_result() {
    let t = spawn_tenant(13, |_| {}).await;
    t.faults(json!({"rates": {"duplicate": 0.5, "empty_page": 0.3}}))
        .await;
    let drives = t.drive_ids().await;
    let mut replica = Replica::default();
    let small_pages = DriveDeltaOptions {
        top: Some(7),
        ..Default::default()
    };
    replica
        .sync(&t.client, &drives, &small_pages)
        .await
        .expect("round");
    t.mutate(40).await;
    replica
        .sync(&t.client, &drives, &small_pages)
        .await
        .expect("round");
    assert_same_items(&replica.view(), &t.truth_items().await);
    let stats = t.get("/_sim/stats").await;
    assert!(
        stats["faults_injected"]["Duplicate"].as_u64().unwrap_or(0) > 0,
        "duplicates were injected: {stats}"
    );
}

#[tokio::test]
async fn a_token_expiring_mid_round_resyncs_and_reconciles_exactly() {
    let t = spawn_tenant(14, |_| {}).await;
    let drives = t.drive_ids().await;
    let mut replica = Replica::default();
    replica
        .sync(&t.client, &drives, &DriveDeltaOptions::default())
        .await
        .expect("first round");
    t.mutate(50).await;
    // Start an incremental round on the biggest drive, expire tokens after its first page.
    let big = drives
        .iter()
        .max_by_key(|d| {
            replica
                .items
                .values()
                .filter(|i| {
                    i.parent_reference
                        .as_ref()
                        .and_then(|p| p.drive_id.as_ref())
                        == Some(*d)
                })
                .count()
        })
        .expect("drive")
        .clone();
    let opts = DriveDeltaOptions {
        top: Some(3),
        ..Default::default()
    };
    let mut stream = t
        .client
        .drive_delta(&big, DeltaStart::Scratch, &opts)
        .expect("stream");
    let first = stream.next().await.expect("event").expect("page");
    assert!(matches!(first, DeltaEvent::Page(_)));
    t.post("/_sim/expire-tokens", json!({})).await;
    let mut resynced = false;
    let mut completed = false;
    while let Some(ev) = stream.next().await {
        match ev.expect("event") {
            DeltaEvent::Resync { code } => {
                assert!(code.starts_with("resync"), "{code}");
                resynced = true;
            }
            DeltaEvent::Complete { .. } => completed = true,
            DeltaEvent::Page(_) => {}
        }
    }
    assert!(resynced && completed);
    // Stored links are all stale now: every drive resyncs, and the replica ends exact. (The
    // changes may have created drives, e.g. a new subsite's library: those start from scratch.)
    let live = t.drive_ids().await;
    replica
        .sync(&t.client, &live, &DriveDeltaOptions::default())
        .await
        .expect("resync round");
    assert_eq!(
        replica.resyncs,
        drives.iter().filter(|d| live.contains(*d)).count(),
        "every live drive resynced once"
    );
    assert_same_items(&replica.view(), &t.truth_items().await);
}

#[tokio::test]
async fn a_repeated_next_link_is_survived_and_an_endless_one_is_a_typed_error() {
    let t = spawn_tenant(15, |_| {}).await;
    let drives = t.drive_ids().await;
    let opts = DriveDeltaOptions {
        top: Some(5),
        ..Default::default()
    };
    t.faults(json!({"next": {"repeat_next_link": 2}})).await;
    let mut replica = Replica::default();
    replica
        .sync(&t.client, &drives, &opts)
        .await
        .expect("round with repeated links");
    assert_same_items(&replica.view(), &t.truth_items().await);
    assert_eq!(
        t.get("/_sim/stats").await["faults_injected"]["RepeatNextLink"],
        2
    );

    t.faults(json!({"rates": {"repeat_next_link": 1.0}})).await;
    let mut fresh = Replica::default();
    let err = fresh
        .sync(&t.client, &drives, &opts)
        .await
        .expect_err("endless loop detected");
    assert!(matches!(err, GraphError::PagingLoop(_)), "{err}");
}

#[tokio::test]
async fn latest_gives_an_empty_round_then_only_new_changes() {
    let t = spawn_tenant(16, |_| {}).await;
    let drive = t.drive_ids().await.remove(0);
    let mut stream = t
        .client
        .drive_delta(&drive, DeltaStart::Latest, &DriveDeltaOptions::default())
        .expect("stream");
    let mut link = None;
    while let Some(ev) = stream.next().await {
        match ev.expect("event") {
            DeltaEvent::Page(items) => assert!(items.is_empty()),
            DeltaEvent::Complete { delta_link } => link = Some(delta_link),
            DeltaEvent::Resync { .. } => panic!("no resync expected"),
        }
    }
    let new_id = {
        let mut tenant = t.sim.state.write_tenant();
        let d = tenant.drive_index[&drive];
        tenant.next_seq();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        let idx = sentinel_sim::generate::add_random_item_for_tests(&mut tenant, &mut rng, d);
        tenant.item_id(d, idx)
    };
    let mut stream = t
        .client
        .drive_delta(
            &drive,
            DeltaStart::Link(link.expect("link")),
            &DriveDeltaOptions::default(),
        )
        .expect("stream");
    let mut ids = HashSet::new();
    while let Some(ev) = stream.next().await {
        if let DeltaEvent::Page(items) = ev.expect("event") {
            ids.extend(items.into_iter().map(|i| i.id));
        }
    }
    assert!(ids.contains(&new_id), "the new item is reported");
    assert!(
        ids.len() <= 3,
        "only the change (and possibly its permission root) is reported, got {}",
        ids.len()
    );
}

#[tokio::test]
async fn hierarchical_sharing_marks_exactly_the_permission_roots() {
    let t = spawn_tenant(17, |_| {}).await;
    let drives = t.drive_ids().await;
    let opts = DriveDeltaOptions {
        hierarchical_sharing: true,
        show_sharing_changes: true,
        ..Default::default()
    };
    let mut replica = Replica::default();
    replica
        .sync(&t.client, &drives, &opts)
        .await
        .expect("round");
    let with_facet: HashSet<String> = replica
        .items
        .values()
        .filter(|i| i.shared.is_some())
        .map(|i| i.id.clone())
        .collect();
    let roots: HashSet<String> = t
        .dump("permissions")
        .await
        .iter()
        .filter(|p| p["inheritedFrom"].is_null())
        .map(|p| p["itemId"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(
        with_facet, roots,
        "the sharing facet appears on hierarchy roots only"
    );

    // A share on an inheriting file makes it a new root, flagged as a sharing change (files
    // only: msgraph-sdk-java #2548).
    let target = replica
        .items
        .values()
        .find(|i| i.shared.is_none() && !i.is_root() && !i.is_folder())
        .expect("inheriting item")
        .id
        .clone();
    {
        let mut tenant = t.sim.state.write_tenant();
        let (d, i) = tenant.parse_item_id(&target).expect("sim id");
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(2);
        sentinel_sim::mutate::share(&mut tenant, &mut rng, d, i);
    }
    replica
        .sync(&t.client, &drives, &opts)
        .await
        .expect("incremental");
    let item = &replica.items[&target];
    assert!(
        item.shared.is_some() && item.sharing_changed(),
        "{:?}",
        item.raw
    );
}

#[tokio::test]
async fn directory_deltas_report_removed_users_and_group_membership_changes() {
    let t = spawn_tenant(18, |_| {}).await;
    let mut users = std::collections::HashMap::new();
    let mut link = None;
    let mut s = t.client.users_delta(DeltaStart::Scratch, &[]);
    while let Some(ev) = s.next().await {
        match ev.expect("event") {
            DeltaEvent::Page(page) => page.into_iter().for_each(|u| {
                users.insert(u.id.clone(), u);
            }),
            DeltaEvent::Complete { delta_link } => link = Some(delta_link),
            DeltaEvent::Resync { .. } => panic!("unexpected resync"),
        }
    }
    let truth: HashSet<String> = t
        .dump("users")
        .await
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(users.keys().cloned().collect::<HashSet<_>>(), truth);
    assert!(users.values().any(|u| u.is_guest()), "tenant has guests");

    let (soft, hard) = {
        let mut tenant = t.sim.state.write_tenant();
        let seq = tenant.next_seq();
        tenant.users[3].state = sentinel_sim::tenant::Lifecycle::SoftDeleted;
        tenant.users[3].version = seq;
        tenant.users[4].state = sentinel_sim::tenant::Lifecycle::HardDeleted;
        tenant.users[4].version = seq;
        (tenant.users[3].id.clone(), tenant.users[4].id.clone())
    };
    let mut s = t
        .client
        .users_delta(DeltaStart::Link(link.expect("link")), &[]);
    let mut removed = std::collections::HashMap::new();
    while let Some(ev) = s.next().await {
        if let DeltaEvent::Page(page) = ev.expect("event") {
            for u in page {
                if let Some(r) = u.removed {
                    removed.insert(u.id, r.reason);
                }
            }
        }
    }
    assert_eq!(removed.get(&soft).map(String::as_str), Some("changed"));
    assert_eq!(removed.get(&hard).map(String::as_str), Some("deleted"));

    // Groups with members@delta and owners@delta: merged across pages, equal to the truth.
    let mut members: HashSet<(String, String)> = HashSet::new();
    let mut owners: HashSet<(String, String)> = HashSet::new();
    let mut s = t.client.groups_delta(DeltaStart::Scratch, &[], true);
    while let Some(ev) = s.next().await {
        if let DeltaEvent::Page(page) = ev.expect("event") {
            for g in page {
                for m in g.members_delta.unwrap_or_default() {
                    if m.removed.is_none() {
                        members.insert((g.id.clone(), m.id));
                    }
                }
                for o in g.owners_delta.unwrap_or_default() {
                    if o.removed.is_none() {
                        owners.insert((g.id.clone(), o.id));
                    }
                }
            }
        }
    }
    // (group, member or owner) pairs of a dump.
    let pairs = |rows: Vec<serde_json::Value>, key: &str| -> HashSet<(String, String)> {
        rows.iter()
            .map(|m| {
                let s = |k: &str| m[k].as_str().expect("id").to_string();
                (s("groupId"), s(key))
            })
            .collect()
    };
    let owners_truth = pairs(t.dump("ownerships").await, "ownerId");
    assert!(!owners_truth.is_empty(), "the tenant's groups have owners");
    assert_eq!(owners, owners_truth);
    assert_eq!(members, pairs(t.dump("memberships").await, "memberId"));
}

/// `GET /groups/{id}/sites/root` is a Microsoft 365 group's team site (site-get, "Access a group
/// team site"); a group without one is `None`, not an error.
#[tokio::test]
async fn a_groups_team_site_is_found_by_its_root_and_none_is_no_error() {
    let t = spawn_tenant(18, |c| c.profile = sentinel_sim::Profile::Small).await;
    let sites = t.dump("sites").await;
    let mut with_site = 0;
    for g in t.dump("groups").await {
        let id = g["id"].as_str().expect("id");
        let site = t.client.group_root_site(id).await.expect("looked up");
        let truth = sites
            .iter()
            .find(|s| s["groupId"] == id)
            .map(|s| s["id"].as_str().expect("site id").to_string());
        assert_eq!(site.map(|s| s.id), truth, "group {id}");
        with_site += usize::from(truth.is_some());
    }
    assert!(with_site > 0, "some groups have team sites");
    assert!(matches!(
        t.client.group_root_site("not/an id").await,
        Err(GraphError::InvalidArgument(_))
    ));
}
