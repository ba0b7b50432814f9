//! The store against real Postgres: a fresh database per test.

use chrono::{DateTime, Utc};
use sentinel_store::*;
use serde_json::json;
use sqlx::PgPool;

mod common;
use common::{item, ready};

const T: &str = "tenant-1";

fn user(id: &str, name: &str) -> UserRow {
    UserRow {
        id: id.into(),
        display_name: Some(name.into()),
        user_principal_name: Some(format!("{id}@x")),
        mail: None,
        user_type: Some("Member".into()),
        is_guest: false,
        account_enabled: Some(true),
        department: None,
        has_license: Some(true),
        created_at: None,
        raw_json: json!({"id": id, "displayName": name}),
    }
}

async fn updated_at(store: &Store, table: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar(
        "SELECT last_updated_at FROM tenant_update_log WHERE tenant_id = $1 AND table_name = $2",
    )
    .bind(T)
    .bind(table)
    .fetch_optional(store.pool())
    .await
    .expect("query")
}

#[sqlx::test(migrations = false)]
async fn migrating_twice_is_a_no_op(pool: PgPool) {
    let store = ready(pool).await;
    store
        .apply_users_page(T, &[user("u1", "A")], &[], None)
        .await
        .expect("upsert");
    store.migrate().await.expect("second migrate");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM msgraph_users")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(n, 1, "data survives a second migration");
}

/// The web starting while the worker scans applies the schema again. With the schema current
/// that takes no table lock: before, its DDL locked tables in file order while the scan's
/// transaction held rows of them, and Postgres broke the deadlock by failing the scan's run.
#[sqlx::test(migrations = false)]
async fn a_start_up_beside_a_scan_applies_nothing_and_waits_for_no_table(pool: PgPool) {
    let store = ready(pool.clone()).await;
    let mut scan = pool.begin().await.expect("tx");
    for table in ["msgraph_users", "msgraph_groups", "msgraph_drive_items"] {
        sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            .execute(&mut *scan)
            .await
            .expect("lock");
    }
    let second = tokio::time::timeout(std::time::Duration::from_secs(20), store.migrate()).await;
    scan.rollback().await.expect("rollback");
    second
        .expect("a start-up with the schema current waits for no table a scan holds")
        .expect("migrate");

    // A schema of another version is applied in full (and does wait for the tables).
    sqlx::query("UPDATE schema_applied SET fingerprint = 'an earlier version'")
        .execute(store.pool())
        .await
        .expect("the earlier fingerprint");
    let mut scan = pool.begin().await.expect("tx");
    sqlx::query("LOCK TABLE msgraph_users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *scan)
        .await
        .expect("lock");
    let upgrade = store.migrate();
    tokio::pin!(upgrade);
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), &mut upgrade).await;
    assert!(early.is_err(), "an upgrade applies its DDL: {early:?}");
    scan.commit().await.expect("commit");
    upgrade.await.expect("upgrade");
    let applied: Vec<String> = sqlx::query_scalar("SELECT fingerprint FROM schema_applied")
        .fetch_all(store.pool())
        .await
        .expect("fingerprint");
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_ne!(applied[0], "an earlier version");
}

