//! Links fine, panics on every decision: the registry's self-check must refuse it.

use mck8s_policy_sdk::{Fleet, Info, Placement, PlacementPolicy, Request};

pub struct Broken;

impl PlacementPolicy for Broken {
    fn info() -> Info {
        Info { name: "broken", description: "panics on every decision", parameters: &[] }
    }

    fn place(_fleet: &Fleet, _req: &Request) -> Result<Placement, String> {
        panic!("broken on purpose")
    }
}

mck8s_policy_sdk::export_placement!(Broken);
