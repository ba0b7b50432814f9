//! Effective access through the real `sentinel-worker sync`: for every item of the small tenant,
//! the audience the store computes (people who can read and write, guests among them, invited
//! addresses, anyone links, lower bounds) equals the simulator's ground truth, which expands the
//! tenant's own model (nested groups, Everyone claims, organisation and anyone links, guests,
//! disabled accounts) without reading what it serves.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use common::*;
use sentinel_sim::{Profile, RunningSim};
use sentinel_store::{
    ItemAudience, LibraryOrder, PageRequest, PeopleQuery, PersonKind, PersonReach, SITES_LISTED,
    Store,
};
use sentinel_testkit::truth::{expected_audience, expected_reach, ids, reach_figures};
use serde_json::json;

async fn check_mode(mode: &str, seed: u64) {
    let sim = spawn_sim(Profile::Small, seed).await;
    let db = create_db().await;
    let tenant = sim.state.read_tenant().tenant_id.clone();
    let store = Store::from_pool(db.pool.clone());
    assert_synced(&sync(&sim, &db, &["--permissions", mode]).await).await;

    let users = dump(&sim, "users").await;
    let guests: HashSet<String> = users
        .iter()
        .filter(|u| u["guest"] == true)
        .filter_map(|u| u["id"].as_str().map(String::from))
        .collect();
    let disabled: HashSet<String> = users
        .iter()
        .filter(|u| u["accountEnabled"] == false)
        .filter_map(|u| u["id"].as_str().map(String::from))
        .collect();
    let nested = dump(&sim, "memberships")
        .await
        .iter()
        .filter(|m| m["memberType"] == "group")
        .count();
    assert!(
        !disabled.is_empty() && nested > 0,
        "the tenant has disabled users and nested groups"
    );

    let truth = dump(&sim, "audience").await;
    let got: HashMap<(String, String), ItemAudience> = store
        .item_audiences(&tenant)
        .await
        .expect("audiences")
        .into_iter()
        .map(|r| ((r.drive_id, r.item_id), r.audience))
        .collect();
    let mut wrong = Vec::new();
    let (mut anyone, mut bounded, mut with_guests, mut broad, mut upload_only) = (0, 0, 0, 0, 0);
    for t in &truth {
        let key = (
            t["driveId"].as_str().expect("drive").to_string(),
            t["itemId"].as_str().expect("item").to_string(),
        );
        let want = expected_audience(t, &guests);
        anyone += usize::from(want.anyone_can_read);
        // Upload-only links: writers who cannot read, or anyone can upload but not open.
        upload_only += usize::from(
            !ids(&t["writers"]).is_subset(&ids(&t["readers"]))
                || (want.anyone_can_write && !want.anyone_can_read),
        );
        bounded += usize::from(want.lower_bound);
        with_guests += usize::from(want.guest_readers > 0);
        broad += usize::from(
            want.internal_readers as usize >= users.len() - guests.len() - disabled.len(),
        );
        let have = got.get(&key).cloned().unwrap_or_default();
        if have != want {
            wrong.push(format!("{key:?}: store {have:?}, truth {want:?}"));
        }
    }
    assert!(truth.len() > 10_000, "{} items", truth.len());
    // The largest audience comes first, and nothing is recomputed when nothing changed.
    let largest = store
        .largest_audiences(&tenant, &PageRequest::default())
        .await
        .expect("largest");
    let most = truth
        .iter()
        .map(|t| ids(&t["readers"]).len())
        .max()
        .unwrap_or(0);
    assert_eq!(
        largest.rows[0].audience.readers as usize, most,
        "largest first"
    );
    assert!(
        store
            .refresh_audiences_if_due()
            .await
            .expect("refresh")
            .is_empty(),
        "the sync computed them; nothing changed since"
    );
    assert!(
        anyone > 0 && bounded > 0 && with_guests > 0 && broad > 0 && upload_only > 0,
        "the comparison covers anyone links ({anyone}), site groups ({bounded}), guests ({with_guests}), Everyone-wide audiences ({broad}) and upload-only links ({upload_only})"
    );
    assert!(
        wrong.is_empty(),
        "{mode}: {} of {} items differ from the truth, e.g. {:#?}",
        wrong.len(),
        truth.len(),
        &wrong[..wrong.len().min(5)]
    );

    // The people themselves, and the one-item count, on a sample of items with an audience.
    for t in truth
        .iter()
        .filter(|t| !ids(&t["readers"]).is_empty())
        .step_by(97)
    {
        let (d, i) = (
            t["driveId"].as_str().expect("d"),
            t["itemId"].as_str().expect("i"),
        );
        let members = store
            .item_audience_members(&tenant, d, i, 1_000_000)
            .await
            .expect("members");
        let readers: BTreeSet<String> = members
            .iter()
            .filter(|m| m.can_read)
            .map(|m| m.user_id.clone())
            .collect();
        let writers: BTreeSet<String> = members
            .iter()
            .filter(|m| m.can_write)
            .map(|m| m.user_id.clone())
            .collect();
        assert_eq!(readers, ids(&t["readers"]), "{d}/{i}: readers");
        assert_eq!(writers, ids(&t["writers"]), "{d}/{i}: writers");
        assert!(
            readers.iter().all(|r| !disabled.contains(r)),
            "no disabled account"
        );
        let one = store.item_audience(&tenant, d, i).await.expect("one");
        assert_eq!(
            one,
            expected_audience(t, &guests),
            "{d}/{i}: the item page's count"
        );
        let live = store.item_audience_live(&tenant, d, i).await.expect("live");
        assert_eq!(live, one, "{d}/{i}: computed now, as stored");
        // The page names the first 25: the same as the first 25 of everyone.
        let first = store
            .item_audience_members(&tenant, d, i, 25)
            .await
            .expect("first");
        assert_eq!(
            first[..],
            members[..members.len().min(25)],
            "{d}/{i}: first 25"
        );
    }
    check_reach(&sim, &store, &tenant, &disabled).await;
    check_library_order(&db, &store, &tenant).await;
    if mode == "hierarchical" {
        check_incremental(&sim, &db, &store, &tenant, mode).await;
    }
    db.drop_db().await;
}

