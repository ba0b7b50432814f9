//! Security headers on every response, and the stylesheet (the only static asset).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The compiled Tailwind stylesheet (`assets/build-css.sh` rebuilds it).
const STYLESHEET: &str = include_str!("../static/app.css");

/// The Content-Security-Policy: no script at all, no framing, styles and images from this
/// site only. Forms post to this site only, and may be redirected from it to Entra's origin
/// alone (`authority`): sign-out ends there, and browsers apply `form-action` to the redirects
/// a form submission follows.
pub fn content_security_policy(
    authority: &url::Url,
) -> Result<HeaderValue, axum::http::header::InvalidHeaderValue> {
    let entra = authority.origin().ascii_serialization();
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'none'; \
         form-action 'self' {entra}; frame-ancestors 'none'; base-uri 'none'"
    ))
}

/// The CSP of [`content_security_policy`], no sniffing, no referrer leaking ids to other
/// origins, HSTS, and no caching of pages.
pub async fn headers(State(state): State<AppState>, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, state.csp.clone());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Browsers heed it only over https, where it keeps every later visit on https.
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}
