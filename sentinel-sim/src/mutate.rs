//! Realistic changes to a tenant, as users and admins make them.

use rand::seq::IndexedRandom;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::generate::{add_random_item, grant, random_live_folder};
use crate::tenant::*;

/// What one call of [`apply_random`] changed, by kind.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MutationReport {
    /// Changes made.
    pub applied: usize,
    /// Changes made, per kind (e.g. `share`, `rename`).
    pub by_kind: std::collections::BTreeMap<&'static str, usize>,
}

/// Kinds of change and their weights.
pub const KINDS: &[(&str, u32)] = &[
    ("create_file", 20),
    ("create_folder", 4),
    ("modify", 20),
    ("rename", 6),
    ("move", 5),
    ("delete_file", 8),
    ("delete_folder", 2),
    ("share", 8),
    ("unshare", 4),
    ("break_inheritance", 3),
    ("restore_inheritance", 3),
    ("add_member", 5),
    ("remove_member", 4),
    ("add_owner", 2),
    ("remove_owner", 1),
    ("soft_delete_user", 1),
    ("hard_delete_user", 1),
    ("create_user", 2),
    ("update_user", 3),
    ("delete_drive", 1),
    ("delete_site", 1),
    ("create_subsite", 1),
    ("delete_subsite", 1),
    // Asked for by name only (weight 0 in the default mix): a new kind in the mix would change
    // every seeded test's draws. `sync.rs`'s ground truth and the cadence tests name it.
    ("grant_on_root", 0),
];

/// Applies `count` random changes, of the given `kinds` only if set; `now` is the simulated
/// time in Unix seconds.
pub fn apply_random(
    t: &mut Tenant,
    rng: &mut ChaCha8Rng,
    count: usize,
    now: i64,
    kinds: Option<&[String]>,
) -> MutationReport {
    // A kind named explicitly is drawn even when the default mix leaves it out.
    let kinds: Vec<(&'static str, u32)> = match kinds {
        None => KINDS.to_vec(),
        Some(only) => KINDS
            .iter()
            .filter(|(k, _)| only.iter().any(|o| o == k))
            .map(|&(k, w)| (k, w.max(1)))
            .collect(),
    };
    let total: u32 = kinds.iter().map(|k| k.1).sum();
    if total == 0 {
        return MutationReport::default();
    }
    let mut report = MutationReport::default();
    let mut attempts = 0;
    while report.applied < count && attempts < count * 20 + 100 {
        attempts += 1;
        let mut pick = rng.random_range(0..total);
        let kind = kinds
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map(|k| k.0)
            .unwrap_or("modify");
        if apply_one(t, rng, kind, now) {
            report.applied += 1;
            *report.by_kind.entry(kind).or_default() += 1;
        }
    }
    report
}

fn live_drives(t: &Tenant) -> Vec<usize> {
    (0..t.drives.len()).filter(|&d| t.drive_live(d)).collect()
}

/// A random live non-root item of a random live drive.
fn random_item(
    t: &Tenant,
    rng: &mut ChaCha8Rng,
    want_folder: Option<bool>,
) -> Option<(usize, u32)> {
    let drives = live_drives(t);
    for _ in 0..32 {
        let d = *drives.choose(rng)?;
        if let Some(i) = random_item_in(t, rng, d, want_folder, 1) {
            return Some((d, i));
        }
    }
    None
}

/// A random live non-root item of drive `d`, in at most `tries` draws.
fn random_item_in(
    t: &Tenant,
    rng: &mut ChaCha8Rng,
    d: usize,
    want_folder: Option<bool>,
    tries: usize,
) -> Option<u32> {
    let items = &t.drives[d].items;
    if items.len() < 2 {
        return None;
    }
    (0..tries).find_map(|_| {
        let i = rng.random_range(1..items.len());
        let it = &items[i];
        (!it.deleted && want_folder.is_none_or(|f| f == it.folder)).then_some(i as u32)
    })
}

/// Kinds of change [`change_in_drive`] makes, with their weights in [`KINDS`]: what people do
/// to files day to day.
pub const CONTENT_KINDS: &[&str] = &["create_file", "modify", "rename", "share"];

