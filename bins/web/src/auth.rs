//! Sign-in through Entra (authorization code + PKCE, state, nonce; see
//! `sentinel_graph::identity::SignIn`), server-side sessions, app roles and CSRF.
//!
//! Roles (app roles on the app registration): `Sentinel.Admin` may change jobs and schedules
//! and operate the worker; `Sentinel.Reader` sees the dashboards. A user with neither is not
//! signed in. Every request that changes something needs the admin role and the session's
//! CSRF token (form field `csrf_token` or header `X-CSRF-Token`).
//!
//! Roles are not frozen at sign-in: once `WEB_ROLE_RECHECK_SECS` have passed, the next request
//! asks Entra again through the session's refresh token (kept server-side, never in a cookie)
//! and takes the roles the user holds then; a user whose roles are gone, or whom Entra no
//! longer accepts (disabled, sessions revoked), is signed out. Sign-out ends Entra's session
//! too, through the tenant's end-session endpoint.

use axum::body::Body;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sentinel_graph::GraphError;
use sentinel_store::AuditEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

use crate::AppState;
use crate::error::WebError;
use crate::format::Format;

pub const ROLE_ADMIN: &str = "Sentinel.Admin";
pub const ROLE_READER: &str = "Sentinel.Reader";

const USER_KEY: &str = "user";
const ENTRA_KEY: &str = "entra";

/// What lets us ask Entra about the user again: in the server-side session only.
#[derive(Serialize, Deserialize)]
struct EntraSession {
    refresh_token: String,
    checked_at: DateTime<Utc>,
}

impl EntraSession {
    fn new(refresh_token: &SecretString) -> EntraSession {
        EntraSession {
            refresh_token: refresh_token.expose_secret().to_string(),
            checked_at: Utc::now(),
        }
    }
}

/// The roles of ours among a token's.
fn our_roles(roles: &[String]) -> Vec<String> {
    roles
        .iter()
        .filter(|r| *r == ROLE_ADMIN || *r == ROLE_READER)
        .cloned()
        .collect()
}

/// The signed-in user, as kept in the server-side session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CurrentUser {
    pub oid: String,
    pub upn: Option<String>,
    pub name: Option<String>,
    pub roles: Vec<String>,
    /// The session's CSRF token (synchronizer token pattern).
    pub csrf: String,
    /// The tenant this request shows ([`crate::tenancy::select_tenant`] sets it; never kept in
    /// the session with the user).
    #[serde(skip)]
    pub viewing: Option<crate::tenancy::TenantView>,
}

impl CurrentUser {
    /// How the user is named where a change they made is shown: their sign-in name, else
    /// their display name.
    pub fn shown_as(&self) -> Option<String> {
        self.upn.clone().or_else(|| self.name.clone())
    }

    /// A user just signed in, with a fresh CSRF token.
    pub fn new(
        oid: String,
        upn: Option<String>,
        name: Option<String>,
        roles: Vec<String>,
    ) -> CurrentUser {
        CurrentUser {
            oid,
            upn,
            name,
            roles,
            csrf: new_token(),
            viewing: None,
        }
    }

    /// The tenant this request shows: set on every signed-in route (see
    /// [`crate::tenancy::select_tenant`]).
    pub fn tenant(&self) -> Result<&str, WebError> {
        self.viewing
            .as_ref()
            .map(|v| v.id.as_str())
            .ok_or(WebError::SignInFirst)
    }

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
            tenant_id: self.viewing.as_ref().map(|v| v.id.clone()),
        }
    }
}

/// The signed-in user of a route behind [`require_user`].
impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<CurrentUser, WebError> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or(WebError::SignInFirst)
    }
}

/// A signed-in user with the admin role: what every change needs.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl<S: Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<AdminUser, WebError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(needs_admin());
        }
        Ok(AdminUser(user))
    }
}

fn needs_admin() -> WebError {
    WebError::Forbidden(format!("this needs the {ROLE_ADMIN} role"))
}

