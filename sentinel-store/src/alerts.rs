//! Alerts: the webhooks an admin adds, and the deliveries queued for each newly detected
//! violation ([`Store::refresh_violations`]). The worker claims what is due in batches (one per
//! webhook), sends them, and records the outcome; a claim is a lease, so a worker that dies
//! mid-send leaves its batch due again once the lease runs out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::policies::PolicyRule;
use crate::{Store, StoreError};

/// What body a webhook's receiver reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Princeton Sentinel's own JSON: a summary and every violation's fields.
    Json,
    /// A Slack incoming webhook: the summary as `text`.
    Slack,
    /// A Microsoft Teams Workflows webhook ("When a Teams webhook request is received"): the
    /// summary as an Adaptive Card message.
    Teams,
}

crate::words!(
    WebhookFormat,
    "format",
    Json = "json",
    Slack = "slack",
    Teams = "teams",
);

impl TryFrom<String> for WebhookFormat {
    type Error = String;
    fn try_from(s: String) -> Result<WebhookFormat, String> {
        s.parse()
    }
}

/// A webhook and how its deliveries went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Webhook {
    /// Its id.
    pub webhook_id: Uuid,
    /// Where alerts are posted.
    pub url: String,
    /// What body it gets.
    #[sqlx(try_from = "String")]
    pub format: WebhookFormat,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// Who added it.
    pub created_by: Option<String>,
    /// Alerts delivered.
    pub delivered: i64,
    /// Alerts waiting (first try or retry).
    pub pending: i64,
    /// Alerts given up on.
    pub failed: i64,
    /// The last failure, while one is unresolved.
    pub last_error: Option<String>,
    /// The last delivery.
    pub last_delivered_at: Option<DateTime<Utc>>,
}

/// One violation in an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AlertViolation {
    /// The rule it breaks.
    #[sqlx(try_from = "String")]
    pub rule: PolicyRule,
    /// What breaks it, as kept.
    pub subject_key: String,
    /// When it was detected (with `rule` and `subject_key`, the alert's identity).
    pub detected_at: DateTime<Utc>,
    /// What breaks the rule, in words.
    pub detail: String,
    /// The library.
    pub drive_id: String,
    /// The item.
    pub item_id: String,
    /// Its path.
    pub item_path: Option<String>,
    /// Its name.
    pub item_name: Option<String>,
    /// The site's name.
    pub site_name: Option<String>,
    /// Whom a grant reaches.
    pub grantee: Option<String>,
    /// When a scan first saw the exposure.
    pub first_seen_at: DateTime<Utc>,
    /// Tries before this one.
    pub attempts: i32,
}

/// Alerts due to one webhook, claimed by one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertBatch {
    /// The webhook.
    pub webhook_id: Uuid,
    /// The tenant.
    pub tenant_id: String,
    /// Where to post.
    pub url: String,
    /// What body its receiver reads.
    pub format: WebhookFormat,
    /// What to say.
    pub violations: Vec<AlertViolation>,
}

impl AlertBatch {
    /// Tries made so far: the most of any alert in it.
    pub fn attempts(&self) -> i32 {
        self.violations
            .iter()
            .map(|v| v.attempts)
            .max()
            .unwrap_or(0)
    }
}

#[derive(sqlx::FromRow)]
struct DueRow {
    webhook_id: Uuid,
    tenant_id: String,
    url: String,
    #[sqlx(try_from = "String")]
    format: WebhookFormat,
    #[sqlx(flatten)]
    violation: AlertViolation,
}

