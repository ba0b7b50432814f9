//! Drives (site libraries and every user's OneDrive) and their items (a delta round per
//! drive, drives in parallel with a bound).

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sentinel_graph::models::{Drive, GraphObject};
use sentinel_graph::{
    BatchRequest, DeltaEvent, DeltaStart, DriveDeltaOptions, GraphError, validate_id,
};
use sentinel_store::{DriveItemRow, DriveRef, RootRecheck};

use crate::PipelineError;
use crate::Resource;
use crate::convert::{drive_item_row, drive_row, site_row};
use crate::job::{Ctx, PermissionMode};
use crate::progress::Phase;
use crate::progress::Progress;
use crate::rounds::{Assembler, DeltaSource, RoundStep};
use crate::stage::{Pipeline, Sink};

/// Users whose OneDrives are looked up (and stored) at a time.
const ONEDRIVE_CHUNK: usize = 1_000;

/// Ids of the drives listed so far; each listing's rows are stored as they come.
#[derive(Default)]
struct Listed(HashSet<String>);

impl Listed {
    async fn store(
        &mut self,
        ctx: &Ctx,
        rows: Vec<sentinel_store::DriveRow>,
    ) -> Result<(), PipelineError> {
        ctx.store.upsert_drives(&ctx.tenant, &rows).await?;
        Progress::add(&ctx.progress.drives, rows.len() as u64);
        self.0.extend(rows.into_iter().map(|r| r.id));
        Ok(())
    }
}

/// Checkpoints of the drive listing: the last full one and the last of any kind.
const FULL_LISTING: &str = "drives:full_listing";
const ANY_LISTING: &str = "drives:listing";

/// Lists drives: every site's (subsites' included) and every user's when the last full listing
/// is older than `full_listing_hours`, else only those of site collections and users the delta
/// rounds reported since the last listing (a rescan then costs nothing for an unchanged
/// tenant). Drives no longer listed are soft-deleted, only after a complete full listing; a
/// subsite no longer listed under its parent, as soon as the parent is listed.
pub(crate) async fn sync_drives(ctx: &Ctx) -> Result<(), PipelineError> {
    ctx.progress.set_phase(Phase::Reading(Resource::Drives));
    let started = ctx.store.now().await?;
    let last_full = ctx.store.checkpoint(FULL_LISTING, &ctx.tenant).await?;
    let max_age = chrono::Duration::hours(ctx.config.full_listing_hours as i64);
    let since = match last_full {
        Some(t) if started - t < max_age => ctx.store.checkpoint(ANY_LISTING, &ctx.tenant).await?,
        _ => None,
    };
    let mut listed = Listed::default();
    let mut sites = ctx.store.live_site_ids(&ctx.tenant, since).await?;
    if since.is_some() {
        // A skipped site is tried on every run, changed or not.
        sites.extend(ctx.store.skipped_site_ids(&ctx.tenant).await?);
    }
    let (readable_sites, mut failures) = list_sites(ctx, sites, &mut listed).await?;
    // OneDrives: one GET per user, twenty per $batch; 404 means no OneDrive (unlicensed).
    let mut users = ctx.store.live_user_ids(&ctx.tenant, since).await?;
    if since.is_some() {
        // A skipped OneDrive is tried on every run, as a skipped site is.
        users.extend(ctx.store.skipped_onedrive_owners(&ctx.tenant).await?);
        users.sort_unstable();
        users.dedup();
    }
    failures += list_onedrives(ctx, &users, &mut listed).await?;
    ctx.store
        .clear_site_skips(&ctx.tenant, &readable_sites)
        .await?;
    if failures > 0 {
        ctx.progress.fail(
            "sites or users whose drives were not listed after retries",
            failures,
        );
        return Ok(());
    }
    ctx.store
        .save_checkpoint(ANY_LISTING, &ctx.tenant, started)
        .await?;
    if since.is_some() {
        return Ok(());
    }
    ctx.store
        .save_checkpoint(FULL_LISTING, &ctx.tenant, started)
        .await?;
    let listed = listed.0;
    let gone: Vec<String> = ctx
        .store
        .live_drives(&ctx.tenant)
        .await?
        .into_iter()
        .filter(|d| !d.skipped && !listed.contains(&d.id))
        .map(|d| d.id)
        .collect();
    if !gone.is_empty() {
        tracing::info!(
            drives = gone.len(),
            "drives no longer listed: soft-deleting them"
        );
        ctx.store.delete_drives(&ctx.tenant, &gone).await?;
    }
    Ok(())
}

/// Why a site or drive is skipped: Graph's 403 and what it said.
fn refused(code: &str, message: &str) -> String {
    format!("403 {code}: {message}")
}