/// Only paths of this site (no open redirect). The target is judged as the browser will read
/// it: parsed by a WHATWG URL parser (the `url` crate), which drops tabs and newlines and reads
/// `\` as `/`, against an origin of our own; anything that leaves that origin goes to the
/// dashboard instead, and what is kept is the parsed path and query, never the raw text.
fn safe_return_to(r: Option<&str>) -> String {
    const HOME: &str = "/analytics";
    let Some(raw) = r.filter(|p| p.starts_with('/')) else {
        return HOME.into();
    };
    let Ok(base) = url::Url::parse("https://sentinel.invalid/") else {
        return HOME.into();
    };
    match base.join(raw) {
        Ok(u) if u.origin() == base.origin() => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        _ => HOME.into(),
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

/// Sends the browser to Entra. What the callback will check travels in a signed cookie:
/// nothing is stored for a browser that only starts a sign-in.
pub async fn login(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let (url, signin) = state.signin.start();
    let cookie = state
        .signin_cookie
        .set(signin, safe_return_to(q.return_to.as_deref()))
        .ok_or_else(|| WebError::BadInput("could not start a sign-in".into()))?;
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Finishes a sign-in this browser started (its signed cookie), and only then stores a session.
pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, WebError> {
    if let Some(err) = q.error {
        return Err(WebError::SignInFailed(format!(
            "Sign-in failed: {err}: {}",
            q.error_description.unwrap_or_default()
        )));
    }
    let pending = state.signin_cookie.read(&headers);
    let (Some(pending), Some(code), Some(returned_state)) = (pending, q.code, q.state) else {
        return Err(WebError::BadInput(
            "This sign-in response does not belong to a sign-in started in this browser. Sign in again."
                .into(),
        ));
    };
    let signed = state
        .signin
        .finish(pending.signin, &code, &returned_state)
        .await
        .map_err(|e| WebError::SignInFailed(format!("Sign-in failed: {e}")))?;
    let claims = &signed.claims;
    let roles = our_roles(&claims.roles);
    if roles.is_empty() {
        return Err(WebError::Forbidden(format!(
            "{} has neither the {ROLE_ADMIN} nor the {ROLE_READER} app role. Ask an administrator to assign one.",
            claims
                .preferred_username
                .as_deref()
                .unwrap_or("This account")
        )));
    }
    let user = CurrentUser::new(
        claims.oid.clone(),
        claims.preferred_username.clone(),
        claims.name.clone(),
        roles,
    );
    keep_signed_in(&session, &user).await?;
    match &signed.refresh_token {
        Some(token) => session.insert(ENTRA_KEY, EntraSession::new(token)).await?,
        None => tracing::warn!(
            "Entra sent no refresh token (offline_access not granted): this session's roles cannot be re-checked"
        ),
    }
    let event = user.audit(
        "auth.sign_in",
        "user",
        &user.oid,
        json!({"roles": user.roles}),
    );
    state.record_audit(&event).await;
    // The started sign-in is used up.
    let clear = state.signin_cookie.clear();
    let mut resp = Redirect::to(&pending.return_to).into_response();
    if let Some(c) = clear {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// Makes `session` the signed-in session of `user`.
pub async fn keep_signed_in(session: &Session, user: &CurrentUser) -> Result<(), WebError> {
    // A new session id at sign-in: a session id planted before sign-in is worthless.
    session.cycle_id().await?;
    session.insert(USER_KEY, user.clone()).await?;
    Ok(())
}

/// Ends the session; when the session store cannot delete it, the user is told, not shown
/// "signed out" while the session lives on.
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<Redirect, WebError> {
    let event = user.audit("auth.sign_out", "user", &user.oid, json!({}));
    state.record_audit(&event).await;
    session.flush().await?;
    // Entra's session ends too, or the next sign-in would be silent, as this user.
    Ok(Redirect::to(
        &state.signin.sign_out_url(&state.signed_out_uri),
    ))
}

pub async fn signed_out(State(state): State<AppState>) -> Result<Response, WebError> {
    state
        .views
        .page("signed_out.html", None, &serde_json::json!({}))
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every route behind it needs a signed-in user: pages redirect to sign-in, the API answers 401.
/// The user's roles are re-checked with Entra once `role_recheck` has passed.
pub async fn require_user(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    let user: Option<CurrentUser> = match session.get(USER_KEY).await {
        Ok(u) => u,
        Err(e) => return WebError::from(e).into_response(),
    };
    let user = match user {
        Some(user) => match recheck(&state, &session, user).await {
            Ok(user) => user,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    match user {
        Some(user) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        None if req.method() == Method::GET && Format::of(req.uri()) != Format::Json => {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let mut url = url::form_urlencoded::Serializer::new(String::new());
            url.append_pair("return_to", target);
            Redirect::to(&format!("/auth/login?{}", url.finish())).into_response()
        }
        None => WebError::SignInFirst.into_response(),
    }
}

/// The user as Entra sees them now, when the last look is older than `role_recheck`; `None`
/// (and the session ended) when Entra no longer accepts them or they hold none of our roles.
/// When Entra cannot be reached the roles are kept and asked about on the next request.
async fn recheck(
    state: &AppState,
    session: &Session,
    user: CurrentUser,
) -> Result<Option<CurrentUser>, WebError> {
    let Some(entra) = session.get::<EntraSession>(ENTRA_KEY).await? else {
        return Ok(Some(user));
    };
    let age = (Utc::now() - entra.checked_at).to_std().unwrap_or_default();
    if age < state.role_recheck {
        return Ok(Some(user));
    }
    let token = SecretString::from(entra.refresh_token);
    let signed = match state.signin.refresh(&token).await {
        Ok(signed) if signed.claims.oid == user.oid => signed,
        Ok(_) => {
            return end_session(state, session, &user, "Entra answered for another user").await;
        }
        Err(GraphError::Auth(why)) => return end_session(state, session, &user, &why).await,
        Err(e) => {
            tracing::warn!(error = %e, "could not re-check the signed-in user with Entra; asking again on the next request");
            return Ok(Some(user));
        }
    };
    let roles = our_roles(&signed.claims.roles);
    if roles.is_empty() {
        return end_session(state, session, &user, "the user holds none of our roles").await;
    }
    if roles != user.roles {
        let event = user.audit(
            "auth.roles_changed",
            "user",
            &user.oid,
            json!({"from": user.roles, "to": roles}),
        );
        state.record_audit(&event).await;
    }
    let now = CurrentUser {
        roles,
        upn: signed.claims.preferred_username.clone().or(user.upn),
        name: signed.claims.name.clone().or(user.name),
        ..user
    };
    session.insert(USER_KEY, now.clone()).await?;
    let next = EntraSession::new(signed.refresh_token.as_ref().unwrap_or(&token));
    session.insert(ENTRA_KEY, next).await?;
    Ok(Some(now))
}

/// Ends a session Entra no longer vouches for, and says why in the audit trail.
async fn end_session(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    why: &str,
) -> Result<Option<CurrentUser>, WebError> {
    tracing::info!(user = %user.oid, why, "session ended by the re-check with Entra");
    let event = user.audit("auth.session_ended", "user", &user.oid, json!({"why": why}));
    state.record_audit(&event).await;
    session.flush().await?;
    Ok(None)
}

/// A request that changes something needs the admin role (sign-out excepted) and the CSRF token.
pub async fn guard_changes(req: Request, next: Next) -> Result<Response, WebError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(next.run(req).await);
    }
    let Some(user) = req.extensions().get::<CurrentUser>().cloned() else {
        return Err(WebError::SignInFirst);
    };
    if req.uri().path() != "/auth/logout" && !user.is_admin() {
        return Err(needs_admin());
    }
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| WebError::TooLarge)?;
    let form_token = || {
        url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf_token")
            .map(|(_, v)| v.into_owned())
    };
    let token = header_token.or_else(form_token);
    if !token.is_some_and(|t| constant_time_eq(t.as_bytes(), user.csrf.as_bytes())) {
        return Err(WebError::Forbidden(
            "missing or wrong CSRF token: reload the page and try again".into(),
        ));
    }
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
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
        assert_eq!(
            safe_return_to(Some("/drives/b!x/items/01AB?live=1")),
            "/drives/b!x/items/01AB?live=1"
        );
        // What browsers turn into another origin: tabs and newlines are dropped, `\` is `/`.
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            "\\/evil.example",
            "/\t/evil.example/",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\t\\evil.example",
            "https:evil.example",
            "https:",
            "javascript:alert(1)",
            "runs",
            "",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/analytics", "{bad:?}");
        }
        // Encoded forms stay encoded: a path of this site, not a host.
        assert_eq!(
            safe_return_to(Some("/%2F%2Fevil.example")),
            "/%2F%2Fevil.example"
        );
        assert_eq!(
            safe_return_to(Some("/%09/evil.example/")),
            "/%09/evil.example/"
        );
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
