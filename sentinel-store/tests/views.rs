//! The materialized views across versions of the schema: start-up keeps a view this version
//! made and rebuilds one an earlier version made under the same name.

use sentinel_store::*;
use sqlx::PgPool;

mod common;
use common::{item, library, ready};

const T: &str = "tenant-1";
const D: &str = "b!drive";

/// The views whose definition changed since a first release, and so carry a version.
const VERSIONED: [&str; 2] = [
    "mv_msgraph_inventory_summary",
    "mv_msgraph_sharing_posture_summary",
];

async fn oids(store: &Store) -> Vec<i64> {
    let mut oids = Vec::new();
    for view in VERSIONED {
        oids.push(
            sqlx::query_scalar("SELECT to_regclass($1)::oid::bigint")
                .bind(view)
                .fetch_one(store.pool())
                .await
                .expect("the view exists"),
        );
    }
    oids
}

#[sqlx::test(migrations = false)]
async fn an_earlier_view_is_rebuilt_at_start_up_and_the_inventory_counts_every_kind(pool: PgPool) {
    let store = ready(pool).await;
    let made = oids(&store).await;
    store.migrate().await.expect("start-up again");
    assert_eq!(oids(&store).await, made, "this version's views are kept");

    // Views an earlier version left: the same names and keys, other definitions.
    for view in VERSIONED {
        sqlx::raw_sql(&format!(
            "DROP MATERIALIZED VIEW {view}; \
             CREATE MATERIALIZED VIEW {view} AS SELECT 'x'::text AS tenant_id WITH NO DATA; \
             CREATE UNIQUE INDEX {view}_key ON {view} (tenant_id)"
        ))
        .execute(store.pool())
        .await
        .expect("the earlier view");
    }
    // ... and the fingerprint of that version's schema files, not this one's.
    sqlx::query("UPDATE schema_applied SET fingerprint = 'an earlier version'")
        .execute(store.pool())
        .await
        .expect("the earlier fingerprint");
    let earlier = oids(&store).await;
    store.migrate().await.expect("upgrade");
    let rebuilt = oids(&store).await;
    for (i, view) in VERSIONED.iter().enumerate() {
        assert_ne!(rebuilt[i], earlier[i], "{view} rebuilt");
    }

    // Two folders and three files of 1 byte each, one of them deleted.
    let rows = [
        item("root", None, "root", true),
        item("f", Some("root"), "Docs", true),
        item("a", Some("f"), "a.txt", false),
        item("b", Some("f"), "b.txt", false),
        item("c", Some("root"), "c.txt", false),
    ];
    store
        .apply_drive_items(T, D, &rows, &[], None)
        .await
        .expect("items");
    store
        .apply_drive_items(T, D, &[], &["c".into()], None)
        .await
        .expect("delete");
    store
        .upsert_drives(T, &[library(D)])
        .await
        .expect("the library");
    store.refresh_impacted_views().await.expect("refresh");
    let inventory = store
        .posture(T)
        .await
        .expect("posture")
        .inventory
        .expect("refreshed");
    assert_eq!(
        (
            inventory.drives,
            inventory.items,
            inventory.folders,
            inventory.files,
            inventory.bytes,
            inventory.deleted_items,
            inventory.users,
        ),
        (1, 4, 2, 2, 2, 1, 0),
        "drives, live items, folders, files, bytes, deleted items, users: {inventory:?}"
    );
}
