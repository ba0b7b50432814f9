//! `/_sim/` control endpoints: ground truth, mutations, token expiry, faults, statistics.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::faults::Faults;
use crate::json::{iso, permission_json};
use crate::state::SimState;
use crate::tenant::*;

pub(crate) fn bad_request(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

/// Ground-truth counts of the live tenant.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Tenant id.
    pub tenant_id: String,
    /// Verified domain.
    pub domain: String,
    /// The app registration the simulator accepts (`client_id` of token requests).
    pub client_id: String,
    /// Seed the tenant was generated from.
    pub seed: u64,
    /// Live users, guests included.
    pub users: u64,
    /// Of those, guests.
    pub guests: u64,
    /// Of those, disabled accounts.
    pub disabled_users: u64,
    /// Live users with no OneDrive (unlicensed members and guests).
    pub users_without_drive: u64,
    /// Live groups.
    pub groups: u64,
    /// Direct memberships of live groups.
    pub memberships: u64,
    /// Live sites, subsites included.
    pub sites: u64,
    /// Live drives (libraries and OneDrives).
    pub drives: u64,
    /// Live items, roots included.
    pub items: u64,
    /// Of those, files.
    pub files: u64,
    /// Of those, folders.
    pub folders: u64,
    /// (item, permission) pairs over live items, inherited ones included.
    pub permissions: u64,
    /// One per grantee of each (item, permission): a user, group, site group, link, invitation.
    pub grants: u64,
    /// Distinct anyone links on live items.
    pub anonymous_links: u64,
    /// Distinct organisation links on live items.
    pub organization_links: u64,
    /// Distinct specific-people links on live items.
    pub users_links: u64,
    /// Live non-root items with permissions of their own.
    pub unique_permission_items: u64,
    /// Users soft- or hard-deleted.
    pub deleted_users: u64,
    /// Groups deleted.
    pub deleted_groups: u64,
    /// Sites deleted.
    pub deleted_sites: u64,
    /// Drives deleted.
    pub deleted_drives: u64,
    /// Items deleted.
    pub deleted_items: u64,
}

/// What no rescan can avoid after the changes made since tenant sequence `since`, for a client
/// that reads drive delta with `Prefer: deltaExcludeParent` (and, in hierarchical mode, the
/// sharing `Prefer` values): a delta request per live drive, and a permission read for every
/// item a round returns that must be read: in hierarchical mode every hierarchy root returned
/// (folders are never annotated with `sharedChanged`, nor removals), in exhaustive mode every
/// live item returned.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RescanFloor {
    /// Delta requests: one per live drive.
    pub drives: u64,
    /// Permission reads the changed items need.
    pub permission_reads: u64,
}

impl RescanFloor {
    /// RU: a delta request with a token costs 1, a permission read 5.
    pub fn ru(&self) -> u64 {
        self.drives + 5 * self.permission_reads
    }
}

/// The rescan floor for changes since `since` (see [`RescanFloor`]).
pub fn rescan_floor(state: &SimState, since: u64, hierarchical: bool) -> RescanFloor {
    let t = state.read_tenant();
    let rules = crate::graph::DeltaRules {
        hierarchical,
        show_changes: hierarchical,
        exclude_parents: true,
        descendants_listed: state.config.folder_delete_lists_descendants,
        since,
    };
    let mut floor = RescanFloor::default();
    for d in (0..t.drives.len()).filter(|&d| t.drive_live(d)) {
        floor.drives += 1;
        let parents = rules.parents_of_changes(&t, d);
        for (pos, it) in t.drives[d].items.iter().enumerate() {
            let returned = rules.changed(&t, d, pos as u32) || parents[pos];
            let root = it.unique.is_some() || it.parent == NO_PARENT;
            if returned && !it.deleted && (root || !hierarchical) {
                floor.permission_reads += 1;
            }
        }
    }
    floor
}

