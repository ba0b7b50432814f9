//! Permissions: the items due a read (all changed items in exhaustive mode, hierarchy roots in
//! hierarchical mode) are read twenty per `$batch`. Each page is stored as it arrives, so a
//! killed run resumes where it stopped; a time budget stops a run between pages.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use sentinel_graph::models::{GraphObject, Permission};
use sentinel_graph::{BatchRequest, GraphError};
use sentinel_store::{DueItem, ItemPermissions, SweptItem};
use serde_json::Value;

use crate::PipelineError;
use crate::Resource;
use crate::convert::permission_row;
use crate::job::{Ctx, PermissionMode};
use crate::progress::Phase;
use crate::progress::Progress;
use crate::stage::{Emitter, Pipeline, Sink, Source, Transform};

/// Items due a read: first those never read or changed since, then (with a sweep) those read
/// before `sweep_before`, the longest ago first.
struct DueSource {
    ctx: Ctx,
    roots_only: bool,
    sweep_before: Option<DateTime<Utc>>,
    deadline: Option<Instant>,
    out_of_time: Arc<AtomicBool>,
}

impl DueSource {
    /// Whether the run may read another page (false once stopped by its time budget).
    fn may_continue(&self) -> Result<bool, PipelineError> {
        self.ctx.check_stop()?;
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.out_of_time.store(true, Ordering::SeqCst);
            return Ok(false);
        }
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Source for DueSource {
    type Item = Vec<DueItem>;
    async fn produce(self: Box<Self>, out: Emitter<Vec<DueItem>>) -> Result<(), PipelineError> {
        let (store, tenant) = (&self.ctx.store, &self.ctx.tenant);
        let limit = self.ctx.config.batch_size.max(1) as i64;
        let mut after: Option<DueItem> = None;
        while self.may_continue()? {
            let page = store
                .items_due_for_permissions(tenant, self.roots_only, after.as_ref(), limit)
                .await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            out.emit(page).await?;
            after = Some(last);
        }
        let Some(before) = self.sweep_before else {
            return Ok(());
        };
        let mut after: Option<SweptItem> = None;
        while self.may_continue()? {
            let page = store
                .items_due_for_sweep(tenant, self.roots_only, before, after.as_ref(), limit)
                .await?;
            let Some(last) = page.last().cloned() else {
                return Ok(());
            };
            out.emit(page.into_iter().map(|s| s.item).collect()).await?;
            after = Some(last);
        }
        Ok(())
    }
}

/// The permissions read for a page, and the items found gone.
struct Fetched {
    items: Vec<ItemPermissions>,
    gone: Vec<DueItem>,
}

struct Fetcher {
    ctx: Ctx,
    guests: HashSet<String>,
}

impl Fetcher {
    fn rows(&self, due: &DueItem, perms: &[Permission]) -> ItemPermissions {
        ItemPermissions {
            drive_id: due.drive_id.clone(),
            item_id: due.item_id.clone(),
            permissions: perms
                .iter()
                .map(|p| permission_row(p, &self.guests))
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl Transform for Fetcher {
    type In = Vec<DueItem>;
    type Out = Fetched;
    async fn apply(
        &mut self,
        page: Vec<DueItem>,
        out: &Emitter<Fetched>,
    ) -> Result<(), PipelineError> {
        let client = &self.ctx.client;
        let mut requests = Vec::with_capacity(page.len());
        let mut failures = 0;
        for (n, due) in page.iter().enumerate() {
            match client.item_permissions_path(&due.drive_id, &due.item_id) {
                Ok(path) => requests.push(BatchRequest::get(n.to_string(), path)),
                Err(_) => failures += 1,
            }
        }
        let mut fetched = Fetched {
            items: Vec::new(),
            gone: Vec::new(),
        };
        for resp in client.batch(requests).await? {
            let Some(due) = resp.id.parse::<usize>().ok().and_then(|n| page.get(n)) else {
                continue;
            };
            match resp.status {
                200..=299 => {
                    let more = resp.body.get("@odata.nextLink").is_some();
                    let parsed: Result<Vec<Permission>, _> =
                        match resp.body.get("value").and_then(Value::as_array) {
                            Some(values) => {
                                values.iter().cloned().map(Permission::from_json).collect()
                            }
                            None => Ok(Vec::new()),
                        };
                    match (parsed, more) {
                        // A long list continues on further pages: read it whole, outside the batch.
                        (Ok(_), true) => {
                            match client.item_permissions(&due.drive_id, &due.item_id).await {
                                Ok(all) => fetched.items.push(self.rows(due, &all)),
                                Err(GraphError::NotFound { .. }) => fetched.gone.push(due.clone()),
                                Err(_) => failures += 1,
                            }
                        }
                        (Ok(perms), false) => fetched.items.push(self.rows(due, &perms)),
                        (Err(e), _) => {
                            tracing::warn!(item = %due.item_id, error = %e, "unreadable permissions");
                            failures += 1;
                        }
                    }
                }
                404 => fetched.gone.push(due.clone()),
                status => {
                    tracing::warn!(item = %due.item_id, status, "reading permissions failed");
                    failures += 1;
                }
            }
        }
        self.ctx.progress.fail(
            "items whose permissions were not read after retries",
            failures,
        );
        out.emit(fetched).await
    }
}

/// Stores each page of fetched permissions.
struct PermissionsSink(Ctx);

#[async_trait::async_trait]
impl Sink for PermissionsSink {
    type In = Fetched;
    async fn consume(&mut self, f: Fetched) -> Result<(), PipelineError> {
        let ctx = &self.0;
        ctx.store
            .replace_item_permissions(&ctx.tenant, &f.items)
            .await?;
        let mut gone: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for g in &f.gone {
            gone.entry(g.drive_id.as_str())
                .or_default()
                .push(g.item_id.clone());
        }
        for (drive, ids) in gone {
            ctx.store.delete_items(&ctx.tenant, drive, &ids).await?;
        }
        Progress::add(
            &ctx.progress.permission_items,
            (f.items.len() + f.gone.len()) as u64,
        );
        // The permission tables grow fast on a first sync: refresh statistics as they do.
        ctx.store.analyze_content_if_grown().await?;
        Ok(())
    }
}

pub(crate) async fn sync_permissions(ctx: &Ctx) -> Result<(), PipelineError> {
    ctx.progress
        .set_phase(Phase::Reading(Resource::Permissions));
    let roots_only = ctx.config.permission_mode == PermissionMode::Hierarchical;
    ctx.store.analyze_stale_content().await?;
    let sweep_before = match ctx.config.permission_sweep_hours() {
        Some(h) => Some(ctx.store.now().await? - chrono::Duration::hours(h as i64)),
        None => None,
    };
    let mut due = ctx
        .store
        .count_items_due_for_permissions(&ctx.tenant, roots_only)
        .await?;
    if let Some(before) = sweep_before {
        due += ctx
            .store
            .count_items_due_for_sweep(&ctx.tenant, roots_only, before)
            .await?;
    }
    ctx.progress
        .permission_items_due
        .store(due.max(0) as u64, Ordering::Relaxed);
    let guests: HashSet<String> = ctx
        .store
        .guest_user_ids(&ctx.tenant)
        .await?
        .into_iter()
        .collect();
    let out_of_time = Arc::new(AtomicBool::new(false));
    let deadline = ctx
        .config
        .time_budget_secs
        .map(|s| ctx.started + std::time::Duration::from_secs(s));
    Pipeline::source(
        "permissions.due",
        DueSource {
            ctx: ctx.clone(),
            roots_only,
            sweep_before,
            deadline,
            out_of_time: out_of_time.clone(),
        },
    )
    .transform(
        "permissions.fetch",
        Fetcher {
            ctx: ctx.clone(),
            guests,
        },
    )
    .sink("permissions.store", PermissionsSink(ctx.clone()))
    .run()
    .await?;
    if out_of_time.load(Ordering::SeqCst) {
        let mut left = ctx
            .store
            .count_items_due_for_permissions(&ctx.tenant, roots_only)
            .await?;
        if let Some(before) = sweep_before {
            left += ctx
                .store
                .count_items_due_for_sweep(&ctx.tenant, roots_only, before)
                .await?;
        }
        if left > 0 {
            return Err(PipelineError::Incomplete(format!(
                "time budget reached with {left} items' permissions still due (the next run resumes there)"
            )));
        }
    }
    Ok(())
}
