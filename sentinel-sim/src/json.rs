//! Renders the tenant model as Microsoft Graph v1.0 JSON.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::tenant::*;

pub fn iso(ts: i64) -> String {
    DateTime::<Utc>::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Keeps only `id` and the `$select`ed properties (and annotations) of an object.
pub fn apply_select(v: Value, select: Option<&[String]>) -> Value {
    let (Some(sel), Value::Object(map)) = (select, &v) else {
        return v;
    };
    let kept: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| k.as_str() == "id" || k.contains('@') || sel.iter().any(|s| s == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "displayName": u.display_name,
        "userPrincipalName": u.upn,
        "mail": u.mail,
        "userType": if u.guest { "Guest" } else { "Member" },
        "accountEnabled": u.account_enabled,
        "department": u.department,
        "createdDateTime": iso(u.created),
        "assignedLicenses": if u.licensed {
            json!([{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df", "disabledPlans": []}])
        } else { json!([]) },
    })
}

pub fn user_identity(t: &Tenant, u: usize) -> Value {
    let user = &t.users[u];
    json!({"id": user.id, "displayName": user.display_name, "email": user.mail})
}

pub fn group_json(g: &Group) -> Value {
    json!({
        "id": g.id,
        "displayName": g.display_name,
        "mailNickname": g.mail_nickname,
        "mail": if g.unified { Value::String(format!("{}@contoso.example", g.mail_nickname)) } else { Value::Null },
        "groupTypes": if g.unified { json!(["Unified"]) } else { json!([]) },
        "securityEnabled": !g.unified,
        "mailEnabled": g.unified,
        "visibility": if g.public { "Public" } else { "Private" },
        "createdDateTime": iso(g.created),
    })
}

pub fn member_ref_json(t: &Tenant, m: MemberRef, removed: bool) -> Value {
    let mut v = match m {
        MemberRef::User(u) => json!({"@odata.type": "#microsoft.graph.user", "id": t.users[u].id}),
        MemberRef::Group(g) => {
            json!({"@odata.type": "#microsoft.graph.group", "id": t.groups[g].id})
        }
    };
    if removed {
        v["@removed"] = json!({"reason": "deleted"});
    }
    v
}

pub fn site_json(t: &Tenant, s: usize) -> Value {
    let site = &t.sites[s];
    if site.deleted {
        return json!({"id": site.id, "deleted": {"state": "deleted"}});
    }
    let mut v = json!({
        "id": site.id,
        "name": site.name,
        "displayName": site.display_name,
        "webUrl": site_url(t, s),
        "createdDateTime": iso(site.created),
        "lastModifiedDateTime": iso(site.created),
    });
    // `root` and `siteCollection` are on a site collection's root site only (site resource:
    // "siteCollection: ... Available only on the root site").
    if site.parent.is_none() {
        v["siteCollection"] = json!({"hostname": t.sp_host});
        v["root"] = json!({});
    }
    v
}

/// `https://{host}/sites/{collection}/{subsite}/...`.
fn site_url(t: &Tenant, s: usize) -> String {
    let mut names = vec![t.sites[s].name.as_str()];
    let mut at = s;
    while let Some(p) = t.sites[at].parent {
        names.push(&t.sites[p].name);
        at = p;
    }
    names.reverse();
    format!("https://{}/sites/{}", t.sp_host, names.join("/"))
}

pub fn drive_json(t: &Tenant, d: usize) -> Value {
    let drive = &t.drives[d];
    let used: u64 = drive
        .items
        .iter()
        .filter(|i| !i.deleted)
        .map(|i| i.size)
        .sum();
    let (drive_type, owner, web_url) = match (drive.site, drive.owner_user) {
        (Some(s), _) => {
            let site = &t.sites[s];
            let owner = match site.kind {
                SiteKind::Team(g) => {
                    json!({"group": {"id": t.groups[g].id, "displayName": t.groups[g].display_name}})
                }
                SiteKind::Communication => json!({"user": {"displayName": "System Account"}}),
            };
            let url = format!("{}/{}", site_url(t, s), drive.name.replace(' ', "%20"));
            ("documentLibrary", owner, url)
        }
        (None, Some(u)) => {
            let url = format!(
                "https://{}-my.sharepoint.com/personal/{}/Documents",
                t.sp_host.trim_end_matches(".sharepoint.com"),
                t.users[u].upn.replace(['@', '.'], "_")
            );
            ("business", json!({"user": user_identity(t, u)}), url)
        }
        (None, None) => ("business", json!({}), String::new()),
    };
    json!({
        "id": drive.id,
        "name": drive.name,
        "driveType": drive_type,
        "createdDateTime": iso(drive.created),
        "webUrl": web_url,
        "owner": owner,
        "quota": {
            "total": drive.quota_total,
            "used": used,
            "remaining": drive.quota_total.saturating_sub(used),
            "deleted": 0,
            "state": "normal",
        },
    })
}

/// How an item is rendered in a delta feed or a GET.
#[derive(Debug, Clone, Copy, Default)]
pub struct ItemView {
    /// `Prefer: hierarchicalsharing`: sharing facet only on hierarchy roots.
    pub hierarchical: bool,
    /// Annotate with `@microsoft.graph.sharedChanged` (set by the caller per item).
    pub shared_changed: bool,
}

pub fn item_json(t: &Tenant, d: usize, i: u32, view: ItemView) -> Value {
    let drive = &t.drives[d];
    let it = &drive.items[i as usize];
    let id = t.item_id(d, i);
    let drive_type = if drive.site.is_some() {
        "documentLibrary"
    } else {
        "business"
    };
    let mut parent = json!({"driveId": drive.id, "driveType": drive_type});
    if it.parent != NO_PARENT {
        parent["id"] = json!(t.item_id(d, it.parent));
    }
    let kind_facet = |v: &mut Value| {
        if it.folder {
            v["folder"] = json!({});
        } else {
            let hash = mix(t.id_key ^ it.version ^ ((i as u64) << 20));
            v["file"] = json!({"mimeType": mime(&it.name), "hashes": {"quickXorHash": format!("{hash:016x}")}});
        }
    };
    if it.deleted {
        // OneDrive for Business / SharePoint omit name (and cTag) on deleted items.
        let mut v = json!({"id": id, "deleted": {"state": "deleted"}, "parentReference": parent});
        kind_facet(&mut v);
        return v;
    }
    let etag_v = it.version.max(it.perm_version);
    let mut v = json!({
        "id": id,
        "name": &*it.name,
        "eTag": format!("\"{{{id}}},{etag_v}\""),
        "cTag": format!("\"c:{{{id}}},{}\"", it.version),
        "createdDateTime": iso(it.created),
        "lastModifiedDateTime": iso(it.modified),
        "size": it.size,
        "webUrl": format!("https://{}/item/{}", t.sp_host, id),
        "parentReference": parent,
        "createdBy": {"user": user_identity(t, it.created_by as usize)},
        "lastModifiedBy": {"user": user_identity(t, it.modified_by as usize)},
    });
    if it.parent == NO_PARENT {
        v["root"] = json!({});
    }
    kind_facet(&mut v);
    let is_root = it.unique.is_some();
    if view.hierarchical {
        if is_root {
            v["shared"] = shared_facet(t, d, i).unwrap_or_else(|| json!({}));
        }
    } else if let Some(s) = shared_facet(t, d, i) {
        v["shared"] = s;
    }
    if view.shared_changed {
        v["@microsoft.graph.sharedChanged"] = json!("True");
    }
    v
}

fn mime(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// The `shared` facet: present when the item's effective permissions include a link
/// or a grant beyond the site's own groups.
fn shared_facet(t: &Tenant, d: usize, i: u32) -> Option<Value> {
    let mut breadth = 0u8;
    let mut scope = None;
    for &p in t.effective_perms(d, i) {
        match &t.perms[p as usize].kind {
            PermKind::Link { scope: s, .. } => {
                if s.breadth() > breadth {
                    breadth = s.breadth();
                    scope = Some(s.as_str());
                }
            }
            PermKind::Grant(Principal::SiteGroup { .. }) => {}
            PermKind::Grant(Principal::User(u)) if Some(*u) == t.drives[d].owner_user => {}
            PermKind::Grant(_) | PermKind::Invitation { .. } => {
                if breadth == 0 {
                    scope = Some("users");
                    breadth = 1;
                }
            }
        }
    }
    scope.map(|s| json!({"scope": s}))
}

pub fn permission_json(t: &Tenant, p: PermIdx) -> Value {
    let perm = &t.perms[p as usize];
    let roles: Vec<&str> = perm.roles.iter().map(|r| r.as_str()).collect();
    let mut v = json!({"id": perm.id, "roles": roles});
    match &perm.kind {
        PermKind::Grant(pr) => {
            v["grantedToV2"] = principal_json(t, *pr);
        }
        PermKind::Link {
            link_type,
            scope,
            token,
            expiration,
            has_password,
            prevents_download,
            recipients,
        } => {
            let letter = if link_type.writes() { "w" } else { "r" };
            v["link"] = json!({
                "type": link_type.as_str(),
                "scope": scope.as_str(),
                "webUrl": format!("https://{}/:{letter}:/g/{token}", t.sp_host),
                "preventsDownload": prevents_download,
            });
            v["shareId"] = json!(format!("u!{token}"));
            v["hasPassword"] = json!(has_password);
            if let Some(e) = expiration {
                v["expirationDateTime"] = json!(iso(*e));
            }
            let ids: Vec<Value> = recipients
                .iter()
                .map(|&u| json!({"user": user_identity(t, u)}))
                .collect();
            v["grantedToIdentitiesV2"] = Value::Array(ids);
        }
        PermKind::Invitation { email, redeemed_by } => {
            v["invitation"] = json!({"email": email, "signInRequired": true});
            v["grantedToV2"] = match redeemed_by {
                Some(u) => principal_json(t, Principal::User(*u)),
                None => json!({"siteUser": {
                    "displayName": email,
                    "email": email,
                    "loginName": format!("i:0#.f|membership|urn%3aspo%3aguest#{email}"),
                }}),
            };
        }
    }
    v
}

fn principal_json(t: &Tenant, p: Principal) -> Value {
    let login = t.login_name(p);
    match p {
        Principal::User(u) => {
            let id = user_identity(t, u);
            json!({"user": id, "siteUser": {"id": (u + 10).to_string(), "displayName": t.users[u].display_name, "email": t.users[u].mail, "loginName": login}})
        }
        Principal::Group(g) => {
            let grp = &t.groups[g];
            json!({"group": {"id": grp.id, "displayName": grp.display_name}, "siteUser": {"displayName": grp.display_name, "loginName": login}})
        }
        Principal::SiteGroup { site, which } => json!({"siteGroup": {
            "id": t.sites[site].site_group_ids[which as usize].to_string(),
            "displayName": login,
            "loginName": login,
        }}),
        // The claims arrive as a siteUser together with a `user` facet that has a display name
        // only (microsoft-graph-docs-contrib #5962; pnp/pnpcore #1125 for the claim).
        Principal::EveryoneExceptExternal => json!({
            "user": {"displayName": "Everyone except external users"},
            "siteUser": {
                "id": "spo-grid-all-users",
                "displayName": "Everyone except external users",
                "loginName": login,
            },
        }),
        Principal::Everyone => json!({
            "user": {"displayName": "Everyone"},
            "siteUser": {"id": "everyone", "displayName": "Everyone", "loginName": login},
        }),
        Principal::Application(a) => {
            json!({"application": {"id": t.apps[a].id, "displayName": t.apps[a].display_name}})
        }
    }
}
