//! Every bulk upsert puts each value in its own column. Each text column is written with a
//! value that names it, each number and time with a value of its own, and each flag is the only
//! one set in a row of its own: a value bound to the wrong column fails here.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sentinel_store::*;
use serde_json::{Value, json};
use sqlx::PgPool;

const T: &str = "tenant-1";

async fn ready(pool: PgPool) -> Store {
    let store = Store::from_pool(pool);
    store.migrate().await.expect("migrate");
    store
}

/// `column-row` (e.g. `mail-2`): a text value no other column of any row has.
fn text(column: &str, row: usize) -> Option<String> {
    Some(format!("{column}-{row}"))
}

/// A time of its own for the `k`-th time column of row `row`.
fn time(k: i64, row: usize) -> Option<DateTime<Utc>> {
    let base = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).single()?;
    Some(base + Duration::days(k * 100 + row as i64))
}

/// The stored row as JSON, column by column.
async fn stored(store: &Store, table: &str, filter: &str) -> Value {
    let sql = format!("SELECT to_jsonb(t) FROM {table} t WHERE tenant_id = $1 AND {filter}");
    sqlx::query_scalar(&sql)
        .bind(T)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{table} where {filter}: {e}"))
}

/// Each `(column, value)` of `expected` against the stored row.
fn assert_columns(row: &Value, expected: &[(&str, Value)]) {
    for (column, want) in expected {
        let got = &row[*column];
        let same = match (want.as_str(), got.as_str()) {
            // Times come back in Postgres's spelling: compare the instants.
            (Some(w), Some(g)) if w.contains('T') && g.contains('T') => {
                DateTime::parse_from_rfc3339(w).ok()
                    == DateTime::parse_from_rfc3339(&g.replace(' ', "T")).ok()
            }
            _ => want == got,
        };
        assert!(same, "{column}: stored {got}, written {want}");
    }
}

fn when(t: Option<DateTime<Utc>>) -> Value {
    json!(t.map(|t| t.to_rfc3339()))
}

#[sqlx::test(migrations = false)]
async fn users_groups_and_memberships(pool: PgPool) {
    let store = ready(pool).await;
    // Three flags: three rows, each with one set.
    let users: Vec<UserRow> = (0..3)
        .map(|r| UserRow {
            id: format!("u{r}"),
            display_name: text("display_name", r),
            user_principal_name: text("user_principal_name", r),
            mail: text("mail", r),
            user_type: text("user_type", r),
            is_guest: r == 0,
            account_enabled: Some(r == 1),
            department: text("department", r),
            has_license: Some(r == 2),
            created_at: time(1, r),
            raw_json: json!({"id": format!("u{r}"), "displayName": "d", "userPrincipalName": "u",
                "mail": "m", "userType": "t", "accountEnabled": true, "department": "d",
                "assignedLicenses": [], "createdDateTime": "c"}),
        })
        .collect();
    store
        .apply_users_page(T, &users, &[], None)
        .await
        .expect("users");
    for (r, u) in users.iter().enumerate() {
        let row = stored(&store, "msgraph_users", &format!("id = 'u{r}'")).await;
        assert_columns(
            &row,
            &[
                ("display_name", json!(u.display_name)),
                ("user_principal_name", json!(u.user_principal_name)),
                ("mail", json!(u.mail)),
                ("user_type", json!(u.user_type)),
                ("department", json!(u.department)),
                ("is_guest", json!(u.is_guest)),
                ("account_enabled", json!(u.account_enabled)),
                ("has_license", json!(u.has_license)),
                ("created_at", when(u.created_at)),
                ("raw_json", u.raw_json.clone()),
            ],
        );
    }
    let groups: Vec<GroupRow> = (0..2)
        .map(|r| GroupRow {
            id: format!("g{r}"),
            display_name: text("display_name", r),
            mail: text("mail", r),
            mail_nickname: text("mail_nickname", r),
            is_unified: r == 0,
            security_enabled: Some(r == 1),
            visibility: text("visibility", r),
            created_at: time(2, r),
            raw_json: json!({"id": format!("g{r}")}),
        })
        .collect();
    let members = [
        MemberChange {
            relation: Relation::Member,
            group_id: "g0".into(),
            member_id: "u1".into(),
            member_type: "group".into(),
            removed: false,
        },
        MemberChange {
            relation: Relation::Owner,
            group_id: "g0".into(),
            member_id: "u2".into(),
            member_type: "user".into(),
            removed: false,
        },
    ];
    store
        .apply_groups_page(T, &groups, &[], &members, None)
        .await
        .expect("groups");
    for (r, g) in groups.iter().enumerate() {
        let row = stored(&store, "msgraph_groups", &format!("id = 'g{r}'")).await;
        assert_columns(
            &row,
            &[
                ("display_name", json!(g.display_name)),
                ("mail", json!(g.mail)),
                ("mail_nickname", json!(g.mail_nickname)),
                ("visibility", json!(g.visibility)),
                ("is_unified", json!(g.is_unified)),
                ("security_enabled", json!(g.security_enabled)),
                ("created_at", when(g.created_at)),
            ],
        );
    }
    let row = stored(&store, "msgraph_group_members", "group_id = 'g0'").await;
    assert_columns(
        &row,
        &[
            ("member_id", json!("u1")),
            ("member_type", json!("group")),
            ("deleted_at", Value::Null),
        ],
    );
    let row = stored(&store, "msgraph_group_owners", "group_id = 'g0'").await;
    assert_columns(
        &row,
        &[
            ("member_id", json!("u2")),
            ("member_type", json!("user")),
            ("deleted_at", Value::Null),
        ],
    );
}

