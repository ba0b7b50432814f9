//! Microsoft Entra (identity platform v2.0) endpoints: discovery, keys, token, authorize.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::state::{AuthCode, ROLE_ADMIN, ROLE_READER, ROLE_WORKER_CALLER, SimState};

/// Key id of the simulator's signing key.
pub const KEY_ID: &str = "sentinel-sim-key-1";
const SIGNING_KEY_PEM: &[u8] = include_bytes!("signing_key.pem");
/// Modulus of the signing key, base64url (the public half served as JWKS).
const KEY_N: &str = "n6m0l9cuttso6cLdM0Z6WNeFmDApjK7ONwO-0LS-A9LL6HckE24PnwvWXsTLWvl5gXSRtp7eEo0Z0BJDL-XqpCZ_e2FdKhSErf_DVtN1cr-iNyuKgeJNI0SqCfQz3YJAIGUezHwodZA-yzU4aULDod449O8RE1gTFS1MOZ3Op7njIrudzGYkOzV3jJVWQ8MadftS2F_s7UrWAWcXRQDhLSKlnLDyZSAOhMNhb3BqmFgAQ0s3RBJCQVEvr_Lfsi0aK9xlr22bjU7RiDWafy2lrdaPAkFRf_0NwagJYuJnv9KPtS5AJoGOJjWJ3an57J0KIkoXvLLIcUhy1rBbRNFE2Q";
const KEY_E: &str = "AQAB";
/// Audience of Graph access tokens.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// The claims of every token the simulator issues: Graph access tokens (v1 shape) and ID tokens and API tokens for the dashboard's app (v2 shape), as Microsoft identity platform documents them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: `{base}/{tenant}/v2.0`, or `https://sts.windows.net/{tenant}/` for v1 tokens.
    pub iss: String,
    /// Audience: Graph, or the app's id or `api://` URI.
    pub aud: String,
    /// Tenant id.
    pub tid: String,
    /// Subject: the user or the app's service principal.
    pub sub: String,
    /// Object id of the user or service principal.
    pub oid: String,
    /// v2 tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// The client app's id (v1 tokens).
    pub appid: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Not before (Unix seconds).
    pub nbf: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Token version: `1.0` or `2.0`.
    pub ver: String,
    /// App roles assigned (e.g. `Sentinel.Admin`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The nonce the sign-in request sent (ID tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The user's sign-in name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Delegated scopes; absent in app-only tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Revocation generation (`/_sim/auth` revoke bumps it).
    #[serde(default)]
    pub xms_sim_gen: u64,
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `scheme://host[:port]` of this simulator as the caller reached it.
pub fn base_url(state: &SimState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.config.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

pub(crate) fn issuer(base: &str, tenant_id: &str) -> String {
    format!("{base}/{tenant_id}/v2.0")
}

/// Signs claims with the simulator's key (tests forge tokens with it: right key, wrong claims).
pub fn sign(claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    let key = EncodingKey::from_rsa_pem(SIGNING_KEY_PEM)?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KEY_ID.to_string());
    jsonwebtoken::encode(&header, claims, &key)
}

pub(crate) fn decoding_key() -> Result<DecodingKey, jsonwebtoken::errors::Error> {
    DecodingKey::from_rsa_components(KEY_N, KEY_E)
}

pub(crate) fn tenant_ok(state: &SimState, tenant: &str) -> Result<String, Response> {
    let t = state.read_tenant();
    if tenant == t.tenant_id || tenant.eq_ignore_ascii_case(&t.domain) {
        Ok(t.tenant_id.clone())
    } else {
        Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        ))
    }
}

pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description, "error_codes": []})),
    )
        .into_response()
}

