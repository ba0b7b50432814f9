//! `sentinel-worker serve`: the scheduler loop, the jobs, and the control API until SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use secrecy::ExposeSecret;
use sentinel_sched::{DbClock, Scheduler};
use sentinel_store::Store;

use crate::api::{ApiState, router};
use crate::config::WorkerConfig;
use sentinel_graph::identity::TokenValidator;
use sentinel_pipeline::{GraphIngest, RefreshMv};

/// `WORKER_FIRST_SCAN`: every enabled tenant without jobs gets its scan.
async fn first_scans(store: &Store) -> Result<()> {
    for tenant in store.tenants().await? {
        if tenant.enabled {
            sentinel_pipeline::schedule_first_scan(store, &tenant.tenant_id).await?;
        }
    }
    Ok(())
}

/// Sends the alerts queued for new policy violations, and the retries that fall due.
async fn send_alerts(sender: sentinel_alerts::AlertSender, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = sender.send_due().await {
            tracing::warn!(error = %e, "could not send alerts");
        }
    }
}

pub async fn run(config: &WorkerConfig) -> Result<ExitCode> {
    let store = Store::connect(config.database_url.expose_secret(), 16)
        .await
        .context("connecting to DATABASE_URL")?;
    store.migrate().await.context("applying the schema")?;
    // The home tenant (ENTRA_TENANT_ID) is always one of the deployment's tenants.
    store
        .register_tenant(&config.graph.tenant_id, None)
        .await
        .context("registering ENTRA_TENANT_ID")?;
    let pool = store.pool().clone();
    if config.first_scan {
        first_scans(&store).await?;
    }
    let scheduler = Arc::new(
        Scheduler::new(
            pool.clone(),
            Arc::new(DbClock(pool.clone())),
            &config.worker_id,
        )
        .with_max_runs(config.max_runs)
        .with_kind(GraphIngest {
            graph: config.graph.clone(),
            store: store.clone(),
        })
        .with_kind(RefreshMv {
            store: store.clone(),
        }),
    );
    let validator = Arc::new(TokenValidator::new(
        config.graph.authority.as_str(),
        &config.graph.tenant_id,
        &config.graph.client_id,
    ));
    let app = router(ApiState {
        store: store.clone(),
        jobs: pool.clone(),
        validator,
        worker_id: config.worker_id.clone(),
        own_app_id: config.graph.client_id.clone(),
    });
    let listener = tokio::net::TcpListener::bind(config.api_addr)
        .await
        .with_context(|| format!("binding WORKER_API_ADDR {}", config.api_addr))?;
    tracing::info!(addr = %config.api_addr, worker = %config.worker_id, poll_seconds = config.poll_seconds, "worker serving");
    let poll = tokio::spawn(
        scheduler
            .clone()
            .run_loop(Duration::from_secs(config.poll_seconds)),
    );
    let alerts = tokio::spawn(send_alerts(
        sentinel_alerts::AlertSender::new(store.clone(), &config.alerts)?,
        Duration::from_secs(config.poll_seconds),
    ));
    let sched = scheduler.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            sentinel_sched::shutdown_signal().await;
            tracing::info!(
                "shutting down: no new runs; running jobs stop at their next safe point"
            );
            sched.shutdown().await;
        })
        .await
        .context("control API")?;
    poll.abort();
    alerts.abort();
    tracing::info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}
