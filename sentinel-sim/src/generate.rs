//! Deterministic synthetic tenants: the same seed and profile always give the same tenant.

use std::collections::HashMap;
use std::str::FromStr;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::tenant::*;

/// Tenant size presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// About 300 items: unit tests and the quickest end-to-end tests.
    Tiny,
    /// About 20,000 items: the demo and most end-to-end tests.
    Small,
    /// About 200,000 items: benchmarks and fault campaigns.
    Medium,
    /// About a million items: the scale figures.
    Large,
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tiny" => Ok(Profile::Tiny),
            "small" => Ok(Profile::Small),
            "medium" => Ok(Profile::Medium),
            "large" => Ok(Profile::Large),
            other => Err(format!(
                "unknown profile '{other}': expected tiny, small, medium or large"
            )),
        }
    }
}

/// Counts a profile aims for; items are approximate (heavy-tailed drive sizes).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Directory users (guests included).
    pub users: usize,
    /// Directory groups.
    pub groups: usize,
    /// Sites.
    pub sites: usize,
    /// Drive items across all drives (approximate).
    pub items: usize,
}

impl Profile {
    /// The counts this profile aims for.
    pub fn shape(self) -> Shape {
        match self {
            Profile::Tiny => Shape {
                users: 16,
                groups: 6,
                sites: 3,
                items: 300,
            },
            Profile::Small => Shape {
                users: 300,
                groups: 40,
                sites: 30,
                items: 20_000,
            },
            Profile::Medium => Shape {
                users: 3_000,
                groups: 300,
                sites: 200,
                items: 200_000,
            },
            Profile::Large => Shape {
                users: 20_000,
                groups: 2_000,
                sites: 1_000,
                items: 1_000_000,
            },
        }
    }
}

const FIRST: &[&str] = &[
    "Adele",
    "Alex",
    "Allan",
    "Bianca",
    "Carlos",
    "Diego",
    "Emily",
    "Enrico",
    "Grady",
    "Henrietta",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Raul",
    "Sakura",
    "Tomas",
    "Yuki",
    "Zainab",
];
const LAST: &[&str] = &[
    "Vance",
    "Wilber",
    "Deyoung",
    "Pintor",
    "Archie",
    "Zrinzo",
    "Braun",
    "Sherman",
    "Holt",
    "Patterson",
    "Gupta",
    "Lidman",
    "Sanchez",
    "Nakamura",
    "Okafor",
    "Fernandez",
    "Kowalski",
    "Ito",
];
pub(crate) const DEPARTMENTS: &[&str] = &[
    "Finance",
    "Legal",
    "Sales",
    "Marketing",
    "Engineering",
    "HR",
    "Operations",
    "Research",
];
const TOPICS: &[&str] = &[
    "Budget",
    "Contracts",
    "Roadmap",
    "Payroll",
    "Campaign",
    "Design",
    "Audit",
    "Hiring",
    "Board",
    "Product",
    "Pricing",
    "Partners",
    "Security",
    "Training",
    "Vendors",
    "Quarterly",
    "Strategy",
];
const EXTENSIONS: &[&str] = &[
    "docx", "xlsx", "pptx", "pdf", "txt", "png", "csv", "one", "mp4",
];
const EXTERNAL_DOMAINS: &[&str] = &[
    "fabrikam.com",
    "northwind.example",
    "adatum.net",
    "gmail.com",
];

/// Start of generated history (2023-01-01T00:00:00Z).
const EPOCH: i64 = 1_672_531_200;
const HISTORY_SECS: i64 = 3 * 365 * 24 * 3600;