pub(crate) async fn openid_configuration(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let tid = match tenant_ok(&state, &tenant) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let base = base_url(&state, &headers);
    Json(json!({
        "issuer": issuer(&base, &tid),
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "response_types_supported": ["code", "id_token", "code id_token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "oid", "tid", "name", "preferred_username", "roles"],
        "tenant_region_scope": "NA",
    }))
    .into_response()
}

pub(crate) async fn keys(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
) -> Response {
    if let Err(r) = tenant_ok(&state, &tenant) {
        return r;
    }
    Json(json!({"keys": [{"kty": "RSA", "use": "sig", "kid": KEY_ID, "alg": "RS256", "n": KEY_N, "e": KEY_E}]}))
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

/// Client id and secret from the form or from HTTP Basic auth (oauth2 crates use either).
fn client_credentials(form: &TokenForm, headers: &HeaderMap) -> (Option<String>, Option<String>) {
    if let Some(basic) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        && let Some((id, secret)) = basic.split_once(':')
    {
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return (dec(id), dec(secret));
    }
    (form.client_id.clone(), form.client_secret.clone())
}

pub(crate) async fn token(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let tid = match tenant_ok(&state, &tenant) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (client_id, secret) = client_credentials(&form, &headers);
    if client_id.as_deref() != Some(state.config.client_id.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!(
                "AADSTS700016: Application with identifier '{}' was not found in the directory.",
                client_id.unwrap_or_default()
            ),
        );
    }
    if secret.as_deref() != Some(state.config.client_secret.as_str()) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    let base = base_url(&state, &headers);
    let now = unix_now();
    let lifetime = state.token_lifetime_secs.load(Ordering::SeqCst);
    let app = state.config.client_id.clone();
    match form.grant_type.as_deref() {
        Some("client_credentials") => {
            let scope = form.scope.unwrap_or_default();
            let (aud, roles) = if scope == format!("{GRAPH_AUDIENCE}/.default") {
                (
                    GRAPH_AUDIENCE.to_string(),
                    vec![
                        if state.config.sites_full_control {
                            "Sites.FullControl.All".to_string()
                        } else {
                            "Sites.Read.All".to_string()
                        },
                        "User.Read.All".into(),
                        "GroupMember.Read.All".into(),
                        "Files.Read.All".into(),
                    ],
                )
            } else if scope == format!("api://{app}/.default") || scope == format!("{app}/.default")
            {
                // v1 (the default for an app registration): the audience is the resource as
                // requested, the App ID URI for `api://` scopes.
                let aud = if state.config.api_token_version == 1 {
                    scope.trim_end_matches("/.default").to_string()
                } else {
                    app.clone()
                };
                (aud, vec![ROLE_WORKER_CALLER.to_string()])
            } else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!(
                        "AADSTS1002012: The provided value for scope '{scope}' is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier."
                    ),
                );
            };
            // Tokens for our own API are v1 unless the app manifest sets
            // `requestedAccessTokenVersion: 2` (Entra "Access tokens": token formats).
            let v1 = aud != GRAPH_AUDIENCE && state.config.api_token_version == 1;
            let claims = Claims {
                iss: if v1 {
                    format!("https://sts.windows.net/{tid}/")
                } else {
                    issuer(&base, &tid)
                },
                aud,
                tid: tid.clone(),
                sub: app.clone(),
                oid: app.clone(),
                azp: (!v1).then(|| app.clone()),
                appid: app.clone(),
                iat: now,
                nbf: now,
                exp: now + lifetime,
                ver: if v1 { "1.0" } else { "2.0" }.into(),
                roles,
                nonce: None,
                preferred_username: None,
                name: None,
                scp: None,
                xms_sim_gen: state.revoked_before.load(Ordering::SeqCst),
            };
            issue(
                &state,
                json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime}),
                &[("access_token", claims)],
            )
        }
        Some("authorization_code") => {
            let Some(code) = form
                .code
                .as_deref()
                .and_then(|c| state.codes.lock().ok()?.remove(c))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "AADSTS70008: The provided authorization code is invalid or has expired.",
                );
            };
            if code.issued.elapsed().as_secs() > 600 {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "AADSTS70008: The provided authorization code has expired.",
                );
            }
            if form.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "AADSTS50148: The redirect_uri does not match the one used in the authorization request.",
                );
            }
            let verifier = form.code_verifier.unwrap_or_default();
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if challenge != code.code_challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                );
            }
            crate::signin::user_tokens(&state, &base, &tid, code.user, code.nonce, code.offline)
        }
        Some("refresh_token") => {
            crate::signin::redeem_refresh_token(&state, &base, &tid, form.refresh_token.as_deref())
        }
        other => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!(
                "AADSTS70003: The app requested an unsupported grant type '{}'.",
                other.unwrap_or("")
            ),
        ),
    }
}

