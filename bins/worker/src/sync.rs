//! `sentinel-worker sync` and `migrate`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use secrecy::{ExposeSecret, SecretString};
use sentinel_graph::GraphClient;
use sentinel_pipeline::{
    GraphIngestConfig, PermissionMode, Phase, PipelineError, Progress, Resource,
};
use sentinel_store::Store;

use crate::config::WorkerConfig;

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The tenant to read (its id or domain); default ENTRA_TENANT_ID. The app registration
    /// must be consented in it (see the README's multi-tenant set-up).
    #[arg(long)]
    tenant: Option<String>,
    /// How item permissions are read: hierarchical (roots of permission hierarchies only) or exhaustive (every item).
    #[arg(long, default_value = "hierarchical", value_parser = str::parse::<PermissionMode>)]
    permissions: PermissionMode,
    /// Comma-separated resources to read (default: all, in order users,groups,sites,drives,items,permissions).
    #[arg(long, value_delimiter = ',', value_parser = str::parse::<Resource>)]
    resources: Vec<Resource>,
    /// Drives read in parallel.
    #[arg(long, default_value_t = 4)]
    drive_concurrency: usize,
    /// Items per permission page.
    #[arg(long, default_value_t = 200)]
    batch_size: usize,
    /// Stop reading permissions after this many seconds (the next run resumes).
    #[arg(long)]
    time_budget_secs: Option<u64>,
    /// Hours between full drive listings (every site's libraries and every user's OneDrive);
    /// in between only new or changed sites and users are listed. 0: list everything every run.
    #[arg(long, default_value_t = 24)]
    full_listing_hours: u64,
    /// Read again the permissions of items read longer ago than this many hours, the oldest
    /// first (default: 24 in exhaustive mode, where delta reports no sharing-only change; off
    /// in hierarchical mode). 0: off.
    #[arg(long)]
    permission_max_age_hours: Option<u64>,
    /// Adaptive cadence: read a drive again only once as long as it had been idle has passed,
    /// and never later than this many minutes (run sync often: busy drives are read every run,
    /// idle ones back off; a drive root returned with other changes has its permissions re-read
    /// at most this often). Default: every run reads every drive.
    #[arg(long)]
    max_staleness_minutes: Option<u32>,
    /// Spend at most this many RU per minute.
    #[arg(long)]
    rate_cap: Option<u32>,
    /// Only sites matching these glob patterns (id, name or URL); repeatable.
    #[arg(long = "include-site")]
    include_sites: Vec<String>,
    #[arg(long = "exclude-site")]
    exclude_sites: Vec<String>,
    /// Only drives matching these glob patterns (id or name); repeatable.
    #[arg(long = "include-drive")]
    include_drives: Vec<String>,
    #[arg(long = "exclude-drive")]
    exclude_drives: Vec<String>,
}

impl SyncArgs {
    fn job_config(&self) -> GraphIngestConfig {
        GraphIngestConfig {
            resources: if self.resources.is_empty() {
                Resource::ALL.to_vec()
            } else {
                self.resources.clone()
            },
            permission_mode: self.permissions,
            include_sites: self.include_sites.clone(),
            exclude_sites: self.exclude_sites.clone(),
            include_drives: self.include_drives.clone(),
            exclude_drives: self.exclude_drives.clone(),
            drive_concurrency: self.drive_concurrency,
            request_rate_cap: self.rate_cap,
            batch_size: self.batch_size,
            time_budget_secs: self.time_budget_secs,
            full_listing_hours: self.full_listing_hours,
            permission_max_age_hours: self.permission_max_age_hours,
            max_staleness_minutes: self.max_staleness_minutes,
        }
    }
}

async fn connect(database_url: &SecretString) -> Result<Store> {
    let store = Store::connect(database_url.expose_secret(), 8)
        .await
        .context("connecting to DATABASE_URL")?;
    store.migrate().await.context("applying the schema")?;
    Ok(store)
}

pub async fn migrate(database_url: &SecretString) -> Result<ExitCode> {
    connect(database_url).await?;
    tracing::info!("database schema is ready");
    Ok(ExitCode::SUCCESS)
}

pub async fn run(config: &WorkerConfig, args: SyncArgs) -> Result<ExitCode> {
    let job = args.job_config();
    job.validate()?;
    let store = connect(&config.database_url).await?;
    let tenant = args
        .tenant
        .clone()
        .unwrap_or_else(|| config.graph.tenant_id.clone());
    let client = sentinel_pipeline::tenant_client(&store, &config.graph, &tenant, &job)
        .await
        .with_context(|| format!("connecting to tenant {tenant}"))?;
    let progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nsentinel-worker: stopping at the next safe point (Ctrl-C again to abort)");
            stop_on_signal.store(true, Ordering::SeqCst);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let display = std::io::stderr().is_terminal().then(|| {
        let (progress, client) = (progress.clone(), client.clone());
        tokio::spawn(show_progress(progress, client))
    });
    tracing::info!(%tenant, mode = ?job.permission_mode, "sync started");
    let result =
        sentinel_pipeline::run_graph_ingest(&client, &store, &tenant, &job, progress.clone(), stop)
            .await;
    if let Some(d) = display {
        d.abort();
        eprintln!();
    }
    match result {
        Ok(report) => {
            let views = sentinel_pipeline::run_refresh_mv(&store, Some(tenant.as_str())).await?;
            let p = &report.progress;
            tracing::info!(
                users = p.users,
                groups = p.groups,
                sites = p.sites,
                drives = p.drives,
                items = p.items,
                permission_items = p.permission_items,
                ru_spent = p.ru_spent,
                requests = p.requests,
                throttled = p.throttled,
                seconds = report.duration.as_secs_f64(),
                views_refreshed = views.refreshed.len(),
                "sync succeeded"
            );
            println!("{}", serde_json::to_string(&report.progress)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(PipelineError::Cancelled) => {
            eprintln!("sentinel-worker: sync stopped before finishing; the next sync resumes");
            Ok(ExitCode::from(130))
        }
        Err(e) => Err(anyhow::Error::new(e).context("sync failed")),
    }
}

/// One status line, rewritten every second, while the sync runs on a terminal.
async fn show_progress(progress: Arc<Progress>, client: GraphClient) {
    let started = Instant::now();
    let mut phase_start = (Phase::Starting, Instant::now(), 0u64);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = progress.snapshot(&client);
        if s.phase != phase_start.0 {
            phase_start = (s.phase, Instant::now(), s.permission_items);
        }
        let eta = if s.phase == Phase::Reading(Resource::Permissions)
            && s.permission_items > phase_start.2
        {
            let rate =
                (s.permission_items - phase_start.2) as f64 / phase_start.1.elapsed().as_secs_f64();
            let left = s.permission_items_due.saturating_sub(s.permission_items) as f64;
            format!(" ETA {:.0}s", left / rate.max(0.001))
        } else {
            String::new()
        };
        eprint!(
            "\r[{:>5.0}s {}] users {} groups {} sites {} drives {}/{} items {} permissions {}/{} | {} RU, {} requests, {} throttled ({:.1}s waited){}   ",
            started.elapsed().as_secs_f64(),
            s.phase,
            s.users,
            s.groups,
            s.sites,
            s.drives_done,
            s.drives,
            s.items,
            s.permission_items,
            s.permission_items_due,
            s.ru_spent,
            s.requests,
            s.throttled,
            s.throttle_wait_ms as f64 / 1000.0,
            eta
        );
    }
}
