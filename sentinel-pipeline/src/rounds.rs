//! The machinery every delta round shares: a source of delta events, an assembler that holds
//! one page back so the deltaLink travels with the round's last page, and the round's timing
//! for full-round reconciliation.

use futures::StreamExt;
use futures::stream::BoxStream;
use sentinel_graph::{DeltaEvent, GraphError};

use crate::PipelineError;
use crate::stage::{Emitter, Source, Transform};

/// A page ready to apply.
#[derive(Debug)]
pub(crate) enum RoundStep<T> {
    /// Objects of the round; `delta_link` is set on the last page of a complete round.
    Page {
        items: Vec<T>,
        delta_link: Option<String>,
    },
    /// The token was rejected: the round restarted from scratch (reconcile at its end).
    Restarted,
}

pub(crate) struct DeltaSource<T>(pub BoxStream<'static, Result<DeltaEvent<T>, GraphError>>);

#[async_trait::async_trait]
impl<T: Send + 'static> Source for DeltaSource<T> {
    type Item = DeltaEvent<T>;
    async fn produce(
        mut self: Box<Self>,
        out: Emitter<DeltaEvent<T>>,
    ) -> Result<(), PipelineError> {
        while let Some(ev) = self.0.next().await {
            out.emit(ev?).await?;
        }
        Ok(())
    }
}

/// Holds each page until the next event, so the last one leaves with the deltaLink.
pub(crate) struct Assembler<T> {
    held: Option<Vec<T>>,
    completed: bool,
}

impl<T> Assembler<T> {
    pub fn new() -> Self {
        Assembler {
            held: None,
            completed: false,
        }
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> Transform for Assembler<T> {
    type In = DeltaEvent<T>;
    type Out = RoundStep<T>;
    async fn apply(
        &mut self,
        ev: DeltaEvent<T>,
        out: &Emitter<RoundStep<T>>,
    ) -> Result<(), PipelineError> {
        match ev {
            DeltaEvent::Page(items) => {
                if let Some(prev) = self.held.replace(items) {
                    out.emit(RoundStep::Page {
                        items: prev,
                        delta_link: None,
                    })
                    .await?;
                }
            }
            DeltaEvent::Resync { .. } => {
                if let Some(prev) = self.held.take() {
                    out.emit(RoundStep::Page {
                        items: prev,
                        delta_link: None,
                    })
                    .await?;
                }
                out.emit(RoundStep::Restarted).await?;
            }
            DeltaEvent::Complete { delta_link } => {
                let items = self.held.take().unwrap_or_default();
                self.completed = true;
                out.emit(RoundStep::Page {
                    items,
                    delta_link: Some(delta_link),
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn finish(&mut self, out: &Emitter<RoundStep<T>>) -> Result<(), PipelineError> {
        // A stream that ended without completing already failed in the source; apply what came.
        if let Some(prev) = self.held.take() {
            out.emit(RoundStep::Page {
                items: prev,
                delta_link: None,
            })
            .await?;
        }
        Ok(())
    }
}