fn guid(rng: &mut ChaCha8Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

fn ts(rng: &mut ChaCha8Rng) -> i64 {
    EPOCH + rng.random_range(0..HISTORY_SECS)
}

/// Pareto-distributed weight (heavy tail), capped so one drive cannot take everything.
fn pareto(rng: &mut ChaCha8Rng, alpha: f64) -> f64 {
    let u: f64 = rng.random_range(0.0001..1.0);
    u.powf(-1.0 / alpha).min(500.0)
}

/// Builds a tenant of the profile, the same for the same seed.
pub fn generate(profile: Profile, seed: u64) -> Tenant {
    let shape = profile.shape();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tenant_id = guid(&mut rng);
    let org = format!("contoso{}", seed % 10_000);
    let mut t = Tenant {
        tenant_id,
        domain: format!("{org}.onmicrosoft.com"),
        sp_host: format!("{org}.sharepoint.com"),
        seed,
        seq: 1,
        users: Vec::new(),
        groups: Vec::new(),
        sites: Vec::new(),
        drives: Vec::new(),
        perms: Vec::new(),
        apps: Vec::new(),
        user_index: HashMap::new(),
        group_index: HashMap::new(),
        site_index: HashMap::new(),
        drive_index: HashMap::new(),
        id_key: rng.random(),
    };
    gen_users(&mut t, &mut rng, shape.users);
    gen_groups(&mut t, &mut rng, shape.groups);
    gen_apps(&mut t, &mut rng);
    gen_sites(&mut t, &mut rng, shape.sites);
    gen_onedrives(&mut t, &mut rng);
    gen_items(&mut t, &mut rng, shape.items);
    t
}

pub(crate) fn new_user(t: &mut Tenant, rng: &mut ChaCha8Rng, guest: bool, created: i64) -> usize {
    let n = t.users.len();
    let first = *FIRST.choose(rng).unwrap_or(&"Alex");
    let last = *LAST.choose(rng).unwrap_or(&"Vance");
    let (upn, mail) = if guest {
        let dom = *EXTERNAL_DOMAINS.choose(rng).unwrap_or(&"fabrikam.com");
        let mail = format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            n,
            dom
        );
        (
            format!("{}#EXT#@{}", mail.replace('@', "_"), t.domain),
            mail,
        )
    } else {
        let upn = format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            n,
            t.domain
        );
        (upn.clone(), upn)
    };
    let user = User {
        id: guid(rng),
        display_name: format!("{first} {last}"),
        upn,
        mail,
        guest,
        account_enabled: !rng.random_bool(0.04),
        licensed: !guest && rng.random_bool(0.85),
        department: DEPARTMENTS.choose(rng).unwrap_or(&"Sales").to_string(),
        created,
        version: t.seq,
        created_seq: t.seq,
        changed: Vec::new(),
        state: Lifecycle::Active,
        drive: None,
    };
    t.user_index.insert(user.id.clone(), n);
    t.users.push(user);
    n
}

fn gen_users(t: &mut Tenant, rng: &mut ChaCha8Rng, count: usize) {
    for i in 0..count {
        // The first two users are the demo admin and reader: members, licensed, enabled.
        let guest = i >= 2 && rng.random_bool(0.08);
        let created = ts(rng);
        let u = new_user(t, rng, guest, created);
        if i < 2 {
            let user = &mut t.users[u];
            user.account_enabled = true;
            user.licensed = true;
            user.guest = false;
        }
    }
}