/// The ground truth a client's store should match after a full scan (also `GET /_sim/manifest`).
pub fn manifest(state: &SimState) -> Manifest {
    let t = state.read_tenant();
    let mut m = Manifest {
        tenant_id: t.tenant_id.clone(),
        domain: t.domain.clone(),
        client_id: state.config.client_id.clone(),
        seed: t.seed,
        ..Manifest::default()
    };
    for u in &t.users {
        match u.state {
            Lifecycle::Active => {
                m.users += 1;
                m.guests += u.guest as u64;
                m.disabled_users += (!u.account_enabled) as u64;
                m.users_without_drive += u.drive.is_none() as u64;
            }
            _ => m.deleted_users += 1,
        }
    }
    for g in &t.groups {
        match g.state {
            Lifecycle::Active => {
                m.groups += 1;
                m.memberships += g.current_members().count() as u64;
            }
            _ => m.deleted_groups += 1,
        }
    }
    m.sites = t.sites.iter().filter(|s| !s.deleted).count() as u64;
    m.deleted_sites = t.sites.len() as u64 - m.sites;
    for d in 0..t.drives.len() {
        if !t.drive_live(d) {
            m.deleted_drives += 1;
            continue;
        }
        m.drives += 1;
        for (i, it) in t.drives[d].items.iter().enumerate() {
            if it.deleted {
                m.deleted_items += 1;
                continue;
            }
            m.items += 1;
            if it.folder {
                m.folders += 1
            } else {
                m.files += 1
            }
            let perms = t.effective_perms(d, i as u32);
            m.permissions += perms.len() as u64;
            m.grants += perms
                .iter()
                .map(|&p| grantees(&t.perms[p as usize]))
                .sum::<u64>();
            if let (Some(own), true) = (&it.unique, it.parent != NO_PARENT) {
                m.unique_permission_items += 1;
                for &p in own {
                    if let PermKind::Link { scope, .. } = t.perms[p as usize].kind {
                        match scope {
                            LinkScope::Anonymous => m.anonymous_links += 1,
                            LinkScope::Organization => m.organization_links += 1,
                            LinkScope::Users => m.users_links += 1,
                        }
                    }
                }
            }
        }
    }
    m
}

fn grantees(p: &Permission) -> u64 {
    match &p.kind {
        PermKind::Link { recipients, .. } => 1 + recipients.len() as u64,
        PermKind::Grant(_) | PermKind::Invitation { .. } => 1,
    }
}

pub(crate) async fn get_manifest(State(state): State<Arc<SimState>>) -> Response {
    Json(manifest(&state)).into_response()
}