/// One change of a [`CONTENT_KINDS`] kind inside drive `d` (the activity model picks the
/// drive); `None` when the drive is gone or has nothing to change.
pub fn change_in_drive(
    t: &mut Tenant,
    rng: &mut ChaCha8Rng,
    d: usize,
    now: i64,
) -> Option<&'static str> {
    if !t.drive_live(d) {
        return None;
    }
    let weights: Vec<(&'static str, u32)> = KINDS
        .iter()
        .filter(|(k, _)| CONTENT_KINDS.contains(k))
        .copied()
        .collect();
    let kind = weights.choose_weighted(rng, |k| k.1).ok()?.0;
    if kind == "create_file" {
        t.next_seq();
        add_random_item(t, rng, d, Some(now));
        return Some(kind);
    }
    let i = random_item_in(t, rng, d, Some(false), 8)?;
    match kind {
        "share" => share(t, rng, d, i),
        "rename" => touch_item(t, rng, d, i, now, rename),
        _ => touch_item(t, rng, d, i, now, modify),
    }
    Some(kind)
}

/// A file's new content (a folder's size is its files').
fn modify(it: &mut Item, rng: &mut ChaCha8Rng) {
    if !it.folder {
        it.size = it.size / 2 + rng.random_range(1..50_000);
    }
}

fn rename(it: &mut Item, rng: &mut ChaCha8Rng) {
    it.name = format!("Renamed {} {}", rng.random_range(0..1000), it.name).into();
}

