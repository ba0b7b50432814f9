//! Ground truth for effective access: who can open each item, computed from the tenant's own
//! model (never from what it serves), so the store's audience can be compared with it.
//!
//! The rules (the product's, stated once; `docs/effective-access.md` has them with sources):
//! people are the directory's live, enabled accounts; a user grant reaches that user; a group
//! reaches its members transitively (nested groups); "Everyone except external users" and
//! organisation links reach every enabled member (not guests); "Everyone" reaches every enabled
//! account, guests included; a specific-people link reaches its recipients; a redeemed
//! invitation reaches its guest account, a pending one an external address; an anyone link
//! reaches anyone (unbounded); the Owners and Members groups of a group-connected site reach the
//! Microsoft 365 group's owners and (transitive) members; any other SharePoint site group is not
//! expanded (Graph cannot list its members), so an item holding one has a lower bound only. Reading needs any role; writing
//! needs `write` or `owner`. An upload-only (`createOnly`) link lets its holders add files and
//! open none: they are writers, not readers.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use crate::tenant::*;

/// Who can open one item.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audience {
    /// Directory ids of the people who can read.
    pub readers: BTreeSet<String>,
    /// Directory ids of the people who can write (add or change content): readers, but for
    /// those reached by upload-only links alone.
    pub writers: BTreeSet<String>,
    /// Invited addresses not yet redeemed that can read (lower-cased).
    pub external_readers: BTreeSet<String>,
    /// Of those, that can write.
    pub external_writers: BTreeSet<String>,
    /// An anyone link: anyone with the link can read.
    pub anyone_can_read: bool,
    /// An anyone link that allows editing or uploading.
    pub anyone_can_write: bool,
    /// A site group reaches more people than Graph can list.
    pub lower_bound: bool,
}

/// The people a principal set expands to, memoised per tenant snapshot.
#[derive(Debug)]
pub struct Resolver<'t> {
    t: &'t Tenant,
    members: Vec<BTreeSet<usize>>,
    owners: Vec<BTreeSet<usize>>,
    everyone: BTreeSet<usize>,
    internal: BTreeSet<usize>,
}

