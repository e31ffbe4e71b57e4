//! The KubeFed-like baseline the mck8s paper compares against: a ReplicaSchedulingPreference
//! with equal weights and no rebalancing splits a workload's replicas evenly over the ready
//! member clusters (here fog and cloud alike), blind to their free capacity, as KubeFed's
//! planner does (each cluster in hash order takes ⌈remaining / n⌉). It is a few lines of native Rust in the simulator, clearly a
//! baseline: it is not a Wasm policy and the controllers never run it.

use crate::SimError;
use crate::scenario::EVEN_SPLIT;
use mck8s_policy::Decision;
use mck8s_policy::input::WorkloadDoc;
use mck8s_policy::session::ClusterReplicas;
use mck8s_scheduler::FleetCycle;

/// FNV-1 (not 1a), 32 bits, as Go's `hash/fnv.New32`.
fn fnv1_32(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h = h.wrapping_mul(0x0100_0193);
        h ^= u32::from(*b);
    }
    h
}

pub fn even_split(cycle: &FleetCycle, workload: &WorkloadDoc) -> Result<Decision, SimError> {
    let fleet = &cycle.snapshot;
    let lowered = fleet.workload(workload)?;
    // With `locations`, KubeFed's placement lists the member clusters; else all of them.
    let candidates: Vec<u32> = if lowered.preferred.is_empty() { (0..fleet.len() as u32).collect() } else { lowered.preferred.iter().map(|p| p.cluster).collect() };
    let ready: Vec<u32> = candidates.into_iter().filter(|&c| fleet.is_ready(c)).collect();
    let total = lowered.total;
    if ready.is_empty() {
        return Ok(Decision { policy: EVEN_SPLIT.into(), digest: String::new(), placements: Vec::new(), unplaced: total, summary: "no ready member cluster".into() });
    }
    let n = ready.len() as u32;
    // KubeFed's planner orders equal-weight clusters by FNV-1 hash of cluster name and
    // object key, so remainders do not always land on the alphabetically first cluster,
    // and hands each ⌈remaining / n⌉ in that order.
    let key = format!("{}/{}", workload.namespace, workload.name);
    let mut order: Vec<(u32, &str)> = ready.iter().map(|&c| (fnv1_32(&[fleet.name_of(c).as_bytes(), key.as_bytes()]), fleet.name_of(c))).collect();
    order.sort();
    let share = total.div_ceil(n);
    let mut left = total;
    let mut placements: Vec<ClusterReplicas> = Vec::new();
    for (_, name) in order {
        let give = share.min(left);
        left -= give;
        if give > 0 {
            placements.push(ClusterReplicas { cluster: name.to_string(), replicas: give, reason: format!("equal weight: ⌈{total}/{n}⌉") });
        }
    }
    placements.sort_by(|a, b| a.cluster.cmp(&b.cluster));
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
    use mck8s_fleet::ClusterState;
    use std::collections::{BTreeMap, HashMap};

    fn cluster(name: &str, ready: bool) -> ClusterState {
        ClusterState {
            name: name.into(),
            role: None,
            health: if ready { Default::default() } else { mck8s_fleet::Health::NotReady },
            labels: BTreeMap::new(),
            nodes: Vec::new(),
            owned: HashMap::new(),
            traffic: 0.0,
            cost: 0.0,
        }
    }

    #[test]
    fn fnv1_matches_go() {
        // Go: fnv.New32().Write([]byte("a")) → 0x050c5d7e; "" → the offset basis.
        assert_eq!(fnv1_32(&[b"a"]), 0x050c_5d7e);
        assert_eq!(fnv1_32(&[]), 0x811c_9dc5);
        assert_eq!(fnv1_32(&[b"fo", b"o"]), fnv1_32(&[b"foo"]));
    }

    #[test]
    fn splits_evenly_over_ready_clusters_ignoring_capacity() {
        let cycle = FleetCycle::build(vec![cluster("b", true), cluster("a", true), cluster("c", false), cluster("cloud", true)], &[], 1).unwrap();
        let w: WorkloadDoc = serde_yaml_ng::from_str("{name: w, replicas: 5, numberOfLocations: 2, requests: {cpu: 1}}").unwrap();
        let d = even_split(&cycle, &w).unwrap();
        let got: Vec<(&str, u32)> = d.placements.iter().map(|p| (p.cluster.as_str(), p.replicas)).collect();
        // 10 over a, b, cloud (c is not ready; no node fits anything, yet they get pods):
        // ⌈10/3⌉ = 4 each in hash order, the last one gets what is left.
        let mut counts: Vec<u32> = got.iter().map(|g| g.1).collect();
        counts.sort();
        assert_eq!(counts, vec![2, 4, 4]);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec!["a", "b", "cloud"]);
        assert_eq!(d.unplaced, 0);
    }
}