pub(crate) fn issue(
    state: &SimState,
    mut body: serde_json::Value,
    tokens: &[(&str, Claims)],
) -> Response {
    for (field, claims) in tokens {
        match sign(claims) {
            Ok(jwt) => {
                let mut issued = state
                    .issued_tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if issued.len() >= 10_000 {
                    issued.pop_front();
                }
                issued.push_back(jwt.clone());
                body[*field] = json!(jwt)
            }
            Err(e) => {
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    &format!("signing failed: {e}"),
                );
            }
        }
    }
    state.lock_stats().tokens_issued += 1;
    Json(body).into_response()
}

/// App roles of the demo users: the first user is an admin, the second a reader.
pub fn demo_roles(user: usize) -> Vec<&'static str> {
    match user {
        0 => vec![ROLE_ADMIN],
        1 => vec![ROLE_READER],
        _ => Vec::new(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuthorizeQuery {
    client_id: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scope: Option<String>,
    /// `login` or `select_account` show the account picker even within a session.
    prompt: Option<String>,
    /// Set by the sign-in page's buttons: the chosen demo user.
    login_hint_user: Option<usize>,
}

/// The sign-in page: lists the demo users; choosing one redirects back with a code.
pub(crate) async fn authorize(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(mut q): Query<AuthorizeQuery>,
) -> Response {
    if let Err(r) = tenant_ok(&state, &tenant) {
        return r;
    }
    let bad = |msg: &str| {
        (
            StatusCode::BAD_REQUEST,
            Html(format!("<h1>Sign-in error</h1><p>{}</p>", html_escape(msg))),
        )
            .into_response()
    };
    if q.client_id.as_deref() != Some(state.config.client_id.as_str()) {
        return bad("AADSTS700016: unknown client_id.");
    }
    if q.response_type.as_deref() != Some("code") {
        return bad("AADSTS900144: response_type must be 'code'.");
    }
    let Some(redirect_uri) = q
        .redirect_uri
        .clone()
        .filter(|r| r.starts_with("http://") || r.starts_with("https://"))
    else {
        return bad("AADSTS900144: redirect_uri is required and must be an http(s) URL.");
    };
    if q.code_challenge_method.as_deref() != Some("S256")
        || q.code_challenge.as_deref().is_none_or(str::is_empty)
    {
        return bad(
            "AADSTS9002325: Proof Key for Code Exchange (PKCE, method S256) is required for this client.",
        );
    }
    if !q
        .scope
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .any(|s| s == "openid")
    {
        return bad("AADSTS900144: scope must include 'openid'.");
    }
    // Within a session (an account picked before, not signed out) Entra signs in silently.
    let picked = q.login_hint_user.is_some();
    if !picked && !matches!(q.prompt.as_deref(), Some("login" | "select_account")) {
        q.login_hint_user = crate::signin::session_user(&headers);
    }
    if let Some(user) = q.login_hint_user {
        // Any account of the tenant may sign in (the app, not Entra, decides what a user
        // without a role sees); the picker lists the two demo accounts, and `/_sim/auth` can
        // give others roles.
        if user >= state.read_tenant().users.len() {
            return bad("AADSTS50034: the user account does not exist in this tenant.");
        }
        let code = crate::signin::random_token(&state);
        if let Ok(mut codes) = state.codes.lock() {
            codes.insert(
                code.clone(),
                AuthCode {
                    user,
                    redirect_uri: redirect_uri.clone(),
                    code_challenge: q.code_challenge.clone().unwrap_or_default(),
                    nonce: q.nonce.clone(),
                    issued: Instant::now(),
                    offline: q
                        .scope
                        .as_deref()
                        .unwrap_or("")
                        .split(' ')
                        .any(|s| s == "offline_access"),
                },
            );
        }
        let mut target = match url::Url::parse(&redirect_uri) {
            Ok(u) => u,
            Err(_) => return bad("redirect_uri is not a valid URL"),
        };
        target.query_pairs_mut().append_pair("code", &code);
        if let Some(s) = &q.state {
            target.query_pairs_mut().append_pair("state", s);
        }
        let mut resp = Redirect::to(target.as_str()).into_response();
        if picked {
            crate::signin::start_session(&mut resp, user);
        }
        return resp;
    }
    let t = state.read_tenant();
    let mut rows = String::new();
    for u in 0..2.min(t.users.len()) {
        let user = &t.users[u];
        let mut params = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("client_id", &q.client_id),
            ("response_type", &q.response_type),
            ("redirect_uri", &q.redirect_uri),
            ("state", &q.state),
            ("nonce", &q.nonce),
            ("code_challenge", &q.code_challenge),
            ("code_challenge_method", &q.code_challenge_method),
            ("scope", &q.scope),
        ] {
            if let Some(v) = v {
                params.append_pair(k, v);
            }
        }
        params.append_pair("login_hint_user", &u.to_string());
        rows.push_str(&format!(
            "<li><a id=\"user-{u}\" href=\"?{}\">{} &lt;{}&gt; — role {}</a></li>",
            html_escape(&params.finish()),
            html_escape(&user.display_name),
            html_escape(&user.upn),
            demo_roles(u).join(", ")
        ));
    }
    Html(format!(
        "<!doctype html><html><head><title>Sign in - Sentinel simulated tenant</title></head><body>\
         <h1>Pick an account</h1><p>Simulated tenant {} ({})</p><ul>{rows}</ul></body></html>",
        html_escape(&t.domain),
        html_escape(&t.tenant_id)
    ))
    .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Validates a Graph bearer token; returns the calling app's id.
pub fn validate_graph_token(
    state: &SimState,
    headers: &HeaderMap,
) -> Result<String, (StatusCode, &'static str, String)> {
    let unauthorized = |m: &str| {
        (
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            m.to_string(),
        )
    };
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let key = decoding_key().map_err(|_| unauthorized("signing key unavailable"))?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[GRAPH_AUDIENCE]);
    v.leeway = 0;
    let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
            unauthorized("Lifetime validation failed, the token is expired.")
        }
        _ => unauthorized("Access token validation failure. Invalid audience or signature."),
    })?;
    let tid = state.read_tenant().tenant_id.clone();
    if data.claims.tid != tid {
        return Err(unauthorized("Access token is for another tenant."));
    }
    if data.claims.xms_sim_gen < state.revoked_before.load(Ordering::SeqCst) {
        return Err(unauthorized("Access token has been revoked."));
    }
    Ok(data.claims.appid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_key_pair_matches() {
        let now = unix_now();
        let claims = Claims {
            iss: "i".into(),
            aud: GRAPH_AUDIENCE.into(),
            tid: "t".into(),
            sub: "s".into(),
            oid: "o".into(),
            azp: Some("a".into()),
            appid: "a".into(),
            iat: now,
            nbf: now,
            exp: now + 60,
            ver: "2.0".into(),
            roles: vec![],
            nonce: None,
            preferred_username: None,
            name: None,
            scp: None,
            xms_sim_gen: 0,
        };
        let jwt = sign(&claims).expect("sign");
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[GRAPH_AUDIENCE]);
        let back = jsonwebtoken::decode::<Claims>(&jwt, &decoding_key().expect("key"), &v)
            .expect("verify");
        assert_eq!(back.claims.oid, "o");
    }
}
