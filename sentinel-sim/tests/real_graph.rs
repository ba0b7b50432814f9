//! Behaviours of real Graph that a simulator written beside its client would not show: each test
//! names its source. The client and pipeline side of each is tested in sentinel-graph,
//! sentinel-store, sentinel-pipeline and the worker (see docs/graph-conformance.md).

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{Value, json};

fn ids(values: &[Value]) -> HashSet<String> {
    values
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect()
}

/// delta-query-overview ("Tip": `/delta` is a shortcut for `/microsoft.graph.delta`); the SDKs
/// send `delta()`, `getAllSites()` and `drives/{id}/items/root/delta()`.
#[tokio::test]
async fn the_sdk_spellings_of_functions_and_the_root_answer_as_the_canonical_routes() {
    let s = start(21, |_| {}).await;
    let drive = s.dump("drives").await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let pairs = [
        ("/v1.0/users/delta", "/v1.0/users/delta()"),
        ("/v1.0/users/delta", "/v1.0/users/microsoft.graph.delta()"),
        ("/v1.0/groups/delta", "/v1.0/groups/microsoft.graph.delta"),
        ("/v1.0/sites/delta", "/v1.0/sites/delta()"),
        ("/v1.0/sites/getAllSites", "/v1.0/sites/getAllSites()"),
    ];
    for (canonical, spelled) in pairs {
        let (want, _) = s.follow(canonical, &[]).await;
        let (got, link) = s.follow(spelled, &[]).await;
        assert_eq!(ids(&got), ids(&want), "{spelled}");
        assert!(!want.is_empty(), "{canonical}");
        if canonical.ends_with("delta") {
            assert!(link.is_some(), "{spelled} ends with a deltaLink");
        }
    }
    let (want, _) = s
        .follow(&format!("/v1.0/drives/{drive}/root/delta"), &[])
        .await;
    let (got, _) = s
        .follow(&format!("/v1.0/drives/{drive}/items/root/delta()"), &[])
        .await;
    assert_eq!(ids(&got), ids(&want));
    let root = s.get(&format!("/v1.0/drives/{drive}/root")).await;
    assert!(root["root"].is_object(), "{root}");
    // Graph's answer to a path it does not serve (msgraph-sdk-javascript #1178).
    let unknown = s.get_raw("/v1.0/users/nodelta()", &[]).await;
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.expect("json");
    assert_eq!(
        body["error"]["message"],
        "Resource not found for the segment 'nodelta()'."
    );
    let stats = s.get("/_sim/stats").await;
    assert!(
        stats["ru_by_endpoint"]["/v1.0/users/delta"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "an alias is charged as its route: {stats}"
    );
}

/// "Updated instances are represented by their id with at least the properties that have been
/// updated" (delta-query-overview); a group split over pages repeats as its id with members.
#[tokio::test]
async fn incremental_directory_rounds_carry_only_what_changed() {
    let s = start(22, |_| {}).await;
    let (_, users_link) = s.follow("/v1.0/users/delta", &[]).await;
    let (_, groups_link) = s
        .follow("/v1.0/groups/delta?$select=displayName,members", &[])
        .await;
    let (user, group) = {
        let mut t = s.sim.state.write_tenant();
        let seq = t.next_seq();
        t.users[5].department = "Research".into();
        t.users[5].mark_changed("department", seq);
        let member = sentinel_sim::tenant::MemberRef::User(7);
        let g = &mut t.groups[1];
        g.members.retain(|m| m.member != member);
        g.members.push(sentinel_sim::tenant::MemberEntry {
            member,
            seq,
            removed: false,
        });
        g.version = seq;
        (t.users[5].id.clone(), t.groups[1].id.clone())
    };
    let (users, _) = s.follow(&users_link.expect("link"), &[]).await;
    let u = users
        .iter()
        .find(|u| u["id"] == user.as_str())
        .expect("changed user");
    assert_eq!(u, &json!({"id": user, "department": "Research"}));
    let (groups, _) = s.follow(&groups_link.expect("link"), &[]).await;
    let g = groups
        .iter()
        .find(|g| g["id"] == group.as_str())
        .expect("changed group");
    let keys: HashSet<&str> = g
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, HashSet::from(["id", "members@delta"]), "{g}");
}

