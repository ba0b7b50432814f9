//! `/jobs`: jobs and schedules as intent rows. The web never runs a job: workers pick the
//! rows up. Every change is audited with the signed-in user.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use sentinel_pipeline::GraphIngestConfig;
use sentinel_sched::CronExpr;
use sentinel_sched::manage::{self, JobSpec, JobView};
use serde::Deserialize;
use serde_json::{Value, json};
use tera::Context;
use uuid::Uuid;

use super::db_error;
use crate::AppState;
use crate::auth::CurrentUser;
use crate::render::{csv_response, error_response, wants_json};

/// Job types the worker runs.
pub const JOB_TYPES: &[&str] = &["graph_ingest", "refresh_mv"];

/// A job as the form or the API sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    pub name: Option<String>,
    pub job_type: String,
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// The HTML form: the config is JSON text, the switch a checkbox.
#[derive(Debug, Deserialize)]
pub struct JobForm {
    name: Option<String>,
    job_type: String,
    config: Option<String>,
    enabled: Option<String>,
}

impl JobForm {
    fn input(self) -> Result<JobInput, String> {
        let config = match self.config.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                serde_json::from_str(text).map_err(|e| format!("config is not valid JSON: {e}"))?,
            ),
        };
        Ok(JobInput {
            name: self.name,
            job_type: self.job_type,
            config,
            enabled: self.enabled.is_some(),
        })
    }
}

/// Checks what the worker will need to run the job; the message says what to fix.
fn spec(state: &AppState, input: JobInput) -> Result<JobSpec, String> {
    let config = input.config.unwrap_or_else(|| json!({}));
    match input.job_type.as_str() {
        "graph_ingest" => {
            let c: GraphIngestConfig = serde_json::from_value(config.clone())
                .map_err(|e| format!("graph_ingest config: {e}"))?;
            c.validate()
                .map_err(|e| format!("graph_ingest config: {e}"))?;
        }
        "refresh_mv" if config.as_object().is_some_and(|o| o.is_empty()) => {}
        "refresh_mv" => return Err("refresh_mv takes no configuration: use {}".into()),
        other => {
            return Err(format!(
                "unknown job type '{other}': use one of {}",
                JOB_TYPES.join(", ")
            ));
        }
    }
    let name = input
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err("name is longer than 200 characters".into());
    }
    Ok(JobSpec {
        name,
        job_type: input.job_type,
        tenant_id: state.tenant.clone(),
        config,
        enabled: input.enabled,
    })
}

pub(super) fn parse_cron(expr: &str) -> Result<CronExpr, String> {
    expr.trim().parse::<CronExpr>().map_err(|e| e.to_string())
}

/// The next `n` times of an expression, from now.
pub(super) fn upcoming(expr: &str, n: usize) -> Vec<chrono::DateTime<chrono::Utc>> {
    parse_cron(expr)
        .map(|c| c.upcoming(chrono::Utc::now(), n))
        .unwrap_or_default()
}

pub(super) async fn audit(
    state: &AppState,
    user: &CurrentUser,
    action: &str,
    kind: &str,
    id: Uuid,
    details: Value,
) {
    if let Err(e) = state
        .store
        .audit(&user.audit(action, kind, id, details))
        .await
    {
        tracing::warn!(error = %e, action, "could not write audit event");
    }
}

