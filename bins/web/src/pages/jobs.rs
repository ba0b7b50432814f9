//! `/jobs`: jobs and schedules as intent rows. The web never runs a job: workers pick the
//! rows up. Every change is audited with the signed-in user.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sentinel_pipeline::{GraphIngest, job_kinds};
use sentinel_sched::manage::{self, JobSpec, JobView};
use sentinel_sched::{CronExpr, JobKind, KindSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{AdminUser, CurrentUser};
use crate::error::WebError;
use crate::format::{FormInput, Format, Input, is_on};
use crate::render::csv_response;

/// The names of the kinds of job, for the forms' choice.
fn job_types() -> Vec<&'static str> {
    job_kinds().iter().map(|k| k.name).collect()
}

/// A job as the API sends it. `config` is JSON, or JSON text (what the form sends).
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

impl From<JobForm> for JobInput {
    fn from(f: JobForm) -> JobInput {
        JobInput {
            name: f.name,
            job_type: f.job_type,
            config: f
                .config
                .filter(|text| !text.trim().is_empty())
                .map(Value::String),
            enabled: is_on(f.enabled.as_deref()),
        }
    }
}

impl FormInput for JobInput {
    type Form = JobForm;
}

impl JobInput {
    /// What the form showed, to show it again with the error.
    fn form_values(&self) -> Value {
        let config = match &self.config {
            Some(Value::String(text)) => text.clone(),
            Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
            None => String::new(),
        };
        json!({"name": self.name, "job_type": self.job_type, "config": config})
    }
}

/// After a change: the page moves on to `to`, the API gets `answer`.
pub(super) fn changed(format: Format, to: &str, answer: impl IntoResponse) -> Response {
    match format {
        Format::Html => Redirect::to(to).into_response(),
        Format::Json | Format::Csv => answer.into_response(),
    }
}

/// Checks what the worker will need to run the job; the message says what to fix.
fn spec(tenant: &str, input: JobInput) -> Result<JobSpec, String> {
    let kind = KindSpec::find(&job_kinds(), &input.job_type)?;
    let config = match input.config {
        None => json!({}),
        Some(Value::String(text)) => {
            serde_json::from_str(&text).map_err(|e| format!("config is not valid JSON: {e}"))?
        }
        Some(v) => v,
    };
    let config = kind.check(&config)?;
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
        tenant_id: tenant.to_string(),
        config,
        enabled: input.enabled,
    })
}

/// The job `id` of the tenant `user` is looking at; another tenant's job is not found.
pub(super) async fn tenant_job(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
) -> Result<JobView, WebError> {
    let tenant = user.tenant()?;
    manage::get_job(&state.jobs, id)
        .await?
        .filter(|j| j.tenant_id == tenant)
        .ok_or_else(|| WebError::not_found(format_args!("job {id}")))
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
    id: impl ToString,
    details: Value,
) {
    state
        .record_audit(&user.audit(action, kind, id, details))
        .await;
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

pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    format: Format,
) -> Result<Response, WebError> {
    render_list(&state, &user, format, None).await
}

