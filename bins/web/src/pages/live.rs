//! "Live (Graph)": the current truth from Graph, fetched on demand with the app-only token and
//! never stored. Ids from the browser are validated before they become path segments, and
//! sharing-link secrets are hashed before anything reaches the browser.

use axum::Json;
use axum::extract::{Query, State};
use sentinel_graph::models::{IdentitySet, Permission, scrub_link_secrets};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::tenancy::CurrentTenant;

fn names(set: &Option<IdentitySet>) -> Vec<String> {
    let Some(s) = set else { return Vec::new() };
    [
        s.user
            .as_ref()
            .and_then(|i| i.display_name.clone().or(i.email.clone())),
        s.group.as_ref().and_then(|i| i.display_name.clone()),
        s.application.as_ref().and_then(|i| i.display_name.clone()),
        s.site_user
            .as_ref()
            .and_then(|i| i.display_name.clone().or(i.login_name.clone())),
        s.site_group.as_ref().and_then(|i| i.display_name.clone()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// What the panel shows of a permission, and its raw JSON without secrets.
fn permission_view(p: &Permission) -> Value {
    let mut granted_to = names(&p.grantee().cloned());
    for set in p.link_grantees() {
        granted_to.extend(names(&Some(set.clone())));
    }
    json!({
        "id": p.id,
        "roles": p.roles,
        "link_type": p.link.as_ref().and_then(|l| l.link_type.clone()),
        "link_scope": p.link.as_ref().and_then(|l| l.scope.clone()),
        "expires_at": p.expiration_date_time,
        "has_password": p.has_password,
        "inherited_from": p.inherited_from.as_ref().and_then(|r| r.id.clone()),
        "invitation_email": p.invitation.as_ref().and_then(|i| i.email.clone()),
        "granted_to": granted_to,
        "raw": scrub_link_secrets(&p.raw),
    })
}

/// What the Graph calls at `paths` cost, as Graph charges them.
fn cost(paths: &[String]) -> u32 {
    paths
        .iter()
        .map(|p| sentinel_graph::cost::request_cost(p).1)
        .sum()
}

/// The item's current permissions from Graph (5 RU, taken from `user`'s live share).
pub async fn item_truth(
    state: &AppState,
    user: &CurrentUser,
    tenant: &CurrentTenant,
    drive_id: &str,
    item_id: &str,
) -> Result<Value, WebError> {
    let ru = cost(&[format!("/drives/{drive_id}/items/{item_id}/permissions")]);
    state
        .live_budget
        .take(&state.store, tenant.id(), &user.oid, ru)
        .await?;
    let perms = state
        .graph
        .for_tenant(tenant.id())?
        .item_permissions(drive_id, item_id)
        .await?;
    Ok(json!({
        "drive_id": drive_id,
        "item_id": item_id,
        "fetched_at": chrono::Utc::now(),
        "permissions": perms.iter().map(permission_view).collect::<Vec<_>>(),
    }))
}

fn required<'a>(v: Option<&'a str>, name: &str) -> Result<&'a str, WebError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| WebError::BadInput(format!("{name} is required")))
}

#[derive(Debug, Deserialize)]
pub struct ItemParams {
    #[serde(rename = "driveId")]
    drive_id: Option<String>,
    #[serde(rename = "itemId")]
    item_id: Option<String>,
}

impl ItemParams {
    /// The ids, if they are well formed and name an item the scans have seen: Graph is asked
    /// only about the tenant's own, in-scope objects.
    async fn ids(&self, state: &AppState, tenant: &str) -> Result<(&str, &str), WebError> {
        let drive = required(self.drive_id.as_deref(), "driveId")?;
        let item = required(self.item_id.as_deref(), "itemId")?;
        sentinel_graph::validate_id("drive", drive)?;
        sentinel_graph::validate_id("item", item)?;
        state
            .store
            .item(tenant, drive, Some(item))
            .await?
            .ok_or_else(|| {
                WebError::not_found(
                    "such item in the cache (the live panel looks up scanned items only)",
                )
            })?;
        Ok((drive, item))
    }
}

/// `GET /api/graph/drive-item-permissions?driveId=&itemId=`
pub async fn drive_item_permissions(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    Query(q): Query<ItemParams>,
) -> Result<Json<Value>, WebError> {
    let (drive, item) = q.ids(&state, tenant.id()).await?;
    Ok(Json(item_truth(&state, &user, &tenant, drive, item).await?))
}

/// `GET /api/graph/drive-item-sharing?driveId=&itemId=`: the item's `shared` facet and its
/// sharing links.
pub async fn drive_item_sharing(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    Query(q): Query<ItemParams>,
) -> Result<Json<Value>, WebError> {
    let (drive, item_id) = q.ids(&state, tenant.id()).await?;
    let ru = cost(&[
        format!("/drives/{drive}/items/{item_id}"),
        format!("/drives/{drive}/items/{item_id}/permissions"),
    ]);
    state
        .live_budget
        .take(&state.store, tenant.id(), &user.oid, ru)
        .await?;
    let graph = state.graph.for_tenant(tenant.id())?;
    let item = graph.item(drive, item_id).await?;
    let perms = graph.item_permissions(drive, item_id).await?;
    let links: Vec<Value> = perms
        .iter()
        .filter(|p| p.link.is_some())
        .map(permission_view)
        .collect();
    Ok(Json(json!({
        "drive_id": drive,
        "item_id": item_id,
        "name": item.name,
        "shared": item.raw.get("shared"),
        "links": links,
        "fetched_at": chrono::Utc::now(),
    })))
}

#[derive(Debug, Deserialize)]
pub struct SiteParams {
    #[serde(rename = "siteId")]
    site_id: Option<String>,
}

/// `GET /api/graph/site-access?siteId=`: the site, its libraries, and the apps granted on it.
pub async fn site_access(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    Query(q): Query<SiteParams>,
) -> Result<Json<Value>, WebError> {
    let site_id = required(q.site_id.as_deref(), "siteId")?;
    sentinel_graph::validate_id("site", site_id)?;
    state
        .store
        .site(tenant.id(), site_id)
        .await?
        .ok_or_else(|| {
            WebError::not_found(
                "such site in the cache (the live panel looks up scanned sites only)",
            )
        })?;
    let ru = cost(&[
        format!("/sites/{site_id}"),
        format!("/sites/{site_id}/drives"),
        format!("/sites/{site_id}/permissions"),
    ]);
    state
        .live_budget
        .take(&state.store, tenant.id(), &user.oid, ru)
        .await?;
    let graph = state.graph.for_tenant(tenant.id())?;
    let site = graph.site(site_id).await?;
    let drives = graph.site_drives(site_id).await?;
    let perms = graph.site_permissions(site_id).await?;
    Ok(Json(json!({
        "site_id": site.id,
        "display_name": site.display_name,
        "web_url": site.web_url,
        "drives": drives.iter().map(|d| json!({"id": d.id, "name": d.name, "drive_type": d.drive_type})).collect::<Vec<_>>(),
        "app_permissions": perms.iter().map(permission_view).collect::<Vec<_>>(),
        "fetched_at": chrono::Utc::now(),
    })))
}
