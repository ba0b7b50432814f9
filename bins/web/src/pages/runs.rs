//! `/runs`: the run history, newest first, filtered by job and status; progress of running jobs.

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sentinel_sched::manage::{self, RunFilter};
use serde::Deserialize;
use serde_json::json;
use tera::Context;
use uuid::Uuid;

use super::{db_error, pager, to_values};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::render::{csv_response, error_response, wants_json};

const RUN_COLUMNS: &[&str] = &[
    "run_id",
    "job_id",
    "job_name",
    "job_type",
    "status",
    "trigger",
    "started_at",
    "finished_at",
    "duration_secs",
    "worker_id",
    "error",
    "progress",
];

#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    job_id: Option<String>,
    status: Option<String>,
    page: Option<u32>,
    format: Option<String>,
}

pub async fn runs(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Query(q): Query<RunsQuery>,
) -> Response {
    let json = wants_json(&uri);
    let job_id = match q.job_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                return error_response(
                    json,
                    StatusCode::BAD_REQUEST,
                    &format!("job_id must be a UUID, got '{s}'"),
                );
            }
        },
    };
    let status = q.status.clone().filter(|s| !s.is_empty());
    if let Some(s) = &status
        && !matches!(s.as_str(), "running" | "success" | "failed")
    {
        return error_response(
            json,
            StatusCode::BAD_REQUEST,
            &format!("status must be running, success or failed, got '{s}'"),
        );
    }
    let csv = q.format.as_deref() == Some("csv");
    let filter = RunFilter {
        job_id,
        status: status.clone(),
        page: if csv { 0 } else { q.page.unwrap_or(0) },
        per_page: if csv { 10_000 } else { 50 },
    };
    let (runs, total) = match manage::list_runs(state.store.pool(), &filter).await {
        Ok(r) => r,
        Err(e) => return db_error(json, e),
    };
    if csv {
        return csv_response("runs", RUN_COLUMNS, &to_values(&runs));
    }
    if json {
        return Json(json!({"runs": runs, "total": total, "page": filter.page})).into_response();
    }
    let jobs = manage::list_jobs(state.store.pool())
        .await
        .unwrap_or_default();
    let mut ctx = Context::new();
    ctx.insert("nav", "runs");
    ctx.insert("runs", &runs);
    ctx.insert("jobs", &jobs);
    ctx.insert("job_id", &job_id);
    ctx.insert("status", &status);
    ctx.insert(
        "pager",
        &pager(&uri, filter.page, filter.per_page, runs.len(), total),
    );
    ctx.insert("any_running", &runs.iter().any(|r| r.status == "running"));
    state.views.page("runs.html", Some(&user), ctx)
}