/// A site's libraries listed largest audience first are its libraries in that order, on
/// every site; and on some site that order is not the order of their names.
async fn check_library_order(db: &sentinel_testkit::TestDb, store: &Store, tenant: &str) {
    let sites: Vec<String> = sqlx::query_scalar(
        "SELECT site_id FROM msgraph_drives WHERE site_id IS NOT NULL AND deleted_at IS NULL
         GROUP BY site_id HAVING count(*) > 1 ORDER BY site_id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("sites");
    let mut reordered = 0;
    for site in &sites {
        let list = |order| store.site_drives(tenant, site, false, order);
        let by_name = list(LibraryOrder::Name).await.expect("by name");
        let by_audience = list(LibraryOrder::Audience).await.expect("by audience");
        let audiences: Vec<i64> = by_audience.iter().map(|d| d.largest_audience).collect();
        assert!(
            audiences.windows(2).all(|w| w[0] >= w[1]),
            "{site}: largest audience first: {audiences:?}"
        );
        let ids = |list: &[sentinel_store::DriveSummary]| -> Vec<String> {
            list.iter().map(|d| d.drive_id.clone()).collect()
        };
        let (named, ranked) = (ids(&by_name), ids(&by_audience));
        assert_eq!(
            named.iter().collect::<BTreeSet<_>>(),
            ranked.iter().collect::<BTreeSet<_>>(),
            "{site}: the same libraries"
        );
        reordered += usize::from(named != ranked);
    }
    assert!(
        reordered > 0,
        "no site of {} lists its libraries differently by audience",
        sites.len()
    );
}

/// Every stored audience and reach row, as text, in order.
async fn stored_state(db: &sentinel_testkit::TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT t FROM (
             SELECT 'audience ' || row(h.*)::text AS t FROM holder_audiences h
             UNION ALL SELECT 'person ' || row(r.*)::text FROM person_reach r
             UNION ALL SELECT 'broad ' || row(b.*)::text FROM broad_drive_reach b
             UNION ALL SELECT 'own ' || row(d.*)::text FROM person_drive_reach d
             UNION ALL SELECT 'site ' || row(s.*)::text FROM broad_site_reach s
         ) x ORDER BY t",
    )
    .fetch_all(&db.pool)
    .await
    .expect("stored rows")
}

