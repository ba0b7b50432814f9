//! The pipeline's own contracts, against a simulated tenant over HTTP and a database of its
//! own: a delta round counts as done only with its last page (what came before a failure is
//! kept, but no deltaLink is), and a round restarted from scratch (an expired token) removes
//! what it no longer lists.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sentinel_graph::{GraphClient, GraphConfig};
use sentinel_pipeline::{GraphIngestConfig, PipelineError, Progress, Resource, run_graph_ingest};
use sentinel_sim::{Profile, RunningSim};
use sentinel_store::Store;
use sentinel_testkit::{TestDb, create_db, graph_vars, lookup, sim_control, sim_dump};
use serde_json::json;

struct Tenant {
    sim: RunningSim,
    db: TestDb,
    store: Store,
    client: GraphClient,
    tenant: String,
}

/// A users delta round of `profile`'s tenant takes a page per 200 users.
async fn tenant(profile: Profile, seed: u64) -> Tenant {
    let sim = sentinel_testkit::spawn_sim(profile, seed).await;
    let db = create_db().await;
    let store = Store::from_pool(db.pool.clone());
    store.migrate().await.expect("schema");
    let mut config = GraphConfig::from_lookup(lookup(graph_vars(&sim))).expect("config");
    // A failure is the test's, not something to retry away.
    config.max_retries = 0;
    let client = GraphClient::new(config).expect("client");
    let tenant = sim.state.read_tenant().tenant_id.clone();
    Tenant {
        sim,
        db,
        store,
        client,
        tenant,
    }
}

impl Tenant {
    async fn sync_users(&self) -> Result<(), PipelineError> {
        let config = GraphIngestConfig {
            resources: vec![Resource::Users],
            ..GraphIngestConfig::default()
        };
        run_graph_ingest(
            &self.client,
            &self.store,
            &self.tenant,
            &config,
            Arc::new(Progress::default()),
            Arc::new(AtomicBool::new(false)),
        )
        .await
        .map(|_| ())
    }

    async fn stored_users(&self) -> BTreeSet<String> {
        sqlx::query_scalar("SELECT id FROM msgraph_users WHERE deleted_at IS NULL")
            .fetch_all(&self.db.pool)
            .await
            .expect("users")
            .into_iter()
            .collect()
    }

    async fn users_link(&self) -> Option<String> {
        self.store
            .delta_link("users", &self.tenant)
            .await
            .expect("delta state")
    }

