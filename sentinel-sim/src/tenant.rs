//! The simulated tenant's state: directory, sites, drives, items and permissions.
//!
//! Every change bumps a tenant-wide sequence number (`seq`); each object remembers the
//! sequence of its last change, which is what delta tokens are compared against.
//! Deleted objects stay as tombstones so incremental delta rounds can report them.

use std::collections::HashMap;

/// Index of a permission in [`Tenant::perms`]; permissions are immutable once created.
pub type PermIdx = u32;
/// Parent index of a drive's root item.
pub const NO_PARENT: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    /// Soft-deleted (restorable): delta reports `@removed: {reason: changed}`.
    SoftDeleted,
    /// Permanently deleted: delta reports `@removed: {reason: deleted}`.
    HardDeleted,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub upn: String,
    pub mail: String,
    pub guest: bool,
    pub account_enabled: bool,
    pub licensed: bool,
    pub department: String,
    pub created: i64,
    pub version: u64,
    /// Sequence at which the user was created: an incremental round that starts later
    /// reports only the properties changed since (see `changed`).
    pub created_seq: u64,
    /// Graph property names updated after creation, with the sequence of their last change.
    pub changed: Vec<(&'static str, u64)>,
    pub state: Lifecycle,
    /// The user's OneDrive, when provisioned (licensed members only).
    pub drive: Option<usize>,
}