async fn render_list(
    state: &AppState,
    user: &CurrentUser,
    format: Format,
    form_error: Option<(String, Value)>,
) -> Result<Response, WebError> {
    let jobs = jobs_json(&manage::list_jobs(&state.jobs, Some(user.tenant()?)).await?);
    match format {
        Format::Csv => {
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
        Format::Json => return Ok(Json(json!({"jobs": jobs})).into_response()),
        Format::Html => {}
    }
    // The form starts as a tenant scan, the job most admins create.
    let default_config = KindSpec::find(&job_kinds(), GraphIngest::NAME)
        .map(|k| k.default_config())
        .unwrap_or_default();
    let (error, form) = form_error.unzip();
    let page = JobsPage {
        nav: "jobs",
        jobs: &jobs,
        job_types: job_types(),
        default_config: serde_json::to_string_pretty(&default_config).unwrap_or_default(),
        status: if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        error,
        form,
    };
    state
        .views
        .page_with_status(page.status, "jobs.html", Some(user), &page)
}

#[derive(Serialize)]
struct JobsPage<'a> {
    nav: &'static str,
    jobs: &'a [Value],
    job_types: Vec<&'static str>,
    default_config: String,
    #[serde(skip)]
    status: StatusCode,
    /// Why the form was refused, and what it held.
    error: Option<String>,
    form: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    preview_cron: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    format: Format,
    Path(job_id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, WebError> {
    render_job(
        &state,
        &user,
        format,
        job_id,
        q.preview_cron.as_deref(),
        None,
    )
    .await
}

pub(super) async fn render_job(
    state: &AppState,
    user: &CurrentUser,
    format: Format,
    job_id: Uuid,
    preview: Option<&str>,
    form_error: Option<&str>,
) -> Result<Response, WebError> {
    let job = tenant_job(state, user, job_id).await?;
    let job_json = jobs_json(std::slice::from_ref(&job)).remove(0);
    if format != Format::Html {
        return Ok(Json(job_json).into_response());
    }
    let preview_expr = preview.filter(|e| !e.trim().is_empty());
    let parsed = preview_expr.map(parse_cron);
    let page = JobPage {
        nav: "jobs",
        job: &job_json,
        config_text: serde_json::to_string_pretty(&job.config).unwrap_or_default(),
        job_types: job_types(),
        preview_expr,
        preview: match &parsed {
            Some(Ok(c)) => Some(c.upcoming(chrono::Utc::now(), 5)),
            _ => None,
        },
        preview_error: parsed.and_then(Result::err),
        error: form_error,
    };
    let status = if form_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    state
        .views
        .page_with_status(status, "job.html", Some(user), &page)
}

#[derive(Serialize)]
struct JobPage<'a> {
    nav: &'static str,
    job: &'a Value,
    config_text: String,
    job_types: Vec<&'static str>,
    /// A cron expression to preview, its next five times, or why it is invalid.
    preview_expr: Option<&'a str>,
    preview: Option<Vec<chrono::DateTime<chrono::Utc>>>,
    preview_error: Option<String>,
    error: Option<&'a str>,
}

/// `POST /jobs` (form) and `POST /api/jobs` (JSON).
pub async fn create(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
    Input(input): Input<JobInput>,
) -> Result<Response, WebError> {
    let values = input.form_values();
    let spec = match spec(user.tenant()?, input) {
        Ok(s) => s,
        Err(msg) if format == Format::Html => {
            return render_list(&state, &user, format, Some((msg, values))).await;
        }
        Err(msg) => return Err(WebError::BadInput(msg)),
    };
    let id = manage::create_job(&state.jobs, &spec).await?;
    audit(&state, &user, "job.create", "job", id, spec_details(&spec)).await;
    Ok(changed(
        format,
        &format!("/jobs/{id}"),
        (StatusCode::CREATED, Json(json!({"job_id": id}))),
    ))
}

fn spec_details(spec: &JobSpec) -> Value {
    json!({"job_type": spec.job_type, "name": spec.name, "config": spec.config, "enabled": spec.enabled})
}

/// `POST /jobs/{id}` (form) and `PUT /api/jobs/{id}` (JSON).
pub async fn update(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
    Path(id): Path<Uuid>,
    Input(input): Input<JobInput>,
) -> Result<Response, WebError> {
    tenant_job(&state, &user, id).await?;
    let spec = match spec(user.tenant()?, input) {
        Ok(s) => s,
        Err(msg) if format == Format::Html => {
            return render_job(&state, &user, format, id, None, Some(&msg)).await;
        }
        Err(msg) => return Err(WebError::BadInput(msg)),
    };
    if !manage::update_job(&state.jobs, id, &spec).await? {
        return Err(WebError::not_found(format_args!("job {id}")));
    }
    audit(&state, &user, "job.update", "job", id, spec_details(&spec)).await;
    Ok(changed(
        format,
        &format!("/jobs/{id}"),
        Json(json!({"job_id": id})),
    ))
}

#[derive(Debug, Deserialize)]
pub struct EnabledForm {
    enabled: String,
}

/// `POST /jobs/{id}/enabled`: the list's enable and disable buttons.
pub async fn set_enabled(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(id): Path<Uuid>,
    axum::Form(form): axum::Form<EnabledForm>,
) -> Result<Redirect, WebError> {
    let enabled = matches!(form.enabled.as_str(), "true" | "1" | "on");
    tenant_job(&state, &user, id).await?;
    if !manage::set_job_enabled(&state.jobs, id, enabled).await? {
        return Err(WebError::not_found(format_args!("job {id}")));
    }
    let action = if enabled { "job.enable" } else { "job.disable" };
    audit(&state, &user, action, "job", id, json!({})).await;
    Ok(Redirect::to("/jobs"))
}

/// `POST /jobs/{id}/delete` (form) and `DELETE /api/jobs/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
    Path(id): Path<Uuid>,
) -> Result<Response, WebError> {
    tenant_job(&state, &user, id).await?;
    if !manage::delete_job(&state.jobs, id).await? {
        return Err(WebError::not_found(format_args!("job {id}")));
    }
    audit(&state, &user, "job.delete", "job", id, json!({})).await;
    Ok(changed(format, "/jobs", StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_checkboxes_and_keeps_config_text_for_validation() {
        let f = JobForm {
            name: Some("n".into()),
            job_type: "refresh_mv".into(),
            config: Some(" ".into()),
            enabled: None,
        };
        let i = JobInput::from(f);
        assert!(!i.enabled);
        assert_eq!(i.config, None);
        let bad = JobInput::from(JobForm {
            name: None,
            job_type: "graph_ingest".into(),
            config: Some("{".into()),
            enabled: Some("on".into()),
        });
        assert!(bad.enabled);
        assert_eq!(bad.form_values()["config"], "{");
    }
}