/// Deleting a folder returns the folder's tombstone only (driveitem-delta; sp-dev-docs #5964,
/// onedrive-api-docs #1927); the older behaviour, a tombstone each, is a mode.
#[tokio::test]
async fn a_deleted_folder_comes_back_as_its_own_tombstone_only() {
    for listed in [false, true] {
        let s = start(23, |c| c.folder_delete_lists_descendants = listed).await;
        let (d, folder, doomed) = {
            let t = s.sim.state.read_tenant();
            let (d, f) = (0..t.drives.len())
                .flat_map(|d| (1..t.drives[d].items.len() as u32).map(move |i| (d, i)))
                .find(|&(d, i)| {
                    let items = &t.drives[d].items;
                    items[i as usize].folder && items.iter().any(|c| c.parent == i && !c.deleted)
                })
                .expect("a folder with children");
            let doomed: Vec<String> = (0..t.drives[d].items.len() as u32)
                .filter(|&c| {
                    t.item_path(d, c)
                        .starts_with(&format!("{}/", t.item_path(d, f)))
                })
                .map(|c| t.item_id(d, c))
                .collect();
            (t.drives[d].id.clone(), t.item_id(d, f), doomed)
        };
        let (_, link) = s.follow(&format!("/v1.0/drives/{d}/root/delta"), &[]).await;
        {
            let mut t = s.sim.state.write_tenant();
            let (pd, f) = t.parse_item_id(&folder).expect("item id");
            sentinel_sim::mutate::delete_subtree(&mut t, pd, f);
        }
        let (changes, _) = s.follow(&link.expect("link"), &[]).await;
        let tombstones: HashSet<String> = changes
            .iter()
            .filter(|i| i.get("deleted").is_some())
            .map(|i| i["id"].as_str().expect("id").to_string())
            .collect();
        assert!(tombstones.contains(&folder));
        assert!(!doomed.is_empty());
        let listed_descendants = doomed.iter().filter(|c| tombstones.contains(*c)).count();
        assert_eq!(
            listed_descendants,
            if listed { doomed.len() } else { 0 },
            "folder_delete_lists_descendants = {listed}"
        );
    }
}

/// "Everyone except external users" comes as a siteUser with the claim and a `user` facet holding
/// a display name only (microsoft-graph-docs-contrib #5962); a redeemed invitation carries both
/// `invitation` and `grantedToV2.user` (permission resource, "permission-invite-redeemed").
#[tokio::test]
async fn everyone_claims_and_redeemed_invitations_look_as_sharepoint_sends_them() {
    let s = start(24, |c| c.profile = sentinel_sim::Profile::Small).await;
    let perms: Vec<Value> = s
        .dump("permissions")
        .await
        .into_iter()
        .map(|p| p["permission"].clone())
        .collect();
    let eeeu = perms
        .iter()
        .find(|p| {
            p["grantedToV2"]["siteUser"]["loginName"]
                .as_str()
                .is_some_and(|l| l.contains("spo-grid-all-users"))
        })
        .expect("an Everyone-except-external-users grant");
    assert_eq!(
        eeeu["grantedToV2"]["user"],
        json!({"displayName": "Everyone except external users"})
    );
    let redeemed = perms
        .iter()
        .find(|p| p["invitation"].is_object() && p["grantedToV2"]["user"]["id"].is_string())
        .expect("a redeemed invitation");
    assert!(redeemed["invitation"]["email"].is_string());
    assert!(
        perms
            .iter()
            .any(|p| p["invitation"].is_object() && p["grantedToV2"].get("user").is_none()),
        "and invitations still pending"
    );
}

