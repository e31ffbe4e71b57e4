//! `mck8s crd print|write`: the CRDs generated from the API types.

use anyhow::{Context, Result};
use clap::Subcommand;
use mck8s_api::crds;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum CrdCommand {
    /// Print every CRD as one YAML stream (`mck8s crd print | kubectl apply -f -`).
    Print,
    /// Write one file per CRD into DIR (the repository keeps them in deploy/crds).
    Write { dir: PathBuf },
}

pub fn run(cmd: CrdCommand) -> Result<()> {
    match cmd {
        CrdCommand::Print => print!("{}", crds::all_yaml()),
        CrdCommand::Write { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in crds::all() {
                let path = dir.join(crds::file_name(&crd));
                std::fs::write(&path, crds::to_yaml(&crd)).with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}
