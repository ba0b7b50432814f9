//! Graph objects to store rows. Sharing-link URLs are bearer secrets: they are hashed here,
//! before anything reaches the store, in the typed columns and in `raw_json` alike.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Utc};

use sentinel_graph::models::{Drive, DriveItem, Group, IdentitySet, Permission, Site, User};
use sentinel_graph::models::{scrub_link_secrets, sha256_hex};
use sentinel_store::{
    DriveItemRow, DriveRow, GrantRow, GroupRow, MemberChange, PermissionRow, Relation, SiteRow,
    UserRow,
};

/// `loginName` of "Everyone except external users" starts with this claim.
const EVERYONE_EXCEPT_EXTERNAL: &str = "spo-grid-all-users";
/// `loginName` of "Everyone".
const EVERYONE: &str = "c:0(.s|true";

fn time(s: &Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// A user as its row (guests flagged from `userType`).
pub fn user_row(u: &User) -> UserRow {
    UserRow {
        id: u.id.clone(),
        display_name: u.display_name.clone(),
        user_principal_name: u.user_principal_name.clone(),
        mail: u.mail.clone(),
        user_type: u.user_type.clone(),
        is_guest: u.is_guest(),
        account_enabled: u.account_enabled,
        department: u.department.clone(),
        has_license: u.assigned_licenses.as_ref().map(|l| !l.is_empty()),
        created_at: time(&u.created_date_time),
        raw_json: u.raw.clone(),
    }
}

/// A group as its row.
pub fn group_row(g: &Group) -> GroupRow {
    let mut raw = g.raw.clone();
    // Membership lives in its own table; a page's slice of it is no property of the group.
    if let Some(o) = raw.as_object_mut() {
        o.remove("members@delta");
        o.remove("owners@delta");
    }
    GroupRow {
        id: g.id.clone(),
        display_name: g.display_name.clone(),
        mail: g.mail.clone(),
        mail_nickname: g.mail_nickname.clone(),
        is_unified: g.is_unified(),
        security_enabled: g.security_enabled,
        visibility: g.visibility.clone(),
        created_at: time(&g.created_date_time),
        raw_json: raw,
    }
}

/// The membership and ownership changes a group's `members@delta` and `owners@delta` carry
/// (additions and `@removed`).
pub fn member_changes(g: &Group) -> Vec<MemberChange> {
    let members = g
        .members_delta
        .iter()
        .flatten()
        .map(|m| (Relation::Member, m));
    let owners = g
        .owners_delta
        .iter()
        .flatten()
        .map(|m| (Relation::Owner, m));
    members
        .chain(owners)
        .map(|(relation, m)| MemberChange {
            relation,
            group_id: g.id.clone(),
            member_id: m.id.clone(),
            member_type: match m.odata_type.as_deref() {
                Some("#microsoft.graph.user") => "user",
                Some("#microsoft.graph.group") => "group",
                _ => "other",
            }
            .to_string(),
            removed: m.removed.is_some(),
        })
        .collect()
}

/// A site as its row.
pub fn site_row(s: &Site) -> SiteRow {
    SiteRow {
        id: s.id.clone(),
        name: s.name.clone(),
        display_name: s.display_name.clone(),
        web_url: s.web_url.clone(),
        created_at: time(&s.created_date_time),
        raw_json: s.raw.clone(),
    }
}

/// A drive as its row, with the site or user it belongs to.
pub fn drive_row(d: &Drive, site_id: Option<&str>, owner_user_id: Option<&str>) -> DriveRow {
    DriveRow {
        id: d.id.clone(),
        site_id: site_id.map(String::from),
        owner_user_id: owner_user_id.map(String::from),
        name: d.name.clone(),
        drive_type: d.drive_type.clone(),
        web_url: d.web_url.clone(),
        quota_total: d.quota.as_ref().and_then(|q| q.total),
        quota_used: d.quota.as_ref().and_then(|q| q.used),
        created_at: time(&d.created_date_time),
        raw_json: d.raw.clone(),
    }
}

/// `hierarchical`: the delta asked for `Prefer: hierarchicalsharing`, so a `shared` facet marks a
/// permission-hierarchy root. `full_round`: a scratch or resync round, after which every
/// item's permissions are re-read (changes during the gap were not reported).
///
/// In hierarchical mode every root a round returns is due a read here, annotated or not:
/// `@microsoft.graph.sharedChanged` is set on files only, never on folders (msgraph-sdk-java
/// #2548), and not when direct access is removed (onedrive-api-docs #1248). Under an adaptive
/// cadence the drive round puts off an unannotated drive root or file (`drives.rs`).
pub fn drive_item_row(i: &DriveItem, hierarchical: bool, full_round: bool) -> DriveItemRow {
    let raw_json = i.raw.to_string();
    let id_of = |s: &Option<IdentitySet>| {
        s.as_ref()
            .and_then(|s| s.user.as_ref())
            .and_then(|u| u.id.clone())
    };
    let is_permission_root = i.is_root() || (hierarchical && i.shared.is_some());
    DriveItemRow {
        id: i.id.clone(),
        parent_id: i.parent_id().map(String::from),
        name: i.name.clone(),
        is_folder: i.is_folder(),
        is_root: i.is_root(),
        size: i.size,
        mime_type: i.file.as_ref().and_then(|f| f.mime_type.clone()),
        quick_xor_hash: i
            .file
            .as_ref()
            .and_then(|f| f.hashes.as_ref())
            .and_then(|h| h.quick_xor_hash.clone()),
        sha1_hash: i
            .file
            .as_ref()
            .and_then(|f| f.hashes.as_ref())
            .and_then(|h| h.sha1_hash.clone()),
        created_at: time(&i.created_date_time),
        modified_at: time(&i.last_modified_date_time),
        created_by_id: id_of(&i.created_by),
        modified_by_id: id_of(&i.last_modified_by),
        shared_scope: i.shared.as_ref().and_then(|s| s.scope.clone()),
        is_permission_root,
        sharing_changed: full_round || !hierarchical || is_permission_root || i.sharing_changed(),
        raw_json,
    }
}

fn identity_grants(set: &IdentitySet, guests: &HashSet<String>) -> Option<GrantRow> {
    let base = |kind: &str,
                id: Option<String>,
                name: Option<String>,
                email: Option<String>,
                login: Option<String>| GrantRow {
        grantee_key: format!(
            "{kind}:{}",
            id.clone()
                .or_else(|| login.clone())
                .or_else(|| email.clone())
                .unwrap_or_default()
        ),
        grantee_type: kind.to_string(),
        grantee_id: id,
        display_name: name,
        email,
        login_name: login,
        is_external: false,
        is_everyone: false,
        is_everyone_except_external: false,
    };
    let login = set.site_user.as_ref().and_then(|s| s.login_name.clone());
    // "Everyone" and "Everyone except external users" arrive as a siteUser carrying the claim,
    // beside a `user` facet with a display name only (microsoft-graph-docs-contrib #5962): the
    // claim decides. A `user` facet without an id names nobody in the directory.
    let everyone_claim = login
        .as_deref()
        .is_some_and(|l| l.contains(EVERYONE_EXCEPT_EXTERNAL) || l == EVERYONE);
    if let Some(u) = set
        .user
        .as_ref()
        .filter(|u| u.id.is_some() && !everyone_claim)
    {
        let mut g = base(
            "user",
            u.id.clone(),
            u.display_name.clone(),
            u.email.clone(),
            login,
        );
        g.is_external = u.id.as_ref().is_some_and(|id| guests.contains(id))
            || g.login_name
                .as_deref()
                .is_some_and(|l| l.to_ascii_lowercase().contains("#ext#"));
        return Some(g);
    }
    if let Some(gr) = &set.group {
        return Some(base(
            "group",
            gr.id.clone(),
            gr.display_name.clone(),
            gr.email.clone(),
            login,
        ));
    }
    if let Some(a) = &set.application {
        return Some(base(
            "application",
            a.id.clone(),
            a.display_name.clone(),
            None,
            None,
        ));
    }
    if let Some(sg) = &set.site_group {
        return Some(base(
            "site_group",
            sg.id.clone(),
            sg.display_name.clone(),
            None,
            sg.login_name.clone(),
        ));
    }
    if let Some(su) = &set.site_user {
        let mut g = base(
            "site_user",
            su.id.clone(),
            su.display_name.clone(),
            su.email.clone(),
            su.login_name.clone(),
        );
        let l = su.login_name.as_deref().unwrap_or("");
        g.is_everyone_except_external = l.contains(EVERYONE_EXCEPT_EXTERNAL);
        g.is_everyone = l == EVERYONE;
        g.is_external = l.to_ascii_lowercase().contains("#ext#") || l.contains("urn%3aspo%3aguest");
        return Some(g);
    }
    set.user
        .as_ref()
        .map(|u| base("user", None, u.display_name.clone(), u.email.clone(), None))
}

/// A permission and one grantee row per principal it grants to.
pub fn permission_row(p: &Permission, guests: &HashSet<String>) -> PermissionRow {
    let link_hash = p
        .link
        .as_ref()
        .and_then(|l| l.web_url.as_deref())
        .map(sha256_hex);
    let mut grants = Vec::new();
    // A redeemed invitation carries the account that accepted it in `grantedToV2` beside the
    // `invitation` (permission resource, "permission-invite-redeemed"): the grant is that account's.
    let redeemed = p.invitation.as_ref().and(
        p.grantee()
            .filter(|set| set.user.as_ref().is_some_and(|u| u.id.is_some())),
    );
    if let Some(set) = redeemed {
        grants.extend(identity_grants(set, guests).map(|mut g| {
            g.email = g
                .email
                .or_else(|| p.invitation.as_ref().and_then(|i| i.email.clone()));
            g
        }));
    } else if let Some(inv) = &p.invitation {
        // Invited by e-mail, not yet accepted: no directory identity.
        grants.push(GrantRow {
            grantee_key: format!("invitation:{}", inv.email.clone().unwrap_or_default()),
            grantee_type: "invitation".into(),
            grantee_id: None,
            display_name: inv.email.clone(),
            email: inv.email.clone(),
            login_name: None,
            is_external: true,
            is_everyone: false,
            is_everyone_except_external: false,
        });
    } else if let Some(link) = &p.link {
        grants.push(GrantRow {
            grantee_key: format!("link:{}", link_hash.clone().unwrap_or_else(|| p.id.clone())),
            grantee_type: "link".into(),
            grantee_id: None,
            display_name: Some(format!(
                "{} link ({})",
                link.scope.as_deref().unwrap_or("?"),
                link.link_type.as_deref().unwrap_or("?")
            )),
            email: None,
            login_name: None,
            is_external: link.scope.as_deref() == Some("anonymous"),
            is_everyone: false,
            is_everyone_except_external: false,
        });
        for set in p.link_grantees() {
            grants.extend(identity_grants(set, guests));
        }
    } else if let Some(set) = p.grantee() {
        grants.extend(identity_grants(set, guests));
    }
    PermissionRow {
        permission_id: p.id.clone(),
        roles: p.roles.clone(),
        link_type: p.link.as_ref().and_then(|l| l.link_type.clone()),
        link_scope: p.link.as_ref().and_then(|l| l.scope.clone()),
        link_url_sha256: link_hash,
        link_prevents_download: p.link.as_ref().and_then(|l| l.prevents_download),
        has_password: p.has_password,
        // "DateTime.MinValue indicates there is no expiration set for this permission"
        // (permission resource, expirationDateTime): every documented example carries it.
        expires_at: time(&p.expiration_date_time).filter(|t| t.year() > 1),
        invitation_email: p.invitation.as_ref().and_then(|i| i.email.clone()),
        inherited_from_id: p.inherited_from.as_ref().and_then(|r| r.id.clone()),
        raw_json: scrub_link_secrets(&p.raw),
        grants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_graph::models::GraphObject;
    use serde_json::json;

    #[test]
    fn link_secrets_never_reach_a_row() {
        let secret = "https://contoso.sharepoint.com/:w:/g/SECRETTOKEN";
        let p = Permission::from_json(json!({
            "id": "p1", "roles": ["write"], "shareId": "u!SECRETTOKEN", "hasPassword": false,
            "link": {"type": "edit", "scope": "anonymous", "webUrl": secret},
        }))
        .expect("permission");
        let row = permission_row(&p, &HashSet::new());
        let dump = format!("{row:?}");
        assert!(!dump.contains("SECRETTOKEN"), "{dump}");
        assert_eq!(
            row.link_url_sha256.as_deref(),
            Some(sha256_hex(secret).as_str())
        );
        assert_eq!(row.grants.len(), 1);
        assert!(
            row.grants[0].is_external,
            "anyone-with-the-link reaches outsiders"
        );
    }

    #[test]
    fn everyone_claims_and_guests_are_flagged() {
        let eeeu = Permission::from_json(json!({"id": "e", "roles": ["read"], "grantedToV2": {"siteUser": {
            "displayName": "Everyone except external users", "loginName": "c:0-.f|rolemanager|spo-grid-all-users/tid"}}}))
        .expect("p");
        assert!(permission_row(&eeeu, &HashSet::new()).grants[0].is_everyone_except_external);
        let guest = Permission::from_json(
            json!({"id": "g", "roles": ["read"], "grantedToV2": {"user": {"id": "guest-1"}}}),
        )
        .expect("p");
        let guests: HashSet<String> = ["guest-1".to_string()].into();
        let row = permission_row(&guest, &guests);
        assert_eq!(
            (
                row.grants[0].grantee_type.as_str(),
                row.grants[0].is_external
            ),
            ("user", true)
        );
    }
}
