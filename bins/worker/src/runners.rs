//! The jobs this worker runs: `graph_ingest` and `refresh_mv`.

use std::sync::Arc;
use std::time::Duration;

use sentinel_graph::{GraphClient, GraphConfig};
use sentinel_pipeline::{GraphIngestConfig, Progress};
use sentinel_sched::{Job, JobRunner, RunContext};
use sentinel_store::Store;

/// Reads a tenant into the store, then refreshes the views it fed.
#[derive(Debug)]
pub struct GraphIngest {
    pub graph: GraphConfig,
    pub store: Store,
}

#[async_trait::async_trait]
impl JobRunner for GraphIngest {
    async fn run(&self, job: &Job, ctx: RunContext) -> Result<(), String> {
        let config: GraphIngestConfig = serde_json::from_value(job.config.clone())
            .map_err(|e| format!("invalid graph_ingest config: {e}"))?;
        let mut graph = self.graph.clone();
        graph.tenant_id = job.tenant_id.clone();
        config.apply_to(&mut graph);
        let client = GraphClient::new(graph).map_err(|e| e.to_string())?;
        let progress = Arc::new(Progress::default());
        let reporter = {
            let (progress, client, ctx) = (progress.clone(), client.clone(), ctx.clone());
            tokio::spawn(async move {
                loop {
                    ctx.set_progress(
                        serde_json::to_value(progress.snapshot(&client)).unwrap_or_default(),
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        let result = sentinel_pipeline::run_graph_ingest(
            &client,
            &self.store,
            &job.tenant_id,
            &config,
            progress.clone(),
            ctx.stop_flag(),
        )
        .await;
        reporter.abort();
        ctx.set_progress(serde_json::to_value(progress.snapshot(&client)).unwrap_or_default());
        result.map_err(|e| e.to_string())?;
        sentinel_pipeline::run_refresh_mv(&self.store)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Refreshes the materialized views whose sources changed.
#[derive(Debug)]
pub struct RefreshMv {
    pub store: Store,
}

#[async_trait::async_trait]
impl JobRunner for RefreshMv {
    async fn run(&self, _job: &Job, ctx: RunContext) -> Result<(), String> {
        let r = sentinel_pipeline::run_refresh_mv(&self.store)
            .await
            .map_err(|e| e.to_string())?;
        ctx.set_progress(serde_json::json!({"refreshed": r.refreshed, "skipped": r.skipped}));
        Ok(())
    }
}
