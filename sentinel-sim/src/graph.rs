//! Microsoft Graph v1.0 endpoints over the simulated tenant.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::cursor::*;
use crate::entra::base_url;
use crate::faults::Fault;
use crate::json::*;
use crate::state::SimState;
use crate::tenant::*;

type Params = Query<HashMap<String, String>>;

/// Graph's error body: `{"error": {"code", "message", "innerError"}}`.
pub fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {"date": iso(crate::entra::unix_now() as i64), "request-id": request_id, "client-request-id": request_id},
    }});
    (status, Json(body)).into_response()
}

fn not_found(what: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        &format!("The resource could not be found: {what}"),
    )
}

fn select_of(q: &HashMap<String, String>) -> Option<Vec<String>> {
    q.get("$select").map(|s| {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    })
}

fn top_of(q: &HashMap<String, String>, default: u32, cap: u32) -> Result<u32, Response> {
    match q.get("$top") {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n.min(cap)),
            _ => Err(graph_error(
                StatusCode::BAD_REQUEST,
                "invalidRequest",
                &format!("Invalid $top value '{v}'."),
            )),
        },
    }
}

fn page_response(value: Vec<Value>, next: Option<String>, delta: Option<String>) -> Response {
    let mut body = json!({"value": value});
    if let Some(n) = next {
        body["@odata.nextLink"] = json!(n);
    }
    if let Some(d) = delta {
        body["@odata.deltaLink"] = json!(d);
    }
    Json(body).into_response()
}

fn prefer_flags(headers: &HeaderMap) -> u8 {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(parse_prefer)
        .fold(0, |a, b| a | b)
}

/// Outcome of reading a delta request's token.
enum Start {
    Round(Cursor),
    /// `token=latest`: no objects, a deltaLink for changes from now on.
    Latest(Cursor),
}

/// Shared token handling of every delta endpoint: a fresh round, `latest`, or a stored link.
/// Invalid or expired tokens answer 410 (with a fresh round's `Location` where Graph gives one).
#[allow(clippy::too_many_arguments)]
fn start_round(
    state: &SimState,
    res: Resource,
    part: u32,
    token: Option<&String>,
    q: &HashMap<String, String>,
    prefer: u8,
    top: u32,
    fresh_link: impl Fn(&Cursor) -> String,
) -> Result<Start, Response> {
    let t = state.read_tenant();
    let epoch = state.epoch();
    let fresh = Cursor {
        res,
        part,
        since: 0,
        full: true,
        snap: t.seq,
        pos: 0,
        sub: 0,
        epoch,
        prefer,
        top,
        select: select_of(q),
        nonce: 0,
        delta: false,
    };
    let Some(tok) = token else {
        return Ok(Start::Round(fresh));
    };
    if tok == "latest" {
        return Ok(Start::Latest(Cursor {
            since: t.seq,
            full: false,
            delta: true,
            ..fresh
        }));
    }
    let valid = Cursor::decode(tok, t.id_key).filter(|c| c.res == res && c.part == part);
    match valid {
        Some(mut c) if c.epoch == epoch => {
            if c.delta {
                // A deltaLink starts the next incremental round from its snapshot.
                c.since = c.snap;
                c.snap = t.seq;
                c.full = false;
                c.pos = 0;
                c.sub = 0;
                c.delta = false;
            }
            c.prefer |= prefer;
            Ok(Start::Round(c))
        }
        _ => {
            if matches!(res, Resource::Users | Resource::Groups) {
                return Err(directory_token_expired(state));
            }
            // Drives and sites: 410 with one of the documented codes and a fresh round's link.
            let codes = [
                "resyncChangesApplyDifferences",
                "resyncChangesUploadDifferences",
                "resyncRequired",
            ];
            let code = codes[(epoch % 3) as usize];
            let location = fresh_link(&Cursor {
                prefer: prefer | fresh.prefer,
                ..fresh.clone()
            });
            let mut resp = graph_error(
                StatusCode::GONE,
                code,
                "The sync state is not valid any more; start over with a full enumeration.",
            );
            if let Ok(loc) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(http::header::LOCATION, loc);
            }
            Err(resp)
        }
    }
}

