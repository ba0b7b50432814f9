//! Tenants as data (`tenants`): which tenants this deployment scans, whether each consented,
//! and the budget band each is paced by.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Store, StoreError};

/// One tenant this deployment knows.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TenantRecord {
    /// As Entra names it in the token endpoint's path: a tenant id or a domain.
    pub tenant_id: String,
    /// What admins call it.
    pub name: Option<String>,
    /// A disabled tenant's jobs do not run.
    pub enabled: bool,
    /// `unknown`, `granted` (a token was issued) or `missing` (Entra refused one).
    pub consent_state: String,
    /// What Entra said when it refused a token.
    pub consent_error: Option<String>,
    /// When a token was last asked for.
    pub consent_checked_at: Option<DateTime<Utc>>,
    /// SharePoint's budget band, 1 to 5; `None`: the deployment's own budget settings.
    pub budget_band: Option<i16>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// SharePoint's per-app budget in a band, `(RU per minute, RU per 24 hours)`: 1,250 RU/min and
/// 1.2M RU/24 h up to 1,000 licenses, then 2,500, 3,750, 5,000 and 6,250 RU/min over 50,000
/// (shared/graph-behaviour.md; Microsoft Learn, "SharePoint Online throttling"). `None` for a
/// band outside 1 to 5.
pub fn band_budget(band: i16) -> Option<(u32, u32)> {
    let band = u32::try_from(band).ok().filter(|b| (1..=5).contains(b))?;
    Some((1_250 * band, 1_200_000 * band))
}

/// A tenant named as nothing Entra's token endpoint takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant is its id (a GUID) or its domain, e.g. contoso.onmicrosoft.com; got '{0}'")]
pub struct BadTenantId(pub String);

/// A tenant as an admin typed it, checked: its id or a domain (letters, digits, `-` and `.`,
/// at most 253 characters, the longest domain name), trimmed. It becomes a
/// path segment of the token endpoint and of the admin-consent link, so nothing else passes.
pub fn checked_tenant_id(raw: &str) -> Result<String, BadTenantId> {
    let t = raw.trim();
    let ok = !t.is_empty()
        && t.len() <= 253
        && !t.starts_with(['.', '-'])
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(t.to_string())
    } else {
        Err(BadTenantId(raw.to_string()))
    }
}

const COLUMNS: &str = "tenant_id, name, enabled, consent_state, consent_error, \
                       consent_checked_at, budget_band, created_at";

