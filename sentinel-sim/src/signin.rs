//! What outlives one sign-in: the browser's session with Entra (silent sign-in until it signs
//! out), refresh tokens, and the roles a user holds now.
//!
//! - Entra keeps a session of its own: an account picked once signs in again without the
//!   picker until the browser goes to the `end_session_endpoint` of the OpenID configuration
//!   (`/{tenant}/oauth2/v2.0/logout`), which ends it and returns to `post_logout_redirect_uri`
//!   (Microsoft identity platform, "OpenID Connect": "Send a sign-out request").
//! - A sign-in that asks for `offline_access` gets a refresh token with its code's redemption;
//!   redeeming it (`grant_type=refresh_token`) returns a new id token carrying the roles the
//!   user holds *now*, and the next refresh token ("OAuth 2.0 authorization code flow":
//!   "Refresh the access token"; "Refresh tokens in the Microsoft identity platform"). A
//!   disabled user or a revoked session gets `invalid_grant`.

use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use crate::entra::{
    Claims, GRAPH_AUDIENCE, demo_roles, issue, issuer, oauth_error, tenant_ok, unix_now,
};
use crate::state::{RefreshGrant, SimState};
use crate::tenant::Lifecycle;

/// The cookie of the browser's session with the simulated Entra: the demo user it signed in.
const SESSION_COOKIE: &str = "sim_entra_session";

/// The user of the browser's Entra session, if it has one.
pub(crate) fn session_user(headers: &HeaderMap) -> Option<usize> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .and_then(|(_, v)| v.parse().ok())
}

/// Starts the browser's Entra session as `user` (an account was picked).
pub(crate) fn start_session(resp: &mut Response, user: usize) {
    if let Ok(v) = format!("{SESSION_COOKIE}={user}; Path=/; HttpOnly; SameSite=Lax").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The app roles `user` holds now: as set through `/_sim/auth`, else the demo user's own.
pub(crate) fn roles_of(state: &SimState, user: usize) -> Vec<String> {
    let overrides = state
        .role_overrides
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match overrides.get(&user) {
        Some(roles) => roles.clone(),
        None => demo_roles(user).into_iter().map(String::from).collect(),
    }
}

/// A random secret (authorization codes, refresh tokens).
pub(crate) fn random_token(state: &SimState) -> String {
    let mut rng = state.lock_rng();
    (0..48)
        .map(|_| {
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    [rng.random_range(0..62)],
            )
        })
        .collect()
}

/// The tokens of a signed-in user: an id token for our app (with its roles now), an access
/// token for Graph, and a refresh token when the sign-in asked for `offline_access`.
pub(crate) fn user_tokens(
    state: &SimState,
    base: &str,
    tid: &str,
    user: usize,
    nonce: Option<String>,
    offline: bool,
) -> Response {
    let now = unix_now();
    let lifetime = state.token_lifetime_secs.load(Ordering::SeqCst);
    let app = state.config.client_id.clone();
    let generation = state.revoked_before.load(Ordering::SeqCst);
    let (oid, upn, name) = {
        let t = state.read_tenant();
        let u = &t.users[user];
        (u.id.clone(), u.upn.clone(), u.display_name.clone())
    };
    let id_claims = Claims {
        iss: issuer(base, tid),
        aud: app.clone(),
        tid: tid.to_string(),
        sub: oid.clone(),
        oid: oid.clone(),
        azp: Some(app.clone()),
        appid: app.clone(),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        ver: "2.0".into(),
        roles: roles_of(state, user),
        nonce,
        preferred_username: Some(upn),
        name: Some(name),
        scp: None,
        xms_sim_gen: generation,
    };
    let access_claims = Claims {
        aud: GRAPH_AUDIENCE.to_string(),
        nonce: None,
        roles: Vec::new(),
        scp: Some("openid profile email User.Read".into()),
        ..id_claims.clone()
    };
    let mut body = json!({"token_type": "Bearer", "expires_in": lifetime, "scope": "openid profile email User.Read"});
    if offline {
        let refresh = random_token(state);
        state
            .refresh_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(refresh.clone(), RefreshGrant { user, generation });
        body["refresh_token"] = json!(refresh);
    }
    issue(
        state,
        body,
        &[("id_token", id_claims), ("access_token", access_claims)],
    )
}

/// `grant_type=refresh_token`: the user as the directory holds them now.
pub(crate) fn redeem_refresh_token(
    state: &SimState,
    base: &str,
    tid: &str,
    token: Option<&str>,
) -> Response {
    let invalid =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    // A redeemed refresh token stays valid beside its successor (Entra: "Refresh tokens
    // replace themselves with a fresh token upon every use", and nothing revokes the old one):
    // two requests of one session may refresh at once.
    let grant = token.and_then(|t| {
        state
            .refresh_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(t)
            .cloned()
    });
    let Some(grant) = grant else {
        return invalid("AADSTS70000: The provided grant is invalid or malformed.");
    };
    if grant.generation < state.revoked_before.load(Ordering::SeqCst) {
        return invalid(
            "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed.",
        );
    }
    let usable = {
        let t = state.read_tenant();
        t.users
            .get(grant.user)
            .map(|u| (u.account_enabled, u.state == Lifecycle::Active))
    };
    match usable {
        Some((true, true)) => user_tokens(state, base, tid, grant.user, None, true),
        Some((false, true)) => invalid("AADSTS50057: The user account is disabled."),
        _ => invalid("AADSTS50034: The user account does not exist in the directory."),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogoutQuery {
    post_logout_redirect_uri: Option<String>,
}

/// Ends the browser's Entra session, then returns to `post_logout_redirect_uri` (or says so).
pub(crate) async fn logout(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Query(q): Query<LogoutQuery>,
) -> Response {
    if let Err(refused) = tenant_ok(&state, &tenant) {
        return refused;
    }
    state.lock_stats().sign_outs += 1;
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    let mut resp = match q
        .post_logout_redirect_uri
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    {
        Some(to) => Redirect::to(&to).into_response(),
        None => {
            Html("<!doctype html><title>Signed out</title><h1>You signed out of your account</h1>")
                .into_response()
        }
    };
    if let Ok(v) = clear.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
