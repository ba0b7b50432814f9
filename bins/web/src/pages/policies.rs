//! `/policies`: the built-in rules (on or off, thresholds) and the webhooks alerts go to;
//! `/violations`: what breaks the rules now, by site and by owner. Changing a rule recomputes
//! the violations at once (the worker sends the alerts that queues); every change is audited.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sentinel_store::{
    PageRequest, Policy, PolicyRule, Violation, ViolationCount, ViolationsQuery, Webhook,
    WebhookFormat,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::jobs::{audit, changed};
use super::{Pager, pager, to_values};
use crate::AppState;
use crate::auth::{AdminUser, CurrentUser};
use crate::error::WebError;
use crate::format::{FormInput, Format, Input, is_on};
use crate::render::csv_response;
use crate::tenancy::CurrentTenant;

const VIOLATION_COLUMNS: &[&str] = &[
    "rule",
    "rule_title",
    "detail",
    "site_name",
    "drive_name",
    "item_path",
    "item_name",
    "grantee",
    "owners",
    "first_seen_at",
    "open_days",
    "detected_at",
    "site_id",
    "drive_id",
    "item_id",
    "permission_id",
];

/// `GET /policies`: every rule as it runs, and (for admins) the webhooks.
pub async fn policies(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    format: Format,
) -> Result<Response, WebError> {
    let policies = state.store.policies(tenant.id()).await?;
    // A webhook's URL is its secret (whoever has it can post): admins only.
    let webhooks = if user.is_admin() {
        Some(state.store.webhooks(tenant.id()).await?)
    } else {
        None
    };
    if format != Format::Html {
        return Ok(Json(json!({"policies": policies, "webhooks": webhooks})).into_response());
    }
    let page = PoliciesPage {
        nav: "policies",
        policies: &policies,
        webhooks: webhooks.as_deref(),
    };
    state.views.page("policies.html", Some(&user), &page)
}

#[derive(Serialize)]
struct PoliciesPage<'a> {
    nav: &'static str,
    policies: &'a [Policy],
    webhooks: Option<&'a [Webhook]>,
}

/// A rule's settings as the API sends them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    enabled: bool,
    threshold: Option<i32>,
}

/// The form: a checkbox, and the threshold as text (empty for the rules without one).
#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    enabled: Option<String>,
    threshold: Option<String>,
}

/// The form's threshold, when it is not a whole number: the API's 400 says so the same way.
const BAD_THRESHOLD: i32 = -1;

impl From<PolicyForm> for PolicyInput {
    fn from(f: PolicyForm) -> PolicyInput {
        let threshold = f
            .threshold
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<i32>().unwrap_or(BAD_THRESHOLD));
        PolicyInput {
            enabled: is_on(f.enabled.as_deref()),
            threshold,
        }
    }
}

impl FormInput for PolicyInput {
    type Form = PolicyForm;
}

/// `POST /policies/{rule}` (form) and `PUT /api/policies/{rule}` (JSON).
pub async fn update(
    State(state): State<AppState>,
    user: AdminUser,
    tenant: CurrentTenant,
    format: Format,
    Path(rule): Path<String>,
    Input(input): Input<PolicyInput>,
) -> Result<Response, WebError> {
    let rule: PolicyRule = rule
        .parse()
        .map_err(|_| WebError::not_found(format_args!("policy '{rule}'")))?;
    if let Some(t) = input.threshold
        && rule.threshold_unit().is_some()
        && !(0..=1_000_000).contains(&t)
    {
        return Err(WebError::BadInput(
            "threshold must be a whole number from 0 to 1000000".into(),
        ));
    }
    let by = user.0.shown_as();
    state
        .store
        .set_policy(
            tenant.id(),
            rule,
            input.enabled,
            input.threshold,
            by.as_deref(),
        )
        .await?;
    let refreshed = state.store.refresh_violations(tenant.id()).await?;
    let details = json!({"enabled": input.enabled, "threshold": input.threshold,
                         "violations": refreshed});
    audit(&state, &user.0, "policy.update", "policy", rule, details).await;
    Ok(changed(
        format,
        "/policies",
        Json(json!({"rule": rule, "violations": refreshed})),
    ))
}

/// A webhook as the API sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    url: String,
    #[serde(default = "json_format")]
    format: String,
}

fn json_format() -> String {
    WebhookFormat::Json.as_str().to_string()
}

/// The form (which also carries its CSRF token).
#[derive(Debug, Deserialize)]
pub struct WebhookForm {
    url: String,
    format: Option<String>,
}

impl From<WebhookForm> for WebhookInput {
    fn from(f: WebhookForm) -> WebhookInput {
        WebhookInput {
            url: f.url,
            format: f.format.unwrap_or_else(json_format),
        }
    }
}

impl FormInput for WebhookInput {
    type Form = WebhookForm;
}

