//! Why one replica fits no node even when that node is empty: for people reading an
//! explanation, not for placement (which only needs [`crate::fits_any_node`]).

use crate::slots::{NodeCapacity, Resources};
use serde::Serialize;
use std::fmt;

/// What keeps one replica off every node of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Shortfall {
    /// The cluster has no schedulable node.
    NoNodes,
    /// No node offers this much of one resource; `largest` is the most any node has.
    Resource { resource: String, needed: u64, largest: u64 },
    /// Every resource fits some node, but no node has all of them; `node` is the shape that
    /// came closest (fewest resources short).
    Combination { node: Resources },
}

/// `None` when one replica of `request` fits some node's allocatable.
pub fn shortfall(nodes: &[NodeCapacity], request: &Resources) -> Option<Shortfall> {
    if nodes.is_empty() {
        return Some(Shortfall::NoNodes);
    }
    if nodes.iter().any(|n| n.allocatable.fits_times(request) >= 1) {
        return None;
    }
    let largest = |get: &dyn Fn(&Resources) -> u64| nodes.iter().map(|n| get(&n.allocatable)).max().unwrap_or(0);
    let mut dims: Vec<(String, u64, u64)> = vec![
        ("cpu".into(), request.cpu_millis, largest(&|r| r.cpu_millis)),
        ("memory".into(), request.memory_bytes, largest(&|r| r.memory_bytes)),
        ("pods".into(), request.pods.max(1), largest(&|r| r.pods)),
    ];
    for (k, v) in &request.extended {
        dims.push((k.clone(), *v, largest(&|r| r.extended.get(k).copied().unwrap_or(0))));
    }
    if let Some((resource, needed, largest)) = dims.into_iter().find(|(_, needed, largest)| needed > largest) {
        return Some(Shortfall::Resource { resource, needed, largest });
    }
    let short = |n: &NodeCapacity| {
        let a = &n.allocatable;
        let ext = request.extended.iter().filter(|(k, v)| a.extended.get(*k).copied().unwrap_or(0) < **v).count();
        usize::from(a.cpu_millis < request.cpu_millis) + usize::from(a.memory_bytes < request.memory_bytes) + usize::from(a.pods < request.pods.max(1)) + ext
    };
    let closest = nodes.iter().min_by_key(|n| short(n)).map(|n| n.allocatable.clone()).unwrap_or_default();
    Some(Shortfall::Combination { node: closest })
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::NoNodes => write!(f, "no schedulable node"),
            Shortfall::Resource { resource, needed, largest } => {
                let (n, l) = (amount(resource, *needed), amount(resource, *largest));
                if *largest == 0 { write!(f, "needs {n} {resource}: no node has any") } else { write!(f, "needs {n} {resource}: the largest node has {l}") }
            }
            Shortfall::Combination { node } => {
                write!(f, "no node has all it needs at once: the closest has {}m cpu, {} memory", node.cpu_millis, amount("memory", node.memory_bytes))
            }
        }
    }
}

/// A resource amount as people write it: millicores for cpu, binary units for memory.
pub fn amount(resource: &str, value: u64) -> String {
    match resource {
        "cpu" => format!("{value}m"),
        "memory" => bytes(value),
        _ => value.to_string(),
    }
}

fn bytes(v: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
    for (unit, size) in UNITS {
        if v >= size && v.is_multiple_of(size) {
            return format!("{}{unit}", v / size);
        }
    }
    for (unit, size) in UNITS {
        if v >= size {
            return format!("{:.1}{unit}", v as f64 / size as f64);
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cpu: u64, mem_mib: u64) -> NodeCapacity {
        NodeCapacity { allocatable: Resources { cpu_millis: cpu, memory_bytes: mem_mib << 20, pods: 110, ..Resources::default() }, requested: Resources::default() }
    }

    fn req(cpu: u64, mem_mib: u64) -> Resources {
        Resources { cpu_millis: cpu, memory_bytes: mem_mib << 20, pods: 1, ..Resources::default() }
    }

    #[test]
    fn a_replica_that_fits_an_empty_node_has_no_shortfall_even_on_a_full_one() {
        let mut full = node(2000, 4096);
        full.requested = full.allocatable.clone();
        assert_eq!(shortfall(&[full], &req(2000, 1024)), None);
    }

    #[test]
    fn the_resource_no_node_has_enough_of_is_named_with_the_largest_offer() {
        let s = shortfall(&[node(2000, 4096), node(4000, 2048)], &req(6000, 1024)).unwrap();
        assert_eq!(s, Shortfall::Resource { resource: "cpu".into(), needed: 6000, largest: 4000 });
        assert_eq!(s.to_string(), "needs 6000m cpu: the largest node has 4000m");
        let s = shortfall(&[node(2000, 4096)], &req(100, 6144)).unwrap();
        assert_eq!(s.to_string(), "needs 6Gi memory: the largest node has 4Gi");
        let mut gpu = req(100, 64);
        gpu.extended.insert("nvidia.com/gpu".into(), 1);
        assert_eq!(shortfall(&[node(2000, 4096)], &gpu).unwrap().to_string(), "needs 1 nvidia.com/gpu: no node has any");
    }

    #[test]
    fn resources_on_different_nodes_are_a_combination_shortfall() {
        let s = shortfall(&[node(4000, 1024), node(1000, 8192)], &req(3000, 4096)).unwrap();
        assert!(matches!(s, Shortfall::Combination { .. }), "{s:?}");
        assert_eq!(shortfall(&[], &req(1, 1)), Some(Shortfall::NoNodes));
    }
}