impl User {
    /// Records an update of a Graph property (`displayName`, `department`, ...).
    pub fn mark_changed(&mut self, property: &'static str, seq: u64) {
        self.changed.retain(|(p, _)| *p != property);
        self.changed.push((property, seq));
        self.version = seq;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRef {
    User(usize),
    Group(usize),
}

#[derive(Debug, Clone)]
pub struct MemberEntry {
    pub member: MemberRef,
    /// Sequence of the last add or remove of this member.
    pub seq: u64,
    pub removed: bool,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub mail_nickname: String,
    /// Microsoft 365 ("Unified") group, else a security group.
    pub unified: bool,
    pub public: bool,
    pub created: i64,
    pub version: u64,
    pub state: Lifecycle,
    pub members: Vec<MemberEntry>,
}

impl Group {
    pub fn current_members(&self) -> impl Iterator<Item = MemberRef> + '_ {
        self.members.iter().filter(|m| !m.removed).map(|m| m.member)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    /// Connected to a Microsoft 365 group (index into `groups`).
    Team(usize),
    Communication,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    /// URL segment under `/sites/`.
    pub name: String,
    pub display_name: String,
    pub kind: SiteKind,
    pub created: i64,
    pub version: u64,
    pub deleted: bool,
    /// Locked with NoAccess: the site and its libraries answer 403 `accessDenied` (SharePoint
    /// "Lock and unlock sites"); the site is still listed. A lock holds for the whole site
    /// collection, subsites included.
    pub locked: bool,
    /// A subsite's parent site (index into `sites`): subsites are not listed by
    /// `getAllSites` or `sites/delta`, only by `GET /sites/{parent}/sites`.
    pub parent: Option<usize>,
    pub drives: Vec<usize>,
    /// SharePoint site group ids for Owners, Members, Visitors.
    pub site_group_ids: [u32; 3],
    /// Application permissions granted on the site (`GET /sites/{id}/permissions`).
    pub app_grants: Vec<PermIdx>,
}

pub const SITE_GROUP_NAMES: [&str; 3] = ["Owners", "Members", "Visitors"];

#[derive(Debug, Clone)]
pub struct Drive {
    pub id: String,
    pub name: String,
    /// `None` for a personal OneDrive.
    pub site: Option<usize>,
    /// Owner of a personal OneDrive.
    pub owner_user: Option<usize>,
    pub created: i64,
    pub version: u64,
    pub deleted: bool,
    /// A OneDrive (a personal site) locked with NoAccess: it answers 403 `accessDenied`, as a
    /// locked site's libraries do.
    pub locked: bool,
    pub quota_total: u64,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub name: Box<str>,
    pub parent: u32,
    pub folder: bool,
    pub size: u64,
    pub created: i64,
    pub modified: i64,
    pub created_by: u32,
    pub modified_by: u32,
    /// Sequence of the last change to the item itself (content, name, place, deletion).
    pub version: u64,
    /// Sequence of the last change to the item's own permissions or inheritance.
    pub perm_version: u64,
    /// That last change removed access (a link deleted, inheritance restored): Graph does not
    /// annotate such changes with `sharedChanged` (onedrive-api-docs #1248).
    pub access_removed: bool,
    /// `version` before the item was deleted: a descendant deleted with its folder is left out
    /// of a round only if the client already knew it there (it did not change since).
    pub version_before_delete: u64,
    pub deleted: bool,
    /// `Some` when the item has unique permissions (the root of a permission hierarchy).
    pub unique: Option<Vec<PermIdx>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Write,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Owner => "owner",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkScope {
    Anonymous,
    Organization,
    Users,
}

impl LinkScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkScope::Anonymous => "anonymous",
            LinkScope::Organization => "organization",
            LinkScope::Users => "users",
        }
    }
    /// Breadth of the audience, for the `shared.scope` facet (broadest wins).
    pub fn breadth(self) -> u8 {
        match self {
            LinkScope::Anonymous => 3,
            LinkScope::Organization => 2,
            LinkScope::Users => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    User(usize),
    Group(usize),
    SiteGroup { site: usize, which: u8 },
    EveryoneExceptExternal,
    Everyone,
    Application(usize),
}

#[derive(Debug, Clone)]
pub enum PermKind {
    Grant(Principal),
    Link {
        edit: bool,
        scope: LinkScope,
        /// The bearer secret in the link URL.
        token: String,
        expiration: Option<i64>,
        has_password: bool,
        prevents_download: bool,
        /// Users a specific-people link was shared with.
        recipients: Vec<usize>,
    },
    /// An external person invited by e-mail; `redeemed_by` is the guest account that accepted
    /// (the permission then carries both `invitation` and `grantedToV2.user`: permission
    /// resource, "permission-invite-redeemed" example).
    Invitation {
        email: String,
        redeemed_by: Option<usize>,
    },
}

#[derive(Debug, Clone)]
pub struct Permission {
    pub id: String,
    pub roles: Vec<Role>,
    pub kind: PermKind,
}

#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub display_name: String,
}

/// The whole simulated tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub tenant_id: String,
    pub domain: String,
    pub sp_host: String,
    pub seed: u64,
    pub seq: u64,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub sites: Vec<Site>,
    pub drives: Vec<Drive>,
    pub perms: Vec<Permission>,
    pub apps: Vec<App>,
    pub user_index: HashMap<String, usize>,
    pub group_index: HashMap<String, usize>,
    pub site_index: HashMap<String, usize>,
    pub drive_index: HashMap<String, usize>,
    /// Keyed-hash secret for item ids, so ids cannot be forged from indices alone.
    pub id_key: u64,
}

impl Tenant {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Graph-looking item id (`01` + 32 upper-case hex chars) that encodes drive and item index.
    pub fn item_id(&self, drive: usize, idx: u32) -> String {
        let check = mix(self.id_key ^ ((drive as u64) << 32 | idx as u64));
        format!("01{:08X}{:08X}{:016X}", drive as u32, idx, check)
    }

    /// Reverse of [`Tenant::item_id`]; `None` for anything this tenant did not issue.
    pub fn parse_item_id(&self, id: &str) -> Option<(usize, u32)> {
        if id.len() != 34 || !id.starts_with("01") || !id.is_ascii() {
            return None;
        }
        let drive = u32::from_str_radix(&id[2..10], 16).ok()? as usize;
        let idx = u32::from_str_radix(&id[10..18], 16).ok()?;
        let d = self.drives.get(drive)?;
        if (idx as usize) >= d.items.len() || self.item_id(drive, idx) != id {
            return None;
        }
        Some((drive, idx))
    }

