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

/// Where an object is in its life: what delta reports for it and whether lists show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Live: listed, and reported with its properties.
    Active,
    /// Soft-deleted (restorable): delta reports `@removed: {reason: changed}`.
    SoftDeleted,
    /// Permanently deleted: delta reports `@removed: {reason: deleted}`.
    HardDeleted,
}

/// A directory user (`GET /users`, `/users/delta`).
#[derive(Debug, Clone)]
pub struct User {
    /// Directory object id (a GUID).
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// `userPrincipalName`: `name@domain` for members, `name_ext#EXT#@domain` for guests.
    pub upn: String,
    /// `mail`.
    pub mail: String,
    /// A guest (`userType: Guest`), invited from outside the tenant.
    pub guest: bool,
    /// `accountEnabled`.
    pub account_enabled: bool,
    /// Has a licence (`assignedLicenses` non-empty); licensed members get a OneDrive.
    pub licensed: bool,
    /// `department`.
    pub department: String,
    /// `createdDateTime`, as Unix seconds.
    pub created: i64,
    /// Sequence of the user's last change.
    pub version: u64,
    /// Sequence at which the user was created: an incremental round that starts later
    /// reports only the properties changed since (see `changed`).
    pub created_seq: u64,
    /// Graph property names updated after creation, with the sequence of their last change.
    pub changed: Vec<(&'static str, u64)>,
    /// Whether delta reports it live, `@removed` or not at all.
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

/// A member of a group, as an index into the tenant's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRef {
    /// A user (index into `users`).
    User(usize),
    /// A nested group (index into `groups`).
    Group(usize),
}

/// One direct membership, kept after removal so that `members@delta` can report it.
#[derive(Debug, Clone)]
pub struct MemberEntry {
    /// Who the member is.
    pub member: MemberRef,
    /// Sequence of the last add or remove of this member.
    pub seq: u64,
    /// Removed: `members@delta` reports it with `@removed`.
    pub removed: bool,
}

/// A directory group (`GET /groups`, `/groups/delta`).
#[derive(Debug, Clone)]
pub struct Group {
    /// Directory object id (a GUID).
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// `mailNickname`; a Microsoft 365 group's site is named after it.
    pub mail_nickname: String,
    /// Microsoft 365 ("Unified") group, else a security group.
    pub unified: bool,
    /// `visibility`: `Public`, else `Private`.
    pub public: bool,
    /// `createdDateTime`, as Unix seconds.
    pub created: i64,
    /// Sequence of the group's last change (membership included).
    pub version: u64,
    /// Whether delta reports it live, `@removed` or not at all.
    pub state: Lifecycle,
    /// Direct members, removed ones included.
    pub members: Vec<MemberEntry>,
    /// Owners (users), removed ones included: `owners@delta` reports them. A Microsoft 365
    /// group's owners are its team site's Owners (graph-behaviour.md, "group-connected").
    pub owners: Vec<MemberEntry>,
}

impl Group {
    /// Members now (removed ones left out), direct only.
    pub fn current_members(&self) -> impl Iterator<Item = MemberRef> + '_ {
        self.members.iter().filter(|m| !m.removed).map(|m| m.member)
    }

    /// Owners now (removed ones left out).
    pub fn current_owners(&self) -> impl Iterator<Item = MemberRef> + '_ {
        self.owners.iter().filter(|m| !m.removed).map(|m| m.member)
    }
}

/// What a site is: group-connected or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    /// Connected to a Microsoft 365 group (index into `groups`).
    Team(usize),
    /// A communication site (no group).
    Communication,
}

