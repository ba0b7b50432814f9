//! The sign-in in progress, carried by the browser: between `/auth/login` and the callback the
//! state, nonce, PKCE verifier and return path travel in a cookie signed with HMAC-SHA256 and
//! valid for ten minutes. Nothing is stored for a browser that only starts a sign-in, so
//! anonymous requests cannot fill the session table; a session row is written only once the
//! callback proves the state.
//!
//! The key is derived from the app's client secret, so every web replica shares it and it
//! changes when the secret is rotated (which only voids sign-ins in flight).

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sentinel_graph::identity::PendingSignIn;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower_sessions::cookie::{Cookie, SameSite, time::Duration};

/// How long a started sign-in may take.
const LIFETIME_SECS: i64 = 600;

/// What the cookie carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub signin: PendingSignIn,
    /// Where to go once signed in (already checked to stay on this site).
    pub return_to: String,
    /// Unix time after which the cookie is refused.
    expires: i64,
}

/// Signs, writes and reads the sign-in cookie.
#[derive(Debug)]
pub struct SignInCookie {
    key: [u8; 32],
    secure: bool,
}

impl SignInCookie {
    pub fn new(client_secret: &SecretString, secure: bool) -> SignInCookie {
        let mut h = Sha256::new();
        h.update(b"princeton-sentinel sign-in cookie v1\0");
        h.update(client_secret.expose_secret().as_bytes());
        SignInCookie {
            key: h.finalize().into(),
            secure,
        }
    }

    /// Over https with the `__Host-` prefix, like the session cookie.
    fn name(&self) -> &'static str {
        if self.secure {
            "__Host-sentinel_signin"
        } else {
            "sentinel_signin"
        }
    }

    /// HMAC takes a key of any length, so this is always `Some`.
    fn mac(&self) -> Option<Hmac<Sha256>> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).ok()
    }

    fn cookie(&self, value: String, max_age: i64) -> Option<HeaderValue> {
        let c = Cookie::build((self.name(), value))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(Duration::seconds(max_age))
            .build();
        HeaderValue::from_str(&c.to_string()).ok()
    }

    /// The `Set-Cookie` value that carries `signin` and `return_to` for ten minutes.
    pub fn set(&self, signin: PendingSignIn, return_to: String) -> Option<HeaderValue> {
        let pending = Pending {
            signin,
            return_to,
            expires: chrono::Utc::now().timestamp() + LIFETIME_SECS,
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&pending).ok()?);
        let mut mac = self.mac()?;
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        self.cookie(format!("{body}.{tag}"), LIFETIME_SECS)
    }

    /// The `Set-Cookie` value that removes it (once the callback has read it).
    pub fn clear(&self) -> Option<HeaderValue> {
        self.cookie(String::new(), 0)
    }

    /// The sign-in this browser started, if its cookie is present, intact and not expired.
    pub fn read(&self, headers: &HeaderMap) -> Option<Pending> {
        let value = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| Cookie::split_parse(h.to_string()).flatten())
            .find(|c| c.name() == self.name())?
            .value()
            .to_string();
        let (body, tag) = value.split_once('.')?;
        let mut mac = self.mac()?;
        mac.update(body.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(tag).ok()?).ok()?;
        let pending: Pending = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (pending.expires >= chrono::Utc::now().timestamp()).then_some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("name=value")
            .to_string();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&pair).expect("value"));
        h
    }

    fn pending() -> PendingSignIn {
        serde_json::from_value(serde_json::json!({
            "state": "s", "nonce": "n", "pkce_verifier": "v"
        }))
        .expect("pending")
    }

    #[test]
    fn only_an_intact_cookie_of_this_key_is_read() {
        let cookies = SignInCookie::new(&SecretString::from("secret".to_string()), true);
        let set = cookies.set(pending(), "/runs".into()).expect("cookie");
        let text = set.to_str().expect("ascii");
        assert!(text.starts_with("__Host-sentinel_signin="), "{text}");
        assert!(
            text.contains("HttpOnly") && text.contains("Secure") && text.contains("Max-Age=600")
        );
        let read = cookies.read(&headers(&set)).expect("intact");
        assert_eq!(read.return_to, "/runs");
        assert_eq!(read.signin.state, "s");

        // Another key (another app secret) does not accept it.
        let other = SignInCookie::new(&SecretString::from("other".to_string()), true);
        assert!(other.read(&headers(&set)).is_none());
        // A changed return path breaks the signature.
        let tampered = text.replacen("sentinel_signin=", "sentinel_signin=x", 1);
        assert!(
            cookies
                .read(&headers(&HeaderValue::from_str(&tampered).expect("v")))
                .is_none()
        );
    }

    #[test]
    fn an_expired_cookie_is_refused() {
        let cookies = SignInCookie::new(&SecretString::from("secret".to_string()), false);
        let old = Pending {
            signin: pending(),
            return_to: "/".into(),
            expires: chrono::Utc::now().timestamp() - 1,
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&old).expect("json"));
        let mut mac = cookies.mac().expect("mac");
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let set = cookies
            .cookie(format!("{body}.{tag}"), 600)
            .expect("cookie");
        assert!(cookies.read(&headers(&set)).is_none());
    }
}
