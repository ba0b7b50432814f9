//! Composable async stages: a source feeds transforms, optionally batched, into a sink.
//! Stages run as tasks joined by bounded channels (a slow sink slows the source: backpressure)
//! and each one counts what it did.
//!
//! ```
//! use sentinel_pipeline::stage::{Emitter, Pipeline, Sink, Source, Transform};
//! use sentinel_pipeline::PipelineError;
//!
//! struct Numbers(u32);
//! #[async_trait::async_trait]
//! impl Source for Numbers {
//!     type Item = u32;
//!     async fn produce(self: Box<Self>, out: Emitter<u32>) -> Result<(), PipelineError> {
//!         for n in 0..self.0 { out.emit(n).await?; }
//!         Ok(())
//!     }
//! }
//! struct Square;
//! #[async_trait::async_trait]
//! impl Transform for Square {
//!     type In = u32;
//!     type Out = u64;
//!     async fn apply(&mut self, n: u32, out: &Emitter<u64>) -> Result<(), PipelineError> {
//!         out.emit(u64::from(n) * u64::from(n)).await
//!     }
//! }
//! struct Total(std::sync::Arc<std::sync::atomic::AtomicU64>);
//! #[async_trait::async_trait]
//! impl Sink for Total {
//!     type In = Vec<u64>;
//!     async fn consume(&mut self, batch: Vec<u64>) -> Result<(), PipelineError> {
//!         self.0.fetch_add(batch.iter().sum(), std::sync::atomic::Ordering::Relaxed);
//!         Ok(())
//!     }
//! }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
//! let report = Pipeline::source("numbers", Numbers(10))
//!     .transform("square", Square)
//!     .batch("batch", 4)
//!     .sink("total", Total(total.clone()))
//!     .run()
//!     .await
//!     .expect("runs");
//! assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 285);
//! assert_eq!(report.stage("square").map(|s| s.items_out), Some(10));
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::PipelineError;

/// Items in flight between two stages.
pub const CHANNEL_CAPACITY: usize = 2;

/// Counters of one stage, readable while the pipeline runs.
#[derive(Debug, Default)]
pub struct StageMetrics {
    /// The stage's name in reports.
    pub name: String,
    items_in: AtomicU64,
    items_out: AtomicU64,
    errors: AtomicU64,
    busy_ns: AtomicU64,
}

/// A snapshot of a stage's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageReport {
    /// The stage's name.
    pub name: String,
    /// Items the stage took in.
    pub items_in: u64,
    /// Items it passed on.
    pub items_out: u64,
    /// Errors it raised.
    pub errors: u64,
    /// Time spent working (not waiting on neighbours).
    pub busy: Duration,
}

impl StageMetrics {
    fn new(name: &str) -> Arc<StageMetrics> {
        Arc::new(StageMetrics {
            name: name.to_string(),
            ..Default::default()
        })
    }

    /// The counters now.
    pub fn report(&self) -> StageReport {
        StageReport {
            name: self.name.clone(),
            items_in: self.items_in.load(Ordering::Relaxed),
            items_out: self.items_out.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed)),
        }
    }

    fn busy(&self, since: Instant) {
        self.busy_ns
            .fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Where a stage sends its output. `emit` waits while the next stage is full.
#[derive(Debug)]
pub struct Emitter<T> {
    tx: mpsc::Sender<T>,
    metrics: Arc<StageMetrics>,
}

impl<T: Send> Emitter<T> {
    /// Passes `item` downstream; fails when the downstream stage has stopped.
    pub async fn emit(&self, item: T) -> Result<(), PipelineError> {
        self.tx
            .send(item)
            .await
            .map_err(|_| PipelineError::Closed)?;
        self.metrics.items_out.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Produces the pipeline's items.
#[async_trait::async_trait]
pub trait Source: Send + 'static {
    /// What the source produces.
    type Item: Send + 'static;
    /// Produces every item into `out`, then returns.
    async fn produce(self: Box<Self>, out: Emitter<Self::Item>) -> Result<(), PipelineError>;
}

/// Turns each input into zero or more outputs.
#[async_trait::async_trait]
pub trait Transform: Send + 'static {
    /// What the transform takes.
    type In: Send + 'static;
    /// What it passes on.
    type Out: Send + 'static;
    /// Handles one item, emitting any number into `out`.
    async fn apply(
        &mut self,
        input: Self::In,
        out: &Emitter<Self::Out>,
    ) -> Result<(), PipelineError>;
    /// Called once the input is exhausted (flush anything held back).
    async fn finish(&mut self, _out: &Emitter<Self::Out>) -> Result<(), PipelineError> {
        Ok(())
    }
}

/// The end of a pipeline: consumes every item.
#[async_trait::async_trait]
pub trait Sink: Send + 'static {
    /// What the sink takes.
    type In: Send + 'static;
    /// Handles one item.
    async fn consume(&mut self, input: Self::In) -> Result<(), PipelineError>;
    /// Called once the input is exhausted.
    async fn finish(&mut self) -> Result<(), PipelineError> {
        Ok(())
    }
}