/// A SharePoint site (`GET /sites/{id}`, `getAllSites`, `sites/delta`).
#[derive(Debug, Clone)]
pub struct Site {
    /// Composite id `host,site-collection-guid,web-guid`.
    pub id: String,
    /// URL segment under `/sites/`.
    pub name: String,
    /// `displayName`.
    pub display_name: String,
    /// Team or communication site.
    pub kind: SiteKind,
    /// `createdDateTime`, as Unix seconds.
    pub created: i64,
    /// Sequence of the site's last change.
    pub version: u64,
    /// Deleted: `sites/delta` reports it `@removed`; reads answer 404.
    pub deleted: bool,
    /// Locked with NoAccess: the site and its libraries answer 403 `accessDenied` (SharePoint
    /// "Lock and unlock sites"); the site is still listed. A lock holds for the whole site
    /// collection, subsites included.
    pub locked: bool,
    /// A subsite's parent site (index into `sites`): subsites are not listed by
    /// `getAllSites` or `sites/delta`, only by `GET /sites/{parent}/sites`.
    pub parent: Option<usize>,
    /// Its document libraries (indices into `drives`).
    pub drives: Vec<usize>,
    /// SharePoint site group ids for Owners, Members, Visitors.
    pub site_group_ids: [u32; 3],
    /// Application permissions granted on the site (`GET /sites/{id}/permissions`).
    pub app_grants: Vec<PermIdx>,
}

/// Names of the three SharePoint groups every site has, in `site_group_ids` order.
pub const SITE_GROUP_NAMES: [&str; 3] = ["Owners", "Members", "Visitors"];

/// A document library or OneDrive (`GET /drives/{id}`).
#[derive(Debug, Clone)]
pub struct Drive {
    /// Drive id.
    pub id: String,
    /// `name` (e.g. `Documents`).
    pub name: String,
    /// `None` for a personal OneDrive.
    pub site: Option<usize>,
    /// Owner of a personal OneDrive.
    pub owner_user: Option<usize>,
    /// `createdDateTime`, as Unix seconds.
    pub created: i64,
    /// Sequence of the drive's last change.
    pub version: u64,
    /// Deleted: reads answer 404 and its site's drive list leaves it out.
    pub deleted: bool,
    /// A OneDrive (a personal site) locked with NoAccess: it answers 403 `accessDenied`, as a
    /// locked site's libraries do.
    pub locked: bool,
    /// `quota.total` in bytes.
    pub quota_total: u64,
    /// Its items; index 0 is the root. An item's id encodes its index.
    pub items: Vec<Item>,
}

/// A file or folder (`driveItem`), held compactly: a large tenant has millions.
#[derive(Debug, Clone)]
pub struct Item {
    /// `name`.
    pub name: Box<str>,
    /// Index of the parent item, [`NO_PARENT`] for the root.
    pub parent: u32,
    /// A folder (`folder` facet), else a file.
    pub folder: bool,
    /// `size` in bytes.
    pub size: u64,
    /// `createdDateTime`, as Unix seconds.
    pub created: i64,
    /// `lastModifiedDateTime`, as Unix seconds.
    pub modified: i64,
    /// Creator (index into `users`): `createdBy.user`.
    pub created_by: u32,
    /// Last modifier (index into `users`): `lastModifiedBy.user`.
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
    /// Deleted: reported by delta as a tombstone; reads answer 404.
    pub deleted: bool,
    /// `Some` when the item has unique permissions (the root of a permission hierarchy).
    pub unique: Option<Vec<PermIdx>>,
}

/// What a permission allows (`roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `owner`.
    Owner,
}

impl Role {
    /// The role as Graph names it in `roles`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Owner => "owner",
        }
    }
}

/// How a sharing link is scoped (`link.scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkScope {
    /// Anyone with the link, no sign-in.
    Anonymous,
    /// Anyone in the organisation who signs in.
    Organization,
    /// Only the people it was shared with.
    Users,
}

impl LinkScope {
    /// The scope as Graph names it.
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

/// What a sharing link lets its holder do (`link.type`). Besides `view` and `edit`, SharePoint
/// and OneDrive for Business make `review` and `blocksDownload` links of files and `createOnly`
/// (upload-only, "file request") links of folders (driveitem-createlink, "Link types").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// Read-only.
    View,
    /// Read and write.
    Edit,
    /// Read and comment (files only).
    Review,
    /// Read in the browser, no download (files only).
    BlocksDownload,
    /// Upload only: its holders add files and cannot open any (folders only).
    CreateOnly,
}

