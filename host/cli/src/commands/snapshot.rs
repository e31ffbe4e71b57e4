//! `mck8s snapshot [-o FILE]`: the live fleet and its multi-cluster objects from the running
//! controller (`GET /snapshot`), as YAML for `mck8s simulate FILE --policy NEW.wasm`.

use anyhow::{Context, Result};
use clap::Args;
use mck8s_scheduler::whatif::Snapshot;
use std::path::PathBuf;

#[derive(Args)]
pub struct SnapshotArgs {
    /// The controller's HTTP address (its metrics port).
    #[arg(long, env = "MCK8S_CONTROLLER", default_value = "http://127.0.0.1:9464")]
    controller: String,
    /// Write here instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(args: SnapshotArgs) -> Result<()> {
    let url = format!("{}/snapshot", args.controller.trim_end_matches('/'));
    let body = super::explain::get(&args.controller, &url)?;
    let snapshot: Snapshot = serde_json::from_str(&body).context("the controller's snapshot")?;
    let yaml = serde_yaml_ng::to_string(&snapshot)?;
    match &args.output {
        Some(p) => {
            std::fs::write(p, yaml).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("{}: {} clusters, {} objects, taken at {}", p.display(), snapshot.clusters.len(), snapshot.objects.len(), snapshot.taken_at);
        }
        None => print!("{yaml}"),
    }
    Ok(())
}
