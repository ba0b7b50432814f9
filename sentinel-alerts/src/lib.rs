#![warn(missing_docs)]
//! Sends the alerts queued for new policy violations to their webhooks: one POST per webhook per
//! batch, retried with exponential backoff (reqwest-retry's policy, applied across sends through
//! the store, so a retry survives a restart), each attempt written to `audit_events`.
//!
//! Each webhook gets the body its receiver reads (docs/policies.md, "Alerts"): ours (a summary
//! and every violation's fields), a Slack incoming webhook's `text`, or a Teams Workflows
//! webhook's Adaptive Card.

use std::time::{Duration, SystemTime};

use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::{RetryDecision, RetryPolicy};
use sentinel_store::{AlertBatch, AuditEvent, Store, WebhookFormat};
use serde_json::{Value, json};

/// Why alerts could not be sent (a receiver's failure is not one: it is recorded and retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] sentinel_store::StoreError),
    /// The HTTP client could not be built.
    #[error("alert HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Alerts in one POST at most.
const BATCH: i64 = 50;

/// How alerts are sent.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// The wait before the first retry; each next one doubles it, up to an hour.
    pub first_retry: Duration,
    /// Tries before an alert is given up on.
    pub max_attempts: u32,
    /// How long a receiver may take to answer.
    pub timeout: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            first_retry: Duration::from_secs(30),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Sends due alerts.
#[derive(Debug, Clone)]
pub struct AlertSender {
    store: Store,
    http: reqwest::Client,
    policy: ExponentialBackoff,
    lease: Duration,
}

impl AlertSender {
    /// A sender over the store, with its own HTTP client.
    pub fn new(store: Store, settings: &AlertSettings) -> Result<AlertSender, AlertError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("princeton-sentinel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(AlertError::Client)?;
        let policy = ExponentialBackoff::builder()
            .retry_bounds(settings.first_retry, Duration::from_secs(3600))
            .build_with_max_retries(settings.max_attempts.saturating_sub(1));
        Ok(AlertSender {
            store,
            http,
            policy,
            // Longer than a send can take: no second sender claims a batch being sent.
            lease: settings.timeout * 3,
        })
    }

    /// Sends every batch due now; returns how many alerts were delivered.
    pub async fn send_due(&self) -> Result<usize, AlertError> {
        let batches = self.store.claim_due_alerts(self.lease, BATCH).await?;
        let mut delivered = 0;
        for batch in &batches {
            let outcome = self.post(batch).await;
            let attempt = batch.attempts() + 1;
            let (error, retry_at) = match &outcome {
                Ok(()) => {
                    delivered += batch.violations.len();
                    (None, None)
                }
                Err(e) => {
                    let retry = match self
                        .policy
                        .should_retry(SystemTime::now(), batch.attempts().max(0) as u32)
                    {
                        RetryDecision::Retry { execute_after } => {
                            Some(chrono::DateTime::<chrono::Utc>::from(execute_after))
                        }
                        RetryDecision::DoNotRetry => None,
                    };
                    (Some(e.as_str()), retry)
                }
            };
            self.store
                .record_alert_outcome(batch, error, retry_at)
                .await?;
            let action = match (&outcome, retry_at) {
                (Ok(()), _) => "alert.delivered",
                (Err(_), Some(_)) => "alert.retrying",
                (Err(_), None) => "alert.failed",
            };
            let event = AuditEvent {
                actor_name: Some("sentinel-worker".into()),
                action: action.into(),
                entity_type: Some("webhook".into()),
                entity_id: Some(batch.webhook_id.to_string()),
                details: json!({
                    "tenant_id": batch.tenant_id, "attempt": attempt, "error": error,
                    "retry_at": retry_at, "violations": batch.violations.len(),
                }),
                tenant_id: Some(batch.tenant_id.clone()),
                ..AuditEvent::default()
            };
            if let Err(e) = self.store.audit(&event).await {
                tracing::warn!(error = %e, action, "could not write audit event");
            }
            match &outcome {
                Ok(()) => {
                    tracing::info!(webhook = %batch.webhook_id, alerts = batch.violations.len(), "alerts delivered")
                }
                Err(e) => {
                    tracing::warn!(webhook = %batch.webhook_id, error = %e, attempt, ?retry_at, "alert delivery failed")
                }
            }
        }
        Ok(delivered)
    }

    async fn post(&self, batch: &AlertBatch) -> Result<(), String> {
        let r = self
            .http
            .post(&batch.url)
            .json(&alert_body(batch))
            .send()
            .await
            .map_err(|e| format!("could not reach the webhook: {e}"))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {}", r.status()))
        }
    }
}