/// An absolute http(s) URL, at most 2,000 characters.
fn check_url(url: &str) -> Result<String, WebError> {
    let url = url.trim();
    let parsed = url::Url::parse(url)
        .map_err(|e| WebError::BadInput(format!("url is not a URL ({e}): '{url}'")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(WebError::BadInput(format!(
            "url must be an http or https address, got '{url}'"
        )));
    }
    if url.len() > 2000 {
        return Err(WebError::BadInput(
            "url is longer than 2000 characters".into(),
        ));
    }
    Ok(url.to_string())
}

/// `POST /policies/webhooks` (form) and `POST /api/webhooks` (JSON).
pub async fn add_webhook(
    State(state): State<AppState>,
    user: AdminUser,
    tenant: CurrentTenant,
    format: Format,
    Input(input): Input<WebhookInput>,
) -> Result<Response, WebError> {
    let url = check_url(&input.url)?;
    let webhook_format: WebhookFormat = input.format.trim().parse().map_err(WebError::BadInput)?;
    let by = user.0.shown_as();
    let id = state
        .store
        .add_webhook(tenant.id(), &url, webhook_format, by.as_deref())
        .await?;
    // The audit trail names the host only: the URL is the webhook's secret.
    let host = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(String::from));
    audit(
        &state,
        &user.0,
        "webhook.create",
        "webhook",
        id,
        json!({"host": host, "format": webhook_format}),
    )
    .await;
    Ok(changed(
        format,
        "/policies",
        (StatusCode::CREATED, Json(json!({"webhook_id": id}))),
    ))
}

/// `POST /policies/webhooks/{id}/delete` (form) and `DELETE /api/webhooks/{id}`.
pub async fn delete_webhook(
    State(state): State<AppState>,
    user: AdminUser,
    tenant: CurrentTenant,
    format: Format,
    Path(id): Path<Uuid>,
) -> Result<Response, WebError> {
    if !state.store.delete_webhook(tenant.id(), id).await? {
        return Err(WebError::not_found(format_args!("webhook {id}")));
    }
    audit(&state, &user.0, "webhook.delete", "webhook", id, json!({})).await;
    Ok(changed(format, "/policies", StatusCode::NO_CONTENT))
}

#[derive(Debug, Default, Deserialize)]
pub struct ViolationParams {
    rule: Option<String>,
    site: Option<String>,
    owner: Option<String>,
    page: Option<u32>,
}

fn given(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// `GET /violations`: open violations, longest open first; by rule, site or owner.
pub async fn violations(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    format: Format,
    uri: Uri,
    Query(params): Query<ViolationParams>,
) -> Result<Response, WebError> {
    let query = ViolationsQuery {
        rule: given(&params.rule)
            .map(|r| r.parse())
            .transpose()
            .map_err(WebError::BadInput)?,
        site_id: given(&params.site),
        owner_id: given(&params.owner),
    };
    let csv = format == Format::Csv;
    let req = PageRequest {
        page: if csv { 0 } else { params.page.unwrap_or(0) },
        per_page: if csv { 10_000 } else { 50 },
        ..PageRequest::default()
    };
    let store = &state.store;
    let rows = store.violations(tenant.id(), &query, &req).await?;
    if csv {
        let mut values = to_values(&rows.rows);
        for v in &mut values {
            if let Some(owners) = v.get("owners").and_then(|o| o.as_array()) {
                let joined: Vec<&str> = owners.iter().filter_map(|o| o.as_str()).collect();
                v["owners"] = json!(joined.join("; "));
            }
        }
        return csv_response("violations", VIOLATION_COLUMNS, &values);
    }
    let by_site = store.violations_by_site(tenant.id()).await?;
    let by_owner = store.violations_by_owner(tenant.id()).await?;
    if format == Format::Json {
        return Ok(Json(json!({
            "rule": query.rule, "site": query.site_id, "owner": query.owner_id,
            "violations": rows, "by_site": by_site, "by_owner": by_owner,
        }))
        .into_response());
    }
    let page = ViolationsPage {
        nav: "policies",
        rule: query.rule,
        site: query.site_id.clone(),
        owner: query.owner_id.clone(),
        rules: PolicyRule::ALL
            .iter()
            .map(|r| (r.as_str(), r.title()))
            .collect(),
        pager: pager(&uri, req.page, req.per_page, rows.rows.len(), rows.total),
        csv_url: super::with_param(&uri, "format", "csv"),
        violations: &rows.rows,
        by_site: &by_site,
        by_owner: &by_owner,
    };
    state.views.page("violations.html", Some(&user), &page)
}

#[derive(Serialize)]
struct ViolationsPage<'a> {
    nav: &'static str,
    rule: Option<PolicyRule>,
    site: Option<String>,
    owner: Option<String>,
    /// (word, title) of every rule, for the filter.
    rules: Vec<(&'static str, &'static str)>,
    pager: Pager,
    csv_url: String,
    violations: &'a [Violation],
    by_site: &'a [ViolationCount],
    by_owner: &'a [ViolationCount],
}
