//! `/runs`: the run history, newest first, filtered by job and status; progress of running jobs.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use sentinel_sched::RunStatus;
use sentinel_sched::manage::{self, JobView, RunFilter, RunView};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{Pager, pager, to_values};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::Format;
use crate::render::csv_response;

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
}

pub async fn runs(
    State(state): State<AppState>,
    user: CurrentUser,
    format: Format,
    uri: Uri,
    Query(q): Query<RunsQuery>,
) -> Result<Response, WebError> {
    let job_id = match q.job_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<Uuid>()
                .map_err(|_| WebError::BadInput(format!("job_id must be a UUID, got '{s}'")))?,
        ),
    };
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<RunStatus>().map_err(WebError::BadInput)?),
    };
    let csv = format == Format::Csv;
    let filter = RunFilter {
        job_id,
        status,
        tenant_id: Some(user.tenant()?.to_string()),
        page: if csv { 0 } else { q.page.unwrap_or(0) },
        per_page: if csv { 10_000 } else { 50 },
    };
    let (runs, total) = manage::list_runs(&state.jobs, &filter).await?;
    if csv {
        return csv_response("runs", RUN_COLUMNS, &to_values(&runs));
    }
    if format == Format::Json {
        return Ok(
            Json(json!({"runs": runs, "total": total, "page": filter.page})).into_response(),
        );
    }
    let jobs = manage::list_jobs(&state.jobs, Some(user.tenant()?)).await?;
    let page = RunsPage {
        nav: "runs",
        any_running: runs.iter().any(|r| r.status == RunStatus::Running),
        pager: pager(&uri, filter.page, filter.per_page, runs.len(), total),
        runs: &runs,
        jobs: &jobs,
        job_id,
        status,
    };
    state.views.page("runs.html", Some(&user), &page)
}

#[derive(Serialize)]
struct RunsPage<'a> {
    nav: &'static str,
    runs: &'a [RunView],
    /// Every job, for the filter.
    jobs: &'a [JobView],
    job_id: Option<Uuid>,
    status: Option<RunStatus>,
    pager: Pager,
    /// The page asks the browser to refresh while a run is in progress.
    any_running: bool,
}