/// A pipeline under construction whose last stage yields `T`.
#[derive(Debug)]
pub struct Pipeline<T> {
    rx: mpsc::Receiver<T>,
    tasks: Vec<JoinHandle<Result<(), PipelineError>>>,
    metrics: Vec<Arc<StageMetrics>>,
}

/// Counters of every stage after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineReport {
    /// Each stage's counters, in pipeline order.
    pub stages: Vec<StageReport>,
}

impl PipelineReport {
    /// The counters of the stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|s| s.name == name)
    }
}

impl Pipeline<()> {
    /// Starts a pipeline with a source.
    pub fn source<S: Source>(name: &str, source: S) -> Pipeline<S::Item> {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let metrics = StageMetrics::new(name);
        let emitter = Emitter {
            tx,
            metrics: metrics.clone(),
        };
        let m = metrics.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let r = Box::new(source).produce(emitter).await;
            m.busy(started);
            if r.is_err() {
                m.errors.fetch_add(1, Ordering::Relaxed);
            }
            r
        });
        Pipeline {
            rx,
            tasks: vec![task],
            metrics: vec![metrics],
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// Live counters of the stages built so far.
    pub fn metrics(&self) -> Vec<Arc<StageMetrics>> {
        self.metrics.clone()
    }

    /// Adds a transform stage named `name`.
    pub fn transform<X: Transform<In = T>>(mut self, name: &str, mut stage: X) -> Pipeline<X::Out> {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let metrics = StageMetrics::new(name);
        let out = Emitter {
            tx,
            metrics: metrics.clone(),
        };
        let m = metrics.clone();
        let mut input = self.rx;
        let task = tokio::spawn(async move {
            while let Some(item) = input.recv().await {
                m.items_in.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let r = stage.apply(item, &out).await;
                m.busy(started);
                if let Err(e) = r {
                    m.errors.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
            stage.finish(&out).await
        });
        self.tasks.push(task);
        self.metrics.push(metrics);
        Pipeline {
            rx,
            tasks: self.tasks,
            metrics: self.metrics,
        }
    }

    /// Groups items into batches of at most `size` (the last may be smaller).
    pub fn batch(self, name: &str, size: usize) -> Pipeline<Vec<T>> {
        self.transform(
            name,
            Batcher {
                size: size.max(1),
                held: Vec::new(),
            },
        )
    }

    /// Ends the pipeline in a sink; `run` it to completion.
    pub fn sink<K: Sink<In = T>>(mut self, name: &str, mut sink: K) -> RunnablePipeline {
        let metrics = StageMetrics::new(name);
        let m = metrics.clone();
        let mut input = self.rx;
        let task = tokio::spawn(async move {
            while let Some(item) = input.recv().await {
                m.items_in.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let r = sink.consume(item).await;
                m.busy(started);
                if let Err(e) = r {
                    m.errors.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
                m.items_out.fetch_add(1, Ordering::Relaxed);
            }
            sink.finish().await
        });
        self.tasks.push(task);
        self.metrics.push(metrics);
        RunnablePipeline {
            tasks: self.tasks,
            metrics: self.metrics,
        }
    }
}

/// A complete pipeline.
#[derive(Debug)]
pub struct RunnablePipeline {
    tasks: Vec<JoinHandle<Result<(), PipelineError>>>,
    metrics: Vec<Arc<StageMetrics>>,
}

impl RunnablePipeline {
    /// Each stage's live counters, in pipeline order.
    pub fn metrics(&self) -> Vec<Arc<StageMetrics>> {
        self.metrics.clone()
    }

    /// Waits for every stage. The first real error wins over the `Closed` errors it causes upstream.
    pub async fn run(self) -> Result<PipelineReport, PipelineError> {
        let mut first: Option<PipelineError> = None;
        for task in self.tasks {
            let r = task
                .await
                .unwrap_or_else(|e| Err(PipelineError::Stage(format!("stage task failed: {e}"))));
            if let Err(e) = r {
                match (&first, &e) {
                    (None, _) | (Some(PipelineError::Closed), _) => first = Some(e),
                    _ => {}
                }
            }
        }
        let report = PipelineReport {
            stages: self.metrics.iter().map(|m| m.report()).collect(),
        };
        match first {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

struct Batcher<T> {
    size: usize,
    held: Vec<T>,
}

#[async_trait::async_trait]
impl<T: Send + 'static> Transform for Batcher<T> {
    type In = T;
    type Out = Vec<T>;
    async fn apply(&mut self, input: T, out: &Emitter<Vec<T>>) -> Result<(), PipelineError> {
        self.held.push(input);
        if self.held.len() >= self.size {
            out.emit(std::mem::take(&mut self.held)).await?;
        }
        Ok(())
    }
    async fn finish(&mut self, out: &Emitter<Vec<T>>) -> Result<(), PipelineError> {
        if !self.held.is_empty() {
            out.emit(std::mem::take(&mut self.held)).await?;
        }
        Ok(())
    }
}
