//! `sentinel-sim`: serve a simulated Microsoft 365 tenant over HTTP.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use sentinel_sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Faults, Profile, SimConfig};

/// Serve a simulated Microsoft 365 tenant (Graph v1.0 under /v1.0, Entra under /{tenant}/,
/// control under /_sim/).
#[derive(Debug, Parser)]
#[command(name = "sentinel-sim", version)]
struct Args {
    /// Tenant size: tiny, small (~20k items), medium (~200k), large (~1M).
    #[arg(long, default_value = "small", value_parser = |s: &str| s.parse::<Profile>())]
    profile: Profile,
    /// Seed of the synthetic tenant: the same seed gives the same tenant.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Serve this many tenants on the one address (seeds `seed`, `seed + 1`, ...), as Graph
    /// serves every tenant: Entra by the tenant in the path, Graph by the token's tenant.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    tenants: u64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    addr: SocketAddr,
    /// Client id of the app registration the simulator accepts.
    #[arg(long, env = "SIM_CLIENT_ID", default_value = DEFAULT_CLIENT_ID)]
    client_id: String,
    /// Client secret the simulator accepts.
    #[arg(long, env = "SIM_CLIENT_SECRET", default_value = DEFAULT_CLIENT_SECRET)]
    client_secret: String,
    /// SharePoint/OneDrive budget per app, RU per minute (Graph: 1,250 to 6,250).
    #[arg(long, default_value_t = 1_250, value_parser = clap::value_parser!(u32).range(1..))]
    ru_per_minute: u32,
    /// SharePoint/OneDrive budget per app, RU per 24 hours (default: 960 minutes' worth, as Graph).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    ru_per_day: Option<u32>,
    /// Directory budget per app, RU per 10 s (default: from the user count, as Graph does).
    #[arg(long)]
    directory_ru_per_10s: Option<u32>,
    /// Simulated seconds per real second (60 makes a budget minute last one second).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Added latency per Graph request, milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Random extra latency up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Lifetime of issued access tokens, seconds.
    #[arg(long, default_value_t = 3_599, value_parser = clap::value_parser!(u64).range(1..))]
    token_lifetime_secs: u64,
    /// Fault rates, e.g. "429=0.05,503=0.02,reset=0.01,malformed=0.01,duplicate=0.02,repeat_next_link=0.01,empty_page=0.02".
    #[arg(long, default_value = "")]
    faults: String,
    /// Base URL clients use to reach the simulator (for links); default: from the Host header.
    #[arg(long)]
    public_url: Option<String>,
    /// Expired directory delta tokens answer 410 (as once reported) instead of the documented
    /// 400; both carry the code syncStateNotFound.
    #[arg(long)]
    directory_expiry_gone: bool,
    /// Deleting a folder reports a tombstone for each descendant too (by default only the
    /// folder's, as SharePoint does).
    #[arg(long)]
    folder_delete_lists_descendants: bool,
    /// Version of tokens issued for the app's own API: 1 (an app manifest's default) or 2
    /// (`requestedAccessTokenVersion: 2`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    api_token_version: u8,
    /// The app lacks Sites.FullControl.All: drive delta silently ignores the sharing
    /// preferences (hierarchical mode must notice).
    #[arg(long)]
    without_sites_full_control: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        eprintln!(
            "sentinel-sim: --time-scale must be a positive number, got {}",
            args.time_scale
        );
        return ExitCode::from(2);
    }
    let rates = match Faults::parse_rates(&args.faults) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sentinel-sim: --faults: {e}");
            return ExitCode::from(2);
        }
    };
    let config = SimConfig {
        profile: args.profile,
        seed: args.seed,
        client_id: args.client_id,
        client_secret: args.client_secret,
        ru_per_minute: args.ru_per_minute,
        ru_per_day: args.ru_per_day,
        directory_ru_per_10s: args.directory_ru_per_10s,
        time_scale: args.time_scale,
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
        token_lifetime_secs: args.token_lifetime_secs,
        faults: Faults {
            rates,
            ..Faults::default()
        },
        public_url: args.public_url,
        directory_expiry_gone: args.directory_expiry_gone,
        folder_delete_lists_descendants: args.folder_delete_lists_descendants,
        api_token_version: args.api_token_version,
        sites_full_control: !args.without_sites_full_control,
    };
    let configs = (0..args.tenants)
        .map(|n| SimConfig {
            seed: config.seed.wrapping_add(n),
            ..config.clone()
        })
        .collect();
    let fleet = match sentinel_sim::spawn_fleet(configs, args.addr).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("sentinel-sim: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("sentinel-sim: cannot listen on {}: {e}", args.addr);
            return ExitCode::from(1);
        }
    };
    for state in &fleet.tenants {
        let m = sentinel_sim::control::manifest(state);
        tracing::info!(
            url = %fleet.url(), tenant_id = %m.tenant_id, client_id = %m.client_id,
            users = m.users, sites = m.sites, drives = m.drives, items = m.items,
            "simulated tenant ready"
        );
    }
    if tokio::signal::ctrl_c().await.is_err() {
        eprintln!("sentinel-sim: cannot listen for Ctrl-C");
    }
    fleet.shutdown().await;
    ExitCode::SUCCESS
}