/// Ground truth as JSON lines, streamed a drive (or a slice of the directory) at a time.
pub async fn dump(State(state): State<Arc<SimState>>, Path(kind): Path<String>) -> Response {
    let parts = {
        let t = state.read_tenant();
        match kind.as_str() {
            "items" | "permissions" | "drives" | "audience" => t.drives.len(),
            "users" | "groups" | "memberships" | "ownerships" | "sites" | "reach" => 1,
            other => {
                return bad_request(&format!(
                    "unknown dump '{other}': expected users, groups, memberships, ownerships, sites, drives, items, permissions, audience or reach"
                ));
            }
        }
    };
    let stream = futures::stream::iter(0..parts).map(move |part| {
        let t = state.read_tenant();
        let mut out = String::new();
        let mut line = |v: Value| {
            out.push_str(&v.to_string());
            out.push('\n');
        };
        match kind.as_str() {
            "users" => t.users.iter().filter(|u| u.state == Lifecycle::Active).for_each(|u| {
                line(json!({"id": u.id, "userPrincipalName": u.upn, "displayName": u.display_name, "department": u.department,
                    "mail": u.mail, "guest": u.guest, "accountEnabled": u.account_enabled, "hasDrive": u.drive.is_some()}))
            }),
            "groups" => t.groups.iter().filter(|g| g.state == Lifecycle::Active).for_each(|g| {
                line(json!({"id": g.id, "displayName": g.display_name, "unified": g.unified}))
            }),
            "memberships" => t.groups.iter().filter(|g| g.state == Lifecycle::Active).for_each(|g| {
                for m in g.current_members() {
                    let (kind, id) = match m {
                        MemberRef::User(u) => ("user", &t.users[u].id),
                        MemberRef::Group(x) => ("group", &t.groups[x].id),
                    };
                    line(json!({"groupId": g.id, "memberType": kind, "memberId": id}));
                }
            }),
            "ownerships" => t.groups.iter().filter(|g| g.state == Lifecycle::Active).for_each(|g| {
                for m in g.current_owners() {
                    if let MemberRef::User(u) = m {
                        line(json!({"groupId": g.id, "ownerId": t.users[u].id}));
                    }
                }
            }),
            "sites" => t.sites.iter().filter(|s| !s.deleted).for_each(|s| {
                let parent = s.parent.map(|p| t.sites[p].id.clone());
                let group = match s.kind {
                    SiteKind::Team(g) => Some(t.groups[g].id.clone()),
                    SiteKind::Communication => None,
                };
                line(json!({"id": s.id, "name": s.name, "parentId": parent, "groupId": group}))
            }),
            "drives" if t.drive_live(part) => {
                let d = &t.drives[part];
                let site = d.site.map(|s| t.sites[s].id.clone());
                let owner = d.owner_user.map(|u| t.users[u].id.clone());
                line(json!({"id": d.id, "name": d.name, "siteId": site, "ownerUserId": owner}));
            }
            "items" if t.drive_live(part) => {
                let d = &t.drives[part];
                for (i, it) in d.items.iter().enumerate().filter(|(_, it)| !it.deleted) {
                    let parent = (it.parent != NO_PARENT).then(|| t.item_id(part, it.parent));
                    line(json!({
                        "driveId": d.id, "id": t.item_id(part, i as u32), "name": &*it.name, "parentId": parent,
                        "path": t.item_path(part, i as u32), "folder": it.folder, "size": it.size,
                        "lastModifiedDateTime": iso(it.modified),
                    }));
                }
            }
            "permissions" if t.drive_live(part) => {
                let d = &t.drives[part];
                for (i, _) in d.items.iter().enumerate().filter(|(_, it)| !it.deleted) {
                    let root = t.hierarchy_root(part, i as u32);
                    for &p in t.effective_perms(part, i as u32) {
                        line(json!({
                            "driveId": d.id, "itemId": t.item_id(part, i as u32),
                            "inheritedFrom": (root != i as u32).then(|| t.item_id(part, root)),
                            "permission": permission_json(&t, p),
                        }));
                    }
                }
            }
            "audience" if t.drive_live(part) => {
                let resolver = crate::audience::Resolver::new(&t);
                let d = &t.drives[part];
                for (i, _) in d.items.iter().enumerate().filter(|(_, it)| !it.deleted) {
                    let mut v = json!(resolver.audience(part, i as u32));
                    v["driveId"] = json!(d.id);
                    v["itemId"] = json!(t.item_id(part, i as u32));
                    line(v);
                }
            }
            "reach" => crate::audience::Resolver::new(&t)
                .reach()
                .into_iter()
                .for_each(|r| line(json!(r))),
            _ => {}
        }
        Ok::<_, std::convert::Infallible>(Bytes::from(out))
    });
    use futures::StreamExt;
    (
        [(http::header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MutateRequest {
    count: usize,
    /// Only these kinds of change (each keeps its weight); all kinds when absent.
    #[serde(default)]
    kinds: Option<Vec<String>>,
}

pub(crate) async fn mutate(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let req: MutateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(&format!(
                "expected {{\"count\": N, \"kinds\": [...] (optional)}}: {e}"
            ));
        }
    };
    if req.count > 1_000_000 {
        return bad_request("count must be at most 1000000");
    }
    if let Some(unknown) = req
        .kinds
        .iter()
        .flatten()
        .find(|k| !crate::mutate::KINDS.iter().any(|(name, _)| name == k))
    {
        let known: Vec<&str> = crate::mutate::KINDS.iter().map(|k| k.0).collect();
        return bad_request(&format!(
            "unknown kind of change '{unknown}': expected some of {}",
            known.join(", ")
        ));
    }
    if req.kinds.as_ref().is_some_and(Vec::is_empty) {
        return bad_request("kinds must name at least one kind of change");
    }
    let now = state.sim_now_unix();
    let report = {
        let mut rng = state.lock_rng();
        let mut t = state.write_tenant();
        crate::mutate::apply_random(&mut t, &mut rng, req.count, now, req.kinds.as_deref())
    };
    Json(report).into_response()
}

/// `{"siteId": "...", "locked": true}`: locks a site with NoAccess, or unlocks it;
/// `{"userId": "...", "locked": true}` does so for the user's OneDrive (a personal site).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SiteLock {
    site_id: Option<String>,
    user_id: Option<String>,
    locked: bool,
}

pub(crate) async fn lock_site(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let req: SiteLock = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(&format!(
                "expected {{\"siteId\" or \"userId\": \"...\", \"locked\": true|false}}: {e}"
            ));
        }
    };
    let mut t = state.write_tenant();
    match (&req.site_id, &req.user_id) {
        (Some(site), None) => {
            let Some(&s) = t.site_index.get(site) else {
                return bad_request(&format!("no site '{site}'"));
            };
            // A lock is set on a site collection and holds for its subsites.
            let collection = t.collection_of(s);
            t.sites[collection].locked = req.locked;
        }
        (None, Some(user)) => {
            let Some(d) = t.user_index.get(user).and_then(|&u| t.users[u].drive) else {
                return bad_request(&format!("no OneDrive for user '{user}'"));
            };
            t.drives[d].locked = req.locked;
        }
        _ => return bad_request("give either siteId or userId"),
    }
    Json(json!({"siteId": req.site_id, "userId": req.user_id, "locked": req.locked}))
        .into_response()
}