fn apply_one(t: &mut Tenant, rng: &mut ChaCha8Rng, kind: &str, now: i64) -> bool {
    match kind {
        "create_file" | "create_folder" => {
            let drives = live_drives(t);
            let Some(&d) = drives.choose(rng) else {
                return false;
            };
            t.next_seq();
            let idx = add_random_item(t, rng, d, Some(now));
            let it = &mut t.drives[d].items[idx as usize];
            if kind == "create_folder" && !it.folder {
                it.folder = true;
                it.size = 0;
            }
            true
        }
        "modify" => touch(t, rng, now, modify),
        "rename" => touch(t, rng, now, rename),
        "move" => {
            let Some((d, i)) = random_item(t, rng, None) else {
                return false;
            };
            let target = random_live_folder(t, rng, d);
            // Never move a folder under itself or its own descendants.
            let mut cur = target;
            while cur != NO_PARENT {
                if cur == i {
                    return false;
                }
                cur = t.drives[d].items[cur as usize].parent;
            }
            let seq = t.next_seq();
            let it = &mut t.drives[d].items[i as usize];
            it.parent = target;
            it.version = seq;
            it.modified = now;
            true
        }
        "delete_file" | "delete_folder" => {
            let Some((d, i)) = random_item(t, rng, Some(kind == "delete_folder")) else {
                return false;
            };
            delete_subtree(t, d, i);
            true
        }
        "share" => {
            let Some((d, i)) = random_item(t, rng, None) else {
                return false;
            };
            share(t, rng, d, i);
            true
        }
        "unshare" => {
            let Some((d, i)) = find_unique_with_link(t, rng) else {
                return false;
            };
            let seq = t.next_seq();
            let item = &mut t.drives[d].items[i as usize];
            if let Some(perms) = item.unique.as_mut() {
                let links: Vec<usize> = (0..perms.len())
                    .filter(|&k| matches!(t.perms[perms[k] as usize].kind, PermKind::Link { .. }))
                    .collect();
                if let Some(&k) = links.choose(rng) {
                    perms.remove(k);
                    item.perm_version = seq;
                    item.access_removed = true;
                    return true;
                }
            }
            false
        }
        // Someone given access to a whole library: a grant on its root folder. Graph returns
        // the root unannotated (folders carry no `sharedChanged`), as it does when the root
        // is only the parent of a change.
        "grant_on_root" => {
            let Some(&d) = live_drives(t).choose(rng) else {
                return false;
            };
            if t.drives[d].items.is_empty() {
                return false;
            }
            add_direct_grant(t, rng, d, 0);
            true
        }
        "break_inheritance" => {
            let Some((d, i)) = random_item(t, rng, None) else {
                return false;
            };
            if t.drives[d].items[i as usize].unique.is_some() {
                return false;
            }
            break_inheritance(t, rng, d, i);
            add_direct_grant(t, rng, d, i);
            true
        }
        "restore_inheritance" => {
            let Some((d, i)) = find_unique(t, rng) else {
                return false;
            };
            let seq = t.next_seq();
            let item = &mut t.drives[d].items[i as usize];
            item.unique = None;
            item.perm_version = seq;
            item.access_removed = true;
            true
        }
        "add_member" | "remove_member" => change_membership(t, rng, kind == "add_member", false),
        "add_owner" | "remove_owner" => change_membership(t, rng, kind == "add_owner", true),
        "soft_delete_user" | "hard_delete_user" => {
            let users: Vec<usize> = (2..t.users.len())
                .filter(|&u| t.users[u].state == Lifecycle::Active)
                .collect();
            let Some(&u) = users.choose(rng) else {
                return false;
            };
            let seq = t.next_seq();
            let user = &mut t.users[u];
            user.state = if kind == "soft_delete_user" {
                Lifecycle::SoftDeleted
            } else {
                Lifecycle::HardDeleted
            };
            user.version = seq;
            true
        }
        "update_user" => {
            let users: Vec<usize> = (2..t.users.len())
                .filter(|&u| t.users[u].state == Lifecycle::Active)
                .collect();
            let Some(&u) = users.choose(rng) else {
                return false;
            };
            let seq = t.next_seq();
            let department = crate::generate::DEPARTMENTS
                .choose(rng)
                .unwrap_or(&"Sales")
                .to_string();
            let rename = rng.random_bool(0.3);
            let toggle = rng.random_bool(0.2);
            let user = &mut t.users[u];
            user.department = department;
            user.mark_changed("department", seq);
            if rename {
                user.display_name = format!("{} (moved)", user.display_name);
                user.mark_changed("displayName", seq);
            }
            if toggle {
                user.account_enabled = !user.account_enabled;
                user.mark_changed("accountEnabled", seq);
            }
            true
        }
        "create_user" => {
            t.next_seq();
            let guest = rng.random_bool(0.2);
            crate::generate::new_user(t, rng, guest, now);
            true
        }
        "delete_drive" => {
            // Only extra libraries: every site keeps its default "Documents" library.
            let libs: Vec<usize> = (0..t.drives.len())
                .filter(|&d| {
                    t.drive_live(d) && t.drives[d].site.is_some() && t.drives[d].name != "Documents"
                })
                .collect();
            let Some(&d) = libs.choose(rng) else {
                return false;
            };
            let seq = t.next_seq();
            t.drives[d].deleted = true;
            t.drives[d].version = seq;
            true
        }
        "delete_site" => {
            let collections: Vec<usize> = (0..t.sites.len())
                .filter(|&s| !t.sites[s].deleted && t.sites[s].parent.is_none())
                .collect();
            if collections.len() < 2 {
                return false;
            }
            let Some(&s) = collections.choose(rng) else {
                return false;
            };
            delete_site_tree(t, s);
            true
        }
        "create_subsite" => {
            let live: Vec<usize> = (0..t.sites.len())
                .filter(|&s| !t.sites[s].deleted)
                .collect();
            let Some(&parent) = live.choose(rng) else {
                return false;
            };
            t.next_seq();
            crate::generate::new_subsite(t, rng, parent);
            true
        }
        "delete_subsite" => {
            let subsites: Vec<usize> = (0..t.sites.len())
                .filter(|&s| !t.sites[s].deleted && t.sites[s].parent.is_some())
                .collect();
            let Some(&s) = subsites.choose(rng) else {
                return false;
            };
            delete_site_tree(t, s);
            true
        }
        _ => false,
    }
}

/// Deletes a site with every subsite under it (a subsite cannot outlive its parent).
fn delete_site_tree(t: &mut Tenant, site: usize) {
    let seq = t.next_seq();
    let mut doomed = vec![site];
    while let Some(s) = doomed.pop() {
        doomed.extend(t.subsites_of(s));
        t.sites[s].deleted = true;
        t.sites[s].version = seq;
    }
}

