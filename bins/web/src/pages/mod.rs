//! Pages and the JSON API. Each handler serves a page and, under `/api/`, the same data as
//! JSON; tables also download as CSV (`?format=csv`).

mod admin;
mod analytics;
mod audiences;
mod browse;
mod changes;
mod charts;
mod jobs;
mod live;
mod people;
mod policies;
mod runs;
mod schedules;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use sentinel_store::PageRequest;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::error::WebError;
use crate::format::{Format, is_on};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/analytics") }))
        .route("/analytics", get(analytics::analytics))
        .route("/api/analytics", get(analytics::analytics))
        .route("/sites/{site_id}", get(browse::site))
        .route("/api/sites/{site_id}", get(browse::site))
        .route("/drives/{drive_id}", get(browse::drive))
        .route("/api/drives/{drive_id}", get(browse::drive))
        .route("/drives/{drive_id}/items/{item_id}", get(browse::item))
        .route("/api/drives/{drive_id}/items/{item_id}", get(browse::item))
        .route(
            "/api/graph/drive-item-permissions",
            get(live::drive_item_permissions),
        )
        .route(
            "/api/graph/drive-item-sharing",
            get(live::drive_item_sharing),
        )
        .route("/api/graph/site-access", get(live::site_access))
        .route("/jobs", get(jobs::list).post(jobs::create))
        .route("/api/jobs", get(jobs::list).post(jobs::create))
        .route("/jobs/{job_id}", get(jobs::show).post(jobs::update))
        .route(
            "/api/jobs/{job_id}",
            get(jobs::show).put(jobs::update).delete(jobs::delete),
        )
        .route("/jobs/{job_id}/enabled", post(jobs::set_enabled))
        .route("/jobs/{job_id}/delete", post(jobs::delete))
        .route("/jobs/{job_id}/schedules", post(schedules::add))
        .route("/api/jobs/{job_id}/schedules", post(schedules::add))
        .route("/schedules/{schedule_id}", post(schedules::update))
        .route(
            "/api/schedules/{schedule_id}",
            put(schedules::update).delete(schedules::delete),
        )
        .route("/schedules/{schedule_id}/delete", post(schedules::delete))
        .route("/api/cron-preview", get(schedules::cron_preview))
        .route("/audiences", get(audiences::largest))
        .route("/api/audiences", get(audiences::largest))
        .route("/people", get(people::people))
        .route("/api/people", get(people::people))
        .route("/people/{person_id}", get(people::person))
        .route("/api/people/{person_id}", get(people::person))
        .route("/changes", get(changes::changes))
        .route("/api/changes", get(changes::changes))
        .route("/policies", get(policies::policies))
        .route("/api/policies", get(policies::policies))
        .route("/policies/webhooks", post(policies::add_webhook))
        .route("/api/webhooks", post(policies::add_webhook))
        .route(
            "/policies/webhooks/{webhook_id}/delete",
            post(policies::delete_webhook),
        )
        .route(
            "/api/webhooks/{webhook_id}",
            axum::routing::delete(policies::delete_webhook),
        )
        .route("/policies/{rule}", post(policies::update))
        .route("/api/policies/{rule}", put(policies::update))
        .route("/violations", get(policies::violations))
        .route("/api/violations", get(policies::violations))
        .route("/runs", get(runs::runs))
        .route("/api/runs", get(runs::runs))
        .route("/admin", get(admin::admin))
        .route("/api/admin", get(admin::admin))
        .route("/admin/jobs/{job_id}/{op}", post(admin::operate))
        .route("/api/admin/jobs/{job_id}/{op}", post(admin::operate))
        .route("/admin/tenants", post(admin::add_tenant))
        .route("/api/admin/tenants", post(admin::add_tenant))
        .route("/admin/tenants/{tenant}/{op}", post(admin::tenant_op))
        .route("/api/admin/tenants/{tenant}/{op}", post(admin::tenant_op))
}

/// `/health`: the web is up and can reach its database (the cause of a failure is logged).
pub async fn health(State(state): State<AppState>) -> Response {
    match state.store.now().await {
        Ok(_) => axum::Json(json!({"status": "ok", "database": "reachable"})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health: the database did not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "degraded", "database": "unreachable"})),
            )
                .into_response()
        }
    }
}

