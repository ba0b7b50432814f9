//! Adaptive cadence (`sync --max-staleness-minutes`): a run reads the drives that are due (a
//! busy drive every run, an idle one once as long as it had been idle has passed) and every
//! drive once the staleness an admin allows is reached; what it read is exact.

mod common;

use std::collections::BTreeSet;

use common::*;
use sentinel_sim::Profile;
use serde_json::json;

/// Hierarchical mode, every drive read at least hourly.
const ADAPTIVE_HOURLY: [&str; 4] = [
    "--permissions",
    "hierarchical",
    "--max-staleness-minutes",
    "60",
];

async fn drives_read_within(db: &TestDb, minutes: i32) -> BTreeSet<String> {
    sqlx::query_scalar(
        "SELECT id FROM msgraph_drives WHERE deleted_at IS NULL \
           AND checked_at > now() - make_interval(mins => $1)",
    )
    .bind(minutes)
    .fetch_all(&db.pool)
    .await
    .expect("drives read")
    .into_iter()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_drives_are_read_every_run_and_idle_ones_once_their_staleness_is_due() {
    let sim = spawn_sim(Profile::Small, 110).await;
    let db = create_db().await;
    let args = ADAPTIVE_HOURLY;
    assert_synced(&sync(&sim, &db, &args).await).await;
    let all = drives_read_within(&db, 5).await;
    assert!(all.len() > 10, "the first run reads every drive: {all:?}");

    // Ten minutes later: every drive read then, idle for a month before; one busy drive
    // changed at its last read.
    sqlx::query(
        "UPDATE msgraph_drives SET checked_at = now() - interval '10 minutes', \
           changed_at = now() - interval '30 days'",
    )
    .execute(&db.pool)
    .await
    .expect("age the drives");
    let busy = all.iter().next().cloned().expect("a drive");
    sqlx::query("UPDATE msgraph_drives SET changed_at = checked_at WHERE id = $1")
        .bind(&busy)
        .execute(&db.pool)
        .await
        .expect("busy drive");
    control(
        &sim,
        "/_sim/mutate",
        json!({"count": 60, "kinds": ["create_file", "modify"]}),
    )
    .await;
    assert_synced(&sync(&sim, &db, &args).await).await;
    assert_eq!(
        drives_read_within(&db, 5).await,
        BTreeSet::from([busy.clone()]),
        "only the busy drive is due; the idle ones wait up to an hour"
    );

    // Past the maximum staleness every drive is due again, and the store is exact.
    sqlx::query("UPDATE msgraph_drives SET checked_at = now() - interval '61 minutes'")
        .execute(&db.pool)
        .await
        .expect("age the drives");
    assert_synced(&sync(&sim, &db, &args).await).await;
    assert_eq!(
        drives_read_within(&db, 5).await,
        all,
        "every drive is read again"
    );
    assert_matches_truth(&sim, &db).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staleness_out_of_range_is_one_line_saying_so() {
    let sim = spawn_sim(Profile::Tiny, 111).await;
    let db = create_db().await;
    let out = sync(&sim, &db, &["--max-staleness-minutes", "0"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.trim()
            .lines()
            .last()
            .unwrap_or_default()
            .contains("max_staleness_minutes must be between 1 and 43200"),
        "{err}"
    );
    db.drop_db().await;
}

/// When each drive root's permissions were last read.
async fn root_reads(db: &TestDb) -> Vec<(String, Option<chrono::DateTime<chrono::Utc>>)> {
    sqlx::query_as(
        "SELECT drive_id, permissions_last_synced_at FROM msgraph_drive_items \
         WHERE is_root AND deleted_at IS NULL ORDER BY drive_id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("root reads")
}

/// Every drive changed at its last read, ten minutes ago: all are due.
async fn every_drive_busy(db: &TestDb) {
    sqlx::query(
        "UPDATE msgraph_drives SET checked_at = now() - interval '10 minutes', \
           changed_at = now() - interval '10 minutes'",
    )
    .execute(&db.pool)
    .await
    .expect("busy drives");
}

/// Graph returns a drive's root with every change and flags no folder's sharing change: under
/// an adaptive cadence a root that came back with other changes is not re-read (5 RU each time
/// on a busy drive) until the maximum staleness has passed since its last read; one that came
/// back alone changed itself and is read at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_returned_with_changes_waits_for_the_staleness_and_one_returned_alone_does_not() {
    let sim = spawn_sim(Profile::Small, 112).await;
    let db = create_db().await;
    let args = ADAPTIVE_HOURLY;
    assert_synced(&sync(&sim, &db, &args).await).await;
    let first = root_reads(&db).await;

    every_drive_busy(&db).await;
    control(
        &sim,
        "/_sim/mutate",
        json!({"count": 80, "kinds": ["create_file", "modify"]}),
    )
    .await;
    assert_synced(&sync(&sim, &db, &args).await).await;
    assert_eq!(
        root_reads(&db).await,
        first,
        "roots returned only with changes under them are not read again within the hour"
    );
    assert_matches_truth(&sim, &db).await;

    every_drive_busy(&db).await;
    control(
        &sim,
        "/_sim/mutate",
        json!({"count": 3, "kinds": ["grant_on_root"]}),
    )
    .await;
    assert_synced(&sync(&sim, &db, &args).await).await;
    let reread = root_reads(&db)
        .await
        .iter()
        .zip(&first)
        .filter(|(now, before)| now.1 > before.1)
        .count();
    assert!(
        (1..=3).contains(&reread),
        "the roots granted on, returned alone, are read at once: {reread}"
    );
    assert_matches_truth(&sim, &db).await;
    db.drop_db().await;
}

/// A time read from Postgres.
type Time = Option<chrono::DateTime<chrono::Utc>>;

/// Each shared file (a file with permissions of its own), by drive and id: when it last
/// changed, and when its permissions were last read.
type FileReads = std::collections::BTreeMap<(String, String), (Time, Time)>;

async fn shared_file_reads(db: &TestDb) -> FileReads {
    let rows: Vec<(String, String, Time, Time)> = sqlx::query_as(
        "SELECT drive_id, id, modified_at, permissions_last_synced_at FROM msgraph_drive_items \
         WHERE deleted_at IS NULL AND is_permission_root AND NOT is_folder AND NOT is_root",
    )
    .fetch_all(&db.pool)
    .await
    .expect("shared files");
    rows.into_iter()
        .map(|(d, i, modified, read)| ((d, i), (modified, read)))
        .collect()
}

/// A shared file comes back with every edit, and Graph annotates a file's sharing changes
/// except access removed from it. Under an adaptive cadence an edited file's permissions are
/// not read again (5 RU each) until the maximum staleness has passed since their last read; a
/// new link on a file is read at once; access removed is read once the staleness has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_shared_file_waits_for_the_staleness_and_a_new_link_on_one_does_not() {
    let sim = spawn_sim(Profile::Small, 113).await;
    let db = create_db().await;
    let args = ADAPTIVE_HOURLY;
    assert_synced(&sync(&sim, &db, &args).await).await;
    let first = shared_file_reads(&db).await;

    every_drive_busy(&db).await;
    control(
        &sim,
        "/_sim/mutate",
        json!({"count": 400, "kinds": ["modify"]}),
    )
    .await;
    assert_synced(&sync(&sim, &db, &args).await).await;
    let edited = shared_file_reads(&db).await;
    let came_back: Vec<_> = edited
        .iter()
        .filter(|(k, (modified, _))| first.get(*k).is_some_and(|f| f.0 != *modified))
        .collect();
    assert!(
        !came_back.is_empty(),
        "some of the {} shared files were edited",
        first.len()
    );
    for (k, (_, read)) in &came_back {
        assert_eq!(
            *read, first[*k].1,
            "{k:?}: an edited shared file is not read again within the hour"
        );
    }
    assert_matches_truth(&sim, &db).await;

    // New links: Graph annotates them on files, and folders come back only for a change of
    // their own (`deltaExcludeParent`): read at once.
    every_drive_busy(&db).await;
    control(
        &sim,
        "/_sim/mutate",
        json!({"count": 12, "kinds": ["share"]}),
    )
    .await;
    assert_synced(&sync(&sim, &db, &args).await).await;
    assert_matches_truth(&sim, &db).await;

    // Links removed (unannotated on a file) are read once the hour has passed.
    every_drive_busy(&db).await;
    control(
        &sim,
        "/_sim/mutate",
        json!({"count": 12, "kinds": ["unshare"]}),
    )
    .await;
    assert_synced(&sync(&sim, &db, &args).await).await;
    sqlx::query(
        "UPDATE msgraph_drive_items SET \
           permissions_last_synced_at = permissions_last_synced_at - interval '61 minutes', \
           sharing_changed_at = sharing_changed_at - interval '61 minutes'",
    )
    .execute(&db.pool)
    .await
    .expect("an hour passes");
    assert_synced(&sync(&sim, &db, &args).await).await;
    assert_matches_truth(&sim, &db).await;
    db.drop_db().await;
}