const SHARING_PREFER: &str = "hierarchicalsharing, deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges";

/// A file and a folder, each under a folder below the root (so each has a parent besides the root).
fn deep_file_and_folder(s: &Sim) -> (usize, u32, u32) {
    let t = s.sim.state.read_tenant();
    for d in 0..t.drives.len() {
        let items = &t.drives[d].items;
        let depth = |mut i: u32| {
            let mut n = 0;
            while items[i as usize].parent != sentinel_sim::tenant::NO_PARENT {
                i = items[i as usize].parent;
                n += 1;
            }
            n
        };
        let file = (1..items.len() as u32).find(|&i| !items[i as usize].folder && depth(i) >= 2);
        let folder = (1..items.len() as u32).find(|&i| items[i as usize].folder && depth(i) >= 2);
        if let (Some(file), Some(folder)) = (file, folder) {
            return (d, file, folder);
        }
    }
    panic!("no drive with a deep file and folder");
}

fn by_id(values: &[Value], id: &str) -> Option<Value> {
    values.iter().find(|v| v["id"] == id).cloned()
}

/// Sharing-only changes come back only with `Prefer: deltashowsharingchanges` (SharePoint dev blog
/// "Scanning permissions", microsoft-graph-docs #7254); `sharedChanged` is set on files, not on
/// folders (msgraph-sdk-java #2548), and not when access is removed (onedrive-api-docs #1248).
#[tokio::test]
async fn sharing_only_changes_need_the_prefer_headers_and_are_annotated_on_files_only() {
    let s = start(25, |c| c.profile = sentinel_sim::Profile::Small).await;
    let (d, file, folder) = deep_file_and_folder(&s);
    let drive = s.sim.state.read_tenant().drives[d].id.clone();
    let start_path = format!("/v1.0/drives/{drive}/root/delta");
    let (_, plain) = s.follow(&start_path, &[]).await;
    let (_, preferred) = s.follow(&start_path, &[("Prefer", SHARING_PREFER)]).await;
    let (file_id, folder_id) = {
        let mut t = s.sim.state.write_tenant();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        sentinel_sim::mutate::share(&mut t, &mut rng, d, file);
        sentinel_sim::mutate::share(&mut t, &mut rng, d, folder);
        (t.item_id(d, file), t.item_id(d, folder))
    };
    let (without, _) = s.follow(&plain.expect("link"), &[]).await;
    assert!(
        by_id(&without, &file_id).is_none(),
        "no Prefer: the share is invisible"
    );
    assert!(by_id(&without, &folder_id).is_none());
    let (with, next) = s
        .follow(&preferred.expect("link"), &[("Prefer", SHARING_PREFER)])
        .await;
    let f = by_id(&with, &file_id).expect("the shared file comes back");
    assert_eq!(f["@microsoft.graph.sharedChanged"], "True", "{f}");
    let g = by_id(&with, &folder_id).expect("the shared folder comes back");
    assert!(
        g.get("@microsoft.graph.sharedChanged").is_none(),
        "never on folders: {g}"
    );
    assert!(
        g["shared"].is_object(),
        "a root carries its sharing facet: {g}"
    );

    // Removing the link: the file comes back, without the annotation.
    {
        let mut t = s.sim.state.write_tenant();
        let seq = t.next_seq();
        let it = &mut t.drives[d].items[file as usize];
        it.unique.as_mut().expect("unique").pop();
        it.perm_version = seq;
        it.access_removed = true;
    }
    let (after, _) = s
        .follow(&next.expect("link"), &[("Prefer", SHARING_PREFER)])
        .await;
    let f = by_id(&after, &file_id).expect("the file comes back");
    assert!(f.get("@microsoft.graph.sharedChanged").is_none(), "{f}");
}

