//! End-to-end harness: a simulated tenant, a fresh database, and the real `sentinel-worker` binary.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Output, Stdio};

use sentinel_sim::RunningSim;
use serde_json::Value;
use sqlx::PgPool;

pub const BIN: &str = env!("CARGO_BIN_EXE_sentinel-worker");

#[allow(unused_imports)]
pub use sentinel_testkit::{FleetTenant, SimTenant, TestDb, create_db, spawn_sim};

/// The worker binary configured for `sim` and `db`.
pub fn worker_command(sim: &impl SimTenant, db: &TestDb, args: &[&str]) -> Command {
    command(sim, db, args)
}

fn command(sim: &impl SimTenant, db: &TestDb, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    sentinel_testkit::sim_env(&mut c, sim, db);
    c
}

/// Runs `sentinel-worker sync` to the end (off the async runtime).
pub async fn sync(sim: &impl SimTenant, db: &TestDb, args: &[&str]) -> Output {
    let mut c = command(sim, db, &[&["sync"], args].concat());
    tokio::task::spawn_blocking(move || c.output().expect("run worker"))
        .await
        .expect("join")
}

pub fn spawn_sync(sim: &RunningSim, db: &TestDb, args: &[&str]) -> Child {
    command(sim, db, &[&["sync"], args].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker")
}

pub async fn assert_synced(out: &Output) {
    assert!(
        out.status.success(),
        "sync failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub async fn dump(sim: &impl SimTenant, kind: &str) -> Vec<Value> {
    sentinel_testkit::sim_dump(sim, kind).await
}

/// `POST {path}` (a `/_sim/...` control) with `body`.
pub async fn control(sim: &RunningSim, path: &str, body: Value) {
    let path = path.strip_prefix("/_sim/").expect("a /_sim/ control path");
    sentinel_testkit::sim_control(sim, path, body).await;
}

/// Every permission read and every drive listing so far becomes a day older: the next sync
/// sweeps permissions older than a day (exhaustive mode) and lists every site and OneDrive
/// again (what no delta reports: new subsites and libraries).
pub async fn a_day_passes(db: &TestDb) {
    for sql in [
        "UPDATE msgraph_drive_items SET permissions_last_synced_at = permissions_last_synced_at - interval '25 hours', \
           sharing_changed_at = sharing_changed_at - interval '25 hours'",
        "UPDATE msgraph_delta_state SET last_synced_at = last_synced_at - interval '25 hours' \
         WHERE resource_type LIKE 'drives:%'",
    ] {
        sqlx::query(sql).execute(&db.pool).await.expect(sql);
    }
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

fn compare<T: Ord + std::fmt::Debug + Clone>(
    what: &str,
    got: BTreeSet<T>,
    want: BTreeSet<T>,
) -> Vec<String> {
    let missing: Vec<_> = want.difference(&got).take(3).cloned().collect();
    let phantom: Vec<_> = got.difference(&want).take(3).cloned().collect();
    if missing.is_empty() && phantom.is_empty() {
        return vec![];
    }
    vec![format!(
        "{what}: {} missing (e.g. {missing:?}), {} phantom (e.g. {phantom:?})",
        want.difference(&got).count(),
        got.difference(&want).count()
    )]
}

async fn set1(pool: &PgPool, sql: &str, tenant: &str) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(sql)
        .bind(tenant)
        .fetch_all(pool)
        .await
        .expect(sql)
        .into_iter()
        .collect()
}

/// Every table equals the simulator's ground truth: 0 missing, 0 phantom, 0 wrong.
pub async fn assert_matches_truth(sim: &impl SimTenant, db: &TestDb) {
    let tenant = sim.state().read_tenant().tenant_id.clone();
    let p = &db.pool;
    let mut diffs = Vec::new();
    let ids = |v: Vec<Value>, k: &str| v.iter().map(|x| s(x, k)).collect::<BTreeSet<_>>();
    // Every column a delta round can change: an incremental round sends only what changed, and
    // a split group repeats as its id with members, so a fragment must never blank the rest.
    diffs.extend(compare(
        "users (id, name, upn, mail, department, enabled, guest)",
        set1(
            p,
            "SELECT concat_ws('|', id, coalesce(display_name, ''), coalesce(user_principal_name, ''), coalesce(mail, ''), \
               coalesce(department, ''), coalesce(account_enabled::text, ''), is_guest::text) \
             FROM msgraph_users WHERE tenant_id = $1 AND deleted_at IS NULL",
            &tenant,
        )
        .await,
        dump(sim, "users")
            .await
            .iter()
            .map(|u| {
                let b = |k: &str| u[k].as_bool().map(|b| b.to_string()).unwrap_or_default();
                [s(u, "id"), s(u, "displayName"), s(u, "userPrincipalName"), s(u, "mail"),
                 s(u, "department"), b("accountEnabled"), b("guest")]
                .join("|")
            })
            .collect(),
    ));
    diffs.extend(compare(
        "groups (id, name, unified)",
        set1(
            p,
            "SELECT concat_ws('|', id, coalesce(display_name, ''), is_unified::text) FROM msgraph_groups \
             WHERE tenant_id = $1 AND deleted_at IS NULL",
            &tenant,
        )
        .await,
        dump(sim, "groups")
            .await
            .iter()
            .map(|g| format!("{}|{}|{}", s(g, "id"), s(g, "displayName"), g["unified"].as_bool().unwrap_or_default()))
            .collect(),
    ));
    diffs.extend(compare(
        "sites (id, parent, Microsoft 365 group)",
        set1(
            p,
            "SELECT concat_ws('|', id, coalesce(parent_site_id, ''), coalesce(group_id, '')) FROM msgraph_sites \
             WHERE tenant_id = $1 AND deleted_at IS NULL",
            &tenant,
        )
        .await,
        dump(sim, "sites")
            .await
            .iter()
            .map(|x| format!("{}|{}|{}", s(x, "id"), s(x, "parentId"), s(x, "groupId")))
            .collect(),
    ));
    diffs.extend(compare(
        "drives",
        set1(
            p,
            "SELECT id FROM msgraph_drives WHERE tenant_id = $1 AND deleted_at IS NULL",
            &tenant,
        )
        .await,
        ids(dump(sim, "drives").await, "id"),
    ));
    diffs.extend(compare(
        "memberships",
        set1(p, "SELECT group_id || ' ' || member_id FROM msgraph_group_members WHERE tenant_id = $1 AND deleted_at IS NULL", &tenant).await,
        dump(sim, "memberships").await.iter().map(|m| format!("{} {}", s(m, "groupId"), s(m, "memberId"))).collect(),
    ));
    diffs.extend(compare(
        "ownerships",
        set1(p, "SELECT group_id || ' ' || member_id FROM msgraph_group_owners WHERE tenant_id = $1 AND deleted_at IS NULL", &tenant).await,
        dump(sim, "ownerships").await.iter().map(|m| format!("{} {}", s(m, "groupId"), s(m, "ownerId"))).collect(),
    ));
    diffs.extend(compare(
        "items (id, name, parent, path)",
        set1(p, "SELECT id || '|' || coalesce(name, '') || '|' || coalesce(parent_id, '') || '|' || coalesce(path, '') \
                 FROM msgraph_drive_items WHERE tenant_id = $1 AND deleted_at IS NULL", &tenant).await,
        dump(sim, "items").await.iter().map(|i| format!("{}|{}|{}|{}", s(i, "id"), s(i, "name"), s(i, "parentId"), s(i, "path"))).collect(),
    ));
    let truth_perms = dump(sim, "permissions").await;
    let mut want_perms = BTreeSet::new();
    let mut want_grants: BTreeMap<String, i64> = BTreeMap::new();
    for row in &truth_perms {
        let perm = &row["permission"];
        let mut roles: Vec<String> = perm["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(String::from))
            .collect();
        roles.sort();
        let key = format!("{}|{}", s(row, "itemId"), s(perm, "id"));
        want_perms.insert(format!(
            "{key}|{}|{}",
            roles.join(","),
            perm["link"]["scope"].as_str().unwrap_or("")
        ));
        let grantees = if perm.get("link").is_some() {
            1 + perm["grantedToIdentitiesV2"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0) as i64
        } else {
            1
        };
        want_grants.insert(key, grantees);
    }
    // Every grant to a directory user, by id: a redeemed invitation is its guest's grant.
    let want_user_grants: BTreeSet<String> = truth_perms
        .iter()
        .flat_map(|row| {
            let perm = &row["permission"];
            let key = format!("{}|{}", s(row, "itemId"), s(perm, "id"));
            let mut sets: Vec<&Value> = perm["grantedToIdentitiesV2"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            sets.push(&perm["grantedToV2"]);
            sets.into_iter()
                .filter_map(|set| set["user"]["id"].as_str())
                .map(move |user| format!("{key}|{user}"))
                .collect::<Vec<_>>()
        })
        .collect();
    diffs.extend(compare(
        "grants to users (item, permission, user id)",
        set1(
            p,
            "SELECT i.id || '|' || g.permission_id || '|' || g.grantee_id FROM msgraph_drive_items i \
             JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = i.tenant_id AND g.drive_id = i.drive_id \
              AND g.item_id = COALESCE(i.permission_root_id, i.id) AND g.deleted_at IS NULL \
             WHERE i.tenant_id = $1 AND i.deleted_at IS NULL AND g.grantee_type = 'user' AND g.grantee_id IS NOT NULL",
            &tenant,
        )
        .await,
        want_user_grants,
    ));
    let got_perms = set1(
        p,
        "SELECT item_id || '|' || permission_id || '|' || coalesce(array_to_string(ARRAY(SELECT unnest(roles) ORDER BY 1), ','), '') \
           || '|' || coalesce(link_scope, '') FROM v_item_effective_permissions WHERE tenant_id = $1",
        &tenant,
    )
    .await;
    diffs.extend(compare(
        "effective permissions (item, permission, roles, link scope)",
        got_perms,
        want_perms,
    ));
    let got_grants: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT i.id || '|' || g.permission_id, count(*) FROM msgraph_drive_items i \
         JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = i.tenant_id AND g.drive_id = i.drive_id \
          AND g.item_id = COALESCE(i.permission_root_id, i.id) AND g.deleted_at IS NULL \
         WHERE i.tenant_id = $1 AND i.deleted_at IS NULL GROUP BY 1",
    )
    .bind(&tenant)
    .fetch_all(p)
    .await
    .expect("grants")
    .into_iter()
    .collect();
    let wrong: Vec<_> = want_grants
        .iter()
        .filter(|(k, v)| got_grants.get(*k) != Some(*v))
        .take(3)
        .collect();
    if !wrong.is_empty() || got_grants.len() != want_grants.len() {
        diffs.push(format!(
            "grants per permission: {} differ (e.g. {wrong:?}), {} vs {} permissions",
            want_grants
                .iter()
                .filter(|(k, v)| got_grants.get(*k) != Some(*v))
                .count(),
            got_grants.len(),
            want_grants.len()
        ));
    }
    // Sharing-link URLs are secrets: none may be stored, in any column or raw_json.
    let secrets: BTreeSet<String> = truth_perms
        .iter()
        .filter_map(|r| r["permission"]["link"]["webUrl"].as_str())
        .filter_map(|u| u.rsplit('/').next().map(String::from))
        .collect();
    let stored_tokens: BTreeSet<String> = sqlx::query_scalar(
        "SELECT DISTINCT (regexp_matches(raw_json::text, '[A-Za-z0-9_-]{16,}', 'g'))[1] FROM msgraph_drive_item_permissions",
    )
    .fetch_all(p)
    .await
    .expect("tokens")
    .into_iter()
    .collect();
    let leaked = secrets.intersection(&stored_tokens).count();
    if leaked > 0 {
        diffs.push(format!(
            "{leaked} sharing-link secrets are stored in permissions' raw_json"
        ));
    }
    assert!(
        diffs.is_empty(),
        "the store differs from the tenant:\n{}",
        diffs.join("\n")
    );
}
