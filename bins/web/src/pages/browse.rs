//! Drill-down from the cache: site -> drives -> folders and files -> one item with its
//! permissions and grants. The item page can also show the live truth from Graph.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use tera::Context;

use super::{ListQuery, db_error, live, pager, to_values};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::render::{csv_response, error_response, wants_json};

const DRIVE_COLUMNS: &[&str] = &[
    "drive_id",
    "name",
    "drive_type",
    "web_url",
    "items",
    "links",
    "unique_permission_items",
    "deleted_at",
];
const ITEM_COLUMNS: &[&str] = &[
    "item_id",
    "name",
    "path",
    "is_folder",
    "size",
    "modified_at",
    "has_unique_permissions",
    "permissions",
    "links",
    "broadest_link_scope",
    "deleted_at",
];
const GRANT_COLUMNS: &[&str] = &[
    "permission_id",
    "roles",
    "link_type",
    "link_scope",
    "expires_at",
    "has_password",
    "inherited_from_path",
    "grantee_type",
    "grantee_id",
    "display_name",
    "email",
    "is_external",
    "is_everyone",
    "is_everyone_except_external",
    "reaches_users",
];

fn not_found(json: bool, what: &str) -> Response {
    error_response(
        json,
        StatusCode::NOT_FOUND,
        &format!("no {what} in the cache"),
    )
}