/// Another writer takes the tables of a groups page in the opposite order (as an upgrade's DDL
/// does); Postgres breaks the deadlock by failing the page's transaction, which runs again and
/// lands: the scan goes on instead of failing its run.
#[sqlx::test(migrations = false)]
async fn a_page_write_failed_to_break_a_deadlock_runs_again_and_lands(pool: PgPool) {
    let store = ready(pool.clone()).await;
    let mut other = pool.begin().await.expect("tx");
    // The page's side detects the deadlock (after the server's 1 s), so it is the one failed.
    sqlx::query("SET LOCAL deadlock_timeout = '30s'")
        .execute(&mut *other)
        .await
        .expect("set");
    sqlx::query("LOCK TABLE msgraph_group_members IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *other)
        .await
        .expect("lock members");
    let group = GroupRow {
        id: "g1".into(),
        display_name: Some("Finance".into()),
        mail: None,
        mail_nickname: None,
        is_unified: false,
        security_enabled: Some(true),
        visibility: None,
        created_at: None,
        raw_json: json!({"id": "g1", "displayName": "Finance"}),
    };
    let member = MemberChange {
        relation: Relation::Member,
        group_id: "g1".into(),
        member_id: "u1".into(),
        member_type: "user".into(),
        removed: false,
    };
    let page = store.apply_groups_page(
        T,
        std::slice::from_ref(&group),
        &[],
        std::slice::from_ref(&member),
        None,
    );
    tokio::pin!(page);
    // The page upserts the group, then waits for the members table.
    let blocked = async {
        for _ in 0..500 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .expect("activity");
            if waiting == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the page never waited for the members table");
    };
    tokio::select! {
        r = &mut page => panic!("the page did not wait for the members table: {r:?}"),
        () = blocked => {}
    }
    // The other writer now wants the groups table the page holds: a deadlock, which fails the
    // page's transaction (and grants this lock).
    let (locked, written) = tokio::join!(
        async {
            sqlx::query("LOCK TABLE msgraph_groups IN SHARE MODE")
                .execute(&mut *other)
                .await
                .expect("lock groups");
            other.commit().await.expect("commit");
        },
        &mut page
    );
    let () = locked;
    written.expect("the page, run again, lands");
    let members: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM msgraph_group_members WHERE tenant_id = $1 AND group_id = 'g1' AND deleted_at IS NULL",
    )
    .bind(T)
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(members, 1);
}

#[sqlx::test(migrations = false)]
async fn upserts_last_wins_soft_deletes_and_undeletes(pool: PgPool) {
    let store = ready(pool).await;
    assert_eq!(updated_at(&store, "msgraph_users").await, None);
    let rows = vec![user("u1", "First"), user("u2", "B"), user("u1", "Last")];
    store
        .apply_users_page(T, &rows, &[], None)
        .await
        .expect("upsert");
    let name: String = sqlx::query_scalar("SELECT display_name FROM msgraph_users WHERE id = 'u1'")
        .fetch_one(store.pool())
        .await
        .expect("q");
    assert_eq!(name, "Last", "the last occurrence in a page wins");
    assert!(
        updated_at(&store, "msgraph_users").await.is_some(),
        "update log written with the change"
    );

    store
        .apply_users_page(T, &[], &["u2".into()], None)
        .await
        .expect("remove");
    let deleted: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT deleted_at FROM msgraph_users WHERE id = 'u2'")
            .fetch_one(store.pool())
            .await
            .expect("q");
    assert!(deleted.is_some());
    store
        .apply_users_page(T, &[user("u2", "Back")], &[], None)
        .await
        .expect("return");
    let deleted: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT deleted_at FROM msgraph_users WHERE id = 'u2'")
            .fetch_one(store.pool())
            .await
            .expect("q");
    assert!(deleted.is_none(), "a row that reappears is undeleted");
}