    /// Permission hierarchy root an item inherits from (itself when unique).
    pub fn hierarchy_root(&self, drive: usize, mut idx: u32) -> u32 {
        let items = &self.drives[drive].items;
        loop {
            let it = &items[idx as usize];
            if it.unique.is_some() || it.parent == NO_PARENT {
                return idx;
            }
            idx = it.parent;
        }
    }

    /// Effective permissions of an item: its own when unique, else its hierarchy root's.
    pub fn effective_perms(&self, drive: usize, idx: u32) -> &[PermIdx] {
        let root = self.hierarchy_root(drive, idx);
        self.drives[drive].items[root as usize]
            .unique
            .as_deref()
            .unwrap_or(&[])
    }

    /// Latest permission change affecting an item, through its inheritance chain.
    pub fn effective_perm_version(&self, drive: usize, mut idx: u32) -> u64 {
        let items = &self.drives[drive].items;
        let mut v = 0;
        loop {
            let it = &items[idx as usize];
            v = v.max(it.perm_version);
            if it.unique.is_some() || it.parent == NO_PARENT {
                return v;
            }
            idx = it.parent;
        }
    }

    /// The site collection (top-level site) a site belongs to.
    pub fn collection_of(&self, mut site: usize) -> usize {
        while let Some(p) = self.sites[site].parent {
            site = p;
        }
        site
    }

    /// Whether Graph refuses a site: its site collection is locked with NoAccess.
    pub fn site_locked(&self, site: usize) -> bool {
        self.sites[self.collection_of(site)].locked
    }

    /// Live subsites directly under a site.
    pub fn subsites_of(&self, site: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.sites.len())
            .filter(move |&s| self.sites[s].parent == Some(site) && !self.sites[s].deleted)
    }

    /// Whether a drive is visible: not deleted, its site not deleted, and for a OneDrive,
    /// its owner still active (a deleted user's OneDrive is not reachable through Graph).
    pub fn drive_live(&self, drive: usize) -> bool {
        let d = &self.drives[drive];
        !d.deleted
            && d.site.is_none_or(|s| !self.sites[s].deleted)
            && d.owner_user
                .is_none_or(|u| self.users[u].state == Lifecycle::Active)
    }

    /// Path segments of a live item, for ground truth dumps (`/` for the root).
    pub fn item_path(&self, drive: usize, idx: u32) -> String {
        let items = &self.drives[drive].items;
        let mut parts = Vec::new();
        let mut cur = idx;
        while items[cur as usize].parent != NO_PARENT {
            parts.push(&*items[cur as usize].name);
            cur = items[cur as usize].parent;
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    pub fn push_perm(&mut self, p: Permission) -> PermIdx {
        self.perms.push(p);
        (self.perms.len() - 1) as PermIdx
    }

    /// Ids of users that are guests (external), for flags in dumps and JSON.
    pub fn login_name(&self, p: Principal) -> String {
        match p {
            Principal::User(u) => format!("i:0#.f|membership|{}", self.users[u].upn.to_lowercase()),
            Principal::Group(g) => format!(
                "c:0o.c|federateddirectoryclaimprovider|{}",
                self.groups[g].id
            ),
            Principal::SiteGroup { site, which } => format!(
                "{} {}",
                self.sites[site].display_name, SITE_GROUP_NAMES[which as usize]
            ),
            Principal::EveryoneExceptExternal => {
                format!("c:0-.f|rolemanager|spo-grid-all-users/{}", self.tenant_id)
            }
            Principal::Everyone => "c:0(.s|true".to_string(),
            Principal::Application(a) => {
                format!("i:0i.t|ms.sp.ext|{}@{}", self.apps[a].id, self.tenant_id)
            }
        }
    }
}

/// splitmix64 finaliser: a cheap, well-distributed keyed hash.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