pub async fn not_found(uri: Uri) -> WebError {
    WebError::NotFound(format!("nothing at {}", uri.path()))
}

/// `?sort=` of a table that can be ranked more than one way (`/analytics`' sites, a site's
/// libraries): each page parses it into its own order.
#[derive(Debug, Default, Deserialize)]
pub struct SortParam {
    sort: Option<String>,
}

impl SortParam {
    /// The order asked for, or the default when none; an unknown one is a 400 naming the
    /// choices.
    pub fn order<T: Default + std::str::FromStr<Err = String>>(&self) -> Result<T, WebError> {
        match self.sort.as_deref().map(str::trim) {
            None | Some("") => Ok(T::default()),
            Some(s) => s.parse().map_err(WebError::BadInput),
        }
    }
}

/// The query of a paged, filtered table.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    pub q: Option<String>,
    /// A checkbox: present (any value but `0`/`false`) to include soft-deleted rows.
    pub include_deleted: Option<String>,
}

impl ListQuery {
    pub fn include_deleted(&self) -> bool {
        is_on(self.include_deleted.as_deref())
    }
    /// A CSV download is the whole table (up to 10,000 rows), not the page on screen.
    pub fn request(&self, format: Format) -> PageRequest {
        let csv = format == Format::Csv;
        PageRequest {
            page: if csv { 0 } else { self.page.unwrap_or(0) },
            per_page: if csv {
                10_000
            } else {
                self.per_page.unwrap_or(50).clamp(1, 500)
            },
            filter: self.q.clone().filter(|q| !q.trim().is_empty()),
            include_deleted: self.include_deleted(),
        }
    }
}

/// Links for the pager of a table, keeping the rest of the query.
#[derive(Debug, Serialize)]
pub struct Pager {
    pub from: i64,
    pub to: i64,
    pub total: i64,
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
    pub csv_url: String,
}

/// `uri` with `key` set to `value` (and `page` dropped when another key changes).
pub fn with_param(uri: &Uri, key: &str, value: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .filter(|(k, _)| k != key && (key == "page" || k != "page"))
            .collect();
    pairs.push((key.to_string(), value.to_string()));
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        s.append_pair(k, v);
    }
    format!("{}?{}", uri.path(), s.finish())
}

pub fn pager(uri: &Uri, page: u32, per_page: u32, rows: usize, total: i64) -> Pager {
    let from = i64::from(page) * i64::from(per_page);
    Pager {
        from: if rows == 0 { 0 } else { from + 1 },
        to: from + rows as i64,
        total,
        prev_url: (page > 0).then(|| with_param(uri, "page", &(page - 1).to_string())),
        next_url: (from + (rows as i64) < total)
            .then(|| with_param(uri, "page", &(page + 1).to_string())),
        csv_url: with_param(uri, "format", "csv"),
    }
}

/// What a paged table's template reads: its pager, its filter and its deleted switch.
#[derive(Debug, Serialize)]
pub struct Table {
    pub pager: Pager,
    pub q: Option<String>,
    pub include_deleted: bool,
}

impl Table {
    pub fn new(uri: &Uri, req: &PageRequest, rows: usize, total: i64) -> Table {
        Table {
            pager: pager(uri, req.page, req.limit() as u32, rows, total),
            q: req.filter.clone(),
            include_deleted: req.include_deleted,
        }
    }
}

/// Serializes rows for CSV.
pub fn to_values<T: Serialize>(rows: &[T]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| serde_json::to_value(r).unwrap_or(serde_json::Value::Null))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_keeps_the_filter_and_moves_the_page() {
        let uri: Uri = "/analytics?q=fin&page=1".parse().expect("uri");
        let p = pager(&uri, 1, 50, 50, 120);
        assert_eq!((p.from, p.to), (51, 100));
        assert_eq!(p.prev_url.as_deref(), Some("/analytics?q=fin&page=0"));
        assert_eq!(p.next_url.as_deref(), Some("/analytics?q=fin&page=2"));
        assert_eq!(p.csv_url, "/analytics?q=fin&format=csv");
        let last = pager(&uri, 2, 50, 20, 120);
        assert_eq!(last.next_url, None);
    }
}
