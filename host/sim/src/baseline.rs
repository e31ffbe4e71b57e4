//! The KubeFed-like baseline the mck8s paper compares against: a ReplicaSchedulingPreference
//! with equal weights and no rebalancing splits a workload's replicas evenly over the ready
//! member clusters (here fog and cloud alike), remainder to the first by name, blind to
//! their free capacity. It is a few lines of native Rust in the simulator, clearly a
//! baseline: it is not a Wasm policy and the controllers never run it.

use crate::SimError;
use crate::scenario::EVEN_SPLIT;
use mck8s_policy::Decision;
use mck8s_policy::input::WorkloadDoc;
use mck8s_policy::session::ClusterReplicas;
use mck8s_scheduler::FleetCycle;

pub fn even_split(cycle: &FleetCycle, workload: &WorkloadDoc) -> Result<Decision, SimError> {
    let fleet = &cycle.snapshot;
    let lowered = fleet.workload(workload)?;
    // With `locations`, KubeFed's placement lists the member clusters; else all of them.
    let candidates: Vec<u32> = if lowered.preferred.is_empty() {
        (0..fleet.len() as u32).collect()
    } else {
        lowered.preferred.iter().map(|p| p.cluster).collect()
    };
    let ready: Vec<u32> = candidates.into_iter().filter(|&c| fleet.is_ready(c)).collect();
    let total = lowered.total;
    if ready.is_empty() {
        return Ok(Decision {
            policy: EVEN_SPLIT.into(),
            digest: String::new(),
            placements: Vec::new(),
            unplaced: total,
            summary: "no ready member cluster".into(),
        });
    }
    let n = ready.len() as u32;
    let mut sorted: Vec<(&str, u32)> = ready.iter().map(|&c| (fleet.name_of(c), c)).collect();
    sorted.sort();
    let placements = sorted
        .iter()
        .enumerate()
        .map(|(i, (name, _))| ClusterReplicas {
            cluster: name.to_string(),
            replicas: total / n + u32::from((i as u32) < total % n),
            reason: format!("even share of {total} over {n} ready clusters"),
        })
        .filter(|p| p.replicas > 0)
        .collect();
    Ok(Decision {
        policy: EVEN_SPLIT.into(),
        digest: String::new(),
        placements,
        unplaced: 0,
        summary: format!("{total} replicas split evenly over {n} ready clusters, capacity not considered"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mck8s_scheduler::ClusterState;
    use std::collections::{BTreeMap, HashMap};

    fn cluster(name: &str, ready: bool) -> ClusterState {
        ClusterState {
            name: name.into(),
            role: None,
            health: if ready { Default::default() } else { mck8s_policy::input::HealthDoc::NotReady },
            labels: BTreeMap::new(),
            nodes: Vec::new(),
            owned: HashMap::new(),
            traffic: 0.0,
            cost: 0.0,
        }
    }

    #[test]
    fn splits_evenly_over_ready_clusters_ignoring_capacity() {
        let cycle = FleetCycle::build(vec![cluster("b", true), cluster("a", true), cluster("c", false), cluster("cloud", true)], &[], 1).unwrap();
        let w: WorkloadDoc = serde_yaml::from_str("{name: w, replicas: 5, numberOfLocations: 2, requests: {cpu: 1}}").unwrap();
        let d = even_split(&cycle, &w).unwrap();
        let got: Vec<(&str, u32)> = d.placements.iter().map(|p| (p.cluster.as_str(), p.replicas)).collect();
        // 10 over a, b, cloud (c is not ready; no node fits anything, yet it still gets pods).
        assert_eq!(got, vec![("a", 4), ("b", 3), ("cloud", 3)]);
        assert_eq!(d.unplaced, 0);
    }
}