#[sqlx::test(migrations = false)]
async fn sites_drives_and_items(pool: PgPool) {
    let store = ready(pool).await;
    let site = SiteRow {
        id: "s0".into(),
        name: text("name", 0),
        display_name: text("display_name", 0),
        web_url: text("web_url", 0),
        created_at: time(1, 0),
        raw_json: json!({"id": "s0"}),
    };
    store
        .apply_sites_page(T, std::slice::from_ref(&site), &[], None)
        .await
        .expect("sites");
    let row = stored(&store, "msgraph_sites", "id = 's0'").await;
    assert_columns(
        &row,
        &[
            ("name", json!(site.name)),
            ("display_name", json!(site.display_name)),
            ("web_url", json!(site.web_url)),
            ("created_at", when(site.created_at)),
        ],
    );
    let drive = DriveRow {
        id: "d0".into(),
        site_id: text("site_id", 0),
        owner_user_id: text("owner_user_id", 0),
        name: text("name", 0),
        drive_type: text("drive_type", 0),
        web_url: text("web_url", 0),
        quota_total: Some(1_000),
        quota_used: Some(7),
        created_at: time(2, 0),
        raw_json: json!({"id": "d0"}),
    };
    store
        .upsert_drives(T, std::slice::from_ref(&drive))
        .await
        .expect("drives");
    let row = stored(&store, "msgraph_drives", "id = 'd0'").await;
    assert_columns(
        &row,
        &[
            ("site_id", json!(drive.site_id)),
            ("owner_user_id", json!(drive.owner_user_id)),
            ("name", json!(drive.name)),
            ("drive_type", json!(drive.drive_type)),
            ("web_url", json!(drive.web_url)),
            ("quota_total", json!(1_000)),
            ("quota_used", json!(7)),
            ("created_at", when(drive.created_at)),
        ],
    );
    // Four flags (sharing_changed only steers sharing_changed_at): four rows.
    let items: Vec<DriveItemRow> = (0..4)
        .map(|r| DriveItemRow {
            id: format!("i{r}"),
            parent_id: text("parent_id", r),
            name: text("name", r),
            is_folder: r == 0,
            is_root: r == 1,
            size: Some(10 + r as i64),
            mime_type: text("mime_type", r),
            quick_xor_hash: text("quick_xor_hash", r),
            sha1_hash: text("sha1_hash", r),
            created_at: time(3, r),
            modified_at: time(4, r),
            created_by_id: text("created_by_id", r),
            modified_by_id: text("modified_by_id", r),
            shared_scope: text("shared_scope", r),
            is_permission_root: r == 2,
            sharing_changed: r == 3,
            raw_json: json!({"id": format!("i{r}")}).to_string(),
        })
        .collect();
    store
        .apply_drive_items(T, "d0", &items, &[], None)
        .await
        .expect("items");
    for (r, i) in items.iter().enumerate() {
        let row = stored(&store, "msgraph_drive_items", &format!("id = 'i{r}'")).await;
        assert_columns(
            &row,
            &[
                ("drive_id", json!("d0")),
                ("parent_id", json!(i.parent_id)),
                ("name", json!(i.name)),
                ("is_folder", json!(i.is_folder)),
                ("is_root", json!(i.is_root)),
                ("size", json!(i.size)),
                ("mime_type", json!(i.mime_type)),
                ("quick_xor_hash", json!(i.quick_xor_hash)),
                ("sha1_hash", json!(i.sha1_hash)),
                ("created_at", when(i.created_at)),
                ("modified_at", when(i.modified_at)),
                ("created_by_id", json!(i.created_by_id)),
                ("modified_by_id", json!(i.modified_by_id)),
                ("shared_scope", json!(i.shared_scope)),
                ("is_permission_root", json!(i.is_permission_root)),
            ],
        );
        assert_eq!(
            row["sharing_changed_at"] == json!("-infinity"),
            !i.sharing_changed,
            "i{r}: sharing_changed_at {}",
            row["sharing_changed_at"]
        );
    }
}

