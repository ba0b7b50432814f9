//! Entra identity for apps built on the crate: signing users in (authorization code flow with
//! PKCE, state and nonce), validating the tokens Entra issues for the app, and app-only tokens
//! for scopes other than Graph (an API of your own).

mod signin;
mod validator;

pub use signin::{PendingSignIn, SignIn, SignedIn};
pub use validator::{TokenValidator, VerifiedToken};

use secrecy::SecretString;

use crate::auth::TokenCache;
use crate::config::GraphConfig;
use crate::error::GraphError;

/// App-only tokens for one scope (e.g. `api://{client id}/.default`), cached and refreshed
/// like the Graph client's own.
#[derive(Debug)]
pub struct AppToken {
    cache: TokenCache,
}

impl AppToken {
    /// App-only tokens for `scope` (e.g. `api://{client}/.default`) with `config`'s credentials.
    pub fn new(config: &GraphConfig, scope: impl Into<String>) -> Result<AppToken, GraphError> {
        let mut config = config.clone();
        config.scope = scope.into();
        Ok(AppToken {
            cache: TokenCache::new(&config)?,
        })
    }

    /// A valid token for the scope.
    pub async fn get(&self) -> Result<SecretString, GraphError> {
        Ok(self.cache.get().await?.secret)
    }
}
