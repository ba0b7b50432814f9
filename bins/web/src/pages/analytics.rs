//! `/analytics`: the tenant's posture from the materialized views, and every site ranked by
//! exposure.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tera::Context;

use super::{ListQuery, charts, insert_table, to_values};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::Format;
use crate::render::csv_response;

const SITE_COLUMNS: &[&str] = &[
    "site_id",
    "display_name",
    "web_url",
    "deleted",
    "drives",
    "anonymous_links",
    "organization_links",
    "users_links",
    "external_grants",
    "everyone_grants",
    "exposure_score",
];

/// Inventory counts shown as cards: (field, label).
const INVENTORY_CARDS: &[(&str, &str)] = &[
    ("users", "Users"),
    ("guests", "Guests"),
    ("groups", "Groups"),
    ("sites", "Sites"),
    ("drives", "Drives"),
    ("items", "Items"),
    ("files", "Files"),
    ("folders", "Folders"),
    ("memberships", "Memberships"),
    ("disabled_users", "Disabled users"),
];

/// Sharing posture rows: (field, label); the chart shows the same.
const POSTURE_ROWS: &[(&str, &str)] = &[
    ("anonymous_links", "Anonymous (anyone) links"),
    ("organization_links", "Organization links"),
    ("users_links", "Specific-people links"),
    ("edit_links", "Edit links"),
    ("links_without_expiry", "Links without expiry"),
    ("external_grants", "External and guest grants"),
    ("everyone_grants", "\"Everyone\" grants"),
    (
        "everyone_except_external_grants",
        "\"Everyone except external users\" grants",
    ),
    ("unique_permission_items", "Items with unique permissions"),
];

pub async fn analytics(
    State(state): State<AppState>,
    user: CurrentUser,
    format: Format,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let req = q.request(format);
    let sites = state.store.sites_by_exposure(&state.tenant, &req).await?;
    if format == Format::Csv {
        return csv_response("sites_by_exposure", SITE_COLUMNS, &to_values(&sites.rows));
    }
    let posture = state.store.posture(&state.tenant).await?;
    if format == Format::Json {
        return Ok(Json(json!({"posture": posture, "sites": sites})).into_response());
    }
    let mut ctx = Context::new();
    if let Some(s) = &posture.sharing {
        let values = serde_json::to_value(s).unwrap_or_default();
        let data: Vec<(String, i64)> = POSTURE_ROWS
            .iter()
            .map(|(k, label)| (label.to_string(), values[*k].as_i64().unwrap_or(0)))
            .collect();
        ctx.insert("sharing_chart", &charts::bars("Sharing posture", &data));
    }
    let top: Vec<(String, i64)> = sites
        .rows
        .iter()
        .filter(|s| s.exposure_score > 0)
        .take(10)
        .map(|s| {
            (
                s.display_name.clone().unwrap_or_else(|| s.site_id.clone()),
                s.exposure_score,
            )
        })
        .collect();
    if !top.is_empty() && req.page == 0 {
        ctx.insert("exposure_chart", &charts::bars("Most exposed sites", &top));
    }
    ctx.insert("nav", "analytics");
    ctx.insert("inventory_cards", INVENTORY_CARDS);
    ctx.insert("posture_rows", POSTURE_ROWS);
    ctx.insert("posture", &posture);
    insert_table(&mut ctx, &uri, &req, sites.rows.len(), sites.total);
    ctx.insert("sites", &sites.rows);
    state.views.page("analytics.html", Some(&user), ctx)
}