fn touch(
    t: &mut Tenant,
    rng: &mut ChaCha8Rng,
    now: i64,
    f: fn(&mut Item, &mut ChaCha8Rng),
) -> bool {
    let Some((d, i)) = random_item(t, rng, None) else {
        return false;
    };
    touch_item(t, rng, d, i, now, f);
    true
}

/// Changes item `i` of drive `d` with `f`, as a user edits it: a new version by a random editor.
fn touch_item(
    t: &mut Tenant,
    rng: &mut ChaCha8Rng,
    d: usize,
    i: u32,
    now: i64,
    f: impl FnOnce(&mut Item, &mut ChaCha8Rng),
) {
    let seq = t.next_seq();
    let users = t.users.len() as u32;
    let editor = rng.random_range(0..users);
    let it = &mut t.drives[d].items[i as usize];
    f(it, rng);
    it.version = seq;
    it.modified = now;
    it.modified_by = editor;
}

/// Deletes an item and every live descendant (each becomes a tombstone).
pub fn delete_subtree(t: &mut Tenant, d: usize, root: u32) {
    let seq = t.next_seq();
    let items = &mut t.drives[d].items;
    // Children always have a higher index than... not after moves; walk ancestry instead.
    let n = items.len();
    let mut doomed = vec![false; n];
    doomed[root as usize] = true;
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            let p = items[i].parent;
            if !doomed[i] && !items[i].deleted && p != NO_PARENT && doomed[p as usize] {
                doomed[i] = true;
                changed = true;
            }
        }
    }
    for (i, it) in items.iter_mut().enumerate() {
        if doomed[i] && !it.deleted {
            it.deleted = true;
            it.version_before_delete = it.version;
            it.version = seq;
        }
    }
}

fn find_unique(t: &Tenant, rng: &mut ChaCha8Rng) -> Option<(usize, u32)> {
    for _ in 0..64 {
        let (d, i) = random_item(t, rng, None)?;
        if t.drives[d].items[i as usize].unique.is_some() {
            return Some((d, i));
        }
    }
    None
}

fn find_unique_with_link(t: &Tenant, rng: &mut ChaCha8Rng) -> Option<(usize, u32)> {
    for _ in 0..64 {
        let (d, i) = find_unique(t, rng)?;
        let has_link = t.drives[d].items[i as usize]
            .unique
            .as_ref()
            .is_some_and(|p| {
                p.iter()
                    .any(|&k| matches!(t.perms[k as usize].kind, PermKind::Link { .. }))
            });
        if has_link {
            return Some((d, i));
        }
    }
    None
}

/// Gives an item its own copy of the permissions it inherited (SharePoint's behaviour).
pub fn break_inheritance(t: &mut Tenant, _rng: &mut ChaCha8Rng, d: usize, i: u32) {
    if t.drives[d].items[i as usize].unique.is_some() {
        return;
    }
    let copy = t.effective_perms(d, i).to_vec();
    let seq = t.next_seq();
    let it = &mut t.drives[d].items[i as usize];
    it.unique = Some(copy);
    it.perm_version = seq;
    it.access_removed = false;
}

fn set_perm(t: &mut Tenant, d: usize, i: u32, p: PermIdx) {
    let seq = t.next_seq();
    let new_id = t.perms[p as usize].id.clone();
    let it = &mut t.drives[d].items[i as usize];
    if let Some(list) = it.unique.as_mut() {
        // One permission per principal: a new grant to the same principal replaces it.
        list.retain(|&k| t.perms[k as usize].id != new_id);
        list.push(p);
    }
    it.perm_version = seq;
    it.access_removed = false;
}