pub async fn site(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Path(site_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let json = wants_json(&uri);
    let site = match state.store.site(&state.tenant, &site_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_found(json, "such site"),
        Err(e) => return db_error(json, e),
    };
    let drives = match state
        .store
        .site_drives(&state.tenant, &site_id, q.include_deleted())
        .await
    {
        Ok(d) => d,
        Err(e) => return db_error(json, e),
    };
    if q.csv() {
        return csv_response("drives", DRIVE_COLUMNS, &to_values(&drives));
    }
    if json {
        return Json(json!({"site": site, "drives": drives})).into_response();
    }
    let mut ctx = Context::new();
    ctx.insert("nav", "analytics");
    ctx.insert("site", &site);
    ctx.insert("drives", &drives);
    ctx.insert("include_deleted", &q.include_deleted());
    ctx.insert("csv_url", &super::with_param(&uri, "format", "csv"));
    state.views.page("site.html", Some(&user), ctx)
}

#[derive(Debug, Deserialize)]
pub struct DriveQuery {
    folder: Option<String>,
    /// `shared` to download the shared-items table instead of the folder's.
    table: Option<String>,
    #[serde(flatten)]
    list: ListQuery,
}

pub async fn drive(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Path(drive_id): Path<String>,
    Query(q): Query<DriveQuery>,
) -> Response {
    let json = wants_json(&uri);
    let store = &state.store;
    let tenant = &state.tenant;
    let req = q.list.request();
    let shared_table = q.table.as_deref() == Some("shared");
    let shared_req = if shared_table {
        req.clone()
    } else {
        sentinel_store::PageRequest {
            per_page: if q.list.csv() { 10_000 } else { 20 },
            ..Default::default()
        }
    };
    // Independent reads, at once (each on its own pooled connection).
    let (drive, folder, children, shared) = tokio::join!(
        store.drive(tenant, &drive_id),
        store.item(tenant, &drive_id, q.folder.as_deref()),
        store.folder_children(tenant, &drive_id, q.folder.as_deref(), &req),
        store.shared_items(tenant, &drive_id, &shared_req),
    );
    let drive = match drive {
        Ok(Some(d)) => d,
        Ok(None) => return not_found(json, "such drive"),
        Err(e) => return db_error(json, e),
    };
    let folder = match folder {
        Ok(Some(f)) => Some(f),
        Ok(None) if q.folder.is_some() => return not_found(json, "such folder"),
        Ok(None) => None,
        Err(e) => return db_error(json, e),
    };
    let children = match children {
        Ok(c) => c,
        Err(e) => return db_error(json, e),
    };
    let shared = match shared {
        Ok(s) => s,
        Err(e) => return db_error(json, e),
    };
    if q.list.csv() {
        let (name, rows) = if shared_table {
            ("shared_items", &shared.rows)
        } else {
            ("folder_items", &children.rows)
        };
        return csv_response(name, ITEM_COLUMNS, &to_values(rows));
    }
    if json {
        return Json(
            json!({"drive": drive, "folder": folder, "children": children, "shared_items": shared}),
        )
        .into_response();
    }
    let ancestors = match &folder {
        Some(f) if !f.is_root => store
            .item_ancestors(tenant, &drive_id, &f.item_id)
            .await
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut ctx = Context::new();
    ctx.insert("nav", "analytics");
    ctx.insert("drive", &drive);
    ctx.insert("folder", &folder);
    ctx.insert("ancestors", &ancestors);
    ctx.insert("children", &children.rows);
    ctx.insert(
        "pager",
        &pager(
            &uri,
            req.page,
            req.limit() as u32,
            children.rows.len(),
            children.total,
        ),
    );
    ctx.insert("shared", &shared.rows);
    ctx.insert("shared_total", &shared.total);
    ctx.insert(
        "shared_csv_url",
        &format!("{}?table=shared&format=csv", uri.path()),
    );
    ctx.insert("q", &req.filter);
    ctx.insert("include_deleted", &req.include_deleted);
    state.views.page("drive.html", Some(&user), ctx)
}

#[derive(Debug, Deserialize)]
pub struct ItemQuery {
    /// Present: also fetch the live permissions from Graph.
    live: Option<String>,
    format: Option<String>,
}

pub async fn item(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Path((drive_id, item_id)): Path<(String, String)>,
    Query(q): Query<ItemQuery>,
) -> Response {
    let json = wants_json(&uri);
    let store = &state.store;
    let tenant = &state.tenant;
    let item = match store.item(tenant, &drive_id, Some(&item_id)).await {
        Ok(Some(i)) => i,
        Ok(None) => return not_found(json, "such item"),
        Err(e) => return db_error(json, e),
    };
    let permissions = match store
        .item_permissions_cached(tenant, &drive_id, &item_id)
        .await
    {
        Ok(p) => p,
        Err(e) => return db_error(json, e),
    };
    if q.format.as_deref() == Some("csv") {
        // One row per grantee (a permission without grantees keeps one row).
        let rows: Vec<Value> = permissions
            .iter()
            .flat_map(|p| {
                let base = serde_json::to_value(p).unwrap_or(Value::Null);
                let grants: Vec<Value> = if p.grants.is_empty() {
                    vec![json!({})]
                } else {
                    p.grants
                        .iter()
                        .map(|g| serde_json::to_value(g).unwrap_or(Value::Null))
                        .collect()
                };
                grants.into_iter().map(move |g| {
                    let mut row = base.clone();
                    if let (Some(r), Some(g)) = (row.as_object_mut(), g.as_object()) {
                        r.extend(g.clone());
                    }
                    row
                })
            })
            .collect();
        return csv_response("item_permissions", GRANT_COLUMNS, &rows);
    }
    if json {
        return Json(json!({"item": item, "permissions": permissions})).into_response();
    }
    let drive = store.drive(tenant, &drive_id).await.ok().flatten();
    let ancestors = store
        .item_ancestors(tenant, &drive_id, &item_id)
        .await
        .unwrap_or_default();
    let mut ctx = Context::new();
    ctx.insert("nav", "analytics");
    ctx.insert("drive", &drive);
    ctx.insert("item", &item);
    ctx.insert("ancestors", &ancestors);
    ctx.insert("permissions", &permissions);
    ctx.insert("csv_url", &super::with_param(&uri, "format", "csv"));
    ctx.insert("live_url", &super::with_param(&uri, "live", "1"));
    if q.live.is_some() {
        match live::item_truth(&state, &drive_id, &item_id).await {
            Ok(v) => ctx.insert("live", &v),
            Err(e) => ctx.insert("live_error", &e.message),
        }
    }
    state.views.page("item.html", Some(&user), ctx)
}
