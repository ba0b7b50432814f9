//! The dashboard in a real browser (headless Chromium), against the real worker and web
//! binaries and the simulated tenant.

mod common;

use std::time::Duration;

use common::{Browser, Stack};
use fantoccini::Locator;
use sentinel_sim::Profile;
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// The `data-permission-id`s of the elements matching `css`.
async fn permission_ids(b: &Browser, css: &str) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    for e in b.client.find_all(Locator::Css(css)).await.expect(css) {
        ids.insert(
            e.attr("data-permission-id")
                .await
                .expect("attr")
                .expect("id"),
        );
    }
    ids
}

async fn data_value(b: &Browser, id: &str) -> i64 {
    b.attr(&format!("#{id}"), "data-value")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("#{id} has no numeric data-value"))
}

/// The session cookie and the CSRF token of the signed-in browser, for requests made outside it.
async fn session_of(b: &Browser) -> (String, String) {
    let cookie = b
        .client
        .get_named_cookie("sentinel_session")
        .await
        .expect("session cookie");
    let csrf = b
        .attr("input[name=csrf_token]", "value")
        .await
        .expect("csrf token");
    (format!("sentinel_session={}", cookie.value()), csrf)
}

async fn post_form(url: &str, cookie: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(url)
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_and_a_reader_use_the_dashboard_against_the_simulated_tenant() {
    let mut stack = Stack::start(Profile::Small, 7).await;
    let b = Browser::start().await;
    let base = stack.url.clone();

    // Signing in as the admin lands on the analytics page, empty before any sync.
    b.sign_in(&base, 0).await;
    assert_eq!(b.text("#role").await, "Admin");
    assert!(b.text("#freshness").await.contains("never refreshed"));

    // Create a job and a schedule, with a preview of the schedule's next runs.
    b.goto(&format!("{base}/jobs")).await;
    b.fill("#job-name", "Tenant scan").await;
    b.click("#create-job").await;
    let job_path = b.path().await;
    let job_id = job_path
        .strip_prefix("/jobs/")
        .expect("redirected to the job")
        .to_string();
    assert_eq!(b.text("#job-title").await, "Tenant scan");
    b.fill("#preview-cron", "*/5 * * * *").await;
    b.click("#preview-form button").await;
    assert_eq!(b.count("#preview li").await, 5, "five upcoming times");
    b.fill("#schedule-cron", "61 * * * *").await;
    b.click("#add-schedule-button").await;
    assert!(
        b.text("#form-error")
            .await
            .contains("invalid cron expression")
    );
    b.fill("#schedule-cron", "0 3 * * *").await;
    b.click("#add-schedule-button").await;
    assert_eq!(b.count("#schedules-table .schedule-row").await, 1);
    let crons: Vec<String> =
        sqlx::query_scalar("SELECT cron_expr FROM job_schedules WHERE job_id = $1::uuid")
            .bind(&job_id)
            .fetch_all(&stack.db.pool)
            .await
            .expect("schedules");
    assert_eq!(crons, vec!["0 3 * * *".to_string()]);
    b.screenshot("jobs").await;

    // Run it now from /admin and watch it succeed in /runs.
    b.goto(&format!("{base}/admin")).await;
    assert!(b.text("#worker-health").await.contains("ok"));
    b.click(&format!("tr[data-job-id='{job_id}'] .op-run-now"))
        .await;
    b.wait_until(
        &format!("{base}/runs?job_id={job_id}"),
        3 * MINUTE,
        "the run succeeds",
        async |b: &Browser| b.count(".run-row[data-status='success']").await == 1,
    )
    .await;
    b.screenshot("runs").await;

    // The analytics page shows what the simulator holds.
    let manifest = stack.manifest().await;
    b.goto(&format!("{base}/analytics")).await;
    assert!(b.text("#freshness").await.contains("last refreshed at"));
    for key in [
        "users",
        "groups",
        "memberships",
        "sites",
        "drives",
        "items",
        "files",
        "folders",
    ] {
        assert_eq!(
            data_value(&b, &format!("inventory-{key}")).await,
            manifest[key].as_i64().expect(key),
            "{key}"
        );
    }
    assert_eq!(
        data_value(&b, "posture-unique_permission_items").await,
        manifest["unique_permission_items"]
            .as_i64()
            .expect("unique items")
    );
    // A link is counted once however many items it reaches.
    let links = stack.distinct_links().await;
    for (scope, key) in [
        ("anonymous", "anonymous_links"),
        ("organization", "organization_links"),
        ("users", "users_links"),
    ] {
        let want = links.get(scope).copied().unwrap_or(0);
        assert!(want > 0, "the tenant has {scope} links");
        assert_eq!(
            data_value(&b, &format!("posture-{key}")).await,
            want,
            "{key}"
        );
    }
    assert_eq!(
        b.count("#sites-table .site-row").await as u64,
        manifest["sites"].as_u64().expect("sites").min(50)
    );
    b.screenshot("analytics").await;

    // Drill down: the most exposed site, a library with links, a shared file, its live panel.
    b.click("#sites-table .site-row a").await;
    b.screenshot("site").await;
    let drives = b
        .client
        .find_all(Locator::Css("#drives-table .drive-row"))
        .await
        .expect("drives");
    let mut opened = false;
    for row in drives {
        let links = row
            .find(Locator::Css("td[data-links]"))
            .await
            .expect("cell")
            .attr("data-links")
            .await
            .expect("attr");
        if links.as_deref().is_some_and(|l| l != "0") {
            b.navigate_by(row.find(Locator::Css("a")).await.expect("link"))
                .await;
            opened = true;
            break;
        }
    }
    assert!(
        opened,
        "the most exposed site has a library with sharing links"
    );
    b.screenshot("drive").await;
    b.click("#shared-table .shared-row a").await;
    let item_path = b.path().await;
    let cached = permission_ids(&b, ".cached-permission").await;
    assert!(!cached.is_empty(), "a shared item has cached permissions");
    b.click("#load-live").await;
    assert!(b.text("#live-fetched").await.contains("Fetched from Graph"));
    let live = permission_ids(&b, ".live-permission").await;
    assert_eq!(
        live, cached,
        "the live truth equals the cache right after a sync"
    );
    b.screenshot("item").await;
    // Its audience is the simulator's ground truth for the item.
    // Drive ids are `b!…` ([A-Za-z0-9_-] besides): the only escape in the path is `!`.
    let decoded = item_path.replace("%21", "!");
    let (drive_id, item_id) = decoded
        .trim_start_matches("/drives/")
        .split_once("/items/")
        .expect("an item path");
    let truth = sentinel_testkit::sim_dump(stack.sim(), "audience")
        .await
        .into_iter()
        .find(|a| a["driveId"] == drive_id && a["itemId"] == item_id)
        .expect("the item's audience");
    let count = |k: &str| truth[k].as_array().map_or(0, |a| a.len()) as i64;
    assert_eq!(data_value(&b, "audience-readers").await, count("readers"));
    assert_eq!(data_value(&b, "audience-writers").await, count("writers"));
    assert_eq!(
        b.count("#audience-anyone").await == 1,
        truth["anyoneCanRead"] == true,
        "the anyone-link flag"
    );

    // /people ranks everyone by reach: the first is the person the ground truth says reaches
    // the most, and their page gives the simulator's counts and a way in for every item.
    let reach = sentinel_testkit::sim_dump(stack.sim(), "reach").await;
    let most = reach
        .iter()
        .map(|r| r["itemsRead"].as_i64().unwrap_or(0))
        .max()
        .expect("people");
    b.click("#nav-people").await;
    assert_eq!(b.path().await, "/people");
    b.screenshot("people").await;
    let person = b
        .attr("#people-table .person-row", "data-person-id")
        .await
        .expect("a person");
    let first_read = b.attr("#people-table .person-row", "data-items-read").await;
    assert_eq!(first_read, Some(most.to_string()), "broadest first");
    b.click("#people-table .person-row a").await;
    let want = reach
        .iter()
        .find(|r| r["personId"] == person.as_str())
        .expect("the person's truth");
    assert_eq!(
        data_value(&b, "person-items-read").await,
        want["itemsRead"].as_i64().expect("read")
    );
    assert_eq!(
        data_value(&b, "person-items-write").await,
        want["itemsWrite"].as_i64().expect("write")
    );
    assert!(b.count("#person-items .reached-row").await > 0);
    assert!(
        b.count("#person-items .reached-row .route span").await
            >= b.count("#person-items .reached-row").await,
        "every item says how"
    );
    b.screenshot("person").await;

    // The largest audience tenant-wide comes first, as the simulator counts it.
    let widest = sentinel_testkit::sim_dump(stack.sim(), "audience")
        .await
        .iter()
        .map(|a| a["readers"].as_array().map_or(0, |r| r.len()))
        .max()
        .expect("items");
    // Ranked by largest audience, the first site holds the widest item of any site library.
    let site_drives: std::collections::HashSet<String> =
        sentinel_testkit::sim_dump(stack.sim(), "drives")
            .await
            .iter()
            .filter(|d| d["siteId"].is_string())
            .filter_map(|d| d["id"].as_str().map(String::from))
            .collect();
    let widest_on_a_site = sentinel_testkit::sim_dump(stack.sim(), "audience")
        .await
        .iter()
        .filter(|a| {
            a["driveId"]
                .as_str()
                .is_some_and(|d| site_drives.contains(d))
        })
        .map(|a| a["readers"].as_array().map_or(0, |r| r.len()))
        .max()
        .expect("site items");
    b.goto(&format!("{base}/analytics")).await;
    b.click("#sort-by-audience").await;
    assert_eq!(
        b.attr(
            "#sites-table .site-row td[data-largest-audience]",
            "data-largest-audience"
        )
        .await,
        Some(widest_on_a_site.to_string()),
        "sites by largest audience"
    );
    b.click("#nav-audiences").await;
    assert_eq!(
        b.attr("#audiences-table .audience-row", "data-readers")
            .await,
        Some(widest.to_string()),
        "largest first"
    );
    b.screenshot("audiences").await;

    // Policies: the admin sets the audience rule's threshold to the median audience of the
    // items holding permissions; its open violations are then exactly the truth's items over it.
    let inheriting: std::collections::HashSet<(String, String)> =
        sentinel_testkit::sim_dump(stack.sim(), "permissions")
            .await
            .iter()
            .filter(|r| !r["inheritedFrom"].is_null())
            .map(|r| (r["driveId"].to_string(), r["itemId"].to_string()))
            .collect();
    let mut holders: Vec<usize> = sentinel_testkit::sim_dump(stack.sim(), "audience")
        .await
        .iter()
        .filter(|a| !inheriting.contains(&(a["driveId"].to_string(), a["itemId"].to_string())))
        .map(|a| a["readers"].as_array().map_or(0, |r| r.len()))
        .filter(|n| *n > 0)
        .collect();
    holders.sort_unstable();
    let threshold = holders[holders.len() / 2];
    let over = holders.iter().filter(|n| **n > threshold).count();
    b.click("#nav-policies").await;
    assert_eq!(b.count("#policies-table .policy-row").await, 7);
    let rule = "#policies-table tr[data-rule='audience_over']";
    b.fill(&format!("{rule} .policy-threshold"), &threshold.to_string())
        .await;
    b.click(&format!("{rule} .policy-save")).await;
    assert_eq!(b.path().await, "/policies");
    assert_eq!(
        b.attr(rule, "data-threshold").await,
        Some(threshold.to_string())
    );
    assert_eq!(
        b.text(&format!("{rule} .policy-open")).await,
        over.to_string(),
        "items whose audience is over {threshold}"
    );
    // Two webhooks: one that accepts our JSON, one (Slack's shape) that fails twice first.
    let accepting = sentinel_testkit::webhook::Receiver::start(0).await;
    let flaky = sentinel_testkit::webhook::Receiver::start(2).await;
    for (receiver, format) in [(&accepting, "json"), (&flaky, "slack")] {
        b.fill("#webhook-url", &receiver.url).await;
        b.client
            .find(Locator::Css("#webhook-format"))
            .await
            .expect("format")
            .select_by_value(format)
            .await
            .expect("select");
        b.click("#add-webhook-button").await;
    }
    assert_eq!(b.count("#webhooks-table .webhook-row").await, 2);
    b.screenshot("policies").await;

    // Users share and unshare; a day later (when the scan re-reads permissions, which delta
    // does not report) /changes lists exactly the anyone and organisation links the tenant
    // gained and lost since the first scan.
    let broad = |links: std::collections::BTreeSet<(String, String, String)>| {
        links
            .into_iter()
            .filter(|(_, _, scope)| scope == "anonymous" || scope == "organization")
            .collect::<std::collections::BTreeSet<_>>()
    };
    let links_before = broad(stack.links().await);
    let between: String = sqlx::query_scalar(
        "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
    .fetch_one(&stack.db.pool)
    .await
    .expect("now");
    sentinel_testkit::sim_control(
        stack.sim(),
        "mutate",
        serde_json::json!({"count": 30, "kinds": ["share", "unshare"]}),
    )
    .await;
    let links_after = broad(stack.links().await);
    let gained = links_after.difference(&links_before).count();
    let lost = links_before.difference(&links_after).count();
    assert!(gained + lost > 0, "the users changed some broad links");
    assert!(gained.max(lost) <= 50, "one page each");
    sqlx::query(
        "UPDATE msgraph_drive_items SET permissions_last_synced_at = permissions_last_synced_at - interval '25 hours', \
           sharing_changed_at = sharing_changed_at - interval '25 hours'",
    )
    .execute(&stack.db.pool)
    .await
    .expect("a day passes");
    b.goto(&format!("{base}/admin")).await;
    b.click(&format!("tr[data-job-id='{job_id}'] .op-run-now"))
        .await;
    b.wait_until(
        &format!("{base}/runs?job_id={job_id}"),
        3 * MINUTE,
        "the second run succeeds",
        async |b: &Browser| b.count(".run-row[data-status='success']").await == 2,
    )
    .await;
    b.click("#nav-changes").await;
    assert_eq!(b.path().await, "/changes");
    for (change, want) in [("removed", lost), ("opened", gained)] {
        let mut listed = 0;
        for kind in ["anyone_link", "organization_link"] {
            b.goto(&format!(
                "{base}/changes?since={between}&change={change}&kind={kind}"
            ))
            .await;
            listed += b
                .count(&format!(
                    ".change-row[data-change='{change}'][data-kind='{kind}']"
                ))
                .await;
        }
        assert_eq!(listed, want, "{change} links on /changes");
    }
    b.goto(&format!("{base}/changes?since={between}")).await;
    b.screenshot("changes").await;

    // The scan's new violations reach both webhooks, once each; the flaky one after retries.
    let new: std::collections::BTreeSet<String> = sqlx::query_scalar(
        "SELECT rule || ' ' || subject_key FROM policy_violations \
         WHERE resolved_at IS NULL AND detected_at > $1::timestamptz",
    )
    .bind(&between)
    .fetch_all(&stack.db.pool)
    .await
    .expect("new violations")
    .into_iter()
    .collect();
    assert!(!new.is_empty(), "the shares broke a policy");
    b.wait_until(
        &format!("{base}/policies"),
        MINUTE,
        "both webhooks delivered",
        async |b: &Browser| {
            b.count("#webhooks-table .webhook-row[data-pending='0'][data-failed='0']")
                .await
                == 2
                && b.count("#webhooks-table .webhook-row[data-delivered='0']")
                    .await
                    == 0
        },
    )
    .await;
    let delivered: std::collections::BTreeSet<String> = accepting
        .accepted()
        .iter()
        .flat_map(|body| body["violations"].as_array().cloned().unwrap_or_default())
        .map(|v| {
            format!(
                "{} {}",
                v["rule"].as_str().unwrap_or(""),
                v["subject_key"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(delivered, new, "the new violations, each once");
    assert_eq!(flaky.requests() as usize, 2 + flaky.accepted().len());
    assert!(
        flaky.accepted().iter().all(|body| body
            .as_object()
            .is_some_and(|o| o.len() == 1 && o.contains_key("text"))),
        "Slack gets its text"
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM audit_events WHERE action = 'alert.retrying'")
            .await,
        2,
        "each failed delivery is audited"
    );
    b.click("#all-violations").await;
    assert!(b.count("#violations-table .violation-row").await > 0);
    b.screenshot("violations").await;
    let manifest = stack.manifest().await;

    // Pause and resume from /admin.
    b.goto(&format!("{base}/admin")).await;
    b.click(&format!("tr[data-job-id='{job_id}'] .op-pause"))
        .await;
    assert_eq!(
        b.text(&format!("tr[data-job-id='{job_id}'] .job-state"))
            .await,
        "paused"
    );
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM jobs WHERE paused AND job_id = '{job_id}'"
            ))
            .await,
        1
    );
    b.click(&format!("tr[data-job-id='{job_id}'] .op-resume"))
        .await;
    assert_eq!(
        b.text(&format!("tr[data-job-id='{job_id}'] .job-state"))
            .await,
        "active"
    );
    b.screenshot("admin").await;
    let audited = stack
        .count("SELECT count(*) FROM audit_events WHERE actor_upn IS NOT NULL AND action IN ('job.create', 'schedule.create', 'job.run_now', 'job.pause', 'job.resume')")
        .await;
    assert_eq!(
        audited, 6,
        "each change (two of them run-nows) is audited with the signed-in user"
    );

    // A forged POST (the admin's cookie, no CSRF token) changes nothing.
    let (cookie, _) = session_of(&b).await;
    let jobs_before = stack.count("SELECT count(*) FROM jobs").await;
    let (status, _) = post_form(
        &format!("{base}/jobs"),
        &cookie,
        &[("name", "forged"), ("job_type", "refresh_mv")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(stack.count("SELECT count(*) FROM jobs").await, jobs_before);

    // The reader sees the dashboards and is refused every change, with nothing written.
    b.click("#sign-out").await;
    assert_eq!(b.path().await, "/signed-out");
    b.sign_in(&base, 1).await;
    assert_eq!(b.text("#role").await, "Reader");
    b.goto(&format!("{base}/jobs")).await;
    assert_eq!(b.count("#new-job").await, 0, "no create form for a reader");
    let (cookie, csrf) = session_of(&b).await;
    let schedule_id: String =
        sqlx::query_scalar("SELECT schedule_id::text FROM job_schedules LIMIT 1")
            .fetch_one(&stack.db.pool)
            .await
            .expect("schedule");
    // What people write: job and schedule definitions and their audit events. Not what the
    // scheduler writes meanwhile (a schedule firing moves next_run_at and audits its run).
    let snapshot = "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM ( \
                    SELECT concat_ws('|', job_id, job_type, tenant_id, config, enabled, name, paused, updated_at) AS x FROM jobs \
                    UNION ALL SELECT concat_ws('|', schedule_id, job_id, cron_expr, enabled) FROM job_schedules \
                    UNION ALL SELECT count(*)::text FROM audit_events WHERE actor_oid IS NOT NULL) t";
    let before: String = sqlx::query_scalar(snapshot)
        .fetch_one(&stack.db.pool)
        .await
        .expect("snapshot");
    let form = [
        ("csrf_token", csrf.as_str()),
        ("name", "x"),
        ("job_type", "refresh_mv"),
        ("enabled", "true"),
        ("cron_expr", "* * * * *"),
        ("job_id", job_id.as_str()),
    ];
    for path in [
        "/jobs".to_string(),
        format!("/jobs/{job_id}"),
        format!("/jobs/{job_id}/enabled"),
        format!("/jobs/{job_id}/delete"),
        format!("/jobs/{job_id}/schedules"),
        format!("/schedules/{schedule_id}"),
        format!("/schedules/{schedule_id}/delete"),
        format!("/admin/jobs/{job_id}/run-now"),
        format!("/admin/jobs/{job_id}/pause"),
        format!("/admin/jobs/{job_id}/resume"),
    ] {
        let (status, body) = post_form(&format!("{base}{path}"), &cookie, &form).await;
        assert_eq!(status, 403, "{path}");
        assert!(body.contains("Sentinel.Admin"), "{path}: {body}");
    }
    let api = reqwest::Client::new();
    for (method, path) in [
        ("POST", "/api/jobs".to_string()),
        ("PUT", format!("/api/jobs/{job_id}")),
        ("DELETE", format!("/api/jobs/{job_id}")),
    ] {
        let r = api
            .request(method.parse().expect("method"), format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({"job_type": "refresh_mv"}))
            .send()
            .await
            .expect("api");
        assert_eq!(r.status().as_u16(), 403, "{method} {path}");
        let body: Value = r.json().await.expect("json");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("Sentinel.Admin"))
        );
    }
    let after: String = sqlx::query_scalar(snapshot)
        .fetch_one(&stack.db.pool)
        .await
        .expect("snapshot");
    assert_eq!(before, after, "a reader's attempts wrote nothing");

    // No token the simulator issued ever reached the browser: not in a body, a header or a cookie.
    let tokens = stack.issued_tokens().await;
    assert!(
        tokens.len() >= 4,
        "sign-ins and app tokens were issued ({})",
        tokens.len()
    );
    let responses = stack.proxy.responses();
    assert!(responses.len() > 20);
    for t in &tokens {
        assert!(
            !responses.iter().any(|r| r.contains(t.as_str())),
            "a token reached the browser"
        );
        let cookies = b.client.get_all_cookies().await.expect("cookies");
        assert!(!cookies.iter().any(|c| c.value().contains(t.as_str())));
    }

    // With Graph and Entra gone, the cached pages still render and the live panel says why.
    stack.stop_sim().await;
    b.goto(&format!("{base}/analytics")).await;
    assert_eq!(
        data_value(&b, "inventory-items").await,
        manifest["items"].as_i64().expect("items")
    );
    b.goto(&format!("{base}{item_path}")).await;
    assert!(b.count(".cached-permission").await > 0);
    b.click("#load-live").await;
    let err = b.text("#live-error").await;
    assert!(err.contains("Graph did not answer"), "{err}");
    assert!(
        b.count(".cached-permission").await > 0,
        "the cache is still shown"
    );
    b.screenshot("item-graph-down").await;

    b.stop().await;
    stack.stop().await;
}
