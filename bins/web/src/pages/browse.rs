//! Drill-down from the cache: site -> drives -> folders and files -> one item with its
//! permissions and grants. The item page can also show the live truth from Graph.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use sentinel_store::{
    AudienceMember, DriveSummary, ItemAudience, ItemPermission, ItemSummary, LibraryOrder,
    SiteSummary,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ListQuery, Table, live, to_values};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::Format;
use crate::render::csv_response;
use crate::tenancy::CurrentTenant;

const DRIVE_COLUMNS: &[&str] = &[
    "drive_id",
    "name",
    "drive_type",
    "web_url",
    "items",
    "links",
    "unique_permission_items",
    "largest_audience",
    "items_open_to_anyone",
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

fn not_cached(what: &str) -> WebError {
    WebError::not_found(format_args!("{what} in the cache"))
}

pub async fn site(
    State(state): State<AppState>,
    user: CurrentUser,
    format: Format,
    uri: Uri,
    Path(site_id): Path<String>,
    Query(q): Query<ListQuery>,
    Query(sort): Query<super::SortParam>,
) -> Result<Response, WebError> {
    let order: LibraryOrder = sort.order()?;
    let tenant = user.tenant()?;
    let site = state
        .store
        .site(tenant, &site_id)
        .await?
        .ok_or_else(|| not_cached("such site"))?;
    let drives = state
        .store
        .site_drives(tenant, &site_id, q.include_deleted(), order)
        .await?;
    match format {
        Format::Csv => return csv_response("drives", DRIVE_COLUMNS, &to_values(&drives)),
        Format::Json => return Ok(Json(json!({"site": site, "drives": drives})).into_response()),
        Format::Html => {}
    }
    let page = SitePage {
        nav: "analytics",
        site: &site,
        drives: &drives,
        include_deleted: q.include_deleted(),
        csv_url: super::with_param(&uri, "format", "csv"),
        order,
        sort_by_name_url: super::with_param(&uri, "sort", "name"),
        sort_by_audience_url: super::with_param(&uri, "sort", "audience"),
    };
    state.views.page("site.html", Some(&user), &page)
}

#[derive(Serialize)]
struct SitePage<'a> {
    nav: &'static str,
    site: &'a SiteSummary,
    drives: &'a [DriveSummary],
    include_deleted: bool,
    csv_url: String,
    order: LibraryOrder,
    sort_by_name_url: String,
    sort_by_audience_url: String,
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
    user: CurrentUser,
    tenant: CurrentTenant,
    format: Format,
    uri: Uri,
    Path(drive_id): Path<String>,
    Query(q): Query<DriveQuery>,
) -> Result<Response, WebError> {
    let store = &state.store;
    let tenant = tenant.id();
    let req = q.list.request(format);
    let shared_table = q.table.as_deref() == Some("shared");
    let shared_req = if shared_table {
        req.clone()
    } else {
        sentinel_store::PageRequest {
            per_page: if format == Format::Csv { 10_000 } else { 20 },
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
    let drive = drive?.ok_or_else(|| not_cached("such drive"))?;
    let folder = folder?;
    if folder.is_none() && q.folder.is_some() {
        return Err(not_cached("such folder"));
    }
    let (children, shared) = (children?, shared?);
    match format {
        Format::Csv => {
            let (name, rows) = if shared_table {
                ("shared_items", &shared.rows)
            } else {
                ("folder_items", &children.rows)
            };
            return csv_response(name, ITEM_COLUMNS, &to_values(rows));
        }
        Format::Json => {
            return Ok(Json(
                json!({"drive": drive, "folder": folder, "children": children, "shared_items": shared}),
            )
            .into_response());
        }
        Format::Html => {}
    }
    let ancestors = match &folder {
        Some(f) if !f.is_root => store.item_ancestors(tenant, &drive_id, &f.item_id).await?,
        _ => Vec::new(),
    };
    let page = DrivePage {
        nav: "analytics",
        drive: &drive,
        folder: folder.as_ref(),
        ancestors: &ancestors,
        children: &children.rows,
        table: Table::new(&uri, &req, children.rows.len(), children.total),
        shared: &shared.rows,
        shared_total: shared.total,
        shared_csv_url: format!("{}?table=shared&format=csv", uri.path()),
    };
    state.views.page("drive.html", Some(&user), &page)
}

#[derive(Serialize)]
struct DrivePage<'a> {
    nav: &'static str,
    drive: &'a DriveSummary,
    folder: Option<&'a ItemSummary>,
    /// `(item id, name)` from the root down.
    ancestors: &'a [(String, Option<String>)],
    children: &'a [ItemSummary],
    #[serde(flatten)]
    table: Table,
    shared: &'a [ItemSummary],
    shared_total: i64,
    shared_csv_url: String,
}

#[derive(Debug, Deserialize)]
pub struct ItemQuery {
    /// Present: also fetch the live permissions from Graph.
    live: Option<String>,
}

/// How many people of an item's audience the page names (the count covers all).
const AUDIENCE_SHOWN: i64 = 25;

pub async fn item(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    format: Format,
    uri: Uri,
    Path((drive_id, item_id)): Path<(String, String)>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, WebError> {
    let store = &state.store;
    let tenant_view = tenant;
    let tenant = tenant_view.id();
    let item = store
        .item(tenant, &drive_id, Some(&item_id))
        .await?
        .ok_or_else(|| not_cached("such item"))?;
    let permissions = store
        .item_permissions_cached(tenant, &drive_id, &item_id)
        .await?;
    if format == Format::Csv {
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
    let audience = store.item_audience(tenant, &drive_id, &item_id).await?;
    if format == Format::Json {
        return Ok(
            Json(json!({"item": item, "audience": audience, "permissions": permissions}))
                .into_response(),
        );
    }
    let people = store
        .item_audience_members(tenant, &drive_id, &item_id, AUDIENCE_SHOWN)
        .await?;
    let drive = store.drive(tenant, &drive_id).await?;
    let ancestors = store.item_ancestors(tenant, &drive_id, &item_id).await?;
    let (mut live, mut live_error) = (None, None);
    if q.live.is_some() {
        match live::item_truth(&state, &user, &tenant_view, &drive_id, &item_id).await {
            Ok(v) => live = Some(v),
            Err(e) => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "live panel");
                live_error = Some(e.public().message);
            }
        }
    }
    let page = ItemPage {
        nav: "analytics",
        drive: drive.as_ref(),
        item: &item,
        ancestors: &ancestors,
        permissions: &permissions,
        audience: &audience,
        people: &people,
        csv_url: super::with_param(&uri, "format", "csv"),
        live_url: super::with_param(&uri, "live", "1"),
        live,
        live_error,
    };
    state.views.page("item.html", Some(&user), &page)
}

#[derive(Serialize)]
struct ItemPage<'a> {
    nav: &'static str,
    drive: Option<&'a DriveSummary>,
    item: &'a ItemSummary,
    ancestors: &'a [(String, Option<String>)],
    permissions: &'a [ItemPermission],
    audience: &'a ItemAudience,
    /// The first [`AUDIENCE_SHOWN`] people of the audience, writers first.
    people: &'a [AudienceMember],
    csv_url: String,
    live_url: String,
    /// What Graph says now, when asked for (`?live=1`).
    live: Option<Value>,
    live_error: Option<String>,
}