/// Lists each site's libraries and subsites, `drive_concurrency` at a time; the subsites found
/// are listed in turn (Graph lists a site's direct subsites only, and `sites/delta` none at
/// all). Returns the sites read and the number of listings that failed.
async fn list_sites(
    ctx: &Ctx,
    sites: Vec<String>,
    listed: &mut Listed,
) -> Result<(Vec<String>, u64), PipelineError> {
    let mut readable_sites = Vec::new();
    let mut failures = 0u64;
    let mut seen = HashSet::new();
    let mut queue: VecDeque<String> = sites
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect();
    let mut listings = FuturesUnordered::new();
    loop {
        while listings.len() < ctx.config.drive_concurrency.max(1) {
            let Some(site) = queue.pop_front() else { break };
            let client = ctx.client.clone();
            listings.push(async move {
                let listing = futures::try_join!(client.site_drives(&site), client.subsites(&site));
                (listing, site)
            });
        }
        let Some((result, site)) = listings.next().await else {
            break;
        };
        match result {
            Ok((drives, subsites)) => {
                let rows: Vec<_> = subsites.iter().map(site_row).collect();
                ctx.store.apply_subsites(&ctx.tenant, &site, &rows).await?;
                Progress::add(&ctx.progress.sites, rows.len() as u64);
                for sub in subsites {
                    if seen.insert(sub.id.clone()) {
                        queue.push_back(sub.id);
                    }
                }
                let rows: Vec<_> = drives
                    .iter()
                    .map(|d| drive_row(d, Some(&site), None))
                    .collect();
                listed.store(ctx, rows).await?;
                readable_sites.push(site);
            }
            // The site went away since the sites round: its drives go with it.
            Err(GraphError::NotFound { .. }) => {}
            // A site locked with NoAccess answers 403 accessDenied (SharePoint "Lock and unlock
            // sites"): skipped and said so, neither a failure of the run nor a reason to
            // delete its libraries.
            Err(GraphError::Forbidden { code, message }) => {
                let reason = refused(&code, &message);
                tracing::warn!(%site, %reason, "site skipped: Graph refused to read it");
                ctx.store.skip_site(&ctx.tenant, &site, &reason).await?;
                ctx.progress.skip_site(&site, &reason);
            }
            Err(e) => {
                tracing::warn!(%site, error = %e, "listing a site's drives failed");
                failures += 1;
            }
        }
    }
    Ok((readable_sites, failures))
}

/// Looks up each user's OneDrive, a chunk of users at a time (memory does not grow with the
/// tenant); returns the number of lookups that failed.
async fn list_onedrives(
    ctx: &Ctx,
    users: &[String],
    listed: &mut Listed,
) -> Result<u64, PipelineError> {
    let mut failures = 0u64;
    for chunk in users.chunks(ONEDRIVE_CHUNK) {
        let requests: Vec<BatchRequest> = chunk
            .iter()
            .enumerate()
            .filter(|(_, u)| validate_id("user", u).is_ok())
            .map(|(n, u)| BatchRequest::get(n.to_string(), format!("/users/{u}/drive")))
            .collect();
        let mut rows = Vec::new();
        for resp in ctx.client.batch(requests).await? {
            let Some(user) = resp.id.parse::<usize>().ok().and_then(|n| chunk.get(n)) else {
                continue;
            };
            match resp.status {
                200..=299 => match Drive::from_json(resp.body) {
                    Ok(d) => rows.push(drive_row(&d, None, Some(user))),
                    Err(e) => {
                        tracing::warn!(%user, error = %e, "unreadable OneDrive");
                        failures += 1;
                    }
                },
                404 => {}
                // A OneDrive locked with NoAccess (a personal site) answers 403 as a locked
                // site does: skipped with its reason, kept as last read, tried every full listing.
                403 => {
                    let error = &resp.body["error"];
                    let reason = refused(
                        error["code"].as_str().unwrap_or_default(),
                        error["message"].as_str().unwrap_or_default(),
                    );
                    tracing::warn!(%user, %reason, "OneDrive skipped: Graph refused to read it");
                    ctx.store
                        .skip_drives(&ctx.tenant, None, Some(user), &reason)
                        .await?;
                    ctx.progress
                        .skip_drive(&format!("users/{user}/drive"), &reason);
                }
                status => {
                    tracing::warn!(%user, status, "reading a user's OneDrive failed");
                    failures += 1;
                }
            }
        }
        listed.store(ctx, rows).await?;
    }
    Ok(failures)
}