/// An expired or unknown directory delta token. Microsoft 365 Developer Blog, "Duration of change
/// tracking tokens for identity and education resources" (2020-07-03): "you will receive a
/// BadRequest response with the error code syncStateNotFound". A 410 with `SyncStateNotFound`
/// has been reported too (microsoft-graph-docs-contrib #7897): `SimConfig::directory_expiry_gone`.
fn directory_token_expired(state: &SimState) -> Response {
    let status = if state.config.directory_expiry_gone {
        StatusCode::GONE
    } else {
        StatusCode::BAD_REQUEST
    };
    graph_error(
        status,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
}

/// Builds one page of a delta round. `emit(pos, sub)` renders the entries at a position
/// and returns (entries, next sub-offset if the position is not finished).
fn delta_page(
    state: &SimState,
    cur: &mut Cursor,
    len: u32,
    mut emit: impl FnMut(&Cursor, u32, u32) -> (Vec<Value>, Option<u32>),
) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    if state.fire(Fault::EmptyPage) && cur.pos < len {
        cur.nonce = cur.nonce.wrapping_add(1);
        return (out, false);
    }
    if cur.pos > 0 && cur.sub == 0 && state.fire(Fault::Duplicate) {
        cur.pos -= 1;
    }
    while cur.pos < len && out.len() < cur.top as usize {
        let (mut vals, more) = emit(cur, cur.pos, cur.sub);
        out.append(&mut vals);
        match more {
            Some(sub) => cur.sub = sub,
            None => {
                cur.pos += 1;
                cur.sub = 0;
            }
        }
    }
    (out, cur.pos >= len)
}

/// Finishes a delta response: nextLink while positions remain, else the deltaLink.
fn finish(
    state: &SimState,
    mut cur: Cursor,
    values: Vec<Value>,
    done: bool,
    request_token: Option<&String>,
    link: impl Fn(&Cursor, bool) -> String,
) -> Response {
    if done {
        let delta = Cursor {
            delta: true,
            pos: 0,
            sub: 0,
            nonce: 0,
            ..cur
        };
        return page_response(values, None, Some(link(&delta, true)));
    }
    // Graph has been seen to hand back the link just requested as the next one.
    if let Some(tok) = request_token.filter(|t| *t != "latest")
        && let Some(same) = Cursor::decode(tok, state.read_tenant().id_key).filter(|c| !c.delta)
        && state.fire(Fault::RepeatNextLink)
    {
        return page_response(values, Some(link(&same, false)), None);
    }
    cur.delta = false;
    page_response(values, Some(link(&cur, false)), None)
}

