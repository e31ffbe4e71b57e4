//! most-traffic (mck8s §3.3, the default): rank eligible fog clusters by ingress, most first; the workload's own ingress when the host knows it, else the cluster's.

use mck8s_policy_sdk::policies::placement::{Ranking, explain_ranking, rank_and_place};
use mck8s_policy_sdk::{Fleet, Info, Placement, PlacementPolicy, Request, Verdict};

pub struct Policy;

impl PlacementPolicy for Policy {
    fn info() -> Info {
        Info {
            name: "most-traffic",
            description: "Top numberOfLocations fog clusters by ingress each take replicas; overflow spills down the ranking, then to cloud. With locations: preferred-clusters mode.",
            parameters: &[],
        }
    }

    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String> {
        Ok(rank_and_place(fleet, req, Ranking::MostTraffic))
    }

    fn explain(fleet: &Fleet, req: &Request) -> Vec<Verdict> {
        explain_ranking(fleet, req, Ranking::MostTraffic)
    }
}

mck8s_policy_sdk::export_placement!(Policy);