fn selected(ctx: &Ctx, d: &DriveRef) -> bool {
    let c = &ctx.config;
    let matches = |patterns: &[String], values: &[Option<&str>]| {
        patterns.iter().any(|p| {
            let m = wildmatch::WildMatch::new(p);
            values.iter().flatten().any(|v| m.matches(v))
        })
    };
    let site_values = [
        d.site_id.as_deref(),
        d.site_name.as_deref(),
        d.site_url.as_deref(),
    ];
    let drive_values = [Some(d.id.as_str()), d.name.as_deref()];
    let site_in = c.include_sites.is_empty()
        || (d.site_id.is_some() && matches(&c.include_sites, &site_values));
    let site_out = d.site_id.is_some() && matches(&c.exclude_sites, &site_values);
    let drive_in = c.include_drives.is_empty() || matches(&c.include_drives, &drive_values);
    let drive_out = matches(&c.exclude_drives, &drive_values);
    site_in && !site_out && drive_in && !drive_out
}

/// One delta round per selected drive, `drive_concurrency` at a time.
pub(crate) async fn sync_drive_items(ctx: &Ctx) -> Result<(), PipelineError> {
    ctx.progress.set_phase(Phase::Reading(Resource::Items));
    let now = ctx.store.now().await?;
    let max_staleness = ctx.config.max_staleness();
    let due = |d: &DriveRef| {
        max_staleness.is_none_or(|max| {
            crate::cadence::drive_due(now, &d.id, d.checked_at, d.changed_at, max)
        })
    };
    let drives: Vec<DriveRef> = ctx
        .store
        .live_drives(&ctx.tenant)
        .await?
        .into_iter()
        .filter(|d| !d.skipped && selected(ctx, d) && due(d))
        .collect();
    // The other mode's links go before this mode writes a single row: its rounds would continue
    // from items whose roots and paths this mode derived otherwise. Forgetting them only once a
    // round completed left them valid when a run was killed after deriving a drive's tree but
    // before saving its link (a permission then read under the wrong root, for good).
    let partitions: Vec<String> = drives
        .iter()
        .map(|d| sentinel_store::drive_partition(&ctx.tenant, &d.id))
        .collect();
    ctx.store
        .forget_delta_links(
            items_resource(ctx.config.permission_mode.other()),
            &partitions,
        )
        .await?;
    let mut rounds = futures::stream::iter(drives.into_iter().map(|d| {
        let ctx = ctx.clone();
        async move { (sync_one_drive(&ctx, &d.id).await, d.id) }
    }))
    .buffer_unordered(ctx.config.drive_concurrency.max(1));
    let (mut failures, mut unwritten) = (0, 0);
    while let Some((result, drive)) = rounds.next().await {
        ctx.check_stop()?;
        Progress::add(&ctx.progress.drives_done, 1);
        match result {
            Ok(()) => {}
            // Deleted since it was listed: its items go with it.
            Err(PipelineError::Graph(GraphError::NotFound { .. })) => {
                ctx.store
                    .delete_drives(&ctx.tenant, std::slice::from_ref(&drive))
                    .await?;
            }
            Err(PipelineError::Cancelled) => return Err(PipelineError::Cancelled),
            // Refused (a locked OneDrive): skipped with its reason, kept as last read.
            Err(PipelineError::Graph(GraphError::Forbidden { code, message })) => {
                let reason = refused(&code, &message);
                tracing::warn!(%drive, %reason, "drive skipped: Graph refused to read it");
                ctx.store
                    .skip_drives(&ctx.tenant, Some(&drive), None, &reason)
                    .await?;
                ctx.progress.skip_drive(&drive, &reason);
            }
            // Missing consent fails every drive alike: say it once, and stop.
            Err(e @ PipelineError::Config(_)) => return Err(e),
            // The database failed, not Graph: said as such, not as a read that failed.
            Err(e @ PipelineError::Store(_)) => {
                tracing::warn!(%drive, error = %e, "drive delta round failed writing to the database");
                unwritten += 1;
            }
            Err(e) => {
                tracing::warn!(%drive, error = %e, "drive delta round failed");
                failures += 1;
            }
        }
    }
    ctx.progress
        .fail("drives whose items were not read after retries", failures);
    ctx.progress.fail(
        "drives whose items were not written (database error)",
        unwritten,
    );
    Ok(())
}