fn gen_groups(t: &mut Tenant, rng: &mut ChaCha8Rng, count: usize) {
    let users = t.users.len();
    for g in 0..count {
        let topic = TOPICS[g % TOPICS.len()];
        let unified = rng.random_bool(0.6);
        let name = format!(
            "{topic} {}{}",
            if unified { "Team " } else { "Security " },
            g
        );
        let size = (pareto(rng, 1.1) * 3.0).round() as usize;
        let size = size.clamp(1, users);
        let mut members = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..size {
            let u = rng.random_range(0..users);
            if seen.insert(u) {
                members.push(MemberEntry {
                    member: MemberRef::User(u),
                    seq: t.seq,
                    removed: false,
                });
            }
        }
        // Nested groups: some groups contain an earlier group (no cycles).
        if g > 0 && rng.random_bool(0.15) {
            let inner = rng.random_range(0..g);
            members.push(MemberEntry {
                member: MemberRef::Group(inner),
                seq: t.seq,
                removed: false,
            });
        }
        // A Microsoft 365 group's owners: its first member, and someone who may not be a member
        // (owners need not be members). Chosen without the generator, so the rest of the tenant
        // is what it was before groups had owners.
        let owners = if unified {
            let first = members.iter().find_map(|m| match m.member {
                MemberRef::User(u) => Some(u),
                MemberRef::Group(_) => None,
            });
            let mut o: Vec<usize> = first.into_iter().chain([(g * 7 + 3) % users]).collect();
            o.dedup();
            o.into_iter()
                .map(|u| MemberEntry {
                    member: MemberRef::User(u),
                    seq: t.seq,
                    removed: false,
                })
                .collect()
        } else {
            Vec::new()
        };
        let group = Group {
            id: guid(rng),
            display_name: name.clone(),
            mail_nickname: name.replace(' ', "").to_lowercase(),
            unified,
            public: rng.random_bool(0.4),
            created: ts(rng),
            version: t.seq,
            state: Lifecycle::Active,
            members,
            owners,
        };
        t.group_index.insert(group.id.clone(), g);
        t.groups.push(group);
    }
}

fn gen_apps(t: &mut Tenant, rng: &mut ChaCha8Rng) {
    for name in ["Contoso Backup", "Records Connector", "Sales Sync"] {
        t.apps.push(App {
            id: guid(rng),
            display_name: name.to_string(),
        });
    }
}

fn site_group_id(site: usize, which: u8) -> u32 {
    3 + (site as u32) * 3 + which as u32
}

fn gen_sites(t: &mut Tenant, rng: &mut ChaCha8Rng, count: usize) {
    let unified: Vec<usize> = (0..t.groups.len())
        .filter(|&g| t.groups[g].unified)
        .collect();
    let mut unused = unified.into_iter();
    for s in 0..count {
        let kind = match unused.next() {
            Some(g) if rng.random_bool(0.65) => SiteKind::Team(g),
            _ => SiteKind::Communication,
        };
        let display_name = match kind {
            SiteKind::Team(g) => t.groups[g].display_name.clone(),
            SiteKind::Communication => format!("{} Hub {s}", TOPICS[s % TOPICS.len()]),
        };
        let name = display_name.replace(' ', "");
        let site = Site {
            id: format!("{},{},{}", t.sp_host, guid(rng), guid(rng)),
            name,
            display_name,
            kind,
            created: ts(rng),
            version: t.seq,
            deleted: false,
            locked: false,
            parent: None,
            drives: Vec::new(),
            site_group_ids: [
                site_group_id(s, 0),
                site_group_id(s, 1),
                site_group_id(s, 2),
            ],
            app_grants: Vec::new(),
        };
        t.site_index.insert(site.id.clone(), s);
        t.sites.push(site);
        if rng.random_bool(0.3) {
            let app = rng.random_range(0..t.apps.len());
            let p = t.push_perm(Permission {
                id: guid(rng),
                roles: vec![if rng.random_bool(0.5) {
                    Role::Read
                } else {
                    Role::Write
                }],
                kind: PermKind::Grant(Principal::Application(app)),
            });
            t.sites[s].app_grants.push(p);
        }
        let libraries = rng.random_range(1..=3);
        for l in 0..libraries {
            let lib_name = match l {
                0 => "Documents".to_string(),
                1 => "Site Assets".to_string(),
                _ => format!("{} Archive", TOPICS[(s + l) % TOPICS.len()]),
            };
            let root_perms = site_root_perms(t, rng, s);
            new_drive(t, rng, lib_name, Some(s), None, root_perms);
        }
    }
    for s in 0..count {
        if rng.random_bool(0.25) {
            let sub = new_subsite(t, rng, s);
            if rng.random_bool(0.3) {
                new_subsite(t, rng, sub);
            }
        }
    }
}

