//! Which tenant a signed-in user is looking at. One deployment holds many tenants (the
//! `tenants` table); every page, API call and CSV shows one of them, the user's choice, kept in
//! the session and changed with `?tenant=<id>` on any page (the switcher in the navigation bar
//! is a GET form: choosing what to look at changes nothing). Admins see every tenant; a reader
//! granted some tenants sees only those, and asking for another is answered as if it did not
//! exist.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sentinel_store::Viewer;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::WebError;

const TENANT_KEY: &str = "tenant";

/// A tenant as the switcher offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantChoice {
    pub id: String,
    pub name: Option<String>,
}

/// The tenant a request shows, and the others its user may switch to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantView {
    /// The tenant's id, as every table keys it.
    pub id: String,
    pub name: Option<String>,
    /// Every tenant the user may see (this one included), for the switcher.
    pub choices: Vec<TenantChoice>,
}

/// The tenant of this request (see the module's documentation).
#[derive(Debug, Clone)]
pub struct CurrentTenant(pub TenantView);

impl CurrentTenant {
    pub fn id(&self) -> &str {
        &self.0.id
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentTenant {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<CurrentTenant, WebError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        user.viewing.map(CurrentTenant).ok_or(WebError::SignInFirst)
    }
}

/// `tenant=` in a query string, if any.
fn asked_for(req: &Request) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == "tenant")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Chooses the request's tenant (after [`crate::auth::require_user`]): the one asked for with
/// `?tenant=` (remembered in the session), else the session's, else the deployment's own
/// (`ENTRA_TENANT_ID`) when the user may see it, else the first the user may see.
pub async fn select_tenant(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    // Taken out first: a request (its body) may not be held across an await.
    let user = req.extensions().get::<CurrentUser>().cloned();
    let asked = asked_for(&req);
    let Some(user) = user else {
        return WebError::SignInFirst.into_response();
    };
    match choose(&state, &session, &user, asked).await {
        Ok(view) => {
            if let Some(user) = req.extensions_mut().get_mut::<CurrentUser>() {
                user.viewing = Some(view);
            }
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn choose(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    asked: Option<String>,
) -> Result<TenantView, WebError> {
    let (tenants, limited) = state
        .store
        .visible_tenants(Viewer {
            oid: &user.oid,
            upn: user.upn.as_deref(),
            admin: user.is_admin(),
        })
        .await?;
    let mut choices: Vec<TenantChoice> = tenants
        .into_iter()
        .map(|t| TenantChoice {
            id: t.tenant_id,
            name: t.name,
        })
        .collect();
    // The deployment's own tenant is always there for whoever is not limited, registered or
    // not (a database the worker has not started on yet).
    if !limited && !choices.iter().any(|c| c.id == state.tenant) {
        choices.insert(
            0,
            TenantChoice {
                id: state.tenant.clone(),
                name: None,
            },
        );
    }
    let pick = |id: &str| {
        choices
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(id))
            .cloned()
    };
    let chosen = match asked {
        Some(asked) => {
            let Some(c) = pick(&asked) else {
                return Err(WebError::NotFound(format!(
                    "no tenant '{asked}' that you can see"
                )));
            };
            session.insert(TENANT_KEY, &c.id).await?;
            c
        }
        None => {
            let kept: Option<String> = session.get(TENANT_KEY).await?;
            match kept.as_deref().and_then(pick) {
                Some(c) => c,
                None => pick(&state.tenant)
                    .or_else(|| choices.first().cloned())
                    .ok_or_else(|| {
                        WebError::Forbidden(
                            "you may see no tenant: ask an administrator to grant you one".into(),
                        )
                    })?,
            }
        }
    };
    Ok(TenantView {
        id: chosen.id,
        name: chosen.name,
        choices,
    })
}

/// The link that asks a tenant's administrator to consent to this app registration
/// (Microsoft Learn, "Admin consent on the Microsoft identity platform": the v2.0
/// `adminconsent` endpoint with the app's client id, `scope=https://graph.microsoft.com/.default`
/// for its application permissions, and a registered redirect URI; Entra then returns the
/// browser there with `admin_consent=True&tenant=...`). The dashboard shows it for each tenant.
#[derive(Debug, Clone)]
pub struct AdminConsent {
    pub authority: url::Url,
    pub client_id: String,
    /// One of the app's registered redirect URIs: the signed-out page.
    pub redirect_uri: String,
}

impl AdminConsent {
    /// The consent link for `tenant` (its id or domain).
    pub fn url(&self, tenant: &str) -> String {
        let mut url = self.authority.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend([tenant, "v2.0", "adminconsent"]);
        }
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", "https://graph.microsoft.com/.default")
            .append_pair("redirect_uri", &self.redirect_uri);
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consent_link_names_the_tenant_the_app_and_the_redirect_encoded() {
        let consent = AdminConsent {
            authority: url::Url::parse("https://login.microsoftonline.com").expect("url"),
            client_id: "5e1f5a3c-0f6b-4c1e-9d3a-7a51e0c1d2b4".into(),
            redirect_uri: "https://sentinel.example/signed-out".into(),
        };
        assert_eq!(
            consent.url("contoso.onmicrosoft.com"),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/adminconsent\
             ?client_id=5e1f5a3c-0f6b-4c1e-9d3a-7a51e0c1d2b4\
             &scope=https%3A%2F%2Fgraph.microsoft.com%2F.default\
             &redirect_uri=https%3A%2F%2Fsentinel.example%2Fsigned-out"
        );
        // A tenant name cannot reach into the path or the query.
        assert!(
            consent
                .url("a/b?c")
                .contains("/a%2Fb%3Fc/v2.0/adminconsent?")
        );
    }
}