impl Store {
    /// Adds a webhook; alerts go to it for violations detected from now on.
    pub async fn add_webhook(
        &self,
        tenant: &str,
        url: &str,
        format: WebhookFormat,
        by: Option<&str>,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO alert_webhooks (webhook_id, tenant_id, url, format, created_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(tenant)
        .bind(url)
        .bind(format.as_str())
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Removes a webhook and its queued alerts; whether it existed.
    pub async fn delete_webhook(&self, tenant: &str, id: Uuid) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM alert_webhooks WHERE tenant_id = $1 AND webhook_id = $2")
                .bind(tenant)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// The tenant's webhooks, oldest first, with their deliveries counted.
    pub async fn webhooks(&self, tenant: &str) -> Result<Vec<Webhook>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT w.webhook_id, w.url, w.format, w.created_at, w.created_by,
                    count(*) FILTER (WHERE a.status = 'delivered') AS delivered,
                    count(*) FILTER (WHERE a.status = 'pending') AS pending,
                    count(*) FILTER (WHERE a.status = 'failed') AS failed,
                    (array_agg(a.last_error ORDER BY a.next_attempt_at DESC)
                        FILTER (WHERE a.last_error IS NOT NULL AND a.status <> 'delivered'))[1] AS last_error,
                    max(a.delivered_at) AS last_delivered_at
             FROM alert_webhooks w LEFT JOIN alert_deliveries a ON a.webhook_id = w.webhook_id
             WHERE w.tenant_id = $1
             GROUP BY w.webhook_id, w.url, w.format, w.created_at, w.created_by ORDER BY w.created_at, w.webhook_id",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims the alerts due now, at most `limit` per webhook, for `lease`: until then no other
    /// sender claims them. One batch per webhook.
    pub async fn claim_due_alerts(
        &self,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<AlertBatch>, StoreError> {
        let rows: Vec<DueRow> = sqlx::query_as(
            "WITH due AS (
    SELECT webhook_id, tenant_id, rule, subject_key, detected_at FROM (
        SELECT a.*, row_number() OVER (PARTITION BY a.webhook_id ORDER BY a.detected_at, a.rule, a.subject_key) AS n
        FROM alert_deliveries a WHERE a.status = 'pending' AND a.next_attempt_at <= now()
    ) d WHERE n <= $2
), claimed AS (
    UPDATE alert_deliveries a SET next_attempt_at = now() + make_interval(secs => $1)
    FROM due WHERE (a.webhook_id, a.tenant_id, a.rule, a.subject_key, a.detected_at)
                 = (due.webhook_id, due.tenant_id, due.rule, due.subject_key, due.detected_at)
      AND a.status = 'pending' AND a.next_attempt_at <= now()
    RETURNING a.*
)
SELECT c.webhook_id, c.tenant_id, w.url, w.format, c.rule, c.subject_key, c.detected_at, c.attempts,
       coalesce(v.detail, '') AS detail, coalesce(v.drive_id, '') AS drive_id, coalesce(v.item_id, '') AS item_id,
       i.path AS item_path, i.name AS item_name, s.display_name AS site_name, v.grantee,
       coalesce(v.first_seen_at, c.detected_at) AS first_seen_at
FROM claimed c
JOIN alert_webhooks w ON w.webhook_id = c.webhook_id
LEFT JOIN policy_violations v ON v.tenant_id = c.tenant_id AND v.rule = c.rule AND v.subject_key = c.subject_key
LEFT JOIN msgraph_drive_items i ON i.tenant_id = v.tenant_id AND i.drive_id = v.drive_id AND i.id = v.item_id
LEFT JOIN msgraph_drives d ON d.tenant_id = v.tenant_id AND d.id = v.drive_id
LEFT JOIN msgraph_sites s ON s.tenant_id = v.tenant_id AND s.id = d.site_id
ORDER BY c.webhook_id, c.detected_at, c.rule, c.subject_key",
        )
        .bind(lease.as_secs_f64())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut batches: Vec<AlertBatch> = Vec::new();
        for r in rows {
            match batches.last_mut() {
                Some(b) if b.webhook_id == r.webhook_id => b.violations.push(r.violation),
                _ => batches.push(AlertBatch {
                    webhook_id: r.webhook_id,
                    tenant_id: r.tenant_id,
                    url: r.url,
                    format: r.format,
                    violations: vec![r.violation],
                }),
            }
        }
        Ok(batches)
    }

    /// Records the outcome of sending a batch: delivered (`error` none), to be tried again at
    /// `retry_at`, or given up on (`retry_at` none).
    pub async fn record_alert_outcome(
        &self,
        batch: &AlertBatch,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let rules: Vec<&str> = batch.violations.iter().map(|v| v.rule.as_str()).collect();
        let keys: Vec<&str> = batch
            .violations
            .iter()
            .map(|v| v.subject_key.as_str())
            .collect();
        let detected: Vec<DateTime<Utc>> = batch.violations.iter().map(|v| v.detected_at).collect();
        sqlx::query(
            "UPDATE alert_deliveries a SET attempts = a.attempts + 1, last_error = $2,
                 status = CASE WHEN $2::text IS NULL THEN 'delivered' WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
                 delivered_at = CASE WHEN $2::text IS NULL THEN now() END,
                 next_attempt_at = coalesce($3, a.next_attempt_at)
             FROM unnest($4::text[], $5::text[], $6::timestamptz[]) AS b(rule, subject_key, detected_at)
             WHERE a.webhook_id = $1 AND a.rule = b.rule AND a.subject_key = b.subject_key
               AND a.detected_at = b.detected_at AND a.status = 'pending'",
        )
        .bind(batch.webhook_id)
        .bind(error)
        .bind(retry_at)
        .bind(&rules)
        .bind(&keys)
        .bind(&detected)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
