//! Tokens Entra issued for our own app registration (id tokens of signed-in users, access
//! tokens of apps calling our APIs), checked against the tenant's JWKS (signature), `aud`,
//! `iss`, `tid` and `exp`/`nbf`. What a caller may do (roles, nonce) is the caller's check.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::{OnceCell, RwLock};

/// The claims of a token that passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VerifiedToken {
    /// Tenant.
    pub tid: String,
    /// Object id of the user (or of the app's service principal).
    #[serde(default)]
    pub oid: String,
    /// App roles granted to the user or app.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The user's display name (`name`).
    #[serde(default)]
    pub name: Option<String>,
    /// The user's sign-in name (`preferred_username`).
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// The `nonce` the sign-in sent.
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    appid: Option<String>,
}

impl VerifiedToken {
    /// The application the token was issued to (`azp`, or `appid` in v1 tokens).
    pub fn app_id(&self) -> &str {
        self.azp.as_deref().or(self.appid.as_deref()).unwrap_or("")
    }
    /// Whether the token carries app role `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

/// Validates tokens; caches the signing keys and refetches them (at most once a minute)
/// when a token names a key it does not know.
///
/// Both token versions are accepted: tokens for an app's own API are v1 (`iss`
/// `https://sts.windows.net/{tid}/`, `aud` the App ID URI) unless the app manifest sets
/// `requestedAccessTokenVersion: 2` (v2: `iss` `{authority}/{tid}/v2.0`, `aud` the client id),
/// per Entra "Access tokens". The tenant may be given by id or by domain
/// (`contoso.onmicrosoft.com`): a domain is resolved to its id once, through the tenant's
/// OpenID configuration, since tokens carry the id.
#[derive(Debug)]
pub struct TokenValidator {
    authority: String,
    tenant: String,
    tenant_id: OnceCell<String>,
    audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    http: reqwest::Client,
    keys: RwLock<(Option<Instant>, HashMap<String, DecodingKey>)>,
}

/// Issuer of v1 tokens (public cloud and US Government: Entra "Access tokens", `iss`).
const V1_ISSUER_HOST: &str = "https://sts.windows.net";

impl TokenValidator {
    /// Accepts tokens whose audience is `client_id` or `api://{client_id}`.
    pub fn new(authority: &str, tenant: &str, client_id: &str) -> TokenValidator {
        let tenant_id = OnceCell::new();
        if uuid::Uuid::parse_str(tenant).is_ok() {
            let _ = tenant_id.set(tenant.to_ascii_lowercase());
        }
        TokenValidator {
            authority: authority.trim_end_matches('/').to_string(),
            tenant: tenant.to_string(),
            tenant_id,
            audiences: vec![client_id.to_string(), format!("api://{client_id}")],
            leeway_secs: 30,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            keys: RwLock::new((None, HashMap::new())),
        }
    }

    /// The tenant's id: as configured, or read from the `issuer` of its OpenID configuration.
    async fn tenant_id(&self) -> Result<&str, String> {
        self.tenant_id
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/{}/v2.0/.well-known/openid-configuration",
                    self.authority, self.tenant
                );
                let config: serde_json::Value = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| format!("cannot resolve tenant '{}': {e}", self.tenant))?
                    .json()
                    .await
                    .map_err(|e| {
                        format!("unreadable OpenID configuration of '{}': {e}", self.tenant)
                    })?;
                config
                    .get("issuer")
                    .and_then(|i| i.as_str())
                    .and_then(|i| i.split('/').find(|s| uuid::Uuid::parse_str(s).is_ok()))
                    .map(str::to_ascii_lowercase)
                    .ok_or_else(|| {
                        format!(
                            "the OpenID configuration of '{}' names no tenant id",
                            self.tenant
                        )
                    })
            })
            .await
            .map(String::as_str)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, String> {
        if let Some(k) = self.keys.read().await.1.get(kid) {
            return Ok(k.clone());
        }
        let mut cache = self.keys.write().await;
        if cache
            .0
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return cache
                .1
                .get(kid)
                .cloned()
                .ok_or_else(|| format!("unknown signing key '{kid}'"));
        }
        let jwks_url = format!("{}/{}/discovery/v2.0/keys", self.authority, self.tenant);
        let jwks: Jwks = self
            .http
            .get(&jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("cannot fetch signing keys: {e}"))?
            .json()
            .await
            .map_err(|e| format!("unreadable signing keys: {e}"))?;
        cache.1.clear();
        for k in jwks.keys.into_iter().filter(|k| k.kty == "RSA") {
            if let (Some(kid), Some(n), Some(e)) = (k.kid, k.n, k.e)
                && let Ok(key) = DecodingKey::from_rsa_components(&n, &e)
            {
                cache.1.insert(kid, key);
            }
        }
        cache.0 = Some(Instant::now());
        cache
            .1
            .get(kid)
            .cloned()
            .ok_or_else(|| format!("unknown signing key '{kid}'"))
    }

    /// The token's claims, or why the token is refused.
    pub async fn validate(&self, token: &str) -> Result<VerifiedToken, String> {
        let header = decode_header(token).map_err(|_| "malformed token".to_string())?;
        if header.alg != Algorithm::RS256 {
            return Err(format!(
                "tokens must be signed with RS256, not {:?}",
                header.alg
            ));
        }
        let kid = header.kid.ok_or("token names no signing key")?;
        let tenant_id = self.tenant_id().await?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&self.audiences);
        v.set_issuer(&[
            format!("{}/{tenant_id}/v2.0", self.authority),
            format!("{V1_ISSUER_HOST}/{tenant_id}/"),
        ]);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
        v.validate_nbf = true;
        v.leeway = self.leeway_secs;
        let claims = decode::<VerifiedToken>(token, &key, &v)
            .map_err(|e| format!("invalid token: {e}"))?
            .claims;
        if !claims.tid.eq_ignore_ascii_case(tenant_id) {
            return Err("token is for another tenant".into());
        }
        Ok(claims)
    }
}