/// An incremental directory round returns "the id with at least the properties that have been
/// updated" (learn.microsoft.com/graph/delta-query-overview): absent is not null.
#[sqlx::test(migrations = false)]
async fn a_fragment_updates_only_the_properties_it_carries(pool: PgPool) {
    let store = ready(pool).await;
    let mut full = user("u1", "Adele Vance");
    full.mail = Some("adele@x".into());
    full.department = Some("Retail".into());
    full.raw_json = json!({"id": "u1", "displayName": "Adele Vance", "mail": "adele@x",
        "department": "Retail", "userType": "Member", "accountEnabled": true});
    let fragment = UserRow {
        id: "u1".into(),
        display_name: None,
        user_principal_name: None,
        mail: None,
        user_type: None,
        is_guest: false,
        account_enabled: None,
        department: Some("Sales".into()),
        has_license: None,
        created_at: None,
        raw_json: json!({"id": "u1", "department": "Sales"}),
    };
    // In one page (the same object twice) and across pages alike.
    store
        .apply_users_page(T, &[full.clone(), fragment.clone()], &[], None)
        .await
        .expect("page");
    store
        .apply_users_page(T, &[fragment], &[], None)
        .await
        .expect("later page");
    let (name, mail, dept, enabled, raw): (Option<String>, Option<String>, Option<String>, Option<bool>, serde_json::Value) =
        sqlx::query_as("SELECT display_name, mail, department, account_enabled, raw_json FROM msgraph_users WHERE id = 'u1'")
            .fetch_one(store.pool())
            .await
            .expect("row");
    assert_eq!(name.as_deref(), Some("Adele Vance"));
    assert_eq!(mail.as_deref(), Some("adele@x"));
    assert_eq!(
        dept.as_deref(),
        Some("Sales"),
        "the carried property is updated"
    );
    assert_eq!(enabled, Some(true));
    assert_eq!(raw["displayName"], "Adele Vance", "{raw}");
    assert_eq!(raw["department"], "Sales", "{raw}");

    // An explicit null is a value: it clears the column.
    let cleared = UserRow {
        raw_json: json!({"id": "u1", "mail": null}),
        ..user("u1", "ignored")
    };
    let cleared = UserRow {
        mail: None,
        display_name: None,
        ..cleared
    };
    store
        .apply_users_page(T, &[cleared], &[], None)
        .await
        .expect("null");
    let (name, mail): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT display_name, mail FROM msgraph_users WHERE id = 'u1'")
            .fetch_one(store.pool())
            .await
            .expect("row");
    assert_eq!((name.as_deref(), mail), (Some("Adele Vance"), None));

    // A group split over pages: the second entry is only its id and a slice of members.
    let group = |raw: serde_json::Value, name: Option<&str>| GroupRow {
        id: "g1".into(),
        display_name: name.map(String::from),
        mail: None,
        mail_nickname: None,
        is_unified: raw.get("groupTypes").is_some(),
        security_enabled: None,
        visibility: None,
        created_at: None,
        raw_json: raw,
    };
    store
        .apply_groups_page(
            T,
            &[group(
                json!({"id": "g1", "displayName": "Sales", "groupTypes": ["Unified"]}),
                Some("Sales"),
            )],
            &[],
            &[],
            None,
        )
        .await
        .expect("group");
    store
        .apply_groups_page(T, &[group(json!({"id": "g1"}), None)], &[], &[], None)
        .await
        .expect("fragment");
    let (name, unified): (Option<String>, bool) =
        sqlx::query_as("SELECT display_name, is_unified FROM msgraph_groups WHERE id = 'g1'")
            .fetch_one(store.pool())
            .await
            .expect("row");
    assert_eq!((name.as_deref(), unified), (Some("Sales"), true));
}

#[sqlx::test(migrations = false)]
async fn delta_link_is_stored_only_with_the_last_page(pool: PgPool) {
    let store = ready(pool).await;
    store
        .apply_users_page(T, &[user("u1", "A")], &[], None)
        .await
        .expect("page 1");
    assert_eq!(store.delta_link("users", T).await.expect("q"), None);
    store
        .apply_users_page(
            T,
            &[user("u2", "B")],
            &[],
            Some("https://graph/delta?token=1"),
        )
        .await
        .expect("last page");
    assert_eq!(
        store.delta_link("users", T).await.expect("q").as_deref(),
        Some("https://graph/delta?token=1")
    );
}

#[sqlx::test(migrations = false)]
async fn a_full_round_soft_deletes_what_it_did_not_see(pool: PgPool) {
    let store = ready(pool).await;
    store
        .apply_users_page(T, &[user("u1", "A"), user("u2", "B")], &[], None)
        .await
        .expect("first");
    let round = store.now().await.expect("now");
    store
        .apply_users_page(T, &[user("u1", "A")], &[], Some("link"))
        .await
        .expect("second round");
    let n = store
        .reconcile_tenant_table(T, TenantTable::Users, round)
        .await
        .expect("reconcile");
    assert_eq!(n, 1);
    let live: Vec<String> =
        sqlx::query_scalar("SELECT id FROM msgraph_users WHERE deleted_at IS NULL")
            .fetch_all(store.pool())
            .await
            .expect("q");
    assert_eq!(live, vec!["u1".to_string()]);
}

/// Applies rows as a delta page, then derives paths and roots (hierarchical), all or `changed`.
async fn apply_and_derive(
    store: &Store,
    drive: &str,
    rows: &[DriveItemRow],
    changed: Option<&[String]>,
) -> u64 {
    store
        .apply_drive_items(T, drive, rows, &[], None)
        .await
        .expect("apply");
    store
        .derive_drive_tree(T, drive, true, changed)
        .await
        .expect("derive")
}

