//! Client configuration, from code or from the environment.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::error::GraphError;

/// Everything a [`crate::GraphClient`] needs. Build it in code, or with [`GraphConfig::from_env`].
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Graph root including the version, e.g. `https://graph.microsoft.com/v1.0`.
    pub graph_base_url: Url,
    /// Entra authority, e.g. `https://login.microsoftonline.com`.
    pub authority: Url,
    /// The tenant: its id or a verified domain.
    pub tenant_id: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// Scope of app-only tokens for Graph.
    pub scope: String,
    /// `NONISV|Company|App/Version`: decorated traffic is prioritised by SharePoint.
    pub user_agent: String,
    /// SharePoint/OneDrive RU budget per minute the client paces itself to.
    pub ru_per_minute: u32,
    /// SharePoint/OneDrive RU budget per 24 hours; `None`: 960 minutes of `ru_per_minute`, as
    /// in every documented band (1,250/min with 1.2M/24 h up to 6,250/min with 6M/24 h: "Avoid
    /// getting throttled or blocked in SharePoint Online"). Pacing to the minute alone spends a
    /// day's budget in about 16 hours.
    pub ru_per_day: Option<u32>,
    /// Percent of the SharePoint budget (per minute and per day) kept for the dashboard's live
    /// look-ups (`GRAPH_LIVE_SHARE_PERCENT`, 1 to 50, default 10). Every process calling Graph
    /// for a tenant spends the one app's budget: scans pace to the rest
    /// ([`GraphConfig::leave_live_share`]) and the live panel to this share, so together they
    /// stay inside it.
    pub live_share_percent: u32,
    /// Directory RU budget per 10 seconds the client paces itself to.
    pub directory_ru_per_10s: u32,
    /// Budget seconds per real second. Always 1 against Graph; a simulated tenant can
    /// compress its budget windows (60 makes a budget minute last one second).
    pub budget_time_scale: f64,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Retries of transient failures (5xx, resets, malformed bodies) per request.
    pub max_retries: u32,
    /// Total time one request may spend waiting on throttling before giving up.
    pub max_throttle_wait: Duration,
    /// Timeout of one HTTP attempt.
    pub request_timeout: Duration,
}

/// Graph's service roots and their Entra authorities ("Microsoft Graph national cloud
/// deployments", learn.microsoft.com/graph/deployments).
const CLOUDS: [(&str, &str); 4] = [
    ("graph.microsoft.com", "https://login.microsoftonline.com"),
    ("graph.microsoft.us", "https://login.microsoftonline.us"),
    ("dod-graph.microsoft.us", "https://login.microsoftonline.us"),
    (
        "microsoftgraph.chinacloudapi.cn",
        "https://login.chinacloudapi.cn",
    ),
];

/// For a Graph root in one of Microsoft's clouds: the app-only scope on that root's domain
/// ("any permission scope value (including the .default scope) that contains the Microsoft
/// Graph domain MUST use the domain of the Microsoft Graph service root endpoint for the
/// national cloud deployment": learn.microsoft.com/graph/sdks/national-clouds) and the cloud's
/// authority. `None` for any other root (a simulated tenant, a proxy): defaults stay.
fn national_cloud(graph_base_url: &Url) -> Option<(String, Url)> {
    let host = graph_base_url.host_str()?;
    let (graph, authority) = CLOUDS.iter().find(|(graph, _)| *graph == host)?;
    Some((
        format!("https://{graph}/.default"),
        Url::parse(authority).ok()?,
    ))
}

