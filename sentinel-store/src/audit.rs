//! Audit events: who did what, when.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{Store, StoreError};

/// One audit event. `actor_*` are the signed-in user's (or the app's) identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditEvent {
    /// Entra object id of the actor (`audit_events.actor_oid`).
    pub actor_oid: Option<String>,
    /// The actor's sign-in name, as shown on `/admin`.
    pub actor_upn: Option<String>,
    /// The actor's display name.
    pub actor_name: Option<String>,
    /// What was done, e.g. `job.create` or `schedule.delete`.
    pub action: String,
    /// The kind of thing acted on, e.g. `job`.
    pub entity_type: Option<String>,
    /// Which one: its id.
    pub entity_id: Option<String>,
    /// What changed (the submitted fields), kept as JSON.
    pub details: Value,
    /// Whose data it concerns; `None` for the deployment's own (a tenant added, a sign-in).
    pub tenant_id: Option<String>,
}

/// An audit event as the admin page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    /// When it happened (`audit_events.occurred_at`, set by the database).
    pub occurred_at: DateTime<Utc>,
    /// The actor's sign-in name.
    pub actor_upn: Option<String>,
    /// The actor's display name.
    pub actor_name: Option<String>,
    /// What was done.
    pub action: String,
    /// The kind of thing acted on.
    pub entity_type: Option<String>,
    /// Which one.
    pub entity_id: Option<String>,
    /// What changed.
    pub details: sqlx::types::Json<Value>,
    /// Whose data it concerns, if a tenant's.
    pub tenant_id: Option<String>,
}

impl Store {
    /// The latest `limit` events of `tenant` and of the deployment itself (no tenant), newest
    /// first.
    pub async fn recent_audit_events(
        &self,
        tenant: &str,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT occurred_at, actor_upn, actor_name, action, entity_type, entity_id, details, tenant_id \
             FROM audit_events WHERE tenant_id = $1 OR tenant_id IS NULL \
             ORDER BY occurred_at DESC, event_id LIMIT $2",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records an event and returns its id.
    pub async fn audit(&self, event: &AuditEvent) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO audit_events (event_id, occurred_at, actor_oid, actor_upn, actor_name, action, entity_type, entity_id, details, tenant_id) \
             VALUES ($1, now(), $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(&event.actor_oid)
        .bind(&event.actor_upn)
        .bind(&event.actor_name)
        .bind(&event.action)
        .bind(&event.entity_type)
        .bind(&event.entity_id)
        .bind(sqlx::types::Json(&event.details))
        .bind(&event.tenant_id)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }
}
