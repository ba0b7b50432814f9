//! `sentinel-web`: the dashboard. Configuration comes from the environment (see README).

use std::process::ExitCode;

use sentinel_web::WebConfig;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match WebConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sentinel-web: {e:#}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if config.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    match sentinel_web::serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sentinel-web: {e:#}");
            ExitCode::FAILURE
        }
    }
}