#[sqlx::test(migrations = false)]
async fn paths_and_permission_roots_follow_moves(pool: PgPool) {
    let store = ready(pool).await;
    let d = "b!drive";
    let mut shared = item("f2", Some("root"), "Shared", true);
    shared.is_permission_root = true;
    let rows = vec![
        item("a", Some("f1"), "a.txt", false), // child before its parent: order does not matter
        item("root", None, "root", true),
        item("f1", Some("root"), "Docs", true),
        shared,
    ];
    apply_and_derive(&store, d, &rows, None).await;
    let get = |id: &'static str| {
        let store = store.clone();
        async move {
            sqlx::query_as::<_, (Option<String>, Option<String>)>(
                "SELECT path, permission_root_id FROM msgraph_drive_items WHERE id = $1",
            )
            .bind(id)
            .fetch_one(store.pool())
            .await
            .expect("q")
        }
    };
    assert_eq!(
        get("a").await,
        (Some("/Docs/a.txt".into()), Some("root".into()))
    );
    // Move a.txt under the uniquely-permissioned folder: path and root follow.
    store
        .apply_drive_items(T, d, &[item("a", Some("f2"), "a.txt", false)], &[], None)
        .await
        .expect("move");
    store
        .derive_drive_tree(T, d, true, None)
        .await
        .expect("derive");
    assert_eq!(
        get("a").await,
        (Some("/Shared/a.txt".into()), Some("f2".into()))
    );
    // Exhaustive mode: every item is its own root.
    store
        .derive_drive_tree(T, d, false, None)
        .await
        .expect("derive");
    assert_eq!(get("a").await.1, Some("a".into()));
}

