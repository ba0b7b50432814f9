//! Exposure age and `/changes` against real Postgres: first seen kept while a link or grant
//! exists, set again when it comes back; opened and removed listed once per exposure.

use chrono::{DateTime, Utc};
use sentinel_store::*;
use serde_json::json;
use sqlx::PgPool;

mod common;
use common::{item, library, ready};

const T: &str = "tenant-1";
const D: &str = "b!drive";

fn link(id: &str, scope: &str) -> PermissionRow {
    PermissionRow {
        permission_id: id.into(),
        roles: vec!["write".into()],
        link_type: Some("edit".into()),
        link_scope: Some(scope.into()),
        link_url_sha256: Some(format!("sha-{id}")),
        link_prevents_download: None,
        has_password: None,
        expires_at: None,
        invitation_email: None,
        inherited_from_id: None,
        raw_json: json!({"id": id}),
        grants: vec![],
    }
}

fn guest_grant(id: &str) -> PermissionRow {
    PermissionRow {
        grants: vec![GrantRow {
            grantee_key: "user:guest-1".into(),
            grantee_type: "user".into(),
            grantee_id: Some("guest-1".into()),
            display_name: Some("Gail Guest".into()),
            email: Some("gail@partner.example".into()),
            login_name: None,
            is_external: true,
            is_everyone: false,
            is_everyone_except_external: false,
        }],
        link_type: None,
        link_scope: None,
        link_url_sha256: None,
        roles: vec!["read".into()],
        ..link(id, "users")
    }
}

fn on(item_id: &str, perms: Vec<PermissionRow>) -> ItemPermissions {
    ItemPermissions {
        drive_id: D.into(),
        item_id: item_id.into(),
        permissions: perms,
    }
}

async fn first_seen(store: &Store, item_id: &str, permission_id: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar(
        "SELECT first_seen_at FROM msgraph_drive_item_permissions \
         WHERE item_id = $1 AND permission_id = $2 AND deleted_at IS NULL",
    )
    .bind(item_id)
    .bind(permission_id)
    .fetch_optional(store.pool())
    .await
    .expect("query")
}

async fn changes(
    store: &Store,
    since: DateTime<Utc>,
    kind: Option<ExposureKind>,
    change: Option<ExposureChange>,
) -> Vec<ExposureEvent> {
    let q = ChangesQuery {
        since,
        kind,
        change,
    };
    store
        .exposure_changes(T, &q, &PageRequest::default())
        .await
        .expect("changes")
        .rows
        .into_iter()
        // Links and grants; an item's unique permissions are asserted on their own.
        .filter(|e| kind.is_some() || e.kind != ExposureKind::UniquePermissions)
        .collect()
}

/// (change, item) of the unique permissions broken or restored since `since`.
async fn unique(store: &Store, since: DateTime<Utc>) -> Vec<(ExposureChange, String)> {
    let mut v: Vec<_> = changes(store, since, Some(ExposureKind::UniquePermissions), None)
        .await
        .into_iter()
        .map(|e| (e.change, e.item_id))
        .collect();
    v.sort();
    v
}

/// What item `from` holds, as an item inheriting it reads it.
fn inherited(mut p: PermissionRow, from: &str) -> PermissionRow {
    p.inherited_from_id = Some(from.into());
    p
}