impl Store {
    /// Adds a tenant if it is not there yet; returns whether it was added. An existing row
    /// keeps its name, state and band.
    pub async fn register_tenant(
        &self,
        tenant_id: &str,
        name: Option<&str>,
    ) -> Result<bool, StoreError> {
        let added = sqlx::query(
            "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(added == 1)
    }

    /// The tenant, added first if it is not there yet (as [`Store::register_tenant`] adds it):
    /// one round trip for a run that starts.
    pub async fn registered_tenant(&self, tenant_id: &str) -> Result<TenantRecord, StoreError> {
        // The statement's snapshot does not see its own insert: exactly one branch answers.
        Ok(sqlx::query_as(&format!(
            "WITH added AS (INSERT INTO tenants (tenant_id) VALUES ($1) \
               ON CONFLICT (tenant_id) DO NOTHING RETURNING {COLUMNS}) \
             SELECT * FROM added \
             UNION ALL SELECT {COLUMNS} FROM tenants \
               WHERE tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM added)"
        ))
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Every tenant, by name then id.
    pub async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM tenants ORDER BY name NULLS LAST, tenant_id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// One tenant, if known.
    pub async fn tenant(&self, tenant_id: &str) -> Result<Option<TenantRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM tenants WHERE tenant_id = $1"
        ))
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Enables or disables a tenant's jobs; `false` when no such tenant exists.
    pub async fn set_tenant_enabled(
        &self,
        tenant_id: &str,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let changed =
            sqlx::query("UPDATE tenants SET enabled = $2, updated_at = now() WHERE tenant_id = $1")
                .bind(tenant_id)
                .bind(enabled)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(changed == 1)
    }

    /// Sets (or, with `None`, clears) a tenant's budget band; `false` when no such tenant
    /// exists. A band outside 1 to 5 is refused by the table.
    pub async fn set_tenant_band(
        &self,
        tenant_id: &str,
        band: Option<i16>,
    ) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE tenants SET budget_band = $2, updated_at = now() WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .bind(band)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Records whether Entra issued a token for the tenant (`Err` holds what it said instead).
    pub async fn record_consent(
        &self,
        tenant_id: &str,
        outcome: Result<(), &str>,
    ) -> Result<(), StoreError> {
        let (state, error) = match outcome {
            Ok(()) => ("granted", None),
            Err(e) => ("missing", Some(e)),
        };
        sqlx::query(
            "UPDATE tenants SET consent_state = $2, consent_error = $3, consent_checked_at = now() \
             WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .bind(state)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A visible tenant, with whether the viewer is limited to some tenants.
#[derive(sqlx::FromRow)]
struct Visible {
    #[sqlx(flatten)]
    record: TenantRecord,
    limited: bool,
}

/// Whom the tenants a user may see are asked for.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// The user's Entra object id.
    pub oid: &'a str,
    /// The user's sign-in name.
    pub upn: Option<&'a str>,
    /// Admins see every tenant.
    pub admin: bool,
}

impl Store {
    /// The tenants `viewer` may see: every tenant for an admin and for a reader no tenant is
    /// granted to; only the granted ones for a reader limited with [`Store::grant_reader`].
    /// Also says whether the viewer is so limited.
    pub async fn visible_tenants(
        &self,
        viewer: Viewer<'_>,
    ) -> Result<(Vec<TenantRecord>, bool), StoreError> {
        let principals = [
            viewer.oid.to_lowercase(),
            viewer.upn.unwrap_or_default().to_lowercase(),
        ];
        // One round trip per request: whether the viewer is limited rides on every row (a
        // limited reader's grants name existing tenants, so it always has one).
        let rows: Vec<Visible> = sqlx::query_as(&format!(
            "WITH v AS (SELECT NOT $1 AND EXISTS \
                 (SELECT 1 FROM tenant_readers WHERE lower(principal) = ANY($2)) AS limited) \
             SELECT {COLUMNS}, v.limited FROM tenants t CROSS JOIN v WHERE NOT v.limited OR EXISTS \
               (SELECT 1 FROM tenant_readers r WHERE r.tenant_id = t.tenant_id AND lower(r.principal) = ANY($2)) \
             ORDER BY name NULLS LAST, tenant_id"
        ))
        .bind(viewer.admin)
        .bind(&principals[..])
        .fetch_all(&self.pool)
        .await?;
        let limited = rows.first().is_some_and(|r| r.limited);
        Ok((rows.into_iter().map(|r| r.record).collect(), limited))
    }

    /// Limits the reader `principal` (object id or sign-in name) to the tenants granted to it,
    /// this one among them; `false` when no such tenant exists.
    pub async fn grant_reader(&self, tenant_id: &str, principal: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH t AS (SELECT tenant_id FROM tenants WHERE tenant_id = $1), \
                  granted AS (INSERT INTO tenant_readers (tenant_id, principal) \
                    SELECT tenant_id, $2 FROM t ON CONFLICT DO NOTHING) \
             SELECT EXISTS (SELECT 1 FROM t)",
        )
        .bind(tenant_id)
        .bind(principal.trim())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Takes a tenant from what a limited reader may see; `false` when it was not granted.
    pub async fn revoke_reader(
        &self,
        tenant_id: &str,
        principal: &str,
    ) -> Result<bool, StoreError> {
        let removed = sqlx::query(
            "DELETE FROM tenant_readers WHERE tenant_id = $1 AND lower(principal) = lower($2)",
        )
        .bind(tenant_id)
        .bind(principal.trim())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::{band_budget, checked_tenant_id};

    #[test]
    fn bands_are_microsofts() {
        assert_eq!(band_budget(1), Some((1_250, 1_200_000)));
        assert_eq!(band_budget(3), Some((3_750, 3_600_000)));
        assert_eq!(band_budget(5), Some((6_250, 6_000_000)));
        assert_eq!(band_budget(0), None);
        assert_eq!(band_budget(6), None);
    }

    #[test]
    fn a_tenant_is_an_id_or_a_domain_and_nothing_that_reaches_into_a_url() {
        for ok in [
            "contoso.onmicrosoft.com",
            " 72f988bf-86f1-41af-91ab-2d7cd011db47 ",
        ] {
            assert_eq!(checked_tenant_id(ok), Ok(ok.trim().to_string()));
        }
        for bad in [
            "",
            "  ",
            "contoso/oauth2",
            "a?b",
            "a#b",
            "a b",
            "../x",
            "-x",
            "ü.example",
        ] {
            assert!(checked_tenant_id(bad).is_err(), "{bad:?}");
        }
        assert!(checked_tenant_id(&"a".repeat(254)).is_err());
    }
}
