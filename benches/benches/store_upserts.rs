//! Store throughput: drive items upserted per second by `Store::apply_drive_items` (what a scan
//! does with each delta page), next to raw `COPY` of the same rows into a table of the same shape
//! (the fastest Postgres takes rows), measured in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sentinel_store::{DriveItemRow, Store};
use serde_json::json;
use sqlx::postgres::PgPoolCopyExt;

const ROWS: usize = 20_000;
/// Rows per call: the pipeline applies a delta page (up to 200 items) at a time... batched by
/// its sink into a few thousand.
const CHUNK: usize = 2_000;

fn rows() -> Vec<DriveItemRow> {
    let now = chrono::Utc::now();
    (0..ROWS)
        .map(|i| DriveItemRow {
            id: format!("01ITEM{i:010}"),
            parent_id: (i > 0).then(|| format!("01ITEM{:010}", i / 20)),
            name: Some(format!("Document {i}.docx")),
            is_folder: i % 20 == 0,
            is_root: i == 0,
            size: Some((i as i64) * 1_337),
            mime_type: Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document".into()),
            quick_xor_hash: Some(format!("qxh{i:024}")),
            sha1_hash: None,
            created_at: Some(now),
            modified_at: Some(now),
            created_by_id: Some("user-1".into()),
            modified_by_id: Some("user-2".into()),
            shared_scope: (i % 25 == 0).then(|| "organization".into()),
            is_permission_root: i % 25 == 0,
            sharing_changed: true,
            raw_json: json!({"id": format!("01ITEM{i:010}"), "name": format!("Document {i}.docx"), "size": i * 1337,
                              "file": {"mimeType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}}).to_string(),
        })
        .collect()
}

/// The same rows as COPY text, for drive `drive`.
fn copy_text(tenant: &str, drive: &str, rows: &[DriveItemRow]) -> String {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('\t', "\\t")
            .replace('\n', "\\n")
    };
    let opt = |s: &Option<String>| s.as_deref().map(esc).unwrap_or_else(|| "\\N".into());
    let mut out = String::new();
    for r in rows {
        let fields = [
            tenant.to_string(),
            drive.to_string(),
            esc(&r.id),
            opt(&r.parent_id),
            opt(&r.name),
            r.is_folder.to_string(),
            r.is_root.to_string(),
            r.size
                .map(|s| s.to_string())
                .unwrap_or_else(|| "\\N".into()),
            opt(&r.mime_type),
            opt(&r.quick_xor_hash),
            opt(&r.sha1_hash),
            r.created_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "\\N".into()),
            r.modified_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "\\N".into()),
            opt(&r.created_by_id),
            opt(&r.modified_by_id),
            opt(&r.shared_scope),
            r.is_permission_root.to_string(),
            esc(&r.raw_json),
        ];
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(sentinel_testkit::create_db());
    let store = Store::from_pool(db.pool.clone());
    rt.block_on(store.migrate()).unwrap();
    rt.block_on(
        sqlx::query("CREATE TABLE bench_copy (LIKE msgraph_drive_items INCLUDING ALL)")
            .execute(store.pool()),
    )
    .unwrap();
    let rows = rows();
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mut drive = 0u64;
    group.bench_function("apply_drive_items", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                drive += 1;
                let d = format!("b!drive{drive}");
                let started = Instant::now();
                rt.block_on(async {
                    for chunk in rows.chunks(CHUNK) {
                        store
                            .apply_drive_items("bench", &d, chunk, &[], None)
                            .await
                            .unwrap();
                    }
                });
                total += started.elapsed();
            }
            total
        })
    });
    group.bench_function("copy_baseline", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                drive += 1;
                let text = copy_text("bench", &format!("b!drive{drive}"), &rows);
                let started = Instant::now();
                rt.block_on(async {
                    let mut copy = store
                        .pool()
                        .copy_in_raw(
                            "COPY bench_copy (tenant_id, drive_id, id, parent_id, name, is_folder, is_root, size, mime_type, \
                             quick_xor_hash, sha1_hash, created_at, modified_at, created_by_id, modified_by_id, shared_scope, \
                             is_permission_root, raw_json) FROM STDIN",
                        )
                        .await
                        .unwrap();
                    copy.send(text.as_bytes()).await.unwrap();
                    copy.finish().await.unwrap();
                });
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
    rt.block_on(db.drop_db());
}

criterion_group!(benches, bench);
criterion_main!(benches);
