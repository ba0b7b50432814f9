//! App-only (client credentials) tokens through the `oauth2` crate, cached and refreshed
//! before they expire, and once more when Graph answers 401.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, HttpRequest, HttpResponse, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::GraphConfig;
use crate::error::GraphError;

/// A cached access token. `generation` tells a caller whether the token it used is still current.
#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub secret: SecretString,
    pub generation: u64,
    expires_at: Instant,
    lifetime: Duration,
}

impl AccessToken {
    /// Refresh ahead of expiry: five minutes, or half the lifetime of short-lived tokens.
    fn fresh(&self, now: Instant) -> bool {
        let margin = Duration::from_secs(300).min(self.lifetime / 2);
        now + margin < self.expires_at
    }
}

#[derive(Debug)]
pub(crate) struct TokenCache {
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    scope: String,
    http: reqwest::Client,
    current: Mutex<Option<AccessToken>>,
    generation: std::sync::atomic::AtomicU64,
}

/// oauth2's error for our HTTP adapter.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(String);

impl TokenCache {
    /// A cache of tokens from the configured authority. Its HTTP client never follows a
    /// redirect: a 307 from anything posing as the token endpoint would otherwise receive the
    /// client secret again, at the address it chose.
    pub fn new(config: &GraphConfig) -> Result<TokenCache, GraphError> {
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GraphError::Config(format!("HTTP client: {e}")))?;
        Ok(TokenCache {
            token_url: config.token_url(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            scope: config.scope.clone(),
            http,
            current: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A valid token: the cached one while fresh, else a new one from Entra.
    pub async fn get(&self) -> Result<AccessToken, GraphError> {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref().filter(|t| t.fresh(Instant::now())) {
            return Ok(t.clone());
        }
        let token = self.fetch().await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// Drops the cached token if it is still the one of `generation` (after a 401).
    pub async fn invalidate(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| t.generation == generation) {
            *current = None;
        }
    }

    async fn fetch(&self) -> Result<AccessToken, GraphError> {
        let token_url = TokenUrl::new(self.token_url.clone())
            .map_err(|e| GraphError::Config(format!("token URL {}: {e}", self.token_url)))?;
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_string(),
            ))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        let http = self.http.clone();
        let send = move |req: HttpRequest| {
            let http = http.clone();
            async move { send_oauth(&http, req).await }
        };
        let started = Instant::now();
        let resp = client
            .exchange_client_credentials()
            .add_scope(Scope::new(self.scope.clone()))
            .request_async(&send)
            .await
            .map_err(token_error)?;
        let lifetime = resp.expires_in().unwrap_or(Duration::from_secs(3_599));
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        tracing::debug!(
            lifetime_secs = lifetime.as_secs(),
            generation,
            "acquired app-only token"
        );
        Ok(AccessToken {
            secret: SecretString::from(resp.access_token().secret().to_string()),
            generation,
            expires_at: started + lifetime,
            lifetime,
        })
    }
}

/// Entra's refusal (its error code and description), a transport failure, or an unreadable answer.
pub(crate) fn token_error(
    e: RequestTokenError<HttpError, oauth2::basic::BasicErrorResponse>,
) -> GraphError {
    match e {
        RequestTokenError::ServerResponse(r) => GraphError::Auth(format!(
            "{}: {}",
            r.error(),
            r.error_description()
                .map(String::as_str)
                .unwrap_or("no description")
        )),
        RequestTokenError::Request(e) => GraphError::transport("asking the token endpoint", e),
        RequestTokenError::Parse(e, _) => {
            GraphError::Auth(format!("unreadable token response: {e}"))
        }
        RequestTokenError::Other(e) => GraphError::Auth(e),
    }
}

/// Sends oauth2's `http` request through our reqwest client.
pub(crate) async fn send_oauth(
    http: &reqwest::Client,
    req: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let mut builder = http.request(parts.method, parts.uri.to_string()).body(body);
    for (k, v) in &parts.headers {
        builder = builder.header(k, v);
    }
    let resp = builder.send().await.map_err(|e| HttpError(e.to_string()))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|e| HttpError(e.to_string()))?;
    let mut out = http::Response::builder().status(status);
    for (k, v) in &headers {
        out = out.header(k, v);
    }
    out.body(bytes.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}