#[sqlx::test(migrations = false)]
async fn an_incremental_round_derives_the_subtrees_it_changed(pool: PgPool) {
    let store = ready(pool).await;
    let d = "b!drive";
    let rows = vec![
        item("root", None, "root", true),
        item("f1", Some("root"), "Docs", true),
        item("sub", Some("f1"), "Deep", true),
        item("a", Some("sub"), "a.txt", false),
        item("b", Some("root"), "b.txt", false),
    ];
    apply_and_derive(&store, d, &rows, None).await;
    // Delta reports only the renamed folder, now with permissions of its own, and a new file.
    let mut renamed = item("f1", Some("root"), "Documents", true);
    renamed.is_permission_root = true;
    let changed = vec![renamed, item("c", Some("sub"), "c.txt", false)];
    let ids: Vec<String> = changed.iter().map(|r| r.id.clone()).collect();
    let n = apply_and_derive(&store, d, &changed, Some(&ids)).await;
    let rows: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, path, permission_root_id FROM msgraph_drive_items ORDER BY id")
            .fetch_all(store.pool())
            .await
            .expect("q");
    let expected = [
        ("a", "/Documents/Deep/a.txt", "f1"),
        ("b", "/b.txt", "root"),
        ("c", "/Documents/Deep/c.txt", "f1"),
        ("f1", "/Documents", "f1"),
        ("root", "/", "root"),
        ("sub", "/Documents/Deep", "f1"),
    ];
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(i, p, r)| {
            (
                i.as_str(),
                p.as_deref().unwrap_or("?"),
                r.as_deref().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(got, expected);
    // The folder, its subfolder, the file under it and the new file: the untouched b.txt not.
    assert_eq!(n, 4);
    // Nothing changed: nothing to derive.
    assert_eq!(
        store
            .derive_drive_tree(T, d, true, Some(&[]))
            .await
            .expect("derive"),
        0
    );
}

fn perm(id: &str, scope: Option<&str>) -> PermissionRow {
    PermissionRow {
        permission_id: id.into(),
        roles: vec!["read".into()],
        link_type: scope.map(|_| "view".into()),
        link_scope: scope.map(String::from),
        link_url_sha256: scope.map(|_| "abc".into()),
        link_prevents_download: None,
        has_password: None,
        expires_at: None,
        invitation_email: None,
        inherited_from_id: None,
        raw_json: json!({"id": id}),
        grants: vec![GrantRow {
            grantee_key: format!("k:{id}"),
            grantee_type: if scope.is_some() {
                "link".into()
            } else {
                "user".into()
            },
            grantee_id: Some("u1".into()),
            display_name: None,
            email: None,
            login_name: None,
            is_external: false,
            is_everyone: false,
            is_everyone_except_external: false,
        }],
    }
}

#[sqlx::test(migrations = false)]
async fn permissions_are_replaced_and_due_items_follow_sharing_changes(pool: PgPool) {
    let store = ready(pool).await;
    let d = "b!drive";
    store
        .apply_drive_items(
            T,
            d,
            &[
                item("root", None, "root", true),
                item("x", Some("root"), "x", false),
            ],
            &[],
            None,
        )
        .await
        .expect("apply");
    store
        .derive_drive_tree(T, d, false, None)
        .await
        .expect("derive");
    assert_eq!(
        store
            .count_items_due_for_permissions(T, false)
            .await
            .expect("count"),
        2
    );
    let set = |perms: Vec<PermissionRow>| ItemPermissions {
        drive_id: d.into(),
        item_id: "x".into(),
        permissions: perms,
    };
    store
        .replace_item_permissions(
            T,
            &[set(vec![perm("p1", None), perm("p2", Some("anonymous"))])],
        )
        .await
        .expect("replace");
    store
        .replace_item_permissions(T, &[set(vec![perm("p1", None)])])
        .await
        .expect("replace again");
    let live: Vec<String> = sqlx::query_scalar(
        "SELECT permission_id FROM msgraph_drive_item_permissions WHERE deleted_at IS NULL",
    )
    .fetch_all(store.pool())
    .await
    .expect("q");
    assert_eq!(
        live,
        vec!["p1".to_string()],
        "a vanished link is soft-deleted"
    );
    let grants: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM msgraph_drive_item_permission_grants WHERE deleted_at IS NULL",
    )
    .fetch_one(store.pool())
    .await
    .expect("q");
    assert_eq!(grants, 1);
    let due = store
        .items_due_for_permissions(T, false, None, 10)
        .await
        .expect("due");
    assert_eq!(
        due,
        vec![DueItem {
            drive_id: d.into(),
            item_id: "root".into()
        }]
    );
    // Reported again without a sharing change: not due. With one: due.
    let mut unchanged = item("x", Some("root"), "renamed", false);
    unchanged.sharing_changed = false;
    store
        .apply_drive_items(T, d, &[unchanged.clone()], &[], None)
        .await
        .expect("rename");
    assert_eq!(
        store
            .count_items_due_for_permissions(T, false)
            .await
            .expect("count"),
        1
    );
    unchanged.sharing_changed = true;
    store
        .apply_drive_items(T, d, &[unchanged], &[], None)
        .await
        .expect("shared");
    assert_eq!(
        store
            .count_items_due_for_permissions(T, false)
            .await
            .expect("count"),
        2
    );
    // Deleting the item takes its permissions with it.
    store
        .delete_items(T, d, &["x".into()])
        .await
        .expect("delete");
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM msgraph_drive_item_permissions WHERE deleted_at IS NULL",
    )
    .fetch_one(store.pool())
    .await
    .expect("q");
    assert_eq!(live, 0);
}