/// Creates a sharing link on an item (breaking inheritance first, as SharePoint does).
pub fn share(t: &mut Tenant, rng: &mut ChaCha8Rng, d: usize, i: u32) {
    break_inheritance(t, rng, d, i);
    let scope = match rng.random_range(0..10) {
        0..=2 => LinkScope::Anonymous,
        3..=5 => LinkScope::Organization,
        _ => LinkScope::Users,
    };
    let edit = rng.random_bool(0.35);
    let folder = t.drives[d].items[i as usize].folder;
    // One link in ten is of the kinds only SharePoint and OneDrive for Business make: upload-only
    // on folders, review or no-download on files.
    let link_type = match (rng.random_range(0..20), folder) {
        (0 | 1, true) => LinkType::CreateOnly,
        (0, false) => LinkType::Review,
        (1, false) => LinkType::BlocksDownload,
        _ if edit => LinkType::Edit,
        _ => LinkType::View,
    };
    let recipients = if scope == LinkScope::Users {
        let n = rng.random_range(1..=3);
        let mut r: Vec<usize> = (0..n).map(|_| rng.random_range(0..t.users.len())).collect();
        r.sort_unstable();
        r.dedup();
        r
    } else {
        Vec::new()
    };
    let mut secret = [0u8; 18];
    rng.fill_bytes(&mut secret);
    use base64::Engine;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let id = uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string();
    let expiration = rng
        .random_bool(0.3)
        .then(|| 1_800_000_000 + rng.random_range(0..50_000_000));
    let p = t.push_perm(Permission {
        id,
        roles: vec![if link_type.writes() {
            Role::Write
        } else {
            Role::Read
        }],
        kind: PermKind::Link {
            link_type,
            scope,
            token,
            expiration,
            has_password: scope == LinkScope::Anonymous && rng.random_bool(0.2),
            prevents_download: link_type == LinkType::BlocksDownload
                || (link_type == LinkType::View && rng.random_bool(0.1)),
            recipients,
        },
    });
    set_perm(t, d, i, p);
}

/// Adds a direct grant to a user, guest, group, "Everyone" or a pending invitation.
pub fn add_direct_grant(t: &mut Tenant, rng: &mut ChaCha8Rng, d: usize, i: u32) {
    let role = if rng.random_bool(0.4) {
        Role::Write
    } else {
        Role::Read
    };
    let p = match rng.random_range(0..10) {
        0..=3 => grant(t, Principal::User(rng.random_range(0..t.users.len())), role),
        4..=5 => grant(
            t,
            Principal::Group(rng.random_range(0..t.groups.len())),
            role,
        ),
        6 => grant(t, Principal::EveryoneExceptExternal, role),
        7 => grant(t, Principal::Everyone, Role::Read),
        _ => {
            let n = rng.random_range(0..100_000);
            // A third of invitations were accepted by a guest account (no extra draw from the
            // seed, so tenants generated before keep their shape).
            let guests: Vec<usize> = (0..t.users.len())
                .filter(|&u| t.users[u].guest && t.users[u].state == Lifecycle::Active)
                .collect();
            let redeemed_by = (n % 3 == 0 && !guests.is_empty()).then(|| guests[n % guests.len()]);
            let email = match redeemed_by {
                Some(u) => t.users[u].mail.clone(),
                None => format!("partner{n}@contractor.example"),
            };
            t.push_perm(Permission {
                id: uuid::Builder::from_random_bytes(rng.random())
                    .into_uuid()
                    .to_string(),
                roles: vec![role],
                kind: PermKind::Invitation { email, redeemed_by },
            })
        }
    };
    set_perm(t, d, i, p);
}

/// Adds or removes a member, or with `owners` an owner (of a Microsoft 365 group only).
fn change_membership(t: &mut Tenant, rng: &mut ChaCha8Rng, add: bool, owners: bool) -> bool {
    let live: Vec<usize> = (0..t.groups.len())
        .filter(|&g| t.groups[g].state == Lifecycle::Active && (!owners || t.groups[g].unified))
        .collect();
    let Some(&g) = live.choose(rng) else {
        return false;
    };
    let seq = t.next_seq();
    let users = t.users.len();
    let group = &mut t.groups[g];
    let list = if owners {
        &mut group.owners
    } else {
        &mut group.members
    };
    if add {
        let u = rng.random_range(0..users);
        match list.iter_mut().find(|m| m.member == MemberRef::User(u)) {
            Some(m) if !m.removed => return false,
            Some(m) => {
                m.removed = false;
                m.seq = seq;
            }
            None => list.push(MemberEntry {
                member: MemberRef::User(u),
                seq,
                removed: false,
            }),
        }
    } else {
        let current: Vec<usize> = (0..list.len()).filter(|&k| !list[k].removed).collect();
        let Some(&k) = current.choose(rng) else {
            return false;
        };
        list[k].removed = true;
        list[k].seq = seq;
    }
    group.version = seq;
    true
}
