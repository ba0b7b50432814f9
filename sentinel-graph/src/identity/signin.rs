//! Signing users in with the authorization code flow: PKCE (S256), `state` against CSRF on
//! the redirect, `nonce` against id-token replay, and the id token validated against the
//! tenant's JWKS. The user's access token is never kept: the id token says who signed in.

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, ExtraTokenFields,
    HttpRequest, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::validator::{TokenValidator, VerifiedToken};
use crate::auth::{send_oauth, token_error};
use crate::config::GraphConfig;
use crate::error::GraphError;

/// What must be remembered (server-side) between sending the browser to Entra and its return.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// The `state` sent to Entra, checked when it comes back.
    pub state: String,
    /// The `nonce` the id token must carry.
    pub nonce: String,
    pkce_verifier: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdTokenFields {
    #[serde(default)]
    id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenFields {}

type OidcClientBase = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenFields, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

type OidcClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenFields, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// User sign-in for one app registration and one redirect URI.
#[derive(Debug)]
pub struct SignIn {
    client: OidcClient,
    validator: TokenValidator,
    http: reqwest::Client,
}

impl SignIn {
    /// Sign-in for the app of `config`, returning to `redirect_uri`.
    pub fn new(config: &GraphConfig, redirect_uri: &str) -> Result<SignIn, GraphError> {
        let authority = config.authority.as_str().trim_end_matches('/');
        let tenant = &config.tenant_id;
        let auth_url = AuthUrl::new(format!("{authority}/{tenant}/oauth2/v2.0/authorize"))
            .map_err(|e| GraphError::Config(format!("authorize URL: {e}")))?;
        let token_url = TokenUrl::new(config.token_url())
            .map_err(|e| GraphError::Config(format!("token URL: {e}")))?;
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| GraphError::Config(format!("redirect URI {redirect_uri}: {e}")))?;
        let client = OidcClientBase::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                config.client_secret.expose_secret().to_string(),
            ))
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            .set_redirect_uri(redirect);
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GraphError::Config(format!("HTTP client: {e}")))?;
        Ok(SignIn {
            client,
            validator: TokenValidator::new(authority, tenant, &config.client_id),
            http,
        })
    }

    /// The URL to send the browser to, and what to keep until it comes back.
    pub fn start(&self) -> (String, PendingSignIn) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random().secret().clone();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .add_extra_param("nonce", nonce.clone())
            .add_extra_param("response_mode", "query")
            .set_pkce_challenge(challenge)
            .url();
        (
            url.to_string(),
            PendingSignIn {
                state: state.secret().clone(),
                nonce,
                pkce_verifier: verifier.secret().clone(),
            },
        )
    }

    /// Completes a sign-in: checks `state`, redeems the code with the PKCE verifier, validates
    /// the id token and its nonce. Returns who signed in.
    pub async fn finish(
        &self,
        pending: PendingSignIn,
        code: &str,
        state: &str,
    ) -> Result<VerifiedToken, GraphError> {
        if state != pending.state {
            return Err(GraphError::Auth(
                "the sign-in response does not match this browser's sign-in (state)".into(),
            ));
        }
        let http = self.http.clone();
        let send = move |req: HttpRequest| {
            let http = http.clone();
            async move { send_oauth(&http, req).await }
        };
        let resp = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&send)
            .await
            .map_err(token_error)?;
        let id_token = resp
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or_else(|| GraphError::Auth("Entra returned no id token".into()))?;
        let claims = self
            .validator
            .validate(id_token)
            .await
            .map_err(GraphError::Auth)?;
        if claims.nonce.as_deref() != Some(pending.nonce.as_str()) {
            return Err(GraphError::Auth(
                "the id token's nonce does not match this sign-in".into(),
            ));
        }
        Ok(claims)
    }
}