#[sqlx::test(migrations = false)]
async fn only_the_summaries_a_tenants_changes_feed_are_refreshed_and_only_for_it(pool: PgPool) {
    const OTHER: &str = "tenant-2";
    let store = ready(pool).await;
    let first = store.refresh_tenant_views(T).await.expect("refresh");
    assert_eq!(first.refreshed.len(), 5, "never refreshed: {first:?}");
    let second = store.refresh_tenant_views(T).await.expect("refresh");
    assert!(second.refreshed.is_empty(), "nothing changed: {second:?}");
    store
        .apply_users_page(T, &[user("u1", "A")], &[], None)
        .await
        .expect("upsert");
    store
        .apply_users_page(OTHER, &[user("u1", "A"), user("u2", "B")], &[], None)
        .await
        .expect("the other tenant's users");
    let third = store.refresh_tenant_views(T).await.expect("refresh");
    assert_eq!(
        third.refreshed,
        vec![
            "mv_msgraph_inventory_summary".to_string(),
            "mv_msgraph_sharing_posture_summary".to_string()
        ]
    );
    let users = |tenant: &'static str| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT users FROM mv_msgraph_inventory_summary WHERE tenant_id = $1",
            )
            .bind(tenant)
            .fetch_optional(&pool)
            .await
            .expect("q")
        }
    };
    assert_eq!(users(T).await, Some(1));
    assert_eq!(
        users(OTHER).await,
        None,
        "one tenant's refresh computes no other tenant's rows"
    );
    // The other tenant's write made none of this tenant's summaries due.
    let fourth = store.refresh_tenant_views(T).await.expect("refresh");
    assert!(fourth.refreshed.is_empty(), "{fourth:?}");
    let other = store.refresh_tenant_views(OTHER).await.expect("refresh");
    assert_eq!(other.refreshed.len(), 5, "{other:?}");
    assert_eq!(users(OTHER).await, Some(2));
    assert_eq!(
        users(T).await,
        Some(1),
        "and leaves the first tenant's alone"
    );
    assert!(
        store
            .refresh_view(T, "pg_class; DROP TABLE jobs")
            .await
            .is_err(),
        "only the store's own summaries"
    );
}

#[sqlx::test(migrations = false)]
async fn audit_events_are_recorded(pool: PgPool) {
    let store = ready(pool).await;
    let id = store
        .audit(&AuditEvent {
            actor_upn: Some("admin@x".into()),
            action: "job.run_now".into(),
            details: json!({"job": 1}),
            ..Default::default()
        })
        .await
        .expect("audit");
    let action: String = sqlx::query_scalar("SELECT action FROM audit_events WHERE event_id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .expect("q");
    assert_eq!(action, "job.run_now");
    store
        .audit(&AuditEvent {
            action: "job.pause".into(),
            ..Default::default()
        })
        .await
        .expect("audit");
    let recent = store.recent_audit_events("t1", 1).await.expect("recent");
    assert_eq!(recent.len(), 1, "the limit holds");
    assert_eq!(recent[0].action, "job.pause", "newest first");
    // A tenant's events are its own; the deployment's (no tenant) are everyone's.
    for tenant in ["t1", "t2"] {
        store
            .audit(&AuditEvent {
                action: format!("job.create.{tenant}"),
                tenant_id: Some(tenant.into()),
                ..Default::default()
            })
            .await
            .expect("audit");
    }
    let seen: Vec<String> = store
        .recent_audit_events("t2", 10)
        .await
        .expect("recent")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(seen, ["job.create.t2", "job.pause", "job.run_now"]);
}

/// A folder's tombstone may come without its descendants' ("only delete a folder locally if it
/// is empty after syncing all the changes", driveitem-delta).
#[sqlx::test(migrations = false)]
async fn what_is_still_under_a_deleted_folder_goes_with_it(pool: PgPool) {
    let store = ready(pool).await;
    let rows = [
        item("root", None, "root", true),
        item("f", Some("root"), "F", true),
        item("sub", Some("f"), "Sub", true),
        item("deep", Some("sub"), "deep.txt", false),
        item("moved", Some("f"), "moved.txt", false),
        item("other", Some("root"), "other.txt", false),
    ];
    apply_and_derive(&store, "d1", &rows, None).await;
    // The round moves one file out of the folder, then deletes the folder alone.
    let moved = item("moved", Some("root"), "moved.txt", false);
    store
        .apply_drive_items(T, "d1", &[moved], &["f".to_string()], None)
        .await
        .expect("page");
    let n = store
        .delete_under_deleted_folders(T, "d1", &["f".to_string(), "nothing".to_string()])
        .await
        .expect("subtree");
    assert_eq!(n, 2, "sub and deep");
    let live: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM msgraph_drive_items WHERE deleted_at IS NULL ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .expect("q");
    assert_eq!(live, ["moved", "other", "root"]);
}

/// The exhaustive mode's sweep: items read before the cutoff, the longest ago first, page by
/// page; an item read meanwhile leaves it.
#[sqlx::test(migrations = false)]
async fn the_permission_sweep_reads_the_oldest_first(pool: PgPool) {
    let store = ready(pool).await;
    let rows: Vec<DriveItemRow> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| item(id, (*id != "a").then_some("a"), id, *id == "a"))
        .collect();
    apply_and_derive(&store, "d1", &rows, None).await;
    for (id, hours) in [("a", 30), ("b", 50), ("c", 40), ("d", 1)] {
        sqlx::query(&format!(
            "UPDATE msgraph_drive_items SET permissions_last_synced_at = now() - interval '{hours} hours' WHERE id = $1"
        ))
        .bind(id)
        .execute(store.pool())
        .await
        .expect("age");
    }
    let cutoff = store.now().await.expect("now") - chrono::Duration::hours(24);
    assert_eq!(
        store
            .count_items_due_for_sweep(T, false, cutoff)
            .await
            .expect("count"),
        3
    );
    let first = store
        .items_due_for_sweep(T, false, cutoff, None, 2)
        .await
        .expect("page");
    let ids: Vec<&str> = first.iter().map(|s| s.item.item_id.as_str()).collect();
    assert_eq!(ids, ["b", "c"], "oldest first");
    let rest = store
        .items_due_for_sweep(T, false, cutoff, first.last(), 2)
        .await
        .expect("page");
    let ids: Vec<&str> = rest.iter().map(|s| s.item.item_id.as_str()).collect();
    assert_eq!(ids, ["a"]);
    store
        .replace_item_permissions(
            T,
            &[ItemPermissions {
                drive_id: "d1".into(),
                item_id: "a".into(),
                permissions: vec![],
            }],
        )
        .await
        .expect("read");
    assert_eq!(
        store
            .count_items_due_for_sweep(T, false, cutoff)
            .await
            .expect("count"),
        2
    );
}