/// Jobs with each schedule's next three times.
fn jobs_json(jobs: &[JobView]) -> Vec<Value> {
    jobs.iter()
        .map(|j| {
            let mut v = serde_json::to_value(j).unwrap_or(Value::Null);
            if let Some(list) = v["schedules"].as_array_mut() {
                for s in list {
                    let next = upcoming(s["cron_expr"].as_str().unwrap_or(""), 3);
                    s["upcoming"] = json!(next);
                }
            }
            v["schedule_summary"] = json!(
                j.schedules
                    .iter()
                    .map(|s| s.cron_expr.clone())
                    .collect::<Vec<_>>()
            );
            v
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    format: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Query(q): Query<JobsQuery>,
) -> Response {
    render_list(
        &state,
        &user,
        &uri,
        q.format.as_deref() == Some("csv"),
        None,
    )
    .await
}

async fn render_list(
    state: &AppState,
    user: &CurrentUser,
    uri: &Uri,
    csv: bool,
    form_error: Option<(&str, Value)>,
) -> Response {
    let json = wants_json(uri);
    let jobs = match manage::list_jobs(state.store.pool()).await {
        Ok(j) => jobs_json(&j),
        Err(e) => return db_error(json, e),
    };
    if csv {
        let cols = [
            "job_id",
            "name",
            "job_type",
            "enabled",
            "paused",
            "schedule_summary",
            "last_status",
            "last_started_at",
            "config",
        ];
        return csv_response("jobs", &cols, &jobs);
    }
    if json {
        return Json(json!({"jobs": jobs})).into_response();
    }
    let mut ctx = Context::new();
    ctx.insert("nav", "jobs");
    ctx.insert("jobs", &jobs);
    ctx.insert("job_types", JOB_TYPES);
    ctx.insert(
        "default_config",
        &serde_json::to_string_pretty(&GraphIngestConfig::default()).unwrap_or_default(),
    );
    let status = match form_error {
        Some((msg, values)) => {
            ctx.insert("error", msg);
            ctx.insert("form", &values);
            StatusCode::BAD_REQUEST
        }
        None => StatusCode::OK,
    };
    state
        .views
        .page_with_status(status, "jobs.html", Some(user), &mut ctx)
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    preview_cron: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Path(job_id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> Response {
    render_job(&state, &user, &uri, job_id, q.preview_cron.as_deref(), None).await
}

pub(super) async fn render_job(
    state: &AppState,
    user: &CurrentUser,
    uri: &Uri,
    job_id: Uuid,
    preview: Option<&str>,
    form_error: Option<&str>,
) -> Response {
    let json = wants_json(uri);
    let job = match manage::get_job(state.store.pool(), job_id).await {
        Ok(Some(j)) => j,
        Ok(None) => {
            return error_response(json, StatusCode::NOT_FOUND, &format!("no job {job_id}"));
        }
        Err(e) => return db_error(json, e),
    };
    let job_json = jobs_json(std::slice::from_ref(&job)).remove(0);
    if json {
        return Json(job_json).into_response();
    }
    let mut ctx = Context::new();
    ctx.insert("nav", "jobs");
    ctx.insert("job", &job_json);
    ctx.insert(
        "config_text",
        &serde_json::to_string_pretty(&job.config).unwrap_or_default(),
    );
    ctx.insert("job_types", JOB_TYPES);
    if let Some(expr) = preview.filter(|e| !e.trim().is_empty()) {
        ctx.insert("preview_expr", expr);
        match parse_cron(expr) {
            Ok(c) => ctx.insert("preview", &c.upcoming(chrono::Utc::now(), 5)),
            Err(e) => ctx.insert("preview_error", &e),
        }
    }
    let status = match form_error {
        Some(msg) => {
            ctx.insert("error", msg);
            StatusCode::BAD_REQUEST
        }
        None => StatusCode::OK,
    };
    state
        .views
        .page_with_status(status, "job.html", Some(user), &mut ctx)
}

pub(super) fn bad_json(msg: impl Into<String>) -> Response {
    error_response(true, StatusCode::BAD_REQUEST, &msg.into())
}

pub async fn create_form(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Form(form): Form<JobForm>,
) -> Response {
    let values = json!({"name": form.name, "job_type": form.job_type, "config": form.config});
    let spec = match form.input().and_then(|i| spec(&state, i)) {
        Ok(s) => s,
        Err(msg) => return render_list(&state, &user, &uri, false, Some((&msg, values))).await,
    };
    match create(&state, &user, &spec).await {
        Ok(id) => Redirect::to(&format!("/jobs/{id}")).into_response(),
        Err(r) => r,
    }
}

pub async fn create_json(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(input): Json<JobInput>,
) -> Response {
    let spec = match spec(&state, input) {
        Ok(s) => s,
        Err(msg) => return bad_json(msg),
    };
    match create(&state, &user, &spec).await {
        Ok(id) => (StatusCode::CREATED, Json(json!({"job_id": id}))).into_response(),
        Err(r) => r,
    }
}

async fn create(state: &AppState, user: &CurrentUser, spec: &JobSpec) -> Result<Uuid, Response> {
    let id = manage::create_job(state.store.pool(), spec)
        .await
        .map_err(|e| db_error(false, e))?;
    audit(state, user, "job.create", "job", id, json!({"job_type": spec.job_type, "name": spec.name, "config": spec.config, "enabled": spec.enabled})).await;
    Ok(id)
}

async fn update(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    spec: &JobSpec,
    json: bool,
) -> Result<(), Response> {
    match manage::update_job(state.store.pool(), id, spec).await {
        Ok(true) => {
            audit(state, user, "job.update", "job", id, json!({"job_type": spec.job_type, "name": spec.name, "config": spec.config, "enabled": spec.enabled})).await;
            Ok(())
        }
        Ok(false) => Err(error_response(
            json,
            StatusCode::NOT_FOUND,
            &format!("no job {id}"),
        )),
        Err(e) => Err(db_error(json, e)),
    }
}

pub async fn update_form(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Path(id): Path<Uuid>,
    Form(form): Form<JobForm>,
) -> Response {
    let spec = match form.input().and_then(|i| spec(&state, i)) {
        Ok(s) => s,
        Err(msg) => return render_job(&state, &user, &uri, id, None, Some(&msg)).await,
    };
    match update(&state, &user, id, &spec, false).await {
        Ok(()) => Redirect::to(&format!("/jobs/{id}")).into_response(),
        Err(r) => r,
    }
}

pub async fn update_json(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<Uuid>,
    Json(input): Json<JobInput>,
) -> Response {
    let spec = match spec(&state, input) {
        Ok(s) => s,
        Err(msg) => return bad_json(msg),
    };
    match update(&state, &user, id, &spec, true).await {
        Ok(()) => Json(json!({"job_id": id})).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
pub struct EnabledForm {
    enabled: String,
}

pub async fn set_enabled_form(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<Uuid>,
    Form(form): Form<EnabledForm>,
) -> Response {
    let enabled = matches!(form.enabled.as_str(), "true" | "1" | "on");
    match manage::set_job_enabled(state.store.pool(), id, enabled).await {
        Ok(true) => {
            let action = if enabled { "job.enable" } else { "job.disable" };
            audit(&state, &user, action, "job", id, json!({})).await;
            Redirect::to("/jobs").into_response()
        }
        Ok(false) => error_response(false, StatusCode::NOT_FOUND, &format!("no job {id}")),
        Err(e) => db_error(false, e),
    }
}

async fn delete(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    json: bool,
) -> Result<(), Response> {
    match manage::delete_job(state.store.pool(), id).await {
        Ok(true) => {
            audit(state, user, "job.delete", "job", id, json!({})).await;
            Ok(())
        }
        Ok(false) => Err(error_response(
            json,
            StatusCode::NOT_FOUND,
            &format!("no job {id}"),
        )),
        Err(e) => Err(db_error(json, e)),
    }
}

pub async fn delete_form(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<Uuid>,
) -> Response {
    match delete(&state, &user, id, false).await {
        Ok(()) => Redirect::to("/jobs").into_response(),
        Err(r) => r,
    }
}

pub async fn delete_json(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<Uuid>,
) -> Response {
    match delete(&state, &user, id, true).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_json_config_and_checkboxes() {
        let f = JobForm {
            name: Some("n".into()),
            job_type: "refresh_mv".into(),
            config: Some(" ".into()),
            enabled: None,
        };
        let i = f.input().expect("valid");
        assert!(!i.enabled);
        assert_eq!(i.config, None);
        let bad = JobForm {
            name: None,
            job_type: "graph_ingest".into(),
            config: Some("{".into()),
            enabled: Some("on".into()),
        };
        assert!(
            bad.input()
                .expect_err("bad JSON")
                .contains("not valid JSON")
        );
    }
}