#[sqlx::test(migrations = false)]
async fn permissions_and_their_grantees(pool: PgPool) {
    let store = ready(pool).await;
    // Permissions have two flags, grantees three: three rows each.
    let permissions: Vec<PermissionRow> = (0..3)
        .map(|r| PermissionRow {
            permission_id: format!("p{r}"),
            roles: vec![format!("role-{r}"), "read".into()],
            link_type: text("link_type", r),
            link_scope: text("link_scope", r),
            link_url_sha256: text("link_url_sha256", r),
            link_prevents_download: Some(r == 0),
            has_password: Some(r == 1),
            expires_at: time(1, r),
            invitation_email: text("invitation_email", r),
            inherited_from_id: text("inherited_from_id", r),
            raw_json: json!({"id": format!("p{r}")}),
            grants: vec![GrantRow {
                grantee_key: format!("key-{r}"),
                // A checked column: one of the kinds it allows, a different one a row.
                grantee_type: ["user", "group", "site_user"][r].into(),
                grantee_id: text("grantee_id", r),
                display_name: text("display_name", r),
                email: text("email", r),
                login_name: text("login_name", r),
                is_external: r == 0,
                is_everyone: r == 1,
                is_everyone_except_external: r == 2,
            }],
        })
        .collect();
    store
        .replace_item_permissions(
            T,
            &[ItemPermissions {
                drive_id: "d0".into(),
                item_id: "i0".into(),
                permissions: permissions.clone(),
            }],
        )
        .await
        .expect("permissions");
    for (r, p) in permissions.iter().enumerate() {
        let row = stored(
            &store,
            "msgraph_drive_item_permissions",
            &format!("permission_id = 'p{r}'"),
        )
        .await;
        assert_columns(
            &row,
            &[
                ("drive_id", json!("d0")),
                ("item_id", json!("i0")),
                ("roles", json!(p.roles)),
                ("link_type", json!(p.link_type)),
                ("link_scope", json!(p.link_scope)),
                ("link_url_sha256", json!(p.link_url_sha256)),
                ("link_prevents_download", json!(p.link_prevents_download)),
                ("has_password", json!(p.has_password)),
                ("expires_at", when(p.expires_at)),
                ("invitation_email", json!(p.invitation_email)),
                ("inherited_from_id", json!(p.inherited_from_id)),
                ("raw_json", p.raw_json.clone()),
            ],
        );
        let g = &p.grants[0];
        let row = stored(
            &store,
            "msgraph_drive_item_permission_grants",
            &format!("permission_id = 'p{r}'"),
        )
        .await;
        assert_columns(
            &row,
            &[
                ("drive_id", json!("d0")),
                ("item_id", json!("i0")),
                ("grantee_key", json!(g.grantee_key)),
                ("grantee_type", json!(g.grantee_type)),
                ("grantee_id", json!(g.grantee_id)),
                ("display_name", json!(g.display_name)),
                ("email", json!(g.email)),
                ("login_name", json!(g.login_name)),
                ("is_external", json!(g.is_external)),
                ("is_everyone", json!(g.is_everyone)),
                (
                    "is_everyone_except_external",
                    json!(g.is_everyone_except_external),
                ),
            ],
        );
    }
}