/// SharePoint does not return `inheritedFrom`: in exhaustive mode a child stores its parent's
/// link too. "Shared items" lists where a link is set, not every item under it.
#[sqlx::test(migrations = false)]
async fn shared_items_are_where_a_link_is_set_not_everything_under_it(pool: PgPool) {
    let store = ready(pool).await;
    let rows = [
        item("root", None, "root", true),
        item("f", Some("root"), "Folder", true),
        item("inherits", Some("f"), "inherits.txt", false),
        item("own", Some("f"), "own.txt", false),
    ];
    store
        .apply_drive_items(T, "d1", &rows, &[], None)
        .await
        .expect("items");
    store
        .derive_drive_tree(T, "d1", false, None)
        .await
        .expect("derive");
    let set = |id: &str, perms: Vec<PermissionRow>| ItemPermissions {
        drive_id: "d1".into(),
        item_id: id.into(),
        permissions: perms,
    };
    store
        .replace_item_permissions(
            T,
            &[
                set("f", vec![perm("link-f", Some("anonymous"))]),
                set("inherits", vec![perm("link-f", Some("anonymous"))]),
                set(
                    "own",
                    vec![
                        perm("link-f", Some("anonymous")),
                        perm("link-own", Some("organization")),
                    ],
                ),
            ],
        )
        .await
        .expect("permissions");
    let page = store
        .shared_items(T, "d1", &PageRequest::default())
        .await
        .expect("shared");
    let mut ids: Vec<&str> = page.rows.iter().map(|i| i.item_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["f", "own"]);
}

/// A worker applying the schema holds its locks in one transaction; a refresh beside it waits
/// for it instead of deadlocking with it.
#[sqlx::test(migrations = false)]
async fn a_refresh_waits_for_a_migration_in_progress(pool: PgPool) {
    let store = ready(pool.clone()).await;
    let mut migrating = pool.begin().await.expect("tx");
    // What `Store::migrate` takes first.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(0x5e47_1e10_0000_0001_i64)
        .execute(&mut *migrating)
        .await
        .expect("lock");
    let refresh = tokio::spawn({
        let store = store.clone();
        async move { store.refresh_tenant_views(T).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !refresh.is_finished(),
        "the refresh waits for the migration"
    );
    migrating.commit().await.expect("migration done");
    let done = refresh.await.expect("task").expect("refresh");
    assert!(!done.refreshed.is_empty(), "then it refreshes");
}