pub async fn drive_delta(
    State(state): State<Arc<SimState>>,
    Path(drive_id): Path<String>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    if q.get("$expand").is_some_and(|e| e.contains("permissions")) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "notSupported",
            "$expand=permissions is not supported on delta.",
        );
    }
    let base = base_url(&state, &headers);
    let d = match live_drive(&state, &drive_id) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let top = match top_of(&q, 200, 1000) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let key = state.read_tenant().id_key;
    let link = |c: &Cursor, _delta: bool| {
        format!(
            "{base}/v1.0/drives/{drive_id}/root/delta?token={}",
            c.encode(key)
        )
    };
    let token = q.get("token");
    let mut prefer = prefer_flags(&headers);
    if !state.config.sites_full_control {
        // Honoured for Sites.FullControl.All only, and ignored without a word otherwise.
        prefer &= !(PREFER_HIERARCHICAL | PREFER_SHARING_CHANGES);
    }
    let mut cur = match start_round(
        &state,
        Resource::Drive,
        d as u32,
        token,
        &q,
        prefer,
        top,
        |c| link(c, false),
    ) {
        Ok(Start::Round(c)) => c,
        Ok(Start::Latest(c)) => return page_response(Vec::new(), None, Some(link(&c, true))),
        Err(r) => return r,
    };
    let (values, done) = {
        let t = state.read_tenant();
        let len = t.drives[d].items.len() as u32;
        let rules = DeltaRules {
            hierarchical: cur.prefer & PREFER_HIERARCHICAL != 0,
            show_changes: cur.prefer & PREFER_SHARING_CHANGES != 0,
            exclude_parents: cur.prefer & PREFER_EXCLUDE_PARENT != 0,
            descendants_listed: state.config.folder_delete_lists_descendants,
            since: cur.since,
        };
        let hierarchical = rules.hierarchical;
        // An incremental round also returns the folders above each change, up to the root.
        let parents = if cur.full {
            Vec::new()
        } else {
            rules.parents_of_changes(&t, d)
        };
        let select = cur.select.clone();
        delta_page(&state, &mut cur, len, |c, pos, _| {
            let it = &t.drives[d].items[pos as usize];
            let perm_seq = rules.perm_seq(&t, d, pos);
            let include = if c.full {
                !it.deleted
            } else {
                rules.changed(&t, d, pos) || parents.get(pos as usize).copied().unwrap_or(false)
            };
            if !include {
                return (Vec::new(), None);
            }
            // Set on files only, never on folders (msgraph-sdk-java #2548), and not when the
            // change removed access (onedrive-api-docs #1248).
            let view = ItemView {
                hierarchical,
                shared_changed: rules.show_changes
                    && !c.full
                    && perm_seq > c.since
                    && !it.deleted
                    && !it.folder
                    && !it.access_removed,
            };
            let mut v = item_json(&t, d, pos, view);
            if let Some(sel) = &select {
                let mut keep = sel.clone();
                keep.push("deleted".into());
                v = apply_select(v, Some(&keep));
            }
            (vec![v], None)
        })
    };
    if done {
        crate::activity::round_done(&state, d, cur.snap);
    }
    finish(&state, cur, values, done, token, link)
}

/// What an incremental drive round returns, by the request's `Prefer` flags and the modes.
#[derive(Debug, Clone, Copy)]
pub struct DeltaRules {
    pub hierarchical: bool,
    pub show_changes: bool,
    pub exclude_parents: bool,
    pub descendants_listed: bool,
    /// The tenant sequence the round starts after.
    pub since: u64,
}

impl DeltaRules {
    /// The sequence of the last change to what the item's permissions are, as this round sees it.
    fn perm_seq(&self, t: &Tenant, d: usize, pos: u32) -> u64 {
        if self.hierarchical {
            t.drives[d].items[pos as usize].perm_version
        } else {
            t.effective_perm_version(d, pos)
        }
    }

    /// The item changed since the round's start. A sharing-only change shows only with
    /// `Prefer: deltashowsharingchanges` (SharePoint dev blog "Scanning permissions",
    /// techcommunity ba-p/1741127; microsoft-graph-docs #7254).
    pub fn changed(&self, t: &Tenant, d: usize, pos: u32) -> bool {
        let it = &t.drives[d].items[pos as usize];
        let changed =
            it.version > self.since || (self.show_changes && self.perm_seq(t, d, pos) > self.since);
        changed
            && !(it.deleted
                && !self.descendants_listed
                && it.version_before_delete <= self.since
                && deleted_with_parent(t, d, pos))
    }

    /// Positions returned as the parents of changed items: every live ancestor up to the root
    /// (scan guidance; msgraph-sdk-java #2548 shows root, folder, sub-folder, file), or the root
    /// alone with `Prefer: deltaExcludeParent` (Graph Explorer #4052).
    pub fn parents_of_changes(&self, t: &Tenant, d: usize) -> Vec<bool> {
        let items = &t.drives[d].items;
        let mut parents = vec![false; items.len()];
        for pos in 0..items.len() as u32 {
            if !self.changed(t, d, pos) {
                continue;
            }
            let mut up = items[pos as usize].parent;
            while up != NO_PARENT && !parents[up as usize] {
                let p = &items[up as usize];
                if !p.deleted && (!self.exclude_parents || p.parent == NO_PARENT) {
                    parents[up as usize] = true;
                }
                up = p.parent;
            }
        }
        parents
    }
}