#[sqlx::test(migrations = false)]
async fn exposure_keeps_its_first_sighting_and_changes_list_what_opened_and_closed(pool: PgPool) {
    let store = ready(pool).await;
    let before = store.now().await.expect("now");
    store
        .apply_drive_items(
            T,
            D,
            &[
                item("root", None, "root-name", true),
                item("f", Some("root"), "f-name", true),
                item("a", Some("f"), "a-name", false),
                item("b", Some("f"), "b-name", false),
            ],
            &[],
            None,
        )
        .await
        .expect("items");
    store
        .derive_drive_tree(T, D, false, None)
        .await
        .expect("derive");
    // Exhaustive mode: the anyone link set on f is read on f and on b, which inherits it.
    let first_scan = vec![
        on("f", vec![link("L", "anonymous"), guest_grant("G")]),
        on("b", vec![inherited(link("L", "anonymous"), "f")]),
        on("a", vec![]),
    ];
    store
        .replace_item_permissions(T, &first_scan)
        .await
        .expect("scan 1");
    let seen_l = first_seen(&store, "f", "L").await.expect("L stored");
    let after_first = store.now().await.expect("now");

    // A later scan that finds the same exposure keeps when it was first seen.
    store
        .replace_item_permissions(T, &first_scan)
        .await
        .expect("scan 2");
    assert_eq!(first_seen(&store, "f", "L").await, Some(seen_l));
    assert!(
        changes(&store, after_first, None, None).await.is_empty(),
        "nothing new"
    );

    // f holds permissions of its own; b inherits them.
    assert_eq!(
        unique(&store, before).await,
        [(ExposureChange::Opened, "f".to_string())]
    );

    // Everything so far opened after `before`: the link once (set on f, 2 items), the grant once.
    let all = changes(&store, before, None, None).await;
    assert_eq!(all.len(), 2, "{all:#?}");
    let l = all
        .iter()
        .find(|e| e.kind == ExposureKind::AnyoneLink)
        .expect("L");
    assert_eq!(
        (l.change, l.item_id.as_str(), l.items),
        (ExposureChange::Opened, "f", 2)
    );
    assert_eq!(l.first_seen_at, seen_l);
    assert_eq!(l.item_path.as_deref(), Some("/f-name"));
    let g = all
        .iter()
        .find(|e| e.kind == ExposureKind::ExternalGrant)
        .expect("G");
    assert_eq!(g.grantee.as_deref(), Some("Gail Guest"));
    assert_eq!(g.grantee_email.as_deref(), Some("gail@partner.example"));

    // A new organisation link on a; the guest loses access to f.
    store
        .replace_item_permissions(
            T,
            &[
                on("f", vec![link("L", "anonymous")]),
                on("a", vec![link("O", "organization")]),
            ],
        )
        .await
        .expect("scan 3");
    let recent = changes(&store, after_first, None, None).await;
    let summary: Vec<(ExposureChange, ExposureKind, &str)> = recent
        .iter()
        .map(|e| (e.change, e.kind, e.item_id.as_str()))
        .collect();
    assert_eq!(summary.len(), 2, "{recent:#?}");
    assert!(summary.contains(&(ExposureChange::Opened, ExposureKind::OrganizationLink, "a")));
    assert!(summary.contains(&(ExposureChange::Removed, ExposureKind::ExternalGrant, "f")));
    let removed = recent
        .iter()
        .find(|e| e.change == ExposureChange::Removed)
        .expect("removed");
    assert!(
        removed
            .removed_at
            .is_some_and(|r| r >= removed.first_seen_at)
    );
    // a now holds a permission of its own.
    assert_eq!(
        unique(&store, after_first).await,
        [(ExposureChange::Opened, "a".to_string())]
    );
    // Filters.
    let opened = changes(&store, after_first, None, Some(ExposureChange::Opened)).await;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].kind, ExposureKind::OrganizationLink);
    assert!(
        changes(&store, after_first, Some(ExposureKind::Everyone), None)
            .await
            .is_empty()
    );

    // The link leaves f but b still has it: still open. Then it leaves b: removed.
    let after_third = store.now().await.expect("now");
    store
        .replace_item_permissions(T, &[on("f", vec![])])
        .await
        .expect("scan 4");
    assert!(
        changes(&store, after_third, Some(ExposureKind::AnyoneLink), None)
            .await
            .is_empty(),
        "a link one item still has is not removed"
    );
    assert!(
        unique(&store, after_third)
            .await
            .contains(&(ExposureChange::Removed, "f".to_string())),
        "f inherits again"
    );
    store
        .replace_item_permissions(T, &[on("b", vec![])])
        .await
        .expect("scan 5");
    let gone = changes(&store, after_third, Some(ExposureKind::AnyoneLink), None).await;
    assert_eq!(gone.len(), 1);
    assert_eq!(
        (gone[0].change, gone[0].first_seen_at),
        (ExposureChange::Removed, seen_l)
    );

    // Back again: a new exposure, first seen now, not when it was first open.
    store
        .replace_item_permissions(T, &[on("f", vec![link("L", "anonymous")])])
        .await
        .expect("scan 6");
    let again = first_seen(&store, "f", "L").await.expect("L back");
    assert!(again > seen_l, "a returning link is first seen again");
    assert_eq!(
        store.first_permission_seen_at(T).await.expect("first"),
        Some(seen_l)
    );

    // A page past the last still says how many there are.
    let q = ChangesQuery {
        since: before,
        kind: None,
        change: None,
    };
    let page = |page| PageRequest {
        page,
        per_page: 1,
        ..PageRequest::default()
    };
    let first = store
        .exposure_changes(T, &q, &page(0))
        .await
        .expect("first page");
    let past = store
        .exposure_changes(T, &q, &page(999))
        .await
        .expect("past the end");
    assert!(first.total > 1, "{first:?}");
    assert_eq!((past.rows.len(), past.total), (0, first.total));
}

#[test]
fn kinds_and_changes_read_their_words_and_name_the_choices_otherwise() {
    for k in ExposureKind::ALL {
        assert_eq!(k.as_str().parse::<ExposureKind>(), Ok(*k));
    }
    let err = "anyone".parse::<ExposureKind>().expect_err("not a kind");
    assert!(
        err.contains("anyone_link") && err.contains("'anyone'"),
        "{err}"
    );
    assert!("gone".parse::<ExposureChange>().is_err());
}

/// A permission with no link and no grantee stored (a scan of the tenant is under way: the
/// fleet bench met it when another tenant's scan ended and refreshed every tenant) reaches no
/// one: the audiences are stored, not refused for a NULL "anyone can read".
#[sqlx::test(migrations = false)]
async fn a_permission_without_link_or_grantee_opens_to_no_one(pool: PgPool) {
    let store = ready(pool).await;
    store
        .upsert_drives(T, &[library(D)])
        .await
        .expect("the library");
    store
        .apply_drive_items(
            T,
            D,
            &[
                item("root", None, "root-name", true),
                item("f", Some("root"), "f-name", false),
            ],
            &[],
            None,
        )
        .await
        .expect("items");
    store
        .derive_drive_tree(T, D, false, None)
        .await
        .expect("derive");
    let bare = PermissionRow {
        grants: vec![],
        ..guest_grant("bare")
    };
    store
        .replace_item_permissions(T, &[on("f", vec![bare])])
        .await
        .expect("permissions");
    store.refresh_audiences(T).await.expect("audiences stored");
    let (readers, anyone): (i64, bool) = sqlx::query_as(
        "SELECT readers, anyone_can_read FROM holder_audiences WHERE tenant_id = $1 AND holder_id = 'f'",
    )
    .bind(T)
    .fetch_one(store.pool())
    .await
    .expect("f's audience");
    assert_eq!((readers, anyone), (0, false));
}