impl LinkType {
    /// The type as Graph names it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::View => "view",
            LinkType::Edit => "edit",
            LinkType::Review => "review",
            LinkType::BlocksDownload => "blocksDownload",
            LinkType::CreateOnly => "createOnly",
        }
    }
    /// Its holders can open the item.
    pub fn reads(self) -> bool {
        self != LinkType::CreateOnly
    }
    /// Its holders can add or change content.
    pub fn writes(self) -> bool {
        matches!(self, LinkType::Edit | LinkType::CreateOnly)
    }
}

/// Whom a direct grant is for; each shapes `grantedToV2` differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A directory user: `grantedToV2.user` (with `siteUser`).
    User(usize),
    /// A directory group: `grantedToV2.group` (with a `siteUser` carrying its claim).
    Group(usize),
    /// A SharePoint group of a site (`which` indexes [`SITE_GROUP_NAMES`]): `grantedToV2.siteGroup`.
    SiteGroup {
        /// The site (index into `sites`).
        site: usize,
        /// Owners, Members or Visitors: 0, 1 or 2.
        which: u8,
    },
    /// The "Everyone except external users" claim, as a `siteUser` with a name-only `user` facet.
    EveryoneExceptExternal,
    /// The "Everyone" claim, likewise.
    Everyone,
    /// An application (index into `apps`): `grantedToV2.application`.
    Application(usize),
}

/// What a permission is: a direct grant, a sharing link or an invitation.
#[derive(Debug, Clone)]
pub enum PermKind {
    /// Access granted to a principal.
    Grant(Principal),
    /// A sharing link (`link` facet) and whom it was shared with.
    Link {
        /// `link.type`.
        link_type: LinkType,
        /// `link.scope`.
        scope: LinkScope,
        /// The bearer secret in the link URL.
        token: String,
        /// `expirationDateTime`, as Unix seconds; `None` never expires.
        expiration: Option<i64>,
        /// `hasPassword`.
        has_password: bool,
        /// `link.preventsDownload`.
        prevents_download: bool,
        /// Users a specific-people link was shared with.
        recipients: Vec<usize>,
    },
    /// An external person invited by e-mail; `redeemed_by` is the guest account that accepted
    /// (the permission then carries both `invitation` and `grantedToV2.user`: permission
    /// resource, "permission-invite-redeemed" example).
    Invitation {
        /// The address invited.
        email: String,
        /// The guest account that redeemed it, if any (index into `users`).
        redeemed_by: Option<usize>,
    },
}

/// A permission (`GET /drives/{d}/items/{i}/permissions`, site permissions).
#[derive(Debug, Clone)]
pub struct Permission {
    /// Permission id.
    pub id: String,
    /// `roles`.
    pub roles: Vec<Role>,
    /// Grant, link or invitation.
    pub kind: PermKind,
}

/// An application registration, grantable on sites.
#[derive(Debug, Clone)]
pub struct App {
    /// App (client) id.
    pub id: String,
    /// `displayName`.
    pub display_name: String,
}

/// The whole simulated tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Directory tenant id (a GUID): the `tid` of its tokens.
    pub tenant_id: String,
    /// Verified domain, e.g. `contoso.onmicrosoft.com`.
    pub domain: String,
    /// SharePoint host, e.g. `contoso.sharepoint.com`.
    pub sp_host: String,
    /// Seed the tenant was generated from.
    pub seed: u64,
    /// Tenant-wide change sequence: every change takes the next number.
    pub seq: u64,
    /// Directory users, by index.
    pub users: Vec<User>,
    /// Directory groups, by index.
    pub groups: Vec<Group>,
    /// Sites, by index.
    pub sites: Vec<Site>,
    /// Drives, by index.
    pub drives: Vec<Drive>,
    /// Every permission, by [`PermIdx`].
    pub perms: Vec<Permission>,
    /// Application registrations.
    pub apps: Vec<App>,
    /// Users by id.
    pub user_index: HashMap<String, usize>,
    /// Groups by id.
    pub group_index: HashMap<String, usize>,
    /// Sites by id.
    pub site_index: HashMap<String, usize>,
    /// Drives by id.
    pub drive_index: HashMap<String, usize>,
    /// Keyed-hash secret for item ids, so ids cannot be forged from indices alone.
    pub id_key: u64,
}

impl Tenant {
    /// Takes the next change sequence number.
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

    /// Stores a permission and returns its index.
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
