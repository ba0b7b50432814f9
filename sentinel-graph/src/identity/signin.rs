//! Signing users in with the authorization code flow: PKCE (S256), `state` against CSRF on
//! the redirect, `nonce` against id-token replay, and the id token validated against the
//! tenant's JWKS. The user's access token is never kept: the id token says who signed in.
//!
//! The sign-in asks for `offline_access`, so the code's redemption also returns a refresh
//! token: redeemed later, it returns a new id token with the roles the user holds *then*, or
//! `invalid_grant` once the user is disabled or their sessions revoked (Microsoft identity
//! platform, "OAuth 2.0 authorization code flow": "Refresh the access token"). Sign-out sends
//! the browser to the tenant's end-session endpoint (`/{tenant}/oauth2/v2.0/logout`, the
//! `end_session_endpoint` of its OpenID configuration) so that Entra's session ends too.

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, ExtraTokenFields,
    HttpRequest, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
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

/// Who signed in, and what lets us ask Entra again later.
#[derive(Debug)]
pub struct SignedIn {
    /// The validated id token's claims.
    pub claims: VerifiedToken,
    /// Redeem it with [`SignIn::refresh`] to re-check the user. `None` when Entra sent none
    /// (`offline_access` not granted).
    pub refresh_token: Option<SecretString>,
}

/// The scopes of a sign-in: who the user is, and a refresh token to ask again later.
const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

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
    end_session_url: String,
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
            end_session_url: format!("{authority}/{tenant}/oauth2/v2.0/logout"),
        })
    }

    /// The URL to send the browser to, and what to keep until it comes back.
    pub fn start(&self) -> (String, PendingSignIn) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random().secret().clone();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(SCOPES.map(|s| Scope::new(s.into())))
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
    ) -> Result<SignedIn, GraphError> {
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
        let signed_in = self.signed_in(&resp).await?;
        if signed_in.claims.nonce.as_deref() != Some(pending.nonce.as_str()) {
            return Err(GraphError::Auth(
                "the id token's nonce does not match this sign-in".into(),
            ));
        }
        Ok(signed_in)
    }

    /// Asks Entra again who the holder of `refresh_token` is: a new id token (the roles held
    /// now) and the next refresh token. [`GraphError::Auth`] when Entra refuses (the user is
    /// disabled, deleted or their sessions revoked); [`GraphError::Transport`] when it could
    /// not be asked.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<SignedIn, GraphError> {
        let http = self.http.clone();
        let send = move |req: HttpRequest| {
            let http = http.clone();
            async move { send_oauth(&http, req).await }
        };
        let token = RefreshToken::new(refresh_token.expose_secret().to_string());
        let resp = self
            .client
            .exchange_refresh_token(&token)
            .add_scopes(SCOPES.map(|s| Scope::new(s.into())))
            .request_async(&send)
            .await
            .map_err(token_error)?;
        self.signed_in(&resp).await
    }

    /// Where to send the browser so that its Entra session ends too, and where Entra sends it
    /// back (`post_logout_redirect_uri`: a redirect URI registered on the app).
    pub fn sign_out_url(&self, return_to: &str) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        url.append_pair("post_logout_redirect_uri", return_to);
        format!("{}?{}", self.end_session_url, url.finish())
    }

    async fn signed_in(
        &self,
        resp: &StandardTokenResponse<IdTokenFields, BasicTokenType>,
    ) -> Result<SignedIn, GraphError> {
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
        Ok(SignedIn {
            claims,
            refresh_token: resp
                .refresh_token()
                .map(|t| SecretString::from(t.secret().clone())),
        })
    }
}
