//! The client's error type: callers can tell auth, not found, throttling, resync,
//! bad responses and transport failures apart.

use std::time::Duration;

/// An error from Microsoft Graph or from talking to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The configuration is incomplete or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// An argument (an id, a path) was rejected before any request was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Entra refused to issue a token, or Graph refused the token after a refresh.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// 403: the app may not read this resource, e.g. a site locked with NoAccess answers
    /// `accessDenied` (SharePoint "Lock and unlock sites").
    #[error("forbidden ({code}): {message}")]
    Forbidden {
        /// Graph's error code.
        code: String,
        /// Graph's message.
        message: String,
    },
    /// 404: the resource does not exist (or is not visible to the app).
    #[error("not found ({code}): {message}")]
    NotFound {
        /// Graph's error code.
        code: String,
        /// Graph's message.
        message: String,
    },
    /// Still throttled after waiting as long as the configuration allows.
    #[error("throttled by Graph: gave up after waiting {waited:?} (status {status})")]
    Throttled {
        /// The last throttling status (429 or 503).
        status: u16,
        /// How long the client waited in all.
        waited: Duration,
    },
    /// The delta token is no longer valid; restart from `location` (or from scratch when `None`).
    #[error("delta token expired or invalid ({code}); a full resync is needed")]
    Resync {
        /// Graph's error code (`resyncRequired`, `syncStateNotFound`, ...).
        code: String,
        /// Where to start again, when Graph says.
        location: Option<String>,
    },
    /// Graph answered with an error status this client does not retry.
    #[error("Graph error {status} ({code}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Graph's error code.
        code: String,
        /// Graph's message.
        message: String,
    },
    /// The response could not be read or parsed (truncated, malformed, wrong shape).
    #[error("bad response from Graph: {0}")]
    BadResponse(String),
    /// A paging or delta round kept returning links it had already returned.
    #[error("paging loop detected: {0} was returned again")]
    PagingLoop(String),
    /// The request could not be sent or the connection failed, after retries: `what` was
    /// being done, `source` is why it failed.
    #[error("transport: {what}")]
    Transport {
        /// What was being done (`GET /drives/{id}/root/delta`).
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl GraphError {
    /// A transport failure while doing `what`.
    pub fn transport(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> GraphError {
        GraphError::Transport {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Whether retrying the same call later could succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GraphError::Throttled { .. }
                | GraphError::Transport { .. }
                | GraphError::BadResponse(_)
        ) || matches!(self, GraphError::Api { status, .. } if *status >= 500)
    }
}