/// The summary every format carries: a title line, then one line per violation.
fn summary(batch: &AlertBatch) -> (String, Vec<String>) {
    let n = batch.violations.len();
    let title = format!(
        "Princeton Sentinel: {n} new policy violation{}",
        if n == 1 { "" } else { "s" }
    );
    let lines = batch
        .violations
        .iter()
        .map(|v| {
            let place = v
                .item_path
                .clone()
                .or_else(|| v.item_name.clone())
                .unwrap_or_else(|| v.item_id.clone());
            let site = v
                .site_name
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let who = v
                .grantee
                .as_deref()
                .map(|g| format!(": {g}"))
                .unwrap_or_default();
            format!("{}: {place}{site}: {}{who}", v.rule.title(), v.detail)
        })
        .collect();
    (title, lines)
}

/// The JSON posted for a batch, in its webhook's format (docs/policies.md, "Alerts").
pub fn alert_body(batch: &AlertBatch) -> Value {
    let (title, lines) = summary(batch);
    let text = std::iter::once(title.clone())
        .chain(lines.iter().map(|l| format!("- {l}")))
        .collect::<Vec<_>>()
        .join("\n");
    match batch.format {
        // Slack's incoming webhooks post `text` (docs.slack.dev, "Incoming webhooks").
        WebhookFormat::Slack => json!({ "text": text }),
        // Teams Workflows webhooks take Adaptive Cards only, as a message's attachment
        // (learn.microsoft.com, Teams platform, "Create and send messages": connectors'
        // message cards are retired).
        WebhookFormat::Teams => {
            let mut body = vec![
                json!({"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true}),
            ];
            body.extend(lines.iter().map(
                |l| json!({"type": "TextBlock", "text": l, "wrap": true, "spacing": "Small"}),
            ));
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": body,
                    },
                }],
            })
        }
        WebhookFormat::Json => {
            let violations: Vec<Value> = batch
                .violations
                .iter()
                .map(|v| {
                    json!({
                        "rule": v.rule, "rule_title": v.rule.title(), "detail": v.detail,
                        "subject_key": v.subject_key, "drive_id": v.drive_id, "item_id": v.item_id,
                        "item_name": v.item_name, "item_path": v.item_path, "site_name": v.site_name,
                        "grantee": v.grantee, "first_seen_at": v.first_seen_at, "detected_at": v.detected_at,
                    })
                })
                .collect();
            json!({
                "text": text,
                "source": "princeton-sentinel",
                "tenant_id": batch.tenant_id,
                "webhook_id": batch.webhook_id,
                "violations": violations,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_store::{AlertViolation, PolicyRule};

    fn batch(format: WebhookFormat) -> AlertBatch {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        let v = |rule, path: &str, grantee: Option<&str>| AlertViolation {
            rule,
            subject_key: format!("d/{path}"),
            detected_at: at,
            detail: "detail".into(),
            drive_id: "d".into(),
            item_id: path.into(),
            item_path: Some(path.into()),
            item_name: None,
            site_name: Some("Finance".into()),
            grantee: grantee.map(String::from),
            first_seen_at: at,
            attempts: 0,
        };
        AlertBatch {
            webhook_id: uuid::Uuid::nil(),
            tenant_id: "t".into(),
            url: "http://127.0.0.1/hook".into(),
            format,
            violations: vec![
                v(PolicyRule::AnyoneLinkEdit, "/Budget.xlsx", None),
                v(PolicyRule::GuestOnSite, "/Plans", Some("Gail Guest")),
            ],
        }
    }

    #[test]
    fn each_receiver_gets_the_shape_it_reads() {
        let slack = alert_body(&batch(WebhookFormat::Slack));
        let keys: Vec<&String> = slack
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["text"], "Slack: text alone");
        let text = slack["text"].as_str().unwrap_or_default();
        assert!(text.starts_with("Princeton Sentinel: 2 new policy violations\n- "));
        assert!(text.contains("Guests on a site: /Plans (Finance): detail: Gail Guest"));

        let teams = alert_body(&batch(WebhookFormat::Teams));
        assert_eq!(teams["type"], "message");
        let card = &teams["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        let blocks = card["content"]["body"].as_array().map(Vec::len);
        assert_eq!(blocks, Some(3), "a title and a line per violation");

        let ours = alert_body(&batch(WebhookFormat::Json));
        assert_eq!(ours["violations"][1]["rule"], "guest_on_site");
        assert_eq!(ours["violations"][1]["grantee"], "Gail Guest");
        assert_eq!(ours["text"], slack["text"]);
    }
}
