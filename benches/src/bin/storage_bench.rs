//! The storage bench (issue 17): a tenant loaded by a real hierarchical scan, then what it
//! takes in PostgreSQL: bytes per item, per permission and per grant (each table with its
//! indexes and TOAST), the directory, the derived tables and views, and the database as a whole.
//!
//!   cargo build --release -p sentinel-worker -p sentinel-benches
//!   target/release/storage_bench --profile large
//!
//! Needs PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use anyhow::Result;
use clap::Parser;
use sentinel_benches::{TenantArgs, load_database, sibling_binary, spawn_unlimited};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    tenant: TenantArgs,
    /// A database already scanned: measured as it is (and kept).
    #[arg(long)]
    database_url: Option<String>,
}

/// Groups of relations: what a figure is per, and the relations it counts.
const GROUPS: &[(&str, &str, &[&str])] = &[
    ("items", "msgraph_drive_items", &["msgraph_drive_items"]),
    (
        "permissions",
        "msgraph_drive_item_permissions",
        &["msgraph_drive_item_permissions"],
    ),
    (
        "grants",
        "msgraph_drive_item_permission_grants",
        &["msgraph_drive_item_permission_grants"],
    ),
    (
        "directory",
        "msgraph_users",
        &[
            "msgraph_users",
            "msgraph_groups",
            "msgraph_group_members",
            "msgraph_group_owners",
            "msgraph_sites",
            "msgraph_drives",
            "msgraph_delta_state",
        ],
    ),
    (
        "derived",
        "msgraph_drive_items",
        &[
            "holder_audiences",
            "person_reach",
            "broad_drive_reach",
            "broad_site_reach",
            "person_drive_reach",
            "library_order",
            "mv_group_transitive_users",
            "mv_msgraph_inventory_summary",
            "mv_msgraph_sharing_posture_summary",
            "mv_msgraph_site_posture",
            "mv_drive_summary",
        ],
    ),
];

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let db = match &args.database_url {
        Some(url) => sentinel_testkit::TestDb::existing(url).await?,
        None => {
            let worker = sibling_binary("sentinel-worker")?;
            let sim = spawn_unlimited(&args.tenant).await?;
            let db = load_database(&worker, &sim, &args.tenant).await?;
            sim.shutdown().await;
            db
        }
    };
    // Settled: dead tuples of the scan's updates vacuumed, as autovacuum would leave them.
    sqlx::raw_sql("VACUUM ANALYZE").execute(&db.pool).await?;
    let mut groups = serde_json::Map::new();
    for (name, per, relations) in GROUPS {
        let relations: Vec<String> = relations.iter().map(|r| r.to_string()).collect();
        let bytes: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
             WHERE c.relname = ANY($1) AND c.relkind IN ('r', 'm')",
        )
        .bind(&relations)
        .fetch_one(&db.pool)
        .await?;
        let rows: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {per} WHERE deleted_at IS NULL"
        ))
        .fetch_one(&db.pool)
        .await?;
        groups.insert(
            name.to_string(),
            json!({"bytes": bytes, "rows": rows, "per": per,
                   "bytes_per_row": (bytes as f64 / rows.max(1) as f64).round()}),
        );
    }
    let database: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&db.pool)
        .await?;
    let items = groups["items"]["rows"].as_i64().unwrap_or(0).max(1);
    let out: Value = json!({
        "profile": args.tenant.profile,
        "database_bytes": database,
        "database_bytes_per_item": (database as f64 / items as f64).round(),
        "groups": groups,
    });
    println!("{out}");
    if args.database_url.is_none() {
        db.drop_db().await;
    }
    Ok(())
}
