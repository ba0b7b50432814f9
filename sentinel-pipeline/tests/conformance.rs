//! Microsoft's own JSON examples, transcribed in `tests/fixtures/microsoft/`, through the
//! conversion to store rows. Each assertion is what the example's fields and its page's prose
//! define, not what our simulator happens to send.

use std::collections::HashSet;

use sentinel_graph::models::{GraphObject, Permission};
use sentinel_pipeline::convert::permission_row;
use sentinel_store::PermissionRow;
use serde_json::{Value, json};

fn example(file: &str, name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/microsoft/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        doc["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://learn.microsoft.com/"))
    );
    doc["examples"][name].clone()
}

fn convert(v: Value, guests: &[&str]) -> PermissionRow {
    let guests: HashSet<String> = guests.iter().map(|g| g.to_string()).collect();
    permission_row(&Permission::from_json(v).expect("a permission"), &guests)
}

fn grantees(row: &PermissionRow) -> Vec<(String, Option<String>)> {
    row.grants
        .iter()
        .map(|g| (g.grantee_type.clone(), g.grantee_id.clone()))
        .collect()
}

#[test]
fn sharing_links_keep_type_and_roles_and_min_value_means_no_expiry() {
    for (name, kind, role) in [
        ("permission-view-link", "view", "read"),
        ("permission-edit-link", "edit", "write"),
    ] {
        let row = convert(example("permission.json", name), &[]);
        assert_eq!(row.link_type.as_deref(), Some(kind), "{name}");
        assert_eq!(row.roles, vec![role.to_string()], "{name}");
        // "DateTime.MinValue indicates there is no expiration set for this permission."
        assert_eq!(row.expires_at, None, "{name}: 0001-01-01 is no expiry");
        assert!(
            row.link_url_sha256.is_some(),
            "{name}: the link is recorded by its hash"
        );
        assert!(
            !format!("{row:?}").contains("authkey"),
            "{name}: no link secret"
        );
    }
}

#[test]
fn a_specific_people_link_without_scope_grants_the_link_and_each_person() {
    let row = convert(example("permission.json", "permission-people-link"), &[]);
    // The page's example has no `scope` and no `type`: nothing is invented for them.
    assert_eq!(
        (row.link_scope.as_deref(), row.link_type.as_deref()),
        (None, None)
    );
    assert_eq!(
        grantees(&row)[1..],
        [
            ("user".to_string(), Some("35fij1974gb8832".to_string())),
            ("user".to_string(), Some("9397721fh4hgh73".to_string())),
        ]
    );
    assert_eq!(row.grants[0].grantee_type, "link");
    assert!(
        !row.grants[0].is_external,
        "a link without scope is not anonymous"
    );
}

#[test]
fn an_existing_access_link_reaches_no_one_new() {
    let row = convert(example("permission.json", "permission-existing-link"), &[]);
    assert_eq!(row.link_scope.as_deref(), Some("existingAccess"));
    assert!(row.grants.iter().all(|g| !g.is_external && !g.is_everyone));
}

#[test]
fn an_invitation_is_external_until_redeemed_then_it_is_the_account_that_redeemed_it() {
    let row = convert(example("permission.json", "permission-invite-email"), &[]);
    assert_eq!(grantees(&row), [("invitation".to_string(), None)]);
    assert!(row.grants[0].is_external);
    assert_eq!(row.invitation_email.as_deref(), Some("jd@gmail.com"));

    // "After the sharing invitation has been redeemed by a user, the grantedTo property will
    // contain the information about the account that redeemed the permissions."
    let row = convert(
        example("permission.json", "permission-invite-redeemed"),
        &["5D33DD65C6932946"],
    );
    assert_eq!(
        grantees(&row),
        [("user".to_string(), Some("5D33DD65C6932946".to_string()))]
    );
    let g = &row.grants[0];
    assert!(g.is_external, "the account is a guest of the tenant");
    assert_eq!(g.display_name.as_deref(), Some("John Doe"));
    assert_eq!(
        g.email.as_deref(),
        Some("jd@outlook.com"),
        "the invited address is kept"
    );
    assert_eq!(row.invitation_email.as_deref(), Some("jd@outlook.com"));
}

/// "Everyone except external users" arrives as `siteUser` with the claim in `loginName`, beside a
/// `user` facet that holds a display name only (microsoft-graph-docs-contrib #5962; the claim:
/// pnp/pnpcore #1125). Not a page example: the shape the issue thread reports.
#[test]
fn everyone_claims_win_over_a_user_facet_without_an_id() {
    let eeeu = json!({"id": "e", "roles": ["read"], "grantedToV2": {
        "user": {"displayName": "Everyone except external users"},
        "siteUser": {"id": "4", "displayName": "Everyone except external users",
                     "loginName": "c:0-.f|rolemanager|spo-grid-all-users/6e6f6d2c-tid"}}});
    let row = convert(eeeu, &[]);
    assert_eq!(row.grants.len(), 1);
    assert!(
        row.grants[0].is_everyone_except_external,
        "{:?}",
        row.grants[0]
    );
    assert_eq!(row.grants[0].grantee_type, "site_user");

    let everyone = json!({"id": "a", "roles": ["read"], "grantedToV2": {
        "user": {"displayName": "Everyone"},
        "siteUser": {"id": "5", "displayName": "Everyone", "loginName": "c:0(.s|true"}}});
    assert!(convert(everyone, &[]).grants[0].is_everyone);
}
