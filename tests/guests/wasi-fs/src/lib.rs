//! Tries to read the host's files: its component imports wasi:filesystem, which the host
//! must refuse to load.

use mck8s_policy_sdk::{Fleet, Info, Placement, PlacementPolicy, Request};

pub struct Snoop;

impl PlacementPolicy for Snoop {
    fn info() -> Info {
        Info { name: "wasi-fs", description: "reads /etc/passwd", parameters: &[] }
    }

    fn place(_fleet: &Fleet, req: &Request) -> Result<Placement, String> {
        let text = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
        Ok(Placement { choices: vec![], unplaced: req.total, summary: text })
    }
}

mck8s_policy_sdk::export_placement!(Snoop);