/// After users change files and sharing (not the directory), the scan recomputes only the
/// libraries those changes touched, and leaves exactly what recomputing everything leaves.
async fn check_incremental(
    sim: &RunningSim,
    db: &sentinel_testkit::TestDb,
    store: &Store,
    tenant: &str,
    mode: &str,
) {
    let before = store.now().await.expect("now");
    let kinds = [
        "create_file",
        "move",
        "share",
        "unshare",
        "break_inheritance",
        "restore_inheritance",
    ];
    control(sim, "/_sim/mutate", json!({"count": 30, "kinds": kinds})).await;
    assert_synced(&sync(sim, db, &["--permissions", mode]).await).await;
    let scanned = stored_state(db).await;
    let scoped = store
        .recompute_changed_since(tenant, before)
        .await
        .expect("recompute what changed");
    let libraries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM msgraph_drives WHERE tenant_id = $1 AND deleted_at IS NULL",
    )
    .bind(tenant)
    .fetch_one(&db.pool)
    .await
    .expect("libraries");
    assert!(
        !scoped.whole && scoped.libraries > 0 && (scoped.libraries as i64) < libraries / 2,
        "only the changed libraries of {libraries}: {scoped:?}"
    );
    let whole = store
        .refresh_audiences(tenant)
        .await
        .expect("recompute all");
    assert_eq!(
        stored_state(db).await,
        scanned,
        "the scan's recomputation of what changed equals recomputing everything"
    );
    assert!(scoped.rows_changed > 0 && scoped.holders < whole.holders / 2);
    eprintln!(
        "incremental: {scoped:?}; whole: {} libraries, {} holders",
        whole.libraries, whole.holders
    );
}