impl GraphConfig {
    /// Defaults for the public cloud; only the tenant and app identity are required.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> GraphConfig {
        GraphConfig {
            graph_base_url: Url::parse("https://graph.microsoft.com/v1.0")
                .expect("static URL is valid"),
            authority: Url::parse("https://login.microsoftonline.com")
                .expect("static URL is valid"),
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret,
            scope: "https://graph.microsoft.com/.default".to_string(),
            user_agent: format!(
                "NONISV|PrincetonSentinel|sentinel-graph/{}",
                env!("CARGO_PKG_VERSION")
            ),
            ru_per_minute: 1_250,
            ru_per_day: None,
            live_share_percent: 10,
            directory_ru_per_10s: 3_500,
            budget_time_scale: 1.0,
            max_concurrency: 8,
            max_retries: 4,
            max_throttle_wait: Duration::from_secs(600),
            request_timeout: Duration::from_secs(60),
        }
    }

    /// Reads `GRAPH_BASE_URL`, `ENTRA_AUTHORITY`, `ENTRA_TENANT_ID`, `ENTRA_CLIENT_ID`,
    /// `ENTRA_CLIENT_SECRET` and optionally `GRAPH_RU_PER_MINUTE`, `GRAPH_RU_PER_DAY`,
    /// `GRAPH_LIVE_SHARE_PERCENT`, `GRAPH_MAX_CONCURRENCY` and
    /// (for a simulated tenant only) `GRAPH_BUDGET_TIME_SCALE`.
    pub fn from_env() -> Result<GraphConfig, GraphError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`GraphConfig::from_env`] over any variable source (tests, config files).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<GraphConfig, GraphError> {
        let required = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| GraphError::Config(format!("{k} is not set")))
        };
        let mut c = GraphConfig::new(
            required("ENTRA_TENANT_ID")?,
            required("ENTRA_CLIENT_ID")?,
            SecretString::from(required("ENTRA_CLIENT_SECRET")?),
        );
        if let Some(v) = get("GRAPH_BASE_URL").filter(|v| !v.is_empty()) {
            c.graph_base_url = parse_url("GRAPH_BASE_URL", &v)?;
            if let Some((scope, authority)) = national_cloud(&c.graph_base_url) {
                c.scope = scope;
                c.authority = authority;
            }
        }
        if let Some(v) = get("ENTRA_AUTHORITY").filter(|v| !v.is_empty()) {
            c.authority = parse_url("ENTRA_AUTHORITY", &v)?;
        }
        if let Some(v) = get("GRAPH_RU_PER_MINUTE").filter(|v| !v.is_empty()) {
            c.ru_per_minute = parse_num("GRAPH_RU_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("GRAPH_RU_PER_DAY").filter(|v| !v.is_empty()) {
            c.ru_per_day = Some(parse_num("GRAPH_RU_PER_DAY", &v)?);
        }
        if let Some(v) = get("GRAPH_LIVE_SHARE_PERCENT").filter(|v| !v.is_empty()) {
            c.live_share_percent = parse_num("GRAPH_LIVE_SHARE_PERCENT", &v)?;
        }
        if let Some(v) = get("GRAPH_MAX_CONCURRENCY").filter(|v| !v.is_empty()) {
            c.max_concurrency = parse_num::<u32>("GRAPH_MAX_CONCURRENCY", &v)? as usize;
        }
        if let Some(v) = get("GRAPH_BUDGET_TIME_SCALE").filter(|v| !v.is_empty()) {
            c.budget_time_scale = v.trim().parse().map_err(|_| {
                GraphError::Config(format!(
                    "GRAPH_BUDGET_TIME_SCALE must be a number, got '{v}'"
                ))
            })?;
        }
        c.validate()?;
        Ok(c)
    }

    /// The SharePoint/OneDrive budget per 24 hours in force (see `ru_per_day`).
    pub fn daily_budget(&self) -> u32 {
        self.ru_per_day
            .unwrap_or_else(|| self.ru_per_minute.saturating_mul(960))
    }

    /// RU a minute the live look-ups of every user together may spend: `live_share_percent` of
    /// the minute's budget.
    pub fn live_ru_per_minute(&self) -> u32 {
        (self.ru_per_minute as u64 * self.live_share_percent as u64 / 100) as u32
    }

    /// Leaves the live share out of the budgets a scan paces to (per minute and per day).
    pub fn leave_live_share(&mut self) {
        let keep = |budget: u32| {
            (budget as u64 * (100 - self.live_share_percent.min(100)) as u64 / 100) as u32
        };
        let day = keep(self.daily_budget());
        self.ru_per_minute = keep(self.ru_per_minute).max(10);
        self.ru_per_day = Some(day.max(self.ru_per_minute));
    }

    /// What is wrong with the configuration, if anything.
    pub fn validate(&self) -> Result<(), GraphError> {
        if !(1..=50).contains(&self.live_share_percent) {
            return Err(GraphError::Config(format!(
                "GRAPH_LIVE_SHARE_PERCENT must be between 1 and 50 (percent of the budget kept for live look-ups), got {}",
                self.live_share_percent
            )));
        }
        if self.ru_per_minute < 10 {
            return Err(GraphError::Config(
                "ru_per_minute must be at least 10".into(),
            ));
        }
        if self.ru_per_day.is_some_and(|d| d < self.ru_per_minute) {
            return Err(GraphError::Config(
                "ru_per_day must be at least ru_per_minute".into(),
            ));
        }
        if self.directory_ru_per_10s < 10 {
            return Err(GraphError::Config(
                "directory_ru_per_10s must be at least 10".into(),
            ));
        }
        if !(self.budget_time_scale.is_finite()
            && (0.001..=10_000.0).contains(&self.budget_time_scale))
        {
            return Err(GraphError::Config(
                "budget_time_scale must be between 0.001 and 10000 (1 against Graph)".into(),
            ));
        }
        if self.max_concurrency == 0 {
            return Err(GraphError::Config(
                "max_concurrency must be at least 1".into(),
            ));
        }
        if self.tenant_id.contains(['/', '?', '#']) {
            return Err(GraphError::Config(
                "ENTRA_TENANT_ID must be a tenant id or domain".into(),
            ));
        }
        Ok(())
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.as_str().trim_end_matches('/'),
            self.tenant_id
        )
    }
}