    async fn truth(&self) -> BTreeSet<String> {
        sim_dump(&self.sim, "users")
            .await
            .iter()
            .map(|u| u["id"].as_str().expect("id").to_string())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_that_fails_before_its_last_page_keeps_its_pages_but_not_a_delta_link() {
    // 3,000 users: 15 pages.
    let t = tenant(Profile::Medium, 71).await;
    // Every nextLink is handed back as the next one (Graph has been seen to do it once; the
    // client asks again, and gives up when it keeps happening).
    sim_control(
        &t.sim,
        "faults",
        json!({"next": {"repeat_next_link": 1000}}),
    )
    .await;
    let failed = t.sync_users().await;
    assert!(
        matches!(
            failed,
            Err(PipelineError::Graph(
                sentinel_graph::GraphError::PagingLoop(_)
            ))
        ),
        "{failed:?}"
    );
    let came = t.stored_users().await;
    assert!(
        came.len() >= 200,
        "the pages that came are kept: {}",
        came.len()
    );
    assert!(came.is_subset(&t.truth().await));
    assert_eq!(
        t.users_link().await,
        None,
        "no deltaLink without the last page"
    );

    sim_control(&t.sim, "faults", json!({})).await;
    t.sync_users().await.expect("a clean round");
    assert_eq!(t.stored_users().await, t.truth().await);
    assert!(t.users_link().await.is_some(), "the last page saved it");
    t.db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_restarted_from_scratch_removes_what_it_no_longer_lists() {
    let t = tenant(Profile::Small, 72).await;
    t.sync_users().await.expect("first round");
    assert_eq!(t.stored_users().await, t.truth().await);
    let link = t.users_link().await.expect("a deltaLink");

    let before = t.truth().await;
    sim_control(
        &t.sim,
        "mutate",
        json!({"count": 3, "kinds": ["hard_delete_user"]}),
    )
    .await;
    let after = t.truth().await;
    assert_eq!(before.difference(&after).count(), 3, "three users are gone");
    // Every delta token issued so far stops working: the next round starts from scratch,
    // and a round from scratch reports no removals.
    sim_control(&t.sim, "expire-tokens", json!({})).await;

    t.sync_users().await.expect("the resynced round");
    assert_eq!(t.stored_users().await, after, "the deleted users are gone");
    assert_ne!(t.users_link().await, Some(link), "a new deltaLink");
    t.db.drop_db().await;
}

/// Scans of one tenant run one at a time across processes (the tenant's scan lock in Postgres):
/// a scan started while another holds the lock sends Graph nothing until the lock is free, then
/// runs in full; a shutdown ends the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_waits_for_another_scan_of_its_tenant() {
    let t = tenant(Profile::Tiny, 57).await;
    let held = t
        .store
        .try_lock_tenant_scans(&t.tenant)
        .await
        .expect("lock")
        .expect("free");
    assert!(
        t.store
            .try_lock_tenant_scans(&t.tenant)
            .await
            .expect("lock")
            .is_none(),
        "held by the other scan"
    );
    assert!(
        t.store
            .try_lock_tenant_scans("another-tenant")
            .await
            .expect("lock")
            .is_some(),
        "another tenant's scans are not held up"
    );
    let graph_requests = || async {
        sentinel_testkit::sim_requests(&t.sim)
            .await
            .iter()
            .filter(|r| r["route"].as_str().is_some_and(|p| p.starts_with("/v1.0")))
            .count()
    };
    let before = graph_requests().await;
    let stop = Arc::new(AtomicBool::new(false));
    let waiting = {
        let (client, store, tenant, stop) = (
            t.client.clone(),
            t.store.clone(),
            t.tenant.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let config = GraphIngestConfig {
                resources: vec![Resource::Users],
                ..GraphIngestConfig::default()
            };
            run_graph_ingest(
                &client,
                &store,
                &tenant,
                &config,
                Arc::new(Progress::default()),
                stop,
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(!waiting.is_finished(), "it waits while the lock is held");
    assert_eq!(
        graph_requests().await,
        before,
        "and asks Graph nothing meanwhile"
    );
    drop(held);
    waiting
        .await
        .expect("join")
        .expect("the scan, once the lock is free");
    assert_eq!(t.stored_users().await, t.truth().await);

    // A shutdown ends a wait.
    let _held = t
        .store
        .try_lock_tenant_scans(&t.tenant)
        .await
        .expect("lock");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = run_graph_ingest(
        &t.client,
        &t.store,
        &t.tenant,
        &GraphIngestConfig::default(),
        Arc::new(Progress::default()),
        stop,
    )
    .await;
    assert!(matches!(r, Err(PipelineError::Cancelled)), "{r:?}");
    t.db.drop_db().await;
}

/// Refreshes of a tenant's summaries, audiences and violations run one at a time across
/// processes: two scans of a tenant ending together would write the same rows
/// (`library_order_pkey` violated, found by the fleet bench, when each refreshed every
/// tenant's audiences). A refresh waits while another of its tenant holds the lock, then runs;
/// a refresh of another tenant does not wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_waits_for_another_of_its_tenant_and_not_for_another_tenants() {
    let t = tenant(Profile::Tiny, 58).await;
    t.sync_users().await.expect("a scan");
    let held = t.store.lock_refreshes(&t.tenant).await.expect("lock");
    let other = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        sentinel_pipeline::run_refresh_mv(&t.store, Some("another-tenant")),
    )
    .await
    .expect("another tenant's refresh does not wait")
    .expect("another tenant's refresh");
    assert!(
        other
            .refreshed
            .contains(&"mv_msgraph_inventory_summary".to_string()),
        "{other:?}"
    );
    let waiting = {
        let (store, tenant) = (t.store.clone(), t.tenant.clone());
        tokio::spawn(async move {
            sentinel_pipeline::run_refresh_mv(&store, Some(tenant.as_str())).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(
        !waiting.is_finished(),
        "it waits while another refresh of its tenant runs"
    );
    drop(held);
    let done = waiting
        .await
        .expect("join")
        .expect("the refresh, once the other is done");
    assert!(
        done.refreshed
            .contains(&"mv_msgraph_inventory_summary".to_string()),
        "{done:?}"
    );
    t.db.drop_db().await;
}
