//! divided: Karmada-style replica division. Static weights from the `weights` parameter
//! (or the locations' overrides), else dynamic weights by free slots.

use mck8s_policy_sdk::policies::placement::divided;
use mck8s_policy_sdk::{Fleet, Info, Placement, PlacementPolicy, Request};

pub struct Policy;

impl PlacementPolicy for Policy {
    fn info() -> Info {
        Info {
            name: "divided",
            description: "Divide the total replicas by static weights or by free slots; excess re-divided, then cloud.",
            parameters: &["weights: static weights as `cluster:weight,...`; absent = dynamic by free slots"],
        }
    }

    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String> {
        divided(fleet, req)
    }
}

mck8s_policy_sdk::export_placement!(Policy);
