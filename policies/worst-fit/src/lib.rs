//! worst-fit (mck8s §3.3): rank eligible fog clusters by free slots for this pod shape, most first.

use mck8s_policy_sdk::policies::placement::{Ranking, explain_ranking, rank_and_place};
use mck8s_policy_sdk::{Fleet, Info, Placement, PlacementPolicy, Request, Verdict};

pub struct Policy;

impl PlacementPolicy for Policy {
    fn info() -> Info {
        Info {
            name: "worst-fit",
            description: "Top numberOfLocations fog clusters by free slots (most first) each take replicas; overflow spills down the ranking, then to cloud. With locations: preferred-clusters mode.",
            parameters: &[],
        }
    }

    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String> {
        Ok(rank_and_place(fleet, req, Ranking::WorstFit))
    }

    fn explain(fleet: &Fleet, req: &Request) -> Vec<Verdict> {
        explain_ranking(fleet, req, Ranking::WorstFit)
    }
}

mck8s_policy_sdk::export_placement!(Policy);