impl<'t> Resolver<'t> {
    /// Expands every group once: transitive members who are people.
    pub fn new(t: &'t Tenant) -> Resolver<'t> {
        let person = |u: usize| {
            let user = &t.users[u];
            user.state == Lifecycle::Active && user.account_enabled
        };
        let everyone: BTreeSet<usize> = (0..t.users.len()).filter(|&u| person(u)).collect();
        let internal = everyone
            .iter()
            .copied()
            .filter(|&u| !t.users[u].guest)
            .collect();
        let members = (0..t.groups.len())
            .map(|g| {
                let mut out = BTreeSet::new();
                let mut seen = HashSet::new();
                let mut stack = vec![g];
                while let Some(x) = stack.pop() {
                    if !seen.insert(x) || t.groups[x].state != Lifecycle::Active {
                        continue;
                    }
                    for m in t.groups[x].current_members() {
                        match m {
                            MemberRef::User(u) if person(u) => {
                                out.insert(u);
                            }
                            MemberRef::User(_) => {}
                            MemberRef::Group(y) => stack.push(y),
                        }
                    }
                }
                out
            })
            .collect();
        let owners = t
            .groups
            .iter()
            .map(|g| {
                g.current_owners()
                    .filter_map(|m| match m {
                        MemberRef::User(u) if person(u) && g.state == Lifecycle::Active => Some(u),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        Resolver {
            t,
            members,
            owners,
            everyone,
            internal,
        }
    }

    /// The people a site group reaches, when Graph can tell: the Owners (0) and Members (1) of a
    /// live Microsoft 365 group's site collection are the group's owners and members.
    fn site_group_people(&self, site: usize, which: u8) -> Option<&BTreeSet<usize>> {
        let t = self.t;
        match t.sites[t.collection_of(site)].kind {
            SiteKind::Team(g) if t.groups[g].state == Lifecycle::Active => match which {
                0 => Some(&self.owners[g]),
                1 => Some(&self.members[g]),
                _ => None,
            },
            _ => None,
        }
    }

    fn is_person(&self, u: usize) -> bool {
        self.everyone.contains(&u)
    }

    /// The audience of item `idx` of drive `drive`, through its effective permissions.
    pub fn audience(&self, drive: usize, idx: u32) -> Audience {
        let t = self.t;
        let mut read = BTreeSet::new();
        let mut write = BTreeSet::new();
        let mut a = Audience::default();
        for &p in t.effective_perms(drive, idx) {
            let perm = &t.perms[p as usize];
            let mut writes = perm
                .roles
                .iter()
                .any(|r| matches!(r, Role::Write | Role::Owner));
            // An upload-only link opens nothing, whatever its roles say; its holders can add.
            let reads = match &perm.kind {
                PermKind::Link { link_type, .. } => {
                    writes |= link_type.writes();
                    link_type.reads()
                }
                _ => true,
            };
            let mut reach: Vec<usize> = Vec::new();
            let mut external: Option<String> = None;
            match &perm.kind {
                PermKind::Grant(Principal::User(u)) => reach.push(*u),
                PermKind::Grant(Principal::Group(g)) => reach.extend(&self.members[*g]),
                PermKind::Grant(Principal::EveryoneExceptExternal) => reach.extend(&self.internal),
                PermKind::Grant(Principal::Everyone) => reach.extend(&self.everyone),
                PermKind::Grant(Principal::SiteGroup { site, which }) => {
                    match self.site_group_people(*site, *which) {
                        Some(people) => reach.extend(people),
                        None => a.lower_bound = true,
                    }
                }
                PermKind::Grant(Principal::Application(_)) => {}
                PermKind::Link {
                    scope, recipients, ..
                } => {
                    reach.extend(recipients);
                    match scope {
                        LinkScope::Anonymous => {
                            a.anyone_can_read |= reads;
                            a.anyone_can_write |= writes;
                        }
                        LinkScope::Organization => reach.extend(&self.internal),
                        LinkScope::Users => {}
                    }
                }
                PermKind::Invitation {
                    email, redeemed_by, ..
                } => match redeemed_by {
                    Some(u) => reach.push(*u),
                    None => external = Some(email.to_lowercase()),
                },
            }
            for u in reach.into_iter().filter(|&u| self.is_person(u)) {
                if reads {
                    read.insert(u);
                }
                if writes {
                    write.insert(u);
                }
            }
            if let Some(e) = external {
                if writes {
                    a.external_writers.insert(e.clone());
                }
                a.external_readers.insert(e);
            }
        }
        a.readers = read.iter().map(|&u| t.users[u].id.clone()).collect();
        a.writers = write.iter().map(|&u| t.users[u].id.clone()).collect();
        a
    }
}

/// What one person can reach: the ground truth of the `/people` page.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reach {
    /// Directory id, or the lower-cased address of an invitation not yet redeemed.
    pub person_id: String,
    /// `member`, `guest` or `external`.
    pub kind: &'static str,
    /// Items the person can read.
    pub items_read: u64,
    /// Items the person can write (or add to).
    pub items_write: u64,
    /// Libraries (drive ids) with an item they can read or write.
    pub libraries: BTreeSet<String>,
    /// Sites of those libraries (OneDrives have none).
    pub sites: BTreeSet<String>,
}

impl Resolver<'_> {
    /// Every person's reach: each live user (a disabled account reaches nothing) and each
    /// invited address, from the audience of every live item.
    pub fn reach(&self) -> Vec<Reach> {
        use std::collections::{BTreeMap, HashMap};
        let t = self.t;
        let mut by_person: BTreeMap<String, Reach> = t
            .users
            .iter()
            .filter(|u| u.state == Lifecycle::Active)
            .map(|u| {
                let kind = if u.guest { "guest" } else { "member" };
                let reach = Reach {
                    person_id: u.id.clone(),
                    kind,
                    ..Reach::default()
                };
                (u.id.clone(), reach)
            })
            .collect();
        for (drive, d) in t.drives.iter().enumerate() {
            if !t.drive_live(drive) {
                continue;
            }
            // Items that inherit from one root have its audience: expand each root once.
            let mut roots: HashMap<u32, u64> = HashMap::new();
            for (i, _) in d.items.iter().enumerate().filter(|(_, it)| !it.deleted) {
                *roots.entry(t.hierarchy_root(drive, i as u32)).or_default() += 1;
            }
            let site = d.site.map(|s| t.sites[s].id.clone());
            for (root, n) in roots {
                let a = self.audience(drive, root);
                let mut add = |person: &str, kind: &'static str, read: bool, write: bool| {
                    let r = by_person
                        .entry(person.to_string())
                        .or_insert_with(|| Reach {
                            person_id: person.to_string(),
                            kind,
                            ..Reach::default()
                        });
                    r.items_read += if read { n } else { 0 };
                    r.items_write += if write { n } else { 0 };
                    r.libraries.insert(d.id.clone());
                    r.sites.extend(site.clone());
                };
                for p in a.readers.union(&a.writers) {
                    add(p, "member", a.readers.contains(p), a.writers.contains(p));
                }
                for e in a.external_readers.union(&a.external_writers) {
                    let (read, write) = (
                        a.external_readers.contains(e),
                        a.external_writers.contains(e),
                    );
                    add(e, "external", read, write);
                }
            }
        }
        by_person.into_values().collect()
    }
}
