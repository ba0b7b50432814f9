//! Permission-scan throughput: the `permissions` resource of `graph_ingest` over an inventory
//! already in the store, against the simulated tenant over real HTTP, for each mode, with and
//! without latency added to every Graph request. Criterion reports items of the tenant covered
//! per second; the RU each mode spends per item is printed next to it (what bounds a real scan).
//!
//!   cargo bench -p sentinel-benches --bench permission_scan
//!   PERMISSION_BENCH_PROFILE=small cargo bench -p sentinel-benches --bench permission_scan
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sentinel_graph::{GraphClient, GraphConfig};
use sentinel_pipeline::{GraphIngestConfig, PermissionMode, Progress, Resource, run_graph_ingest};
use sentinel_sim::{Profile, SimConfig};
use sentinel_store::Store;
use sentinel_testkit::TestDb;

struct Tenant {
    sim: sentinel_sim::RunningSim,
    db: TestDb,
    store: Store,
    client: GraphClient,
    items: u64,
}

async fn tenant(profile: Profile, latency_ms: u64) -> Tenant {
    let sim = sentinel_sim::spawn(
        SimConfig {
            profile,
            seed: 7,
            ru_per_minute: 100_000_000,
            latency_ms,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let db = sentinel_testkit::create_db().await;
    let vars = sentinel_testkit::sim_vars(&sim, &db);
    let mut config = GraphConfig::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    config.directory_ru_per_10s = 1_000_000;
    let client = GraphClient::new(config).unwrap();
    let store = Store::connect(&db.url, 8).await.unwrap();
    store.migrate().await.unwrap();
    let items = sentinel_sim::control::manifest(&sim.state).items;
    Tenant {
        sim,
        db,
        store,
        client,
        items,
    }
}

async fn ingest(t: &Tenant, mode: PermissionMode, resources: Vec<Resource>) -> u64 {
    let config = GraphIngestConfig {
        resources,
        permission_mode: mode,
        ..GraphIngestConfig::default()
    };
    let before = t.client.stats().ru_spent;
    let tenant_id = t.client.config().tenant_id.clone();
    run_graph_ingest(
        &t.client,
        &t.store,
        &tenant_id,
        &config,
        Arc::new(Progress::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .await
    .expect("scan");
    t.client.stats().ru_spent - before
}

/// Makes every item's permissions due again, as before a first permission scan.
async fn forget_permission_reads(t: &Tenant) {
    sqlx::query("UPDATE msgraph_drive_items SET permissions_last_synced_at = NULL")
        .execute(&t.db.pool)
        .await
        .unwrap();
}

fn permission_scan(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let profile = match std::env::var("PERMISSION_BENCH_PROFILE").as_deref() {
        Ok("small") => Profile::Small,
        _ => Profile::Tiny,
    };
    let mut group = c.benchmark_group("permission_scan");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for latency_ms in [0, 20] {
        let t = rt.block_on(tenant(profile, latency_ms));
        let inventory: Vec<Resource> = Resource::ALL
            .into_iter()
            .filter(|r| *r != Resource::Permissions)
            .collect();
        for mode in [PermissionMode::Hierarchical, PermissionMode::Exhaustive] {
            // Delta state is kept per mode: each mode reads its own inventory first.
            rt.block_on(ingest(&t, mode, inventory.clone()));
            rt.block_on(forget_permission_reads(&t));
            let ru = rt.block_on(ingest(&t, mode, vec![Resource::Permissions]));
            eprintln!(
                "permission_scan {mode:?} latency {latency_ms} ms: {} items, {ru} RU, {:.3} RU/item",
                t.items,
                ru as f64 / t.items as f64
            );
            group.throughput(Throughput::Elements(t.items));
            group.bench_function(format!("{mode:?}/latency_{latency_ms}ms"), |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        rt.block_on(forget_permission_reads(&t));
                        let started = Instant::now();
                        rt.block_on(ingest(&t, mode, vec![Resource::Permissions]));
                        spent += started.elapsed();
                    }
                    spent
                })
            });
        }
        rt.block_on(async {
            t.sim.shutdown().await;
            drop(t.store);
            t.db.drop_db().await;
        });
    }
    group.finish();
}

criterion_group!(benches, permission_scan);
criterion_main!(benches);