const SUBSITE_NAMES: [&str; 4] = ["Projects", "Archive", "Planning", "Board"];

/// A subsite of `parent` with one library. Its id keeps the site collection's GUID with a
/// web GUID of its own; it inherits its collection's groups, as a new subsite does by default.
pub(crate) fn new_subsite(t: &mut Tenant, rng: &mut ChaCha8Rng, parent: usize) -> usize {
    let s = t.sites.len();
    let collection = t.collection_of(parent);
    let collection_guid = t.sites[collection]
        .id
        .split(',')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let display_name = SUBSITE_NAMES[s % SUBSITE_NAMES.len()].to_string();
    let site = Site {
        id: format!("{},{},{}", t.sp_host, collection_guid, guid(rng)),
        name: format!("{}{s}", display_name.to_lowercase()),
        display_name,
        kind: SiteKind::Communication,
        created: ts(rng),
        version: t.seq,
        deleted: false,
        locked: false,
        parent: Some(parent),
        drives: Vec::new(),
        site_group_ids: t.sites[collection].site_group_ids,
        app_grants: Vec::new(),
    };
    t.site_index.insert(site.id.clone(), s);
    t.sites.push(site);
    let root_perms = site_root_perms(t, rng, collection);
    new_drive(t, rng, "Documents".into(), Some(s), None, root_perms);
    s
}

/// The permissions a library root carries: the site's three groups, sometimes a
/// tenant-wide "Everyone except external users" grant (classic oversharing).
fn site_root_perms(t: &mut Tenant, rng: &mut ChaCha8Rng, s: usize) -> Vec<PermIdx> {
    let mut perms = Vec::new();
    for (which, role) in [(0u8, Role::Owner), (1, Role::Write), (2, Role::Read)] {
        perms.push(grant(t, Principal::SiteGroup { site: s, which }, role));
    }
    let public_team = matches!(t.sites[s].kind, SiteKind::Team(g) if t.groups[g].public);
    if public_team || rng.random_bool(0.15) {
        perms.push(grant(t, Principal::EveryoneExceptExternal, Role::Read));
    }
    perms
}

/// A direct grant; its id is derived from the principal, as SharePoint does,
/// so the same principal keeps the same permission id on every item.
pub(crate) fn grant(t: &mut Tenant, p: Principal, role: Role) -> PermIdx {
    let id = match p {
        Principal::SiteGroup { site, which } => {
            t.sites[site].site_group_ids[which as usize].to_string()
        }
        _ => {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t.login_name(p))
        }
    };
    t.push_perm(Permission {
        id,
        roles: vec![role],
        kind: PermKind::Grant(p),
    })
}

