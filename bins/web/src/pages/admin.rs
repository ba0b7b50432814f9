//! `/admin`: the worker's health and status from its control API, run-now, pause and resume
//! (the worker does them and audits them with the signed-in user), every tenant with its
//! consent and the link its administrator consents by, adding, enabling and disabling tenants
//! (audited here), and the audit trail.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sentinel_store::{AuditRecord, TenantRecord, checked_tenant_id};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::AdminUser;
use crate::error::WebError;
use crate::format::{FormInput, Format, Input, is_on};

/// Audit events shown on the page.
const AUDIT_SHOWN: i64 = 25;

/// Admins only: the audit trail, the job configurations and the worker's internal address are
/// not a reader's to see.
pub async fn admin(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
) -> Result<Response, WebError> {
    let tenant = user.tenant()?;
    let (health, status, audit, tenants) = tokio::join!(
        state.worker.health(),
        state.worker.status(),
        state.store.recent_audit_events(tenant, AUDIT_SHOWN),
        state.store.tenants()
    );
    let audit = audit?;
    // Admins (of the home tenant, where they sign in) manage every tenant.
    let tenants: Vec<TenantRow> = tenants?
        .into_iter()
        .map(|t| TenantRow {
            consent_url: state.admin_consent.url(&t.tenant_id),
            tenant: t,
        })
        .collect();
    // The worker reports every tenant's jobs: this page shows the tenant looked at.
    let status = status.map(|mut s| {
        if let Some(jobs) = s["jobs"].as_array_mut() {
            jobs.retain(|j| j["tenant_id"] == tenant);
        }
        s
    });
    // The worker being down is what this page is for: it says so, and the log has the cause.
    let said = |e: crate::worker_client::WorkerError| {
        let e = WebError::Worker(e);
        tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "admin page");
        e.public().message
    };
    let health = health.map_err(said);
    let status = status.map_err(said);
    if format == Format::Json {
        return Ok(Json(json!({
            "worker_health": health.as_ref().ok(), "worker_health_error": health.as_ref().err(),
            "worker_status": status.as_ref().ok(), "worker_status_error": status.as_ref().err(),
            "audit": audit, "tenants": tenants,
        }))
        .into_response());
    }
    let page = AdminPage {
        nav: "admin",
        health: health.as_ref().ok(),
        health_error: health.as_ref().err(),
        jobs: status.as_ref().ok().map(|s| &s["jobs"]),
        status_error: status.as_ref().err(),
        audit: &audit,
        tenants: &tenants,
    };
    state.views.page("admin.html", Some(&user), &page)
}

/// A tenant with the link its administrator consents by.
#[derive(Serialize)]
struct TenantRow {
    #[serde(flatten)]
    tenant: TenantRecord,
    consent_url: String,
}

#[derive(Serialize)]
struct AdminPage<'a> {
    nav: &'static str,
    /// The worker's `/health` answer, or why there is none.
    health: Option<&'a Value>,
    health_error: Option<&'a String>,
    /// The jobs as the worker's status reports them (absent, not null: the template
    /// iterates over it with a default).
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<&'a Value>,
    status_error: Option<&'a String>,
    audit: &'a [AuditRecord],
    tenants: &'a [TenantRow],
}

fn op_name(op: &str) -> Option<&'static str> {
    match op {
        "run-now" => Some("run-now"),
        "pause" => Some("pause"),
        "resume" => Some("resume"),
        _ => None,
    }
}

/// `run-now`, `pause` or `resume`: the page goes back to `/admin`, the API gets the worker's answer.
pub async fn operate(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
    Path((job_id, op)): Path<(Uuid, String)>,
) -> Result<Response, WebError> {
    let op = op_name(&op).ok_or_else(|| {
        WebError::NotFound(format!("no operation '{op}': use run-now, pause or resume"))
    })?;
    super::jobs::tenant_job(&state, &user, job_id).await?;
    let answer = state.worker.operate(op, job_id, &user).await?;
    Ok(match format {
        Format::Html => Redirect::to("/admin").into_response(),
        _ => Json(answer).into_response(),
    })
}