struct DriveItemsSink {
    ctx: Ctx,
    drive: String,
    full_since: Option<DateTime<Utc>>,
    hierarchical: bool,
    /// Items an incremental round wrote (their subtrees' paths and roots are derived again);
    /// `None` once too many to be worth it, or in a full round.
    changed: Option<Vec<String>>,
    /// Items an incremental round deleted: what is still live under them at the round's end
    /// goes too (a folder's tombstone may come without its descendants').
    deleted: Vec<String>,
    /// An incremental round brought a change: an item other than the root (which a round may
    /// return with no change under it), or a deletion.
    saw_change: bool,
    /// The drive's root came back in an incremental hierarchical round without being due a
    /// read ([`ItemChange::RootReturned`]); the round's end decides.
    root_returned: Option<String>,
    /// Files with permissions of their own that came back without a sharing annotation
    /// ([`ItemChange::FileReturned`]).
    files_returned: std::collections::BTreeSet<String>,
    /// How long a root returned as the parent of changes, or a file returned by an edit, may
    /// wait for its permission read.
    root_recheck: chrono::Duration,
}

/// Past this many changed items in a round, the whole drive's tree is derived again.
const INCREMENTAL_DERIVE_MAX: usize = 20_000;

/// An item of a delta page, converted to its row as soon as the page arrives (a row's raw JSON
/// is compact text; the parsed page is freed before it waits in the pipeline).
enum ItemChange {
    Live(Box<DriveItemRow>),
    /// Hierarchical mode, an incremental round, and the drive's root without a sharing
    /// annotation: Graph returns the root with every change even with `Prefer:
    /// deltaExcludeParent` (Graph Explorer #4052) and annotates files only (msgraph-sdk-java
    /// #2548), so it came back either as the parent of changes or for a change of its own
    /// permissions. Stored as not due; the round's end decides when its permissions are read.
    RootReturned(Box<DriveItemRow>),
    /// Hierarchical mode, an incremental round, and a file with permissions of its own without
    /// a sharing annotation: an edit brought it back. Graph annotates a file whose sharing
    /// changed (driveitem-delta, "Scanning permissions hierarchies") except when access was
    /// removed (onedrive-api-docs #1248), so its permissions are re-read no sooner than the
    /// cadence's maximum staleness after their last read (at once without a cadence): a file
    /// edited every few minutes was re-read, 5 RU each time, at every run.
    FileReturned(Box<DriveItemRow>),
    Deleted(String),
    /// Hierarchical mode, and the drive's root came without a `shared` facet: Graph ignored
    /// `Prefer: hierarchicalsharing`, which it honours for Sites.FullControl.All only, without
    /// an error. Nothing of the page is stored: every root would be missed.
    SharingIgnored,
}

/// What a run in hierarchical mode says when Graph ignored the sharing preferences.
fn sharing_ignored(drive: &str) -> PipelineError {
    PipelineError::Config(format!(
        "hierarchical mode needs the application permission Sites.FullControl.All: Graph ignored \
         Prefer: hierarchicalsharing on drive {drive}; grant it to the app, or run with --permissions exhaustive"
    ))
}

#[async_trait::async_trait]
impl Sink for DriveItemsSink {
    type In = RoundStep<ItemChange>;
    async fn consume(&mut self, step: RoundStep<ItemChange>) -> Result<(), PipelineError> {
        let ctx = &self.ctx;
        let RoundStep::Page { items, delta_link } = step else {
            self.full_since = Some(ctx.store.now().await?);
            return Ok(());
        };
        let mut rows = Vec::with_capacity(items.len());
        let mut deleted = Vec::new();
        for item in items {
            match item {
                ItemChange::Live(row) => rows.push(*row),
                ItemChange::RootReturned(row) => {
                    self.root_returned = Some(row.id.clone());
                    rows.push(*row);
                }
                ItemChange::FileReturned(row) => {
                    self.files_returned.insert(row.id.clone());
                    rows.push(*row);
                }
                ItemChange::Deleted(id) => deleted.push(id),
                ItemChange::SharingIgnored => return Err(sharing_ignored(&self.drive)),
            }
        }
        self.saw_change |= !deleted.is_empty() || rows.iter().any(|r| !r.is_root);
        if self.full_since.is_some() {
            self.changed = None;
        } else if let Some(changed) = &mut self.changed {
            changed.extend(rows.iter().map(|r| r.id.clone()));
            if changed.len() > INCREMENTAL_DERIVE_MAX {
                self.changed = None;
            }
        }
        ctx.store
            .apply_drive_items(&ctx.tenant, &self.drive, &rows, &deleted, None)
            .await?;
        if self.full_since.is_none() {
            self.deleted.extend(deleted);
        }
        Progress::add(&ctx.progress.items, rows.len() as u64);
        // The link is saved last: a run killed before paths and roots are derived repeats the
        // round, and the derivation with it.
        if let Some(link) = delta_link {
            let changed = self.full_since.is_none().then_some(self.saw_change);
            if let Some(since) = self.full_since.take() {
                ctx.store
                    .reconcile_drive_items(&ctx.tenant, &self.drive, since)
                    .await?;
            } else {
                let deleted = std::mem::take(&mut self.deleted);
                ctx.store
                    .delete_under_deleted_folders(&ctx.tenant, &self.drive, &deleted)
                    .await?;
            }
            ctx.store
                .derive_drive_tree(
                    &ctx.tenant,
                    &self.drive,
                    self.hierarchical,
                    self.changed.as_deref(),
                )
                .await?;
            // The root alone: its own permissions changed, read them now. With other changes
            // it may only be their parent: read it no sooner than the cadence's maximum
            // staleness after its last read (at once without an adaptive cadence).
            let root_returned = self.root_returned.take();
            let files_returned = std::mem::take(&mut self.files_returned);
            let rechecks: Vec<RootRecheck> = root_returned
                .as_deref()
                .map(|item_id| RootRecheck {
                    item_id,
                    not_before: if self.saw_change {
                        self.root_recheck
                    } else {
                        chrono::Duration::zero()
                    },
                })
                .into_iter()
                .chain(files_returned.iter().map(|item_id| RootRecheck {
                    item_id,
                    not_before: self.root_recheck,
                }))
                .collect();
            ctx.store
                .finish_drive_round(
                    &ctx.tenant,
                    &self.drive,
                    (items_resource(ctx.config.permission_mode), &link),
                    changed,
                    &rechecks,
                )
                .await?;
        }
        Ok(())
    }
}