fn parse_url(name: &str, v: &str) -> Result<Url, GraphError> {
    let u = Url::parse(v.trim_end_matches('/'))
        .map_err(|e| GraphError::Config(format!("{name} is not a valid URL ({e}): {v}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(GraphError::Config(format!(
            "{name} must be an http(s) URL: {v}"
        )));
    }
    Ok(u)
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, GraphError> {
    v.trim()
        .parse()
        .map_err(|_| GraphError::Config(format!("{name} must be a whole number, got '{v}'")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The smallest band (1,250 RU a minute, 1.2M a day): scans pace to 90%, the live panel to
    /// 10%, and together they never pace past the budget.
    #[test]
    fn scans_leave_the_live_share_of_both_budgets() {
        let vars = |share: &str| -> Result<GraphConfig, GraphError> {
            let vars: HashMap<&str, String> = [
                ("ENTRA_TENANT_ID", "t".to_string()),
                ("ENTRA_CLIENT_ID", "c".into()),
                ("ENTRA_CLIENT_SECRET", "s".into()),
                ("GRAPH_LIVE_SHARE_PERCENT", share.into()),
            ]
            .into_iter()
            .collect();
            GraphConfig::from_lookup(|k| vars.get(k).cloned())
        };
        let live = vars("").expect("the default share");
        assert_eq!(live.live_ru_per_minute(), 125);
        let mut scans = live.clone();
        scans.leave_live_share();
        assert_eq!(
            (scans.ru_per_minute, scans.daily_budget()),
            (1_125, 1_080_000)
        );
        assert!(scans.ru_per_minute + live.live_ru_per_minute() <= live.ru_per_minute);
        assert_eq!(vars("20").expect("20%").live_ru_per_minute(), 250);
        for bad in ["0", "51", "ten"] {
            let e = vars(bad).expect_err(bad).to_string();
            assert!(e.contains("GRAPH_LIVE_SHARE_PERCENT"), "{e}");
        }
    }

    #[test]
    fn a_national_cloud_root_brings_its_scope_and_authority() {
        let config = |base: &str, authority: Option<&str>| {
            let vars: HashMap<&str, String> = [
                ("ENTRA_TENANT_ID", "t".to_string()),
                ("ENTRA_CLIENT_ID", "c".into()),
                ("ENTRA_CLIENT_SECRET", "s".into()),
                ("GRAPH_BASE_URL", base.into()),
            ]
            .into_iter()
            .chain(authority.map(|a| ("ENTRA_AUTHORITY", a.to_string())))
            .collect();
            GraphConfig::from_lookup(|k| vars.get(k).cloned()).expect("valid")
        };
        for (base, scope, authority) in [
            (
                "https://graph.microsoft.us/v1.0",
                "https://graph.microsoft.us/.default",
                "https://login.microsoftonline.us/",
            ),
            (
                "https://dod-graph.microsoft.us/v1.0",
                "https://dod-graph.microsoft.us/.default",
                "https://login.microsoftonline.us/",
            ),
            (
                "https://microsoftgraph.chinacloudapi.cn/v1.0",
                "https://microsoftgraph.chinacloudapi.cn/.default",
                "https://login.chinacloudapi.cn/",
            ),
            (
                "https://graph.microsoft.com/v1.0",
                "https://graph.microsoft.com/.default",
                "https://login.microsoftonline.com/",
            ),
            // Not one of Microsoft's roots (a simulated tenant): the global defaults.
            (
                "http://127.0.0.1:9/v1.0",
                "https://graph.microsoft.com/.default",
                "https://login.microsoftonline.com/",
            ),
        ] {
            let c = config(base, None);
            assert_eq!(c.scope, scope, "{base}");
            assert_eq!(c.authority.as_str(), authority, "{base}");
        }
        // An authority set explicitly wins.
        let c = config(
            "https://graph.microsoft.us/v1.0",
            Some("http://127.0.0.1:9"),
        );
        assert_eq!(c.authority.as_str(), "http://127.0.0.1:9/");
        assert_eq!(c.scope, "https://graph.microsoft.us/.default");
    }

    #[test]
    fn env_config_names_the_missing_or_bad_variable() {
        let vars: HashMap<&str, &str> = [("ENTRA_TENANT_ID", "t"), ("ENTRA_CLIENT_ID", "c")].into();
        let err = GraphConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string()))
            .expect_err("invalid configuration");
        assert!(err.to_string().contains("ENTRA_CLIENT_SECRET"), "{err}");

        let vars: HashMap<&str, &str> = [
            ("ENTRA_TENANT_ID", "t"),
            ("ENTRA_CLIENT_ID", "c"),
            ("ENTRA_CLIENT_SECRET", "s"),
            ("GRAPH_BASE_URL", "not a url"),
        ]
        .into();
        let err = GraphConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string()))
            .expect_err("invalid configuration");
        assert!(err.to_string().contains("GRAPH_BASE_URL"), "{err}");

        let vars: HashMap<&str, &str> = [
            ("ENTRA_TENANT_ID", "t"),
            ("ENTRA_CLIENT_ID", "c"),
            ("ENTRA_CLIENT_SECRET", "s"),
            ("GRAPH_BASE_URL", "http://127.0.0.1:9/v1.0/"),
        ]
        .into();
        let c = GraphConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string())).expect("valid");
        assert_eq!(c.graph_base_url.as_str(), "http://127.0.0.1:9/v1.0");
        assert_eq!(
            c.token_url(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
    }
}