/// Every person's reach (`/people`) equals the simulator's, members, guests, disabled accounts
/// and invited addresses alike.
async fn check_reach(sim: &RunningSim, store: &Store, tenant: &str, disabled: &HashSet<String>) {
    let truth = dump(sim, "reach").await;
    let all = PageRequest {
        per_page: 10_000,
        ..PageRequest::default()
    };
    let got: HashMap<String, PersonReach> = store
        .people_reach(tenant, &PeopleQuery::default(), &all)
        .await
        .expect("reach")
        .rows
        .into_iter()
        .map(|r| (r.person_id.clone(), r))
        .collect();
    assert_eq!(got.len(), truth.len(), "one row per person");
    let mut kinds = HashMap::new();
    let mut wrong = Vec::new();
    for t in &truth {
        let id = t["personId"].as_str().expect("person");
        *kinds.entry(t["kind"].as_str().unwrap_or("?")).or_insert(0) += 1;
        let want = expected_reach(t);
        let have = got.get(id).map(reach_figures);
        if have.as_ref() != Some(&want) {
            wrong.push(format!("{id}: store {have:?}, truth {want:?}"));
        }
        if disabled.contains(id) {
            assert_eq!(want.1, 0, "a disabled account reaches nothing");
        }
    }
    assert!(
        kinds.len() == 3 && truth.iter().any(|t| t["itemsRead"].as_i64() > Some(0)),
        "members, guests and invited addresses, some reaching items: {kinds:?}"
    );
    assert!(
        wrong.is_empty(),
        "{} of {} people differ from the truth, e.g. {:#?}",
        wrong.len(),
        truth.len(),
        &wrong[..wrong.len().min(5)]
    );
    // One person's page: the same totals from the grants that concern them alone, and every
    // way in named.
    let mut routes = BTreeSet::new();
    for t in truth.iter().step_by(3) {
        let id = t["personId"].as_str().expect("person");
        let detail = store
            .person_reach(tenant, id, &all)
            .await
            .expect("person")
            .expect("a known person");
        let want = &got[id];
        let rows = &detail.items.rows;
        let libraries: BTreeSet<&str> = rows.iter().map(|r| r.place.drive_id.as_str()).collect();
        let sites: BTreeSet<&str> = rows
            .iter()
            .filter_map(|r| r.place.site_id.as_deref())
            .collect();
        assert_eq!(
            (
                rows.iter()
                    .filter(|r| r.can_read)
                    .map(|r| r.place.items)
                    .sum::<i64>(),
                rows.iter()
                    .filter(|r| r.can_write)
                    .map(|r| r.place.items)
                    .sum::<i64>(),
                libraries.len() as i64,
                sites.len() as i64,
                detail.items.total,
            ),
            (
                want.items_read,
                want.items_write,
                want.libraries,
                want.sites,
                rows.len() as i64,
            ),
            "{id}: the rows of the person's page, from their own grants, add up to the stored reach"
        );
        assert_eq!(
            (
                detail.person.items_read,
                detail.sites.iter().map(|s| s.items_read).sum::<i64>()
            ),
            (want.items_read, want.items_read),
            "{id}: the page's totals and sites are the list's"
        );
        // Each site's line is what the rows on that site add up to.
        let mut by_site: BTreeMap<Option<&str>, (BTreeSet<&str>, i64, i64)> = BTreeMap::new();
        for r in rows {
            let site = by_site.entry(r.place.site_id.as_deref()).or_default();
            site.0.insert(r.place.drive_id.as_str());
            site.1 += if r.can_read { r.place.items } else { 0 };
            site.2 += if r.can_write { r.place.items } else { 0 };
        }
        let from_rows: BTreeMap<Option<&str>, (i64, i64, i64)> = by_site
            .into_iter()
            .map(|(site, (drives, read, write))| (site, (drives.len() as i64, read, write)))
            .collect();
        let shown: BTreeMap<Option<&str>, (i64, i64, i64)> = detail
            .sites
            .iter()
            .map(|s| {
                let figures = (s.libraries, s.items_read, s.items_write);
                (s.site_id.as_deref(), figures)
            })
            .collect();
        let listed: BTreeMap<_, _> = from_rows
            .iter()
            .filter(|(site, _)| shown.contains_key(*site))
            .map(|(site, figures)| (*site, *figures))
            .collect();
        assert_eq!(shown, listed, "{id}: each site's libraries and items");
        assert_eq!(
            (shown.len(), shown.len() as i64 + detail.more_sites),
            (from_rows.len().min(SITES_LISTED), from_rows.len() as i64),
            "{id}: the sites listed and those not"
        );
        // Cut into about five pages by the stored counts (across libraries), the pages are the
        // whole list in order.
        let per_page = (rows.len() / 5).max(1);
        let mut paged = Vec::new();
        for page in 0..rows.len().div_ceil(per_page) as u32 {
            let one = store
                .person_reach(
                    tenant,
                    id,
                    &PageRequest {
                        page,
                        per_page: per_page as u32,
                        ..PageRequest::default()
                    },
                )
                .await
                .expect("a page")
                .expect("a known person");
            assert_eq!(
                one.items.total,
                rows.len() as i64,
                "{id}: page {page}'s total"
            );
            paged.extend(one.items.rows);
        }
        assert_eq!(&paged, rows, "{id}: the pages are the rows in order");
        for item in &detail.items.rows {
            assert!(
                !item.routes.is_empty(),
                "{id}: a way in for {}",
                item.place.item_id
            );
            routes.extend(
                item.routes
                    .iter()
                    .map(|r| r.split([':', ' ']).next().unwrap_or("").to_string()),
            );
        }
    }
    for how in [
        "direct",
        "group",
        "site",
        "claim",
        "organisation",
        "invitation",
    ] {
        assert!(routes.contains(how), "a way in through {how}: {routes:?}");
    }
    assert!(
        store
            .person_reach(tenant, "no-such-person", &all)
            .await
            .expect("unknown")
            .is_none(),
        "an unknown person is not found"
    );

    // Ranked broadest first, and the filters keep only what they say.
    let ranked: Vec<i64> = got.values().map(|r| r.items_read).collect();
    let top = store
        .people_reach(tenant, &PeopleQuery::default(), &PageRequest::default())
        .await
        .expect("top");
    assert_eq!(
        top.rows[0].items_read,
        ranked.iter().copied().max().unwrap_or(0)
    );
    let guests = store
        .people_reach(
            tenant,
            &PeopleQuery {
                kind: Some(PersonKind::Guest),
                disabled: None,
            },
            &all,
        )
        .await
        .expect("guests");
    assert_eq!(guests.total, kinds["guest"]);
    assert!(guests.rows.iter().all(|r| r.kind == "guest"));
    let off = store
        .people_reach(
            tenant,
            &PeopleQuery {
                kind: None,
                disabled: Some(true),
            },
            &all,
        )
        .await
        .expect("disabled");
    assert_eq!(off.total as usize, disabled.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_items_audience_equals_the_ground_truth_in_exhaustive_mode() {
    check_mode("exhaustive", 141).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_items_audience_equals_the_ground_truth_in_hierarchical_mode() {
    check_mode("hierarchical", 142).await;
}
