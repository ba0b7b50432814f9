//! `/analytics`: the tenant's posture from the materialized views, and every site ranked by
//! exposure.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use sentinel_store::{PostureSnapshot, SiteOrder, SitePosture};
use serde::Serialize;
use serde_json::json;

use super::{ListQuery, SortParam, Table, charts, to_values, with_param};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::Format;
use crate::render::csv_response;
use crate::tenancy::CurrentTenant;

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
    "largest_audience",
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
    tenant: CurrentTenant,
    format: Format,
    uri: Uri,
    Query(q): Query<ListQuery>,
    Query(sort): Query<SortParam>,
) -> Result<Response, WebError> {
    let req = q.request(format);
    let order: SiteOrder = sort.order()?;
    let sites = state
        .store
        .sites_by_exposure(tenant.id(), &req, order)
        .await?;
    if format == Format::Csv {
        return csv_response("sites_by_exposure", SITE_COLUMNS, &to_values(&sites.rows));
    }
    let posture = state.store.posture(tenant.id()).await?;
    if format == Format::Json {
        return Ok(Json(json!({"posture": posture, "sites": sites})).into_response());
    }
    let sharing_chart = posture.sharing.as_ref().map(|s| {
        let values = serde_json::to_value(s).unwrap_or_default();
        let data: Vec<(String, i64)> = POSTURE_ROWS
            .iter()
            .map(|(k, label)| (label.to_string(), values[*k].as_i64().unwrap_or(0)))
            .collect();
        charts::bars("Sharing posture", &data)
    });
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
    let page = AnalyticsPage {
        nav: "analytics",
        sharing_chart,
        exposure_chart: (!top.is_empty() && req.page == 0)
            .then(|| charts::bars("Most exposed sites", &top)),
        inventory_cards: INVENTORY_CARDS,
        posture_rows: POSTURE_ROWS,
        posture: &posture,
        table: Table::new(&uri, &req, sites.rows.len(), sites.total),
        order,
        sort_by_exposure_url: with_param(&uri, "sort", "exposure"),
        sort_by_audience_url: with_param(&uri, "sort", "audience"),
        sites: &sites.rows,
    };
    state.views.page("analytics.html", Some(&user), &page)
}

#[derive(Serialize)]
struct AnalyticsPage<'a> {
    nav: &'static str,
    /// Server-drawn SVG (no script).
    sharing_chart: Option<String>,
    exposure_chart: Option<String>,
    inventory_cards: &'static [(&'static str, &'static str)],
    posture_rows: &'static [(&'static str, &'static str)],
    posture: &'a PostureSnapshot,
    #[serde(flatten)]
    table: Table,
    order: SiteOrder,
    sort_by_exposure_url: String,
    sort_by_audience_url: String,
    sites: &'a [SitePosture],
}