pub(crate) async fn expire_tokens(State(state): State<Arc<SimState>>) -> Response {
    let epoch = state.epoch.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({"epoch": epoch})).into_response()
}

pub(crate) async fn get_faults(State(state): State<Arc<SimState>>) -> Response {
    Json(state.lock_faults().clone()).into_response()
}

/// Replaces the fault settings (`{"rates": {...}, "next": {...}, "slow_ms": N}`).
pub async fn set_faults(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return bad_request(&format!("invalid faults: {e}")),
    };
    if let Err(e) = faults.validate() {
        return bad_request(&e);
    }
    *state.lock_faults() = faults.clone();
    Json(faults).into_response()
}

pub(crate) async fn get_stats(State(state): State<Arc<SimState>>) -> Response {
    Json(state.lock_stats().clone()).into_response()
}

/// The most recent Graph requests with their time, route and status.
pub async fn requests(State(state): State<Arc<SimState>>) -> Response {
    let log: Vec<_> = state
        .request_log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    Json(log).into_response()
}

/// Every token the simulator issued (newest 10,000): tests check none reaches a browser.
pub async fn issued_tokens(State(state): State<Arc<SimState>>) -> Response {
    let tokens: Vec<String> = state
        .issued_tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    Json(tokens).into_response()
}

pub(crate) async fn reset_stats(State(state): State<Arc<SimState>>) -> Response {
    *state.lock_stats() = Default::default();
    state
        .request_log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthControl {
    token_lifetime_secs: Option<u64>,
    #[serde(default)]
    revoke: bool,
    /// App roles to hold from now on, by user principal name (an empty list removes them all).
    #[serde(default)]
    roles: BTreeMap<String, Vec<String>>,
}

/// Changes the lifetime of new access tokens, revokes every token issued so far, and/or changes
/// users' app roles (seen in the id tokens of their next sign-in or refresh).
pub async fn auth_control(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let req: AuthControl = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(&format!(
                "expected {{\"token_lifetime_secs\": N, \"revoke\": bool, \"roles\": {{\"upn\": [\"role\"]}}}}: {e}"
            ));
        }
    };
    if let Some(l) = req.token_lifetime_secs {
        if l == 0 {
            return bad_request("token_lifetime_secs must be at least 1");
        }
        state.token_lifetime_secs.store(l, Ordering::SeqCst);
    }
    if !req.roles.is_empty() {
        let t = state.read_tenant();
        let mut set = Vec::new();
        for (upn, roles) in req.roles {
            let Some(user) = t
                .users
                .iter()
                .position(|u| u.upn.eq_ignore_ascii_case(&upn))
            else {
                return bad_request(&format!("no user {upn} in the tenant"));
            };
            set.push((user, roles));
        }
        drop(t);
        state
            .role_overrides
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(set);
    }
    if req.revoke {
        // Every token carries the generation it was issued in; older generations are refused.
        state.revoked_before.fetch_add(1, Ordering::SeqCst);
    }
    Json(json!({
        "token_lifetime_secs": state.token_lifetime_secs.load(Ordering::SeqCst),
        "generation": state.revoked_before.load(Ordering::SeqCst),
    }))
    .into_response()
}

/// Ids of every live item, for tests comparing sets.
pub fn live_item_ids(state: &SimState) -> HashSet<String> {
    let t = state.read_tenant();
    let mut ids = HashSet::new();
    for d in (0..t.drives.len()).filter(|&d| t.drive_live(d)) {
        for (i, it) in t.drives[d].items.iter().enumerate() {
            if !it.deleted {
                ids.insert(t.item_id(d, i as u32));
            }
        }
    }
    ids
}