/// An incremental round returns the folders above each change up to the root (scan guidance;
/// msgraph-sdk-java #2548), or the root alone with `Prefer: deltaExcludeParent` (driveitem-delta;
/// Graph Explorer #4052).
#[tokio::test]
async fn an_incremental_round_returns_the_parents_of_each_change() {
    let s = start(26, |c| c.profile = sentinel_sim::Profile::Small).await;
    let (d, file, _) = deep_file_and_folder(&s);
    let (drive, ancestors, root) = {
        let t = s.sim.state.read_tenant();
        let items = &t.drives[d].items;
        let mut up = Vec::new();
        let mut i = items[file as usize].parent;
        while i != sentinel_sim::tenant::NO_PARENT {
            up.push(t.item_id(d, i));
            i = items[i as usize].parent;
        }
        (t.drives[d].id.clone(), up, t.item_id(d, 0))
    };
    let start_path = format!("/v1.0/drives/{drive}/root/delta");
    let (_, link) = s.follow(&start_path, &[]).await;
    let (_, excluding) = s
        .follow(&start_path, &[("Prefer", "deltaExcludeParent")])
        .await;
    let file_id = {
        let mut t = s.sim.state.write_tenant();
        let seq = t.next_seq();
        let it = &mut t.drives[d].items[file as usize];
        it.size += 1;
        it.version = seq;
        t.item_id(d, file)
    };
    let (changes, _) = s.follow(&link.expect("link"), &[]).await;
    let got = ids(&changes);
    assert!(got.contains(&file_id));
    assert!(ancestors.len() >= 2);
    for a in &ancestors {
        assert!(got.contains(a), "parent {a} comes with the change");
    }
    let (changes, _) = s
        .follow(
            &excluding.expect("link"),
            &[("Prefer", "deltaExcludeParent")],
        )
        .await;
    assert_eq!(ids(&changes), HashSet::from([file_id, root]));
}