/// Delta state is kept per permission mode: a link carries its round's `Prefer` flags, so
/// switching modes must start a full round.
fn items_resource(mode: PermissionMode) -> &'static str {
    match mode {
        PermissionMode::Exhaustive => "drive_items:exhaustive",
        PermissionMode::Hierarchical => "drive_items:hierarchical",
    }
}

async fn sync_one_drive(ctx: &Ctx, drive: &str) -> Result<(), PipelineError> {
    ctx.check_stop()?;
    let partition = sentinel_store::drive_partition(&ctx.tenant, drive);
    let (start, full_since) = match ctx
        .store
        .delta_link(items_resource(ctx.config.permission_mode), &partition)
        .await?
    {
        Some(link) => (DeltaStart::Link(link), None),
        None => (DeltaStart::Scratch, Some(ctx.store.now().await?)),
    };
    let hierarchical = ctx.config.permission_mode == PermissionMode::Hierarchical;
    let options = DriveDeltaOptions {
        hierarchical_sharing: hierarchical,
        show_sharing_changes: hierarchical,
        // Parents of each change would only be re-read (roots) and re-derived for nothing.
        exclude_parents: true,
        top: Some(1000),
        select: None,
    };
    // A scratch or resync round re-reads every item's permissions (changes in the gap were
    // not reported); the stream says when a resync starts, before the pages it brings.
    let mut full = full_since.is_some();
    let stream = ctx
        .client
        .drive_delta(drive, start, &options)?
        .map(move |event| {
            event.map(|event| {
                if matches!(event, DeltaEvent::Resync { .. }) {
                    full = true;
                }
                event.map(|items| {
                    items
                        .into_iter()
                        .map(|i| {
                            if i.is_deleted() {
                                ItemChange::Deleted(i.id)
                            } else if hierarchical && i.is_root() && i.shared.is_none() {
                                ItemChange::SharingIgnored
                            } else {
                                let mut row = Box::new(drive_item_row(&i, hierarchical, full));
                                let unannotated = hierarchical && !full && !i.sharing_changed();
                                if unannotated && i.is_root() {
                                    row.sharing_changed = false;
                                    ItemChange::RootReturned(row)
                                } else if unannotated && row.is_permission_root && !i.is_folder() {
                                    row.sharing_changed = false;
                                    ItemChange::FileReturned(row)
                                } else {
                                    ItemChange::Live(row)
                                }
                            }
                        })
                        .collect()
                })
            })
        })
        .boxed();
    Pipeline::source("items.delta", DeltaSource(stream))
        .transform("items.assemble", Assembler::new())
        .sink(
            "items.store",
            DriveItemsSink {
                ctx: ctx.clone(),
                drive: drive.to_string(),
                full_since,
                hierarchical,
                changed: Some(Vec::new()),
                deleted: Vec::new(),
                saw_change: false,
                root_returned: None,
                files_returned: Default::default(),
                root_recheck: ctx
                    .config
                    .max_staleness()
                    .unwrap_or(chrono::Duration::zero()),
            },
        )
        .run()
        .await?;
    Ok(())
}
