//! preferred (mck8s §3.5 "cluster_affinity"): the user's `locations` with `replicaOverrides`;
//! infeasible locations replaced by the nearest feasible cluster; overflow to the nearest
//! clusters with free slots; leftovers to cloud. Without locations it falls back to worst-fit.

use mck8s_policy_sdk::policies::placement::{Ranking, automatic, explain_ranking, preferred};
use mck8s_policy_sdk::{Fleet, Info, Placement, PlacementPolicy, Request, Verdict};

pub struct Policy;

impl PlacementPolicy for Policy {
    fn info() -> Info {
        Info { name: "preferred", description: "Preferred locations with replica overrides; nearest-by-RTT replacement and overflow; cloud takes the rest.", parameters: &[] }
    }

    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String> {
        if req.preferred.is_empty() {
            return Ok(automatic(fleet, req, Ranking::WorstFit));
        }
        Ok(preferred(fleet, req))
    }

    fn explain(fleet: &Fleet, req: &Request) -> Vec<Verdict> {
        explain_ranking(fleet, req, Ranking::WorstFit)
    }
}

mck8s_policy_sdk::export_placement!(Policy);
