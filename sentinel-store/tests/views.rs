//! The summaries across versions of the schema: start-up keeps a summary table this version
//! made, and replaces what an earlier version made under the same name (a materialized view
//! spanning every tenant, or a table of another definition).

use sentinel_store::*;
use sqlx::PgPool;

mod common;
use common::{item, library, ready};

const T: &str = "tenant-1";
const D: &str = "b!drive";

/// The summaries, each made by every earlier version as a materialized view.
const SUMMARIES: [&str; 5] = [
    "mv_group_transitive_users",
    "mv_msgraph_inventory_summary",
    "mv_msgraph_sharing_posture_summary",
    "mv_msgraph_site_posture",
    "mv_drive_summary",
];

/// Each summary's object id and kind (`r` a table, `m` a materialized view).
async fn relations(store: &Store) -> Vec<(i64, String)> {
    let mut found = Vec::new();
    for name in SUMMARIES {
        found.push(
            sqlx::query_as(
                "SELECT oid::bigint, relkind::text FROM pg_class WHERE oid = to_regclass($1)",
            )
            .bind(name)
            .fetch_one(store.pool())
            .await
            .expect("the summary exists"),
        );
    }
    found
}

#[sqlx::test(migrations = false)]
async fn an_earlier_versions_views_become_tables_at_start_up_and_the_inventory_counts_every_kind(
    pool: PgPool,
) {
    let store = ready(pool).await;
    let made = relations(&store).await;
    assert!(made.iter().all(|(_, kind)| kind == "r"), "{made:?}");
    store.migrate().await.expect("start-up again");
    assert_eq!(
        relations(&store).await,
        made,
        "this version's tables are kept"
    );

    // What an earlier version left: materialized views of the same names and keys.
    for name in SUMMARIES {
        sqlx::raw_sql(&format!(
            "DROP TABLE {name}; \
             CREATE MATERIALIZED VIEW {name} AS SELECT 'x'::text AS tenant_id WITH NO DATA; \
             CREATE UNIQUE INDEX {name}_key ON {name} (tenant_id)"
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
    store.migrate().await.expect("upgrade");
    let upgraded = relations(&store).await;
    assert!(
        upgraded.iter().all(|(_, kind)| kind == "r"),
        "every summary a table again: {upgraded:?}"
    );

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
    store.refresh_tenant_views(T).await.expect("refresh");
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