pub(crate) fn new_drive(
    t: &mut Tenant,
    rng: &mut ChaCha8Rng,
    name: String,
    site: Option<usize>,
    owner_user: Option<usize>,
    root_perms: Vec<PermIdx>,
) -> usize {
    use base64::Engine;
    let d = t.drives.len();
    let raw: [u8; 48] = std::array::from_fn(|_| rng.random());
    let id = format!(
        "b!{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let created = site.map(|s| t.sites[s].created).unwrap_or_else(|| ts(rng));
    let root = Item {
        name: "root".into(),
        parent: NO_PARENT,
        folder: true,
        size: 0,
        created,
        modified: created,
        created_by: owner_user.unwrap_or(0) as u32,
        modified_by: owner_user.unwrap_or(0) as u32,
        version: t.seq,
        perm_version: t.seq,
        access_removed: false,
        version_before_delete: 0,
        deleted: false,
        unique: Some(root_perms),
    };
    t.drives.push(Drive {
        id: id.clone(),
        name,
        site,
        owner_user,
        created,
        version: t.seq,
        deleted: false,
        locked: false,
        quota_total: 1 << 40,
        items: vec![root],
    });
    t.drive_index.insert(id, d);
    if let Some(s) = site {
        t.sites[s].drives.push(d);
    }
    d
}

fn gen_onedrives(t: &mut Tenant, rng: &mut ChaCha8Rng) {
    for u in 0..t.users.len() {
        let user = &t.users[u];
        if user.guest || !user.licensed {
            continue;
        }
        let name = "OneDrive".to_string();
        let owner = grant(t, Principal::User(u), Role::Owner);
        let d = new_drive(t, rng, name, None, Some(u), vec![owner]);
        t.users[u].drive = Some(d);
    }
}

fn gen_items(t: &mut Tenant, rng: &mut ChaCha8Rng, target: usize) {
    // Heavy-tailed drive sizes; OneDrives are lighter than team libraries on average.
    let weights: Vec<f64> = (0..t.drives.len())
        .map(|d| pareto(rng, 1.2) * if t.drives[d].site.is_some() { 3.0 } else { 1.0 })
        .collect();
    let total: f64 = weights.iter().sum();
    for (d, w) in weights.iter().enumerate() {
        let n = ((target as f64) * w / total).round() as usize;
        for _ in 0..n {
            add_random_item(t, rng, d, None);
        }
    }
}

/// Adds one item (file or folder) under a random folder of the drive, maybe with
/// unique permissions and sharing links. Returns its index.
pub(crate) fn add_random_item(
    t: &mut Tenant,
    rng: &mut ChaCha8Rng,
    d: usize,
    when: Option<i64>,
) -> u32 {
    let parent = random_live_folder(t, rng, d);
    let depth = depth_of(t, d, parent);
    let folder = depth < 8 && rng.random_bool(0.12);
    let idx = t.drives[d].items.len() as u32;
    let name = if folder {
        format!("{} {}", TOPICS.choose(rng).unwrap_or(&"Misc"), idx)
    } else {
        format!(
            "{} {}.{}",
            TOPICS.choose(rng).unwrap_or(&"Misc"),
            idx,
            EXTENSIONS.choose(rng).unwrap_or(&"txt")
        )
    };
    let created = when.unwrap_or_else(|| ts(rng));
    let users = t.users.len() as u32;
    let author = t.drives[d]
        .owner_user
        .map(|u| u as u32)
        .unwrap_or_else(|| rng.random_range(0..users));
    let size = if folder {
        0
    } else {
        (pareto(rng, 1.0) * 20_000.0) as u64
    };
    t.drives[d].items.push(Item {
        name: name.into(),
        parent,
        folder,
        size,
        created,
        modified: created,
        created_by: author,
        modified_by: author,
        version: t.seq,
        perm_version: t.seq,
        access_removed: false,
        version_before_delete: 0,
        deleted: false,
        unique: None,
    });
    if rng.random_bool(0.04) {
        crate::mutate::break_inheritance(t, rng, d, idx);
        if rng.random_bool(0.7) {
            crate::mutate::share(t, rng, d, idx);
        } else {
            crate::mutate::add_direct_grant(t, rng, d, idx);
        }
    }
    idx
}

/// Adds one random item, as a user creating a file would (for tests driving the model).
pub fn add_random_item_for_tests(t: &mut Tenant, rng: &mut ChaCha8Rng, d: usize) -> u32 {
    add_random_item(t, rng, d, None)
}

pub(crate) fn random_live_folder(t: &Tenant, rng: &mut ChaCha8Rng, d: usize) -> u32 {
    let items = &t.drives[d].items;
    for _ in 0..16 {
        let i = rng.random_range(0..items.len());
        if items[i].folder && !items[i].deleted {
            return i as u32;
        }
    }
    0
}

pub(crate) fn depth_of(t: &Tenant, d: usize, mut idx: u32) -> usize {
    let items = &t.drives[d].items;
    let mut depth = 0;
    while items[idx as usize].parent != NO_PARENT {
        idx = items[idx as usize].parent;
        depth += 1;
    }
    depth
}
