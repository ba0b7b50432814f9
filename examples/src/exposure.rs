//! A pipeline of your own from `sentinel-pipeline`'s stages: every item reachable by an
//! anonymous link, as CSV lines — delta rounds in, a filter, batches, a writer out.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use sentinel_graph::models::DriveItem;
use sentinel_graph::{DeltaEvent, DeltaStart, DriveDeltaOptions, GraphClient};
use sentinel_pipeline::PipelineError;
use sentinel_pipeline::stage::{Emitter, Pipeline, PipelineReport, Sink, Source, Transform};

/// Source: a full delta round of each drive, item by item.
struct DriveItems {
    client: GraphClient,
    drives: Vec<String>,
}

#[async_trait::async_trait]
impl Source for DriveItems {
    type Item = (String, DriveItem);
    async fn produce(
        self: Box<Self>,
        out: Emitter<(String, DriveItem)>,
    ) -> Result<(), PipelineError> {
        for drive in &self.drives {
            let mut delta = self.client.drive_delta(
                drive,
                DeltaStart::Scratch,
                &DriveDeltaOptions::default(),
            )?;
            while let Some(event) = delta.next().await {
                if let DeltaEvent::Page(items) = event? {
                    for item in items {
                        out.emit((drive.clone(), item)).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Transform: keep items whose broadest sharing is an anonymous link, as CSV lines.
struct AnonymousOnly;

#[async_trait::async_trait]
impl Transform for AnonymousOnly {
    type In = (String, DriveItem);
    type Out = String;
    async fn apply(
        &mut self,
        (drive, item): (String, DriveItem),
        out: &Emitter<String>,
    ) -> Result<(), PipelineError> {
        if item.shared.as_ref().and_then(|s| s.scope.as_deref()) == Some("anonymous") {
            let name = item.name.unwrap_or_default().replace('"', "\"\"");
            out.emit(format!("{drive},{},\"{name}\"", item.id)).await?;
        }
        Ok(())
    }
}

/// Sink: append each batch of lines to a shared buffer (a file or a socket in real life).
struct Lines(Arc<Mutex<Vec<String>>>);

#[async_trait::async_trait]
impl Sink for Lines {
    type In = Vec<String>;
    async fn consume(&mut self, batch: Vec<String>) -> Result<(), PipelineError> {
        self.0
            .lock()
            .map_err(|_| PipelineError::Stage("buffer poisoned".into()))?
            .extend(batch);
        Ok(())
    }
}

/// Runs the report over `drives`; returns the CSV lines and the stages' counters.
pub async fn anonymous_exposure(
    client: &GraphClient,
    drives: Vec<String>,
) -> Result<(Vec<String>, PipelineReport), PipelineError> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let report = Pipeline::source(
        "drive items",
        DriveItems {
            client: client.clone(),
            drives,
        },
    )
    .transform("anonymous only", AnonymousOnly)
    .batch("batches of 100", 100)
    .sink("csv", Lines(lines.clone()))
    .run()
    .await?;
    let out = lines
        .lock()
        .map_err(|_| PipelineError::Stage("buffer poisoned".into()))?
        .clone();
    Ok((out, report))
}
