//! Prints every item reachable by an anonymous link as CSV, through a pipeline built from
//! `sentinel-pipeline`'s stages. Environment as for `anonymous_links`.

use std::process::ExitCode;

use sentinel_graph::{GraphClient, GraphConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let client = match GraphConfig::from_env().and_then(GraphClient::new) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("exposure_report: {e}");
            return ExitCode::from(2);
        }
    };
    let run = async {
        let drives = sentinel_examples::all_drives(&client)
            .await
            .map_err(sentinel_pipeline::PipelineError::from)?;
        sentinel_examples::exposure::anonymous_exposure(&client, drives).await
    };
    match run.await {
        Ok((lines, report)) => {
            println!("drive_id,item_id,name");
            lines.iter().for_each(|l| println!("{l}"));
            for s in &report.stages {
                eprintln!(
                    "{:>16}: in {:>7} out {:>7} busy {:?}",
                    s.name, s.items_in, s.items_out, s.busy
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("exposure_report: {e}");
            ExitCode::FAILURE
        }
    }
}
