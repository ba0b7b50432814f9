//! The end of a drive's delta round: its link, its check, and when the drive root's permissions
//! are read again when the round may have returned the root only as the parent of changes.

use sentinel_store::*;
use sqlx::PgPool;

mod common;
use common::{item, ready};

const T: &str = "tenant-1";
const D: &str = "b!drive";
const LINK: (&str, &str) = ("drive_items:hierarchical", "https://graph/delta?token=2");

/// The root's permissions read now (an empty set), so nothing of it is due.
async fn root_read(store: &Store) {
    store
        .replace_item_permissions(
            T,
            &[ItemPermissions {
                drive_id: D.into(),
                item_id: "root".into(),
                permissions: vec![],
            }],
        )
        .await
        .expect("read the root's permissions");
}

async fn root_due(store: &Store) -> bool {
    store
        .items_due_for_permissions(T, true, None, 10)
        .await
        .expect("due")
        .iter()
        .any(|d| d.item_id == "root")
}

/// The hours that pass, as the store sees them: its times move back.
async fn hours_pass(store: &Store, hours: i32) {
    sqlx::query(
        "UPDATE msgraph_drive_items SET \
           permissions_last_synced_at = permissions_last_synced_at - make_interval(hours => $1), \
           sharing_changed_at = sharing_changed_at - make_interval(hours => $1)",
    )
    .bind(hours)
    .execute(store.pool())
    .await
    .expect("time passes");
}

async fn finish(store: &Store, not_before: Option<chrono::Duration>) {
    store
        .finish_drive_round(
            T,
            D,
            LINK,
            Some(true),
            &not_before
                .map(|not_before| RootRecheck {
                    item_id: "root",
                    not_before,
                })
                .into_iter()
                .collect::<Vec<_>>(),
        )
        .await
        .expect("finish the round");
}

/// Returned with the root as not due, as an incremental hierarchical round stores it.
async fn root_returned(store: &Store) {
    let mut root = item("root", None, "root", true);
    root.sharing_changed = false;
    store
        .apply_drive_items(T, D, &[root], &[], None)
        .await
        .expect("apply");
}

/// A drive whose root was read, then came back in a round.
async fn root_read_then_returned(store: &Store) {
    store
        .apply_drive_items(T, D, &[item("root", None, "root", true)], &[], None)
        .await
        .expect("apply");
    root_read(store).await;
    root_returned(store).await;
}

#[sqlx::test]
async fn a_root_returned_with_changes_waits_until_its_recheck_and_is_then_due(pool: PgPool) {
    let store = ready(pool).await;
    root_read_then_returned(&store).await;
    finish(&store, Some(chrono::Duration::hours(4))).await;
    assert_eq!(
        store
            .delta_link(LINK.0, &drive_partition(T, D))
            .await
            .expect("link")
            .as_deref(),
        Some(LINK.1),
        "the round's link is saved with it"
    );
    assert!(
        !root_due(&store).await,
        "read a moment ago: not due for 4 hours"
    );
    hours_pass(&store, 3).await;
    assert!(!root_due(&store).await, "3 hours on: still waiting");
    hours_pass(&store, 2).await;
    assert!(root_due(&store).await, "5 hours on: due");

    // Put off again, then read early (by the sweep, say): the read takes the recheck's place.
    root_read(&store).await;
    root_returned(&store).await;
    finish(&store, Some(chrono::Duration::hours(4))).await;
    root_read(&store).await;
    hours_pass(&store, 5).await;
    assert!(!root_due(&store).await, "a read clears the recheck");
}

#[sqlx::test]
async fn a_root_returned_alone_is_due_at_once_and_one_due_stays_due(pool: PgPool) {
    let store = ready(pool).await;
    root_read_then_returned(&store).await;
    finish(&store, Some(chrono::Duration::zero())).await;
    assert!(root_due(&store).await, "no wait: due now");

    // Already due (a sharing change reported): a recheck does not put it off.
    root_read(&store).await;
    store
        .apply_drive_items(T, D, &[item("root", None, "root", true)], &[], None)
        .await
        .expect("a reported sharing change");
    finish(&store, Some(chrono::Duration::hours(4))).await;
    assert!(root_due(&store).await, "a reported change is read now");

    // No recheck asked: a root stored as not due stays read.
    root_read(&store).await;
    root_returned(&store).await;
    finish(&store, None).await;
    assert!(!root_due(&store).await);
}
