//! Jobs as types. A [`JobKind`] is one kind of job: its name in `jobs.job_type`, the
//! configuration it carries, how that is checked, and what runs it. The web checks what an admin
//! submits with [`KindSpec`] (no runner needed); the worker registers the kinds it runs with
//! [`Scheduler::with_kind`](crate::Scheduler::with_kind), which checks the stored configuration
//! the same way before each run.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::postgres::{PgTypeInfo, PgValueRef, Postgres};

use crate::jobs::{Job, JobRunner, RunContext};

/// Why a run failed: what the run history shows, with its cause kept for the log.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job's stored configuration does not check out.
    #[error("{0}")]
    Config(String),
    /// The work failed with an error that says what failed itself.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
    /// The work failed.
    #[error("{message}")]
    Failed {
        /// What failed.
        message: String,
        /// Why, when known.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl JobError {
    /// A failure whose error says what failed.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> JobError {
        JobError::Other(Box::new(e))
    }

    /// A failure with its cause: the message says what failed, the source why.
    pub fn failed(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> JobError {
        JobError::Failed {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The message and every cause under it, as the run history records it.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            out.push_str(": ");
            out.push_str(&e.to_string());
            next = e.source();
        }
        out
    }
}

impl From<String> for JobError {
    fn from(message: String) -> JobError {
        JobError::Failed {
            message,
            source: None,
        }
    }
}

/// One kind of job.
#[async_trait::async_trait]
pub trait JobKind: Send + Sync + 'static {
    /// Its name in `jobs.job_type`.
    const NAME: &'static str;
    /// What a job of this kind carries in `jobs.config` (an empty object for none).
    type Config: Serialize + DeserializeOwned + Default + Send;

    /// What is wrong with a configuration that parsed, said so that an admin can fix it.
    fn validate(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Runs one job of this kind with its checked configuration.
    async fn run(&self, job: &Job, config: Self::Config, ctx: RunContext) -> Result<(), JobError>;
}

/// What the web needs of a kind: its name, its default configuration and its check.
#[derive(Clone, Copy)]
pub struct KindSpec {
    /// The kind's name (`jobs.job_type`).
    pub name: &'static str,
    default_config: fn() -> Value,
    check: fn(&Value) -> Result<Value, String>,
}

impl fmt::Debug for KindSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindSpec")
            .field("name", &self.name)
            .finish()
    }
}

/// Parses and validates `config` as a `K` job's; the message names the kind.
fn check<K: JobKind>(config: &Value) -> Result<K::Config, String> {
    let parsed: K::Config =
        serde_json::from_value(config.clone()).map_err(|e| format!("{} config: {e}", K::NAME))?;
    K::validate(&parsed).map_err(|e| format!("{} config: {e}", K::NAME))?;
    Ok(parsed)
}

impl KindSpec {
    /// The spec of kind `K`.
    pub fn of<K: JobKind>() -> KindSpec {
        KindSpec {
            name: K::NAME,
            default_config: || serde_json::to_value(K::Config::default()).unwrap_or_default(),
            check: |v| check::<K>(v).map(|_| v.clone()),
        }
    }

    /// The configuration a new job of this kind starts from.
    pub fn default_config(&self) -> Value {
        (self.default_config)()
    }

    /// `config` if a job of this kind can run with it; otherwise what to fix.
    pub fn check(&self, config: &Value) -> Result<Value, String> {
        (self.check)(config)
    }

    /// The kind named `name` among `kinds`; the message lists the names there are.
    pub fn find(kinds: &[KindSpec], name: &str) -> Result<KindSpec, String> {
        kinds
            .iter()
            .copied()
            .find(|k| k.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
                format!("unknown job type '{name}': use one of {}", names.join(", "))
            })
    }
}

/// A [`JobKind`] as the scheduler runs it: configuration checked first.
pub(crate) struct KindRunner<K>(pub K);

#[async_trait::async_trait]
impl<K: JobKind> JobRunner for KindRunner<K> {
    async fn run(&self, job: &Job, ctx: RunContext) -> Result<(), JobError> {
        let config = check::<K>(&job.config).map_err(JobError::Config)?;
        self.0.run(job, config, ctx).await
    }
}

/// How a run ended, or that it has not yet (`job_runs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started, not yet finished.
    Running,
    /// Finished without error.
    Success,
    /// Finished with an error, or abandoned (orphaned).
    Failed,
}

/// What started a run (`job_runs.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A schedule came due.
    Schedule,
    /// Someone asked for a run now.
    RunNow,
}

/// Text enums: the same words in Rust, in SQL and in JSON.
macro_rules! text_enum {
    ($t:ty, $what:literal, $($variant:ident = $text:literal),+ $(,)?) => {
        sentinel_store::words!($t, $what, $($variant = $text),+);
        impl sqlx::Type<Postgres> for $t {
            fn type_info() -> PgTypeInfo {
                <str as sqlx::Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }
        impl sqlx::Encode<'_, Postgres> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
        impl sqlx::Decode<'_, Postgres> for $t {
            fn decode(value: PgValueRef<'_>) -> Result<$t, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<Postgres>>::decode(value)?;
                Ok(s.parse()?)
            }
        }
    };
}

text_enum!(
    RunStatus,
    "status",
    Running = "running",
    Success = "success",
    Failed = "failed"
);
text_enum!(
    Trigger,
    "trigger",
    Schedule = "schedule",
    RunNow = "run_now"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_are_the_same_in_rust_sql_and_json() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).ok(), Some(Value::from(s.as_str())));
        }
        assert_eq!(
            serde_json::to_value(Trigger::RunNow).ok(),
            Some(Value::from("run_now"))
        );
        assert_eq!(
            "stuck".parse::<RunStatus>(),
            Err("status must be one of running, success, failed, got 'stuck'".into())
        );
    }

    struct Sum;

    #[derive(Debug, Default, Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SumConfig {
        limit: u32,
    }

    #[async_trait::async_trait]
    impl JobKind for Sum {
        const NAME: &'static str = "sum";
        type Config = SumConfig;
        fn validate(c: &SumConfig) -> Result<(), String> {
            if c.limit == 0 {
                return Err("limit must be at least 1".into());
            }
            Ok(())
        }
        async fn run(&self, _: &Job, _: SumConfig, _: RunContext) -> Result<(), JobError> {
            Ok(())
        }
    }

    #[test]
    fn a_kind_checks_its_configuration_and_says_what_to_fix() {
        let kinds = [KindSpec::of::<Sum>()];
        let sum = KindSpec::find(&kinds, "sum").expect("found");
        assert_eq!(sum.default_config(), serde_json::json!({"limit": 0}));
        assert_eq!(
            sum.check(&serde_json::json!({"limit": 0})),
            Err("sum config: limit must be at least 1".into())
        );
        assert!(
            sum.check(&serde_json::json!({"limit": 2, "x": 1}))
                .is_err_and(|e| e.starts_with("sum config: unknown field `x`"))
        );
        assert_eq!(
            KindSpec::find(&kinds, "product").map(|k| k.name),
            Err("unknown job type 'product': use one of sum".into())
        );
    }

    #[test]
    fn a_failure_keeps_its_causes() {
        let io = std::io::Error::other("disk full");
        let e = JobError::failed("writing the report", io);
        assert_eq!(e.to_string(), "writing the report");
        assert_eq!(e.chain(), "writing the report: disk full");
    }
}
