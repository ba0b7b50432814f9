//! Sign-in through Entra (authorization code + PKCE, state, nonce; see
//! `sentinel_graph::identity::SignIn`), server-side sessions, app roles and CSRF.
//!
//! Roles (app roles on the app registration): `Sentinel.Admin` may change jobs and schedules
//! and operate the worker; `Sentinel.Reader` sees the dashboards. A user with neither is not
//! signed in. Every request that changes something needs the admin role and the session's
//! CSRF token (form field `csrf_token` or header `X-CSRF-Token`).

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::Rng;
use sentinel_graph::identity::PendingSignIn;
use sentinel_store::AuditEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

use crate::AppState;
use crate::render::{error_response, wants_json};

pub const ROLE_ADMIN: &str = "Sentinel.Admin";
pub const ROLE_READER: &str = "Sentinel.Reader";

const USER_KEY: &str = "user";
const PENDING_KEY: &str = "pending_signin";

/// The signed-in user, as kept in the server-side session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CurrentUser {
    pub oid: String,
    pub upn: Option<String>,
    pub name: Option<String>,
    pub roles: Vec<String>,
    /// The session's CSRF token (synchronizer token pattern).
    pub csrf: String,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN)
    }

    /// An audit event with this user as the actor.
    pub fn audit(
        &self,
        action: &str,
        entity_type: &str,
        entity_id: impl ToString,
        details: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent {
            actor_oid: Some(self.oid.clone()),
            actor_upn: self.upn.clone(),
            actor_name: self.name.clone(),
            action: action.to_string(),
            entity_type: Some(entity_type.to_string()),
            entity_id: Some(entity_id.to_string()),
            details,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    signin: PendingSignIn,
    return_to: String,
}

/// Only paths of this site: never an absolute or scheme-relative URL (open redirect).
fn safe_return_to(r: Option<&str>) -> String {
    match r {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.into(),
        _ => "/analytics".into(),
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Response {
    let (url, signin) = state.signin.start();
    let pending = Pending {
        signin,
        return_to: safe_return_to(q.return_to.as_deref()),
    };
    if let Err(e) = session.insert(PENDING_KEY, pending).await {
        return error_response(
            false,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("session store: {e}"),
        );
    }
    Redirect::to(&url).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let refuse = |status, msg: &str| error_response(false, status, msg);
    if let Some(err) = q.error {
        return refuse(
            StatusCode::UNAUTHORIZED,
            &format!(
                "Sign-in failed: {err}: {}",
                q.error_description.unwrap_or_default()
            ),
        );
    }
    let pending: Option<Pending> = session.remove(PENDING_KEY).await.ok().flatten();
    let (Some(pending), Some(code), Some(returned_state)) = (pending, q.code, q.state) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "This sign-in response does not belong to a sign-in started in this browser. Sign in again.",
        );
    };
    let claims = match state
        .signin
        .finish(pending.signin, &code, &returned_state)
        .await
    {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &format!("Sign-in failed: {e}")),
    };
    let roles: Vec<String> = claims
        .roles
        .iter()
        .filter(|r| *r == ROLE_ADMIN || *r == ROLE_READER)
        .cloned()
        .collect();
    if roles.is_empty() {
        return refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "{} has neither the {ROLE_ADMIN} nor the {ROLE_READER} app role. Ask an administrator to assign one.",
                claims
                    .preferred_username
                    .as_deref()
                    .unwrap_or("This account")
            ),
        );
    }
    let user = CurrentUser {
        oid: claims.oid.clone(),
        upn: claims.preferred_username.clone(),
        name: claims.name.clone(),
        roles,
        csrf: new_token(),
    };
    // A new session id at sign-in: a session id planted before sign-in is worthless.
    if let Err(e) = session.cycle_id().await {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("session store: {e}"),
        );
    }
    if let Err(e) = session.insert(USER_KEY, user.clone()).await {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("session store: {e}"),
        );
    }
    let event = user.audit(
        "auth.sign_in",
        "user",
        &user.oid,
        json!({"roles": user.roles}),
    );
    if let Err(e) = state.store.audit(&event).await {
        tracing::warn!(error = %e, "could not audit a sign-in");
    }
    Redirect::to(&pending.return_to).into_response()
}

pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    axum::Extension(user): axum::Extension<CurrentUser>,
) -> Response {
    let event = user.audit("auth.sign_out", "user", &user.oid, json!({}));
    if let Err(e) = state.store.audit(&event).await {
        tracing::warn!(error = %e, "could not audit a sign-out");
    }
    let _ = session.flush().await;
    Redirect::to("/signed-out").into_response()
}

pub async fn signed_out(State(state): State<AppState>) -> Response {
    state
        .views
        .page("signed_out.html", None, tera::Context::new())
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every route behind it needs a signed-in user: pages redirect to sign-in, the API answers 401.
pub async fn require_user(session: Session, mut req: Request, next: Next) -> Response {
    let user: Option<CurrentUser> = session.get(USER_KEY).await.ok().flatten();
    match user {
        Some(user) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        None if req.method() == Method::GET && !wants_json(req.uri()) => {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let mut url = url::form_urlencoded::Serializer::new(String::new());
            url.append_pair("return_to", target);
            Redirect::to(&format!("/auth/login?{}", url.finish())).into_response()
        }
        None => error_response(
            wants_json(req.uri()),
            StatusCode::UNAUTHORIZED,
            "sign in first",
        ),
    }
}

/// A request that changes something needs the admin role (sign-out excepted) and the CSRF token.
pub async fn guard_changes(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let json = wants_json(req.uri());
    let Some(user) = req.extensions().get::<CurrentUser>().cloned() else {
        return error_response(json, StatusCode::UNAUTHORIZED, "sign in first");
    };
    if req.uri().path() != "/auth/logout" && !user.is_admin() {
        return error_response(
            json,
            StatusCode::FORBIDDEN,
            &format!("this change needs the {ROLE_ADMIN} role"),
        );
    }
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                json,
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body over 1 MiB",
            );
        }
    };
    let form_token = || {
        url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf_token")
            .map(|(_, v)| v.into_owned())
    };
    let token = header_token.or_else(form_token);
    if !token.is_some_and(|t| constant_time_eq(t.as_bytes(), user.csrf.as_bytes())) {
        return error_response(
            json,
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the page and try again",
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_on_this_site() {
        assert_eq!(
            safe_return_to(Some("/runs?status=failed")),
            "/runs?status=failed"
        );
        for bad in ["https://evil.example", "//evil.example", "/\\evil", "runs"] {
            assert_eq!(safe_return_to(Some(bad)), "/analytics", "{bad}");
        }
        assert_eq!(safe_return_to(None), "/analytics");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_ne!(new_token(), new_token());
    }
}