/// `enable` or `disable` a tenant: a disabled tenant's jobs are not run (its data stays
/// readable). The page goes back to `/admin`, the API gets the tenant's new state.
pub async fn tenant_op(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
    Path((tenant, op)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let enabled = match op.as_str() {
        "enable" => true,
        "disable" => false,
        _ => {
            return Err(WebError::NotFound(format!(
                "no operation '{op}': use enable or disable"
            )));
        }
    };
    if !state.store.set_tenant_enabled(&tenant, enabled).await? {
        return Err(WebError::not_found(format_args!("tenant '{tenant}'")));
    }
    let mut event = user.audit(&format!("tenant.{op}"), "tenant", &tenant, json!({}));
    event.tenant_id = Some(tenant.clone());
    state.record_audit(&event).await;
    Ok(match format {
        Format::Html => Redirect::to("/admin").into_response(),
        _ => Json(json!({"tenant_id": tenant, "enabled": enabled})).into_response(),
    })
}

/// A tenant to add: its id or domain, what admins call it, its budget band, and whether its
/// hourly scan is scheduled (and run at once).
#[derive(Debug, Deserialize)]
pub struct NewTenant {
    tenant_id: String,
    name: Option<String>,
    band: Option<i16>,
    #[serde(default = "yes")]
    scan: bool,
}

fn yes() -> bool {
    true
}

/// The HTML form: the band is a choice (empty for none), the scan a checkbox.
#[derive(Debug, Deserialize)]
pub struct NewTenantForm {
    tenant_id: String,
    name: Option<String>,
    band: Option<String>,
    scan: Option<String>,
}

impl From<NewTenantForm> for NewTenant {
    fn from(f: NewTenantForm) -> NewTenant {
        NewTenant {
            tenant_id: f.tenant_id,
            name: f.name,
            // Not a number: out of range below, and said so.
            band: f
                .band
                .filter(|b| !b.trim().is_empty())
                .map(|b| b.trim().parse().unwrap_or(0)),
            scan: is_on(f.scan.as_deref()),
        }
    }
}

impl FormInput for NewTenant {
    type Form = NewTenantForm;
}

/// `POST /admin/tenants` (form) and `POST /api/admin/tenants` (JSON): adds a tenant the one
/// app registration scans once its administrator consents, as `sentinel-worker tenants add`
/// does. 409 when it is there already; audited with the tenant.
pub async fn add_tenant(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
    Input(input): Input<NewTenant>,
) -> Result<Response, WebError> {
    let tenant =
        checked_tenant_id(&input.tenant_id).map_err(|e| WebError::BadInput(e.to_string()))?;
    if input.band.is_some_and(|b| !(1..=5).contains(&b)) {
        return Err(WebError::BadInput(
            "band is 1 (up to 1,000 licenses) to 5 (over 50,000), or empty for the deployment's own budget".into(),
        ));
    }
    let name = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if !state.store.register_tenant(&tenant, name).await? {
        return Err(WebError::Conflict(format!(
            "tenant '{tenant}' is already added"
        )));
    }
    state.store.set_tenant_band(&tenant, input.band).await?;
    let scan_job = if input.scan {
        sentinel_pipeline::schedule_first_scan(&state.store, &tenant).await?
    } else {
        None
    };
    let mut event = user.audit(
        "tenant.add",
        "tenant",
        &tenant,
        json!({"name": name, "band": input.band, "scan_job": scan_job}),
    );
    event.tenant_id = Some(tenant.clone());
    state.record_audit(&event).await;
    Ok(super::jobs::changed(
        format,
        "/admin",
        (
            StatusCode::CREATED,
            Json(json!({"tenant_id": tenant, "scan_job": scan_job})),
        ),
    ))
}
