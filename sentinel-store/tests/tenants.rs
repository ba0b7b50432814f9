//! Tenants as data: registering on first use, readers limited to some tenants.

use sentinel_store::*;
use sqlx::PgPool;

mod common;
use common::ready;

#[sqlx::test]
async fn a_tenant_is_registered_once_and_keeps_its_settings(pool: PgPool) {
    let store = ready(pool).await;
    let first = store.registered_tenant("contoso").await.expect("register");
    assert_eq!(first.tenant_id, "contoso");
    assert!(first.enabled, "a new tenant is scanned");
    sqlx::query("UPDATE tenants SET budget_band = 2, name = 'Contoso' WHERE tenant_id = 'contoso'")
        .execute(store.pool())
        .await
        .expect("set band");
    let again = store.registered_tenant("contoso").await.expect("again");
    assert_eq!(
        again.budget_band,
        Some(2),
        "an existing tenant keeps its band"
    );
    assert_eq!(again.name.as_deref(), Some("Contoso"));
    assert_eq!(store.tenants().await.expect("tenants").len(), 1);
}

#[sqlx::test]
async fn a_reader_granted_some_tenants_sees_those_only(pool: PgPool) {
    let store = ready(pool).await;
    for t in ["contoso", "fabrikam"] {
        store.registered_tenant(t).await.expect("register");
    }
    let reader = Viewer {
        oid: "oid-1",
        upn: Some("Reader@Contoso.example"),
        admin: false,
    };
    let ids =
        |v: &(Vec<TenantRecord>, bool)| v.0.iter().map(|t| t.tenant_id.clone()).collect::<Vec<_>>();
    let all = store.visible_tenants(reader).await.expect("visible");
    assert_eq!(
        (ids(&all), all.1),
        (vec!["contoso".into(), "fabrikam".into()], false),
        "no grant: every tenant, not limited"
    );

    assert!(
        !store
            .grant_reader("nowhere", "reader@contoso.example")
            .await
            .expect("grant")
    );
    assert!(
        store
            .grant_reader("fabrikam", "reader@contoso.example")
            .await
            .expect("grant")
    );
    assert!(
        store
            .grant_reader("fabrikam", "reader@contoso.example")
            .await
            .expect("grant again"),
        "granting twice is still granted"
    );
    let limited = store.visible_tenants(reader).await.expect("visible");
    assert_eq!((ids(&limited), limited.1), (vec!["fabrikam".into()], true));

    let admin = Viewer {
        admin: true,
        ..reader
    };
    let everything = store.visible_tenants(admin).await.expect("visible");
    assert_eq!(
        (ids(&everything), everything.1),
        (vec!["contoso".into(), "fabrikam".into()], false),
        "an admin is never limited"
    );
}
