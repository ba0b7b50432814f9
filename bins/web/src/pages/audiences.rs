//! `/audiences`: the items whose permissions open them to the most people, tenant-wide, as of the
//! last scan, each with the items inheriting from it.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use sentinel_store::HolderAudience;
use serde::Serialize;
use serde_json::json;

use super::{ListQuery, Table, to_values};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::Format;
use crate::render::csv_response;
use crate::tenancy::CurrentTenant;

const AUDIENCE_COLUMNS: &[&str] = &[
    "readers",
    "writers",
    "guest_readers",
    "external_readers",
    "anyone_can_read",
    "anyone_can_write",
    "lower_bound",
    "items",
    "site_name",
    "drive_name",
    "path",
    "name",
    "is_folder",
    "site_id",
    "drive_id",
    "item_id",
];

pub async fn largest(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    format: Format,
    uri: Uri,
    Query(list): Query<ListQuery>,
) -> Result<Response, WebError> {
    let req = list.request(format);
    let rows = state.store.largest_audiences(tenant.id(), &req).await?;
    match format {
        Format::Csv => csv_response(
            "largest_audiences",
            AUDIENCE_COLUMNS,
            &to_values(&rows.rows),
        ),
        Format::Json => Ok(Json(json!({"audiences": rows})).into_response()),
        Format::Html => {
            let page = AudiencesPage {
                nav: "audiences",
                table: Table::new(&uri, &req, rows.rows.len(), rows.total),
                rows: &rows.rows,
            };
            state.views.page("audiences.html", Some(&user), &page)
        }
    }
}

#[derive(Serialize)]
struct AudiencesPage<'a> {
    nav: &'static str,
    #[serde(flatten)]
    table: Table,
    rows: &'a [HolderAudience],
}