/// A site locked with NoAccess answers 403 `accessDenied`, itself and its libraries, while the
/// site listings still name it (SharePoint "Lock and unlock sites", manage-lock-status).
#[tokio::test]
async fn a_locked_site_answers_403_access_denied_and_is_still_listed() {
    let s = start(27, |_| {}).await;
    let (site, drive) = {
        let t = s.sim.state.read_tenant();
        let site = (0..t.sites.len())
            .find(|&i| !t.sites[i].drives.is_empty())
            .expect("site");
        (
            t.sites[site].id.clone(),
            t.drives[t.sites[site].drives[0]].id.clone(),
        )
    };
    let r = s
        .post("/_sim/lock-site", json!({"siteId": site, "locked": true}))
        .await;
    assert_eq!(r.status(), 200);
    for path in [
        format!("/v1.0/sites/{site}"),
        format!("/v1.0/sites/{site}/drives"),
        format!("/v1.0/drives/{drive}/root/delta"),
        format!("/v1.0/drives/{drive}/items/root/permissions"),
    ] {
        let r = s.get_raw(&path, &[]).await;
        assert_eq!(r.status(), 403, "{path}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "accessDenied", "{path}");
    }
    let (sites, _) = s.follow("/v1.0/sites/getAllSites", &[]).await;
    assert!(ids(&sites).contains(&site), "still listed");
    let bad = s
        .post("/_sim/lock-site", json!({"siteId": "nope", "locked": true}))
        .await;
    assert_eq!(bad.status(), 400);
}

/// Subsites (graph-behaviour.md "Subsites"; site-list-subsites): `getAllSites` and
/// `sites/delta` list site collections, each with a `root` facet as in getAllSites' documented
/// example; a subsite is listed only under its parent (`GET /sites/{id}/sites`), has libraries
/// of its own, keeps its collection's GUID in its id and is locked with its collection.
#[tokio::test]
async fn subsites_are_listed_only_under_their_parent_and_locked_with_their_collection() {
    let s = start(28, |c| c.profile = sentinel_sim::Profile::Small).await;
    let truth = s.dump("sites").await;
    let (collections, subsites): (Vec<&Value>, Vec<&Value>) =
        truth.iter().partition(|x| x["parentId"].is_null());
    assert!(!subsites.is_empty(), "the small tenant has subsites");
    let collection_ids: HashSet<String> = collections
        .iter()
        .map(|x| x["id"].as_str().expect("id").to_string())
        .collect();
    let (all, _) = s.follow("/v1.0/sites/getAllSites", &[]).await;
    assert_eq!(ids(&all), collection_ids);
    assert!(
        all.iter().all(|x| x["root"].is_object()),
        "collections carry root"
    );
    let (delta, _) = s.follow("/v1.0/sites/delta", &[]).await;
    assert_eq!(ids(&delta), collection_ids);
    for sub in subsites {
        let (id, parent) = (
            sub["id"].as_str().expect("id"),
            sub["parentId"].as_str().expect("parent"),
        );
        let (listed, _) = s.follow(&format!("/v1.0/sites/{parent}/sites"), &[]).await;
        let entry = listed
            .iter()
            .find(|x| x["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed under {parent}"));
        assert!(entry.get("root").is_none(), "a subsite is no root: {entry}");
        assert!(entry.get("siteCollection").is_none(), "{entry}");
        assert_eq!(
            id.split(',').nth(1),
            parent.split(',').nth(1),
            "same collection GUID"
        );
        let drives = s.get(&format!("/v1.0/sites/{id}/drives")).await;
        assert!(!drives["value"].as_array().expect("value").is_empty());
    }
    // Locking a subsite's collection locks the subsite.
    let (sub, collection) = {
        let t = s.sim.state.read_tenant();
        let sub = (0..t.sites.len())
            .find(|&i| t.sites[i].parent.is_some())
            .expect("subsite");
        (
            t.sites[sub].id.clone(),
            t.sites[t.collection_of(sub)].id.clone(),
        )
    };
    let r = s
        .post(
            "/_sim/lock-site",
            json!({"siteId": collection, "locked": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    for path in [
        format!("/v1.0/sites/{sub}/drives"),
        format!("/v1.0/sites/{sub}/sites"),
    ] {
        assert_eq!(s.get_raw(&path, &[]).await.status(), 403, "{path}");
    }
}

/// The simulated tenant is in the global cloud: a token for another cloud's Graph domain
/// (national-clouds: the `.default` scope "MUST use the domain of the Microsoft Graph service
/// root endpoint" of its cloud) is refused as Entra refuses an unknown resource.
#[tokio::test]
async fn a_scope_on_another_clouds_graph_domain_is_refused() {
    let s = start(29, |_| {}).await;
    let ok = s.app_token("https://graph.microsoft.com/.default").await;
    assert!(ok["access_token"].is_string(), "{ok}");
    let refused = s.app_token("https://graph.microsoft.us/.default").await;
    assert_eq!(refused["error"], "invalid_scope", "{refused}");
}

/// Without Sites.FullControl.All (the app holds Sites.Read.All), drive delta ignores the
/// sharing preferences without an error: no `shared` facet marks the hierarchy roots.
#[tokio::test]
async fn without_sites_full_control_the_sharing_preferences_are_ignored() {
    async fn drive_root_shared(s: &Sim, drive: String) -> bool {
        let (items, _) = s
            .follow(
                &format!("/v1.0/drives/{drive}/root/delta"),
                &[("Prefer", SHARING_PREFER)],
            )
            .await;
        let root = items.iter().find(|i| i["root"].is_object()).expect("root");
        root.get("shared").is_some()
    }
    let full = start(30, |_| {}).await;
    let drive = full.dump("drives").await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(
        drive_root_shared(&full, drive).await,
        "with the permission: a shared facet"
    );
    let lesser = start(30, |c| c.sites_full_control = false).await;
    let drive = lesser.dump("drives").await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(!drive_root_shared(&lesser, drive).await, "without it: none");
    let token = lesser
        .app_token("https://graph.microsoft.com/.default")
        .await;
    let claims = token["access_token"]
        .as_str()
        .expect("token")
        .split('.')
        .nth(1)
        .expect("claims");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .expect("base64"),
    )
    .expect("json");
    assert!(
        !claims["roles"]
            .to_string()
            .contains("Sites.FullControl.All"),
        "{claims}"
    );
}

/// A OneDrive is a personal site: locked with NoAccess, its lookup and its delta answer 403
/// `accessDenied` as a locked site's libraries do (SharePoint "Lock and unlock sites").
#[tokio::test]
async fn a_locked_onedrive_answers_403_access_denied() {
    let s = start(31, |_| {}).await;
    let (user, drive) = {
        let t = s.sim.state.read_tenant();
        let u = (0..t.users.len())
            .find(|&u| t.users[u].drive.is_some())
            .expect("user");
        let d = t.users[u].drive.expect("drive");
        (t.users[u].id.clone(), t.drives[d].id.clone())
    };
    let r = s
        .post("/_sim/lock-site", json!({"userId": user, "locked": true}))
        .await;
    assert_eq!(r.status(), 200);
    for path in [
        format!("/v1.0/users/{user}/drive"),
        format!("/v1.0/drives/{drive}/root/delta"),
    ] {
        let r = s.get_raw(&path, &[]).await;
        assert_eq!(r.status(), 403, "{path}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "accessDenied", "{path}");
    }
    let both = s
        .post(
            "/_sim/lock-site",
            json!({"userId": user, "siteId": "x", "locked": true}),
        )
        .await;
    assert_eq!(both.status(), 400, "one of siteId and userId");
}

/// Besides `view` and `edit`, SharePoint and OneDrive for Business make `review` and
/// `blocksDownload` links of files and upload-only `createOnly` links of folders
/// (driveitem-createlink, "Link types"); a no-download link says `preventsDownload`. (An item
/// that breaks inheritance later keeps copies of its parent's links, so a link is checked on the
/// kind of item it was made for: at least one of the items holding it.)
#[tokio::test]
async fn review_no_download_and_upload_only_links_are_made_of_files_and_folders_as_sharepoint_does()
{
    let s = start(24, |c| c.profile = sentinel_sim::Profile::Small).await;
    let folders: HashSet<String> = s
        .dump("items")
        .await
        .into_iter()
        .filter(|i| i["folder"] == true)
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect();
    // Link id -> (type, held by a folder, held by a file, one item holding it).
    let mut links = std::collections::BTreeMap::<String, (String, bool, bool, Value)>::new();
    for p in s.dump("permissions").await {
        let kind = p["permission"]["link"]["type"].as_str().unwrap_or_default();
        if !p["inheritedFrom"].is_null()
            || !["review", "blocksDownload", "createOnly"].contains(&kind)
        {
            continue;
        }
        let id = p["permission"]["id"].as_str().expect("id").to_string();
        let folder = folders.contains(p["itemId"].as_str().expect("item"));
        let e = links
            .entry(id)
            .or_insert_with(|| (kind.to_string(), false, false, p.clone()));
        e.1 |= folder;
        e.2 |= !folder;
    }
    let mut kinds = HashSet::new();
    for (id, (kind, on_folder, on_file, p)) in &links {
        let made_right = if kind == "createOnly" {
            *on_folder
        } else {
            *on_file
        };
        assert!(
            made_right,
            "{kind} link {id} is held by no item of the kind it is made for"
        );
        if kinds.insert(kind.clone()) {
            let (d, i) = (
                p["driveId"].as_str().expect("d"),
                p["itemId"].as_str().expect("i"),
            );
            let served = s
                .get(&format!("/v1.0/drives/{d}/items/{i}/permissions"))
                .await;
            let link = served["value"]
                .as_array()
                .expect("value")
                .iter()
                .find(|q| q["id"] == id.as_str())
                .map(|q| q["link"].clone())
                .expect("the link is listed on its item");
            assert_eq!(link["type"], kind.as_str());
            assert_eq!(link["preventsDownload"], kind == "blocksDownload", "{link}");
        }
    }
    assert_eq!(kinds.len(), 3, "every kind is made: {kinds:?}");
}

/// A group's owners are tracked by delta as its members are when selected (group-delta: "track
/// other changes like ownership ... by selecting any group relationship of type directoryObject
/// collection"); a Microsoft 365 group's team site is `GET /groups/{id}/sites/root` (site-get,
/// "Access a group team site"), which a security group does not have.
#[tokio::test]
async fn group_owners_come_by_delta_and_a_groups_team_site_by_its_root() {
    let s = start(24, |c| c.profile = sentinel_sim::Profile::Small).await;
    let (groups, link) = s
        .follow(
            "/v1.0/groups/delta?$select=displayName,groupTypes,members,owners",
            &[],
        )
        .await;
    let owners_of =
        |g: &Value| -> HashSet<String> { ids(g["owners@delta"].as_array().expect("owners@delta")) };
    let unified: Vec<&Value> = groups
        .iter()
        .filter(|g| g["groupTypes"] == json!(["Unified"]))
        .collect();
    assert!(
        unified.iter().all(|g| !owners_of(g).is_empty()),
        "every Microsoft 365 group has owners"
    );
    // The owners are users of the tenant, and some are not members (owners need not be).
    let users: HashSet<String> = ids(&s.follow("/v1.0/users/delta", &[]).await.0);
    let mut owner_not_member = 0;
    for g in &unified {
        let members = ids(g["members@delta"].as_array().expect("members@delta"));
        for o in owners_of(g) {
            assert!(users.contains(&o), "owner {o} is a user");
            owner_not_member += usize::from(!members.contains(&o));
        }
    }
    assert!(owner_not_member > 0);

    // An owner added shows in the next round as the group's id with its owners' change.
    let (group, added) = {
        let mut t = s.sim.state.write_tenant();
        let seq = t.next_seq();
        let g = (0..t.groups.len())
            .find(|&g| t.groups[g].unified)
            .expect("a unified group");
        let u = (0..t.users.len())
            .find(|&u| {
                t.groups[g]
                    .current_owners()
                    .all(|o| o != sentinel_sim::tenant::MemberRef::User(u))
            })
            .expect("a user not owning it");
        t.groups[g].owners.push(sentinel_sim::tenant::MemberEntry {
            member: sentinel_sim::tenant::MemberRef::User(u),
            seq,
            removed: false,
        });
        t.groups[g].version = seq;
        (t.groups[g].id.clone(), t.users[u].id.clone())
    };
    let (changed, _) = s.follow(&link.expect("deltaLink"), &[]).await;
    let g = changed
        .iter()
        .find(|g| g["id"] == group.as_str())
        .expect("the changed group");
    assert_eq!(owners_of(g), HashSet::from([added]), "{g}");

    // Team sites by their group; a security group has none.
    let sites: HashSet<String> = ids(&s.follow("/v1.0/sites/getAllSites", &[]).await.0);
    let mut found = 0;
    for g in &unified {
        let r = s
            .get_raw(
                &format!("/v1.0/groups/{}/sites/root", g["id"].as_str().expect("id")),
                &[],
            )
            .await;
        if r.status() == 200 {
            let site: Value = r.json().await.expect("site");
            assert!(
                sites.contains(site["id"].as_str().expect("site id")),
                "{site}"
            );
            found += 1;
        } else {
            assert_eq!(r.status(), 404);
        }
    }
    assert!(found > 0, "some Microsoft 365 groups have a team site");
    let security = groups
        .iter()
        .find(|g| g["groupTypes"] == json!([]))
        .expect("a security group");
    let r = s
        .get_raw(
            &format!(
                "/v1.0/groups/{}/sites/root",
                security["id"].as_str().expect("id")
            ),
            &[],
        )
        .await;
    assert_eq!(r.status(), 404);
}
