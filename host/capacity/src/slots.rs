//! The mck8s slot count: per node `min(⌊free cpu/req⌋, ⌊free mem/req⌋)` (and, beyond mck8s,
//! the pod count and extended resources), summed over schedulable nodes. It is a bin-packing
//! count, not the cluster total divided by the request.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    /// Pods; a request is always one pod.
    pub pods: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extended: BTreeMap<String, u64>,
}

impl Resources {
    pub fn saturating_sub(&self, other: &Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            pods: self.pods.saturating_sub(other.pods),
            extended: self.extended.iter().map(|(k, v)| (k.clone(), v.saturating_sub(other.extended.get(k).copied().unwrap_or(0)))).collect(),
        }
    }

    pub fn add(&mut self, other: &Resources) {
        self.cpu_millis += other.cpu_millis;
        self.memory_bytes += other.memory_bytes;
        self.pods += other.pods;
        for (k, v) in &other.extended {
            *self.extended.entry(k.clone()).or_default() += v;
        }
    }

    /// How many pods of `request` fit in `self`. Zero-valued request dimensions do not limit.
    pub fn fits_times(&self, request: &Resources) -> u64 {
        let per = |free: u64, req: u64| free.checked_div(req).unwrap_or(u64::MAX);
        let mut n = per(self.cpu_millis, request.cpu_millis).min(per(self.memory_bytes, request.memory_bytes)).min(per(self.pods, request.pods.max(1)));
        for (k, req) in &request.extended {
            n = n.min(per(self.extended.get(k).copied().unwrap_or(0), *req));
        }
        n
    }
}

/// One schedulable node: what it offers and what non-terminated pods already request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCapacity {
    pub allocatable: Resources,
    pub requested: Resources,
}

impl NodeCapacity {
    pub fn free(&self) -> Resources {
        self.allocatable.saturating_sub(&self.requested)
    }
}

/// Σ over nodes of how many `request` pods fit in each node's free resources.
pub fn slots_in_cluster(nodes: &[NodeCapacity], request: &Resources) -> u32 {
    let total: u64 = nodes.iter().map(|n| n.free().fits_times(request)).fold(0u64, u64::saturating_add);
    total.min(u64::from(u32::MAX)) as u32
}

/// Whether one pod fits some node when that node is empty (mck8s's node-size feasibility,
/// fixed to look at every node's allocatable instead of `nodes[1]`'s capacity).
pub fn fits_any_node(nodes: &[NodeCapacity], request: &Resources) -> bool {
    nodes.iter().any(|n| n.allocatable.fits_times(request) >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cpu: u64, mem_mib: u64, pods: u64) -> Resources {
        Resources { cpu_millis: cpu, memory_bytes: mem_mib << 20, pods, extended: BTreeMap::new() }
    }

    #[test]
    fn slots_are_per_node_bin_packing() {
        // Two nodes with 1.5 CPU free each hold 2 pods of 1 CPU, though 3 CPU are free in all.
        let node = NodeCapacity { allocatable: res(2000, 4096, 110), requested: res(500, 0, 1) };
        assert_eq!(slots_in_cluster(&[node.clone(), node.clone()], &res(1000, 100, 1)), 2);
        // Memory binds.
        assert_eq!(slots_in_cluster(&[node], &res(100, 2048, 1)), 2);
    }

    #[test]
    fn pods_and_extended_resources_limit() {
        let mut alloc = res(64_000, 1 << 16, 3);
        alloc.extended.insert("nvidia.com/gpu".into(), 2);
        let node = NodeCapacity { allocatable: alloc, requested: res(0, 0, 0) };
        assert_eq!(slots_in_cluster(std::slice::from_ref(&node), &res(1, 1, 1)), 3);
        let mut gpu = res(1, 1, 1);
        gpu.extended.insert("nvidia.com/gpu".into(), 1);
        assert_eq!(slots_in_cluster(std::slice::from_ref(&node), &gpu), 2);
        gpu.extended.insert("example.com/fpga".into(), 1);
        assert_eq!(slots_in_cluster(std::slice::from_ref(&node), &gpu), 0);
        assert!(!fits_any_node(&[node], &gpu));
    }

    #[test]
    fn feasibility_uses_allocatable_not_free() {
        let full = NodeCapacity { allocatable: res(1000, 1024, 110), requested: res(1000, 1024, 5) };
        assert!(fits_any_node(std::slice::from_ref(&full), &res(1000, 1024, 1)));
        assert_eq!(slots_in_cluster(&[full], &res(1000, 1024, 1)), 0);
    }
}
