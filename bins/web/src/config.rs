//! The web's configuration: built once from the environment at start-up.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail};
use secrecy::SecretString;
use sentinel_graph::GraphConfig;
use url::Url;

/// Everything `sentinel-web` reads from its environment.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub database_url: SecretString,
    /// App registration, authority and Graph endpoint (shared with the worker).
    pub graph: GraphConfig,
    /// Bind address (`WEB_ADDR`, default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// The URL browsers use (`WEB_PUBLIC_URL`); the redirect URI is `{public_url}/auth/callback`.
    pub public_url: Url,
    /// The worker's internal control API (`WORKER_API_URL`, default `http://127.0.0.1:8081`).
    pub worker_api_url: Url,
    /// `json` for structured logs.
    pub log_format: String,
    /// Longest a page's query may run (`WEB_STATEMENT_TIMEOUT_SECS`, default 15): past it the
    /// query is cancelled and the page says so, instead of holding a connection.
    pub statement_timeout: std::time::Duration,
    /// How long a signed-in user's roles are trusted before Entra is asked again
    /// (`WEB_ROLE_RECHECK_SECS`, default 300; 0 asks on every request).
    pub role_recheck: std::time::Duration,
}

impl WebConfig {
    pub fn from_env() -> Result<WebConfig> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`WebConfig::from_env`] over any variable source. Errors name the variable to fix.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<WebConfig> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let database_url = sentinel_store::check_database_url(var("DATABASE_URL").as_deref())
            .map_err(|e| anyhow!(e))?;
        let graph = GraphConfig::from_lookup(&get).context("Graph configuration")?;
        let addr = match var("WEB_ADDR") {
            None => "127.0.0.1:8080".parse().context("default address")?,
            Some(v) => v
                .parse()
                .map_err(|_| anyhow!("WEB_ADDR must be host:port, got '{v}'"))?,
        };
        let url = |name: &str, v: &str| -> Result<Url> {
            match Url::parse(v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
                _ => bail!("{name} must be an http(s) URL, got '{v}'"),
            }
        };
        let public_url = match var("WEB_PUBLIC_URL") {
            Some(v) => url("WEB_PUBLIC_URL", v.trim_end_matches('/'))?,
            None => bail!(
                "WEB_PUBLIC_URL is not set (the URL browsers use, e.g. http://localhost:8080; the redirect URI is <it>/auth/callback)"
            ),
        };
        let worker_api_url = url(
            "WORKER_API_URL",
            var("WORKER_API_URL")
                .as_deref()
                .unwrap_or("http://127.0.0.1:8081")
                .trim_end_matches('/'),
        )?;
        let statement_timeout = match var("WEB_STATEMENT_TIMEOUT_SECS") {
            None => 15,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => n,
                _ => bail!(
                    "WEB_STATEMENT_TIMEOUT_SECS must be a number of seconds from 1 to 3600, got '{v}'"
                ),
            },
        };
        let role_recheck = match var("WEB_ROLE_RECHECK_SECS") {
            None => 300,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n <= 86_400 => n,
                _ => bail!(
                    "WEB_ROLE_RECHECK_SECS must be a number of seconds from 0 to 86400, got '{v}'"
                ),
            },
        };
        Ok(WebConfig {
            role_recheck: std::time::Duration::from_secs(role_recheck),
            statement_timeout: std::time::Duration::from_secs(statement_timeout),
            database_url: SecretString::from(database_url),
            graph,
            addr,
            public_url,
            worker_api_url,
            log_format: var("LOG_FORMAT").unwrap_or_default(),
        })
    }

    /// The redirect URI to register on the app registration.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/auth/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// Where Entra returns the browser after sign-out (register it on the app as well).
    pub fn signed_out_uri(&self) -> String {
        format!(
            "{}/signed-out",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// Cookies are `Secure` when browsers reach us over https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const BASE: [(&str, &str); 5] = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1/sentinel"),
        ("ENTRA_TENANT_ID", "t"),
        ("ENTRA_CLIENT_ID", "c"),
        ("ENTRA_CLIENT_SECRET", "s"),
        ("WEB_PUBLIC_URL", "http://localhost:8080/"),
    ];

    #[test]
    fn a_missing_or_malformed_variable_is_named() {
        let ok = WebConfig::from_lookup(lookup(&BASE)).expect("valid config");
        assert_eq!(ok.redirect_uri(), "http://localhost:8080/auth/callback");
        assert!(!ok.secure_cookies());
        for (drop, expect) in [
            ("WEB_PUBLIC_URL", "WEB_PUBLIC_URL is not set"),
            ("DATABASE_URL", "DATABASE_URL is not set"),
            ("ENTRA_CLIENT_SECRET", "ENTRA_CLIENT_SECRET"),
        ] {
            let vars: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != drop).collect();
            let err = format!(
                "{:#}",
                WebConfig::from_lookup(lookup(&vars)).expect_err("must be refused")
            );
            assert!(err.contains(expect), "{err}");
        }
        for (name, value) in [
            ("WEB_ADDR", "localhost"),
            ("WORKER_API_URL", "worker:8081"),
            ("WEB_PUBLIC_URL", "ftp://x"),
            ("DATABASE_URL", "mysql://x"),
            ("WEB_STATEMENT_TIMEOUT_SECS", "0"),
            ("WEB_STATEMENT_TIMEOUT_SECS", "soon"),
            ("WEB_ROLE_RECHECK_SECS", "-1"),
            ("WEB_ROLE_RECHECK_SECS", "100000"),
        ] {
            let mut vars: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != name).collect();
            vars.push((name, value));
            let err = format!(
                "{:#}",
                WebConfig::from_lookup(lookup(&vars)).expect_err("must be refused")
            );
            assert!(err.contains(name), "{err}");
        }
    }
}
