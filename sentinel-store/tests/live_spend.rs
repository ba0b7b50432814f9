//! The live panel's budget, counted in Postgres: each user's share and everyone's together,
//! shared by every process, over a sliding minute.

use sentinel_store::*;
use sqlx::PgPool;

mod common;
use common::ready;

const T: &str = "tenant-1";
/// The smallest band's default live share (10% of 1,250) and a user's share.
const CAPS: (u32, u32) = (60, 125);

async fn spend(store: &Store, user: &str, ru: u32) -> LiveSpend {
    store.spend_live_ru(T, user, ru, CAPS).await.expect("spend")
}

fn refused(share: LiveShare) -> impl Fn(LiveSpend) -> bool {
    move |s| matches!(s, LiveSpend::Refused { share: s, retry_after_secs } if s == share && (1..=60).contains(&retry_after_secs))
}

#[sqlx::test]
async fn each_user_has_a_share_and_everyone_together_the_panels(pool: PgPool) {
    let store = ready(pool).await;
    for _ in 0..12 {
        assert_eq!(spend(&store, "reader-1", 5).await, LiveSpend::Spent);
    }
    assert!(refused(LiveShare::User)(spend(&store, "reader-1", 5).await));
    assert_eq!(
        spend(&store, "reader-2", 5).await,
        LiveSpend::Spent,
        "another user has a share of their own"
    );
    // 125 for everyone: 65 spent, 60 left; a third user's whole share fits, a fourth's does not.
    for _ in 0..12 {
        assert_eq!(spend(&store, "reader-3", 5).await, LiveSpend::Spent);
    }
    assert!(refused(LiveShare::Panel)(
        spend(&store, "reader-4", 5).await
    ));
    // A refusal takes nothing: reader-4's own share is untouched.
    let reader_4: Option<i32> =
        sqlx::query_scalar("SELECT sum(ru)::int FROM live_spend WHERE principal = 'reader-4'")
            .fetch_one(store.pool())
            .await
            .expect("reader-4");
    assert_eq!(reader_4, None);
    // Another tenant's budget is its own.
    assert_eq!(
        store
            .spend_live_ru("tenant-2", "reader-4", 5, CAPS)
            .await
            .expect("spend"),
        LiveSpend::Spent
    );
}

#[sqlx::test]
async fn two_processes_share_one_count(pool: PgPool) {
    let one = ready(pool.clone()).await;
    let options = (*pool.connect_options()).clone();
    let other = Store::from_pool(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .expect("a second pool"),
    );
    for _ in 0..6 {
        assert_eq!(spend(&one, "reader-1", 5).await, LiveSpend::Spent);
        assert_eq!(spend(&other, "reader-1", 5).await, LiveSpend::Spent);
    }
    assert!(refused(LiveShare::User)(spend(&one, "reader-1", 5).await));
    assert!(refused(LiveShare::User)(spend(&other, "reader-1", 5).await));
}

async fn minute(store: &Store) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT date_trunc('minute', clock_timestamp())")
        .fetch_one(store.pool())
        .await
        .expect("minute")
}

#[sqlx::test]
async fn the_previous_minute_still_counts_and_older_ones_go(pool: PgPool) {
    let store = ready(pool).await;
    // Within one minute (tried again if a minute turned meanwhile): the spending written as
    // the previous minute's must be the previous minute's when spent against.
    let outcome = loop {
        sqlx::query("DELETE FROM live_spend")
            .execute(store.pool())
            .await
            .expect("clear");
        let before = minute(&store).await;
        sqlx::query(
            "INSERT INTO live_spend (tenant_id, principal, minute, ru) VALUES \
               ($1, 'reader-1', date_trunc('minute', now()) - interval '1 minute', 2000000000), \
               ($1, 'reader-2', date_trunc('minute', now()) - interval '5 minutes', 2000000000)",
        )
        .bind(T)
        .execute(store.pool())
        .await
        .expect("past spending");
        let spent = (
            spend(&store, "reader-1", 5).await,
            spend(&store, "reader-2", 5).await,
        );
        if minute(&store).await == before {
            break spent;
        }
    };
    assert!(
        refused(LiveShare::User)(outcome.0),
        "a burst at the end of the last minute counts against this one"
    );
    assert_eq!(
        outcome.1,
        LiveSpend::Spent,
        "spending five minutes ago does not"
    );
    let old: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM live_spend WHERE minute < date_trunc('minute', now()) - interval '1 minute'",
    )
    .fetch_one(store.pool())
    .await
    .expect("old rows");
    assert_eq!(old, 0, "rows older than the last minute are deleted");
}