/// Whether an item was deleted in the same operation as its parent folder: SharePoint then
/// reports the folder's tombstone only ("only delete a folder locally if it is empty after
/// syncing all the changes", driveitem-delta; sp-dev-docs #5964, onedrive-api-docs #1927).
fn deleted_with_parent(t: &Tenant, d: usize, pos: u32) -> bool {
    let items = &t.drives[d].items;
    let it = &items[pos as usize];
    it.parent != NO_PARENT && {
        let parent = &items[it.parent as usize];
        parent.deleted && parent.version == it.version
    }
}

pub async fn users_delta(state: State<Arc<SimState>>, headers: HeaderMap, q: Params) -> Response {
    directory_delta(state, headers, q, Resource::Users).await
}

pub async fn groups_delta(state: State<Arc<SimState>>, headers: HeaderMap, q: Params) -> Response {
    directory_delta(state, headers, q, Resource::Groups).await
}

/// Objects per directory delta page (Graph ignores `$top` here).
const DIRECTORY_PAGE: u32 = 200;
/// Members carried per appearance of a group; larger groups appear again with the rest.
const MEMBER_CHUNK: usize = 100;

fn removed(id: &str, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

/// An updated directory object in an incremental round: "Updated instances are represented by
/// their id with at least the properties that have been updated" (learn.microsoft.com/graph/
/// delta-query-overview, "Resource representation in the delta query response").
fn changed_properties(full: Value, changed: &[(&'static str, u64)], since: u64) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), full["id"].clone());
    for (property, seq) in changed {
        if *seq > since
            && let Some(v) = full.get(*property)
        {
            out.insert((*property).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

async fn directory_delta(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(q): Params,
    res: Resource,
) -> Response {
    for bad in ["$expand", "$top", "$orderby"] {
        if q.contains_key(bad) {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("{bad} is not supported with delta queries."),
            );
        }
    }
    let base = base_url(&state, &headers);
    let path = if res == Resource::Users {
        "users"
    } else {
        "groups"
    };
    let key = state.read_tenant().id_key;
    let link = |c: &Cursor, delta: bool| {
        let p = if delta { "$deltatoken" } else { "$skiptoken" };
        format!("{base}/v1.0/{path}/delta?{p}={}", c.encode(key))
    };
    let token = q.get("$deltatoken").or_else(|| q.get("$skiptoken"));
    let mut cur = match start_round(&state, res, 0, token, &q, 0, DIRECTORY_PAGE, |c| {
        link(c, false)
    }) {
        Ok(Start::Round(c)) => c,
        Ok(Start::Latest(c)) => return page_response(Vec::new(), None, Some(link(&c, true))),
        Err(r) => return r,
    };
    let (values, done) = {
        let t = state.read_tenant();
        let select = cur.select.clone();
        let selects = |name: &str| select.as_ref().is_some_and(|s| s.iter().any(|p| p == name));
        let (with_members, with_owners) = (selects("members"), selects("owners"));
        let len = if res == Resource::Users {
            t.users.len()
        } else {
            t.groups.len()
        } as u32;
        delta_page(&state, &mut cur, len, |c, pos, sub| {
            let (id, version, lifecycle) = if res == Resource::Users {
                let u = &t.users[pos as usize];
                (&u.id, u.version, u.state)
            } else {
                let g = &t.groups[pos as usize];
                (&g.id, g.version, g.state)
            };
            let changed = c.full || version > c.since;
            match lifecycle {
                _ if !changed => (Vec::new(), None),
                // `@removed` appears even in a full round for soft-deleted objects.
                Lifecycle::SoftDeleted => (vec![removed(id, "changed")], None),
                Lifecycle::HardDeleted if c.full => (Vec::new(), None),
                Lifecycle::HardDeleted => (vec![removed(id, "deleted")], None),
                Lifecycle::Active if res == Resource::Users => {
                    let u = &t.users[pos as usize];
                    let v = if c.full || u.created_seq > c.since {
                        user_json(u)
                    } else {
                        changed_properties(user_json(u), &u.changed, c.since)
                    };
                    (vec![apply_select(v, select.as_deref())], None)
                }
                Lifecycle::Active => {
                    let g = &t.groups[pos as usize];
                    // Groups change here only by membership: an incremental round, and every
                    // further appearance of a split group, carry the id and the members only.
                    let mut v = if c.full && sub == 0 {
                        apply_select(group_json(g), select.as_deref())
                    } else {
                        json!({"id": g.id})
                    };
                    // Any directoryObject-collection relationship can be tracked like members
                    // (group-delta: "track other changes like ownership ... by selecting any group
                    // relationship"); owners are few, so they come whole on a group's first page.
                    if with_owners && sub == 0 {
                        let owners: Vec<Value> = g
                            .owners
                            .iter()
                            .filter(|m| if c.full { !m.removed } else { m.seq > c.since })
                            .map(|m| member_ref_json(&t, m.member, m.removed))
                            .collect();
                        v["owners@delta"] = Value::Array(owners);
                    }
                    if !with_members {
                        return (vec![v], None);
                    }
                    let entries: Vec<&MemberEntry> = g
                        .members
                        .iter()
                        .filter(|m| if c.full { !m.removed } else { m.seq > c.since })
                        .collect();
                    let start = sub as usize;
                    let end = (start + MEMBER_CHUNK).min(entries.len());
                    let chunk: Vec<Value> = entries[start.min(end)..end]
                        .iter()
                        .map(|m| member_ref_json(&t, m.member, m.removed))
                        .collect();
                    v["members@delta"] = Value::Array(chunk);
                    let more = (end < entries.len()).then_some(end as u32);
                    (vec![v], more)
                }
            }
        })
    };
    finish(&state, cur, values, done, token, link)
}

pub async fn sites_delta(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let base = base_url(&state, &headers);
    let top = match top_of(&q, 200, 1000) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let key = state.read_tenant().id_key;
    let link = |c: &Cursor, _| format!("{base}/v1.0/sites/delta?token={}", c.encode(key));
    let token = q.get("token");
    let mut cur = match start_round(&state, Resource::Sites, 0, token, &q, 0, top, |c| {
        link(c, false)
    }) {
        Ok(Start::Round(c)) => c,
        Ok(Start::Latest(c)) => return page_response(Vec::new(), None, Some(link(&c, true))),
        Err(r) => return r,
    };
    let (values, done) = {
        let t = state.read_tenant();
        let select = cur.select.clone();
        delta_page(&state, &mut cur, t.sites.len() as u32, |c, pos, _| {
            let s = &t.sites[pos as usize];
            // Like getAllSites, site collections only: subsites are found under their parent.
            let include = s.parent.is_none()
                && if c.full {
                    !s.deleted
                } else {
                    s.version > c.since
                };
            let v = include.then(|| apply_select(site_json(&t, pos as usize), select.as_deref()));
            (v.into_iter().collect(), None)
        })
    };
    finish(&state, cur, values, done, token, link)
}

pub async fn get_all_sites(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let base = base_url(&state, &headers);
    let top = match top_of(&q, 200, 1000) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let t = state.read_tenant();
    let mut cur = match q.get("$skiptoken") {
        None => Cursor {
            res: Resource::AllSites,
            part: 0,
            since: 0,
            full: true,
            snap: t.seq,
            pos: 0,
            sub: 0,
            epoch: 0,
            prefer: 0,
            top,
            select: select_of(&q),
            nonce: 0,
            delta: false,
        },
        Some(tok) => match Cursor::decode(tok, t.id_key).filter(|c| c.res == Resource::AllSites) {
            Some(c) => c,
            None => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "invalidRequest",
                    "Invalid $skiptoken.",
                );
            }
        },
    };
    let select = cur.select.clone();
    let (values, done) = delta_page(&state, &mut cur, t.sites.len() as u32, |_, pos, _| {
        let s = &t.sites[pos as usize];
        // Site collections only (each entry of the documented example carries `root`).
        let listed = !s.deleted && s.parent.is_none();
        let v = listed.then(|| apply_select(site_json(&t, pos as usize), select.as_deref()));
        (v.into_iter().collect(), None)
    });
    // site-getallsites' response example: the nextLink names the function by its qualified
    // name, `oneDrive.getAllSites`, not as it was requested.
    let next = (!done).then(|| {
        format!(
            "{base}/v1.0/sites/oneDrive.getAllSites?$skiptoken={}",
            cur.encode(t.id_key)
        )
    });
    page_response(values, next, None)
}

/// A site locked with NoAccess (SharePoint "Lock and unlock sites"): Graph answers 403.
fn access_denied() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "accessDenied",
        "Access denied. You do not have permission to perform this action or access this resource.",
    )
}

fn live_site(state: &SimState, id: &str) -> Result<usize, Response> {
    let t = state.read_tenant();
    match t
        .site_index
        .get(id)
        .copied()
        .filter(|&s| !t.sites[s].deleted)
    {
        None => Err(not_found("site")),
        Some(s) if t.site_locked(s) => Err(access_denied()),
        Some(s) => Ok(s),
    }
}

fn live_drive(state: &SimState, id: &str) -> Result<usize, Response> {
    let t = state.read_tenant();
    match t.drive_index.get(id).copied().filter(|&d| t.drive_live(d)) {
        None => Err(not_found("drive")),
        Some(d) if t.drives[d].locked || t.drives[d].site.is_some_and(|s| t.site_locked(s)) => {
            Err(access_denied())
        }
        Some(d) => Ok(d),
    }
}

pub async fn get_site(State(state): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let s = match live_site(&state, &id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    Json(site_json(&state.read_tenant(), s)).into_response()
}

/// `GET /groups/{id}/sites/root`: a Microsoft 365 group's team site (site-get, "Access a
/// group's team site"); 404 for a group without one.
pub async fn group_root_site(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
) -> Response {
    let site_id = {
        let t = state.read_tenant();
        let Some(&g) = t.group_index.get(&id) else {
            return not_found("group");
        };
        if t.groups[g].state != Lifecycle::Active {
            return not_found("group");
        }
        let site = (0..t.sites.len())
            .find(|&s| t.sites[s].kind == SiteKind::Team(g) && !t.sites[s].deleted);
        match site {
            Some(s) => t.sites[s].id.clone(),
            None => return not_found("site"),
        }
    };
    get_site(State(state), Path(site_id)).await
}

pub async fn site_drives(State(state): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let s = match live_site(&state, &id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = state.read_tenant();
    let drives = t.sites[s]
        .drives
        .iter()
        .filter(|&&d| t.drive_live(d))
        .map(|&d| drive_json(&t, d))
        .collect();
    page_response(drives, None, None)
}

/// `GET /sites/{id}/sites`: the site's direct subsites (graph-behaviour.md "Subsites";
/// site-list-subsites). Not paged here: a site holds few subsites.
pub async fn site_subsites(State(state): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let s = match live_site(&state, &id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = state.read_tenant();
    let subsites = t.subsites_of(s).map(|c| site_json(&t, c)).collect();
    page_response(subsites, None, None)
}

pub async fn site_permissions(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
) -> Response {
    let s = match live_site(&state, &id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = state.read_tenant();
    let perms = t.sites[s]
        .app_grants
        .iter()
        .map(|&p| permission_json(&t, p))
        .collect();
    page_response(perms, None, None)
}

pub async fn user_drive(State(state): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let t = state.read_tenant();
    let Some(&u) = t.user_index.get(&id) else {
        return not_found("user");
    };
    let user = &t.users[u];
    match user.drive {
        Some(d) if user.state == Lifecycle::Active && t.drive_live(d) && t.drives[d].locked => {
            access_denied()
        }
        Some(d) if user.state == Lifecycle::Active && t.drive_live(d) => {
            Json(drive_json(&t, d)).into_response()
        }
        // Unlicensed users have no provisioned OneDrive: Graph answers 404.
        _ => graph_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "User's mysite not found.",
        ),
    }
}

pub async fn get_drive(State(state): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let d = match live_drive(&state, &id) {
        Ok(d) => d,
        Err(r) => return r,
    };
    Json(drive_json(&state.read_tenant(), d)).into_response()
}

fn live_item(state: &SimState, drive_id: &str, item_id: &str) -> Result<(usize, u32), Response> {
    let d = live_drive(state, drive_id)?;
    let t = state.read_tenant();
    let (pd, i) = if item_id == "root" {
        (d, 0)
    } else {
        t.parse_item_id(item_id).ok_or_else(|| not_found("item"))?
    };
    if pd == d && !t.drives[d].items[i as usize].deleted {
        Ok((d, i))
    } else {
        Err(not_found("item"))
    }
}

pub async fn get_item(
    State(state): State<Arc<SimState>>,
    Path((drive_id, item_id)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    let (d, i) = match live_item(&state, &drive_id, &item_id) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let t = state.read_tenant();
    let mut v = apply_select(
        item_json(&t, d, i, ItemView::default()),
        select_of(&q).as_deref(),
    );
    if q.get("$expand").is_some_and(|e| e.contains("permissions")) {
        v["permissions"] = Value::Array(
            t.effective_perms(d, i)
                .iter()
                .map(|&p| permission_json(&t, p))
                .collect(),
        );
    }
    Json(v).into_response()
}

pub async fn item_permissions(
    State(state): State<Arc<SimState>>,
    Path((drive_id, item_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let (d, i) = match live_item(&state, &drive_id, &item_id) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let t = state.read_tenant();
    let perms = t.effective_perms(d, i);
    let etag = format!(
        "\"{:016x}\"",
        perms.iter().fold(mix(t.id_key), |h, &p| mix(h ^ p as u64))
    );
    if headers
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let select = select_of(&q);
    let value: Vec<Value> = perms
        .iter()
        .map(|&p| apply_select(permission_json(&t, p), select.as_deref()))
        .collect();
    let mut resp = page_response(value, None, None);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(http::header::ETAG, v);
    }
    resp
}

/// Marks requests dispatched from inside a `$batch` (no latency or transport faults of their own).
pub const INNER_HEADER: &str = "x-sim-batch-inner";

pub async fn batch(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let Some(requests) = parsed
        .ok()
        .and_then(|v| v.get("requests").and_then(Value::as_array).cloned())
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload: expected {\"requests\": [...]}.",
        );
    };
    if requests.len() > 20 {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Number of batch requests exceeds the limit of 20.",
        );
    }
    let Some(router) = state.router.get().cloned() else {
        return graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "router not ready",
        );
    };
    let mut ids = std::collections::HashSet::new();
    let mut responses = Vec::new();
    for r in &requests {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let method = r.get("method").and_then(Value::as_str).unwrap_or_default();
        let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty() || !ids.insert(id.clone()) || method != "GET" || url.is_empty() {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Each batch request needs a unique id, method GET and a relative url.",
            );
        }
        let path = format!("/v1.0/{}", url.trim_start_matches('/'));
        let mut req = http::Request::builder().method("GET").uri(&path);
        for name in [http::header::AUTHORIZATION, http::header::HOST] {
            if let Some(v) = headers.get(&name) {
                req = req.header(name, v);
            }
        }
        if let Some(h) = r.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                if let Some(v) = v.as_str() {
                    req = req.header(k.as_str(), v);
                }
            }
        }
        req = req.header(INNER_HEADER, "1");
        let Ok(req) = req
            .body(Body::empty())
            .map(crate::aliases::canonical_request)
        else {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Invalid url in batch request {id}."),
            );
        };
        let resp = match router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let status = resp.status().as_u16();
        let mut hdrs = serde_json::Map::new();
        for name in ["retry-after", "content-type", "location", "etag"] {
            if let Some(v) = resp.headers().get(name).and_then(|v| v.to_str().ok()) {
                hdrs.insert(name.to_string(), json!(v));
            }
        }
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        responses.push(json!({"id": id, "status": status, "headers": hdrs, "body": body}));
    }
    // Graph returns inner responses in any order.
    responses.reverse();
    Json(json!({"responses": responses})).into_response()
}
