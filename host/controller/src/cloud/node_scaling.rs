//! The cloud cluster's builtin node autoscaler: one scale-out or scale-in decision per call,
//! from a snapshot of the cluster's nodes. Pure; the caller reads the nodes, persists
//! `unneeded_since`, annotates the Machine and applies the MachineDeployment replicas.
//!
//! Fixed from mck8s 1.x: pending pods are first packed onto free capacity and onto nodes
//! already on their way (1.x added nodes for the same pending pods every cycle); utilisation is
//! measured against allocatable, not against what remains free (an effective ~33 % threshold);
//! a node's unneeded clock restarts when it stops being underutilised (1.x never reset its
//! counter); and one node is removed per step (1.x removed ⌊k/2⌋ at once).

use super::sizing::{Bin, Resources, ffd_order, pack, pod_cap};
use std::collections::BTreeMap;
use std::time::Duration;

/// The Node annotation naming the Cluster API Machine behind the node.
pub const MACHINE_ANNOTATION: &str = "cluster.x-k8s.io/machine";

/// One node of the cloud cluster, as the autoscaler needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    /// From the annotation [`MACHINE_ANNOTATION`]; without it the node cannot be removed.
    pub machine: Option<String>,
    pub ready: bool,
    /// Not cordoned and no `NoSchedule` taint.
    pub schedulable: bool,
    pub control_plane: bool,
    /// What workload pods can use: the node's allocatable minus its DaemonSet pods' requests
    /// (as cluster-autoscaler's `--ignore-daemonsets-utilization` does), so free capacity
    /// and utilisation both leave DaemonSets out.
    pub allocatable: Resources,
    /// Requests of its non-terminated, non-DaemonSet pods: what a removal has to move.
    pub pods: Vec<Resources>,
    /// Every non-terminated pod on the node, DaemonSet ones included (they take pod slots).
    pub pod_count: u32,
}

impl NodeView {
    fn worker(&self) -> bool {
        self.ready && self.schedulable && !self.control_plane
    }

    fn room(&self, max_pods: u32) -> Bin {
        let used: Resources = self.pods.iter().copied().sum();
        let free = self.allocatable.saturating_sub(used);
        Bin { free, slots: pod_cap(max_pods).saturating_sub(self.pod_count) }
    }
}

/// The worker MachineDeployment, as both decisions see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeGroup {
    /// `spec.replicas` now.
    pub desired: u32,
    pub min: u32,
    pub max: u32,
    /// What pods can use on one new node of the cluster's (fixed) flavor.
    pub node_allocatable: Resources,
    /// Pods per node (the kubelet's `maxPods`; 0: no cap).
    pub max_pods: u32,
}

/// What [`scale_out`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaleOut {
    /// Nothing to add: no pending pod, or every one fits free or in-flight capacity.
    Hold { reason: String },
    /// Set the replicas to `desired` (already clamped to the maximum).
    Add { desired: u32, reason: String },
    /// More nodes are needed, but the group is at its maximum.
    AtMax { max: u32, reason: String },
    /// The only pods left need more than a whole new node offers: adding nodes won't help.
    Unfittable { pod: Resources, node: Resources },
}

/// Packs `pending` (Unschedulable pods in any namespace) onto the free capacity of ready,
/// schedulable workers, then onto `in_flight_nodes` new-node-sized bins (desired replicas not
/// Ready yet: `desired − ready workers`), then onto new nodes. Assume-and-deduct: calling it
/// again for the same pending pods while their nodes start finds room and holds. A group
/// below its minimum is raised to it. Pods that fit no new node are left out of the count.
pub fn scale_out(nodes: &[NodeView], pending: &[Resources], in_flight_nodes: u32, group: &NodeGroup) -> ScaleOut {
    let mut workers: Vec<&NodeView> = nodes.iter().filter(|n| n.worker()).collect();
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    let mut bins: Vec<Bin> = workers.iter().map(|n| n.room(group.max_pods)).collect();
    let ready = bins.len();
    let new_bin = Bin { free: group.node_allocatable, slots: pod_cap(group.max_pods) };
    // More in-flight bins than pending pods could never be used.
    let in_flight = usize::try_from(in_flight_nodes).unwrap_or(usize::MAX).min(pending.len());
    bins.extend(std::iter::repeat_n(new_bin, in_flight));
    let order = ffd_order(pending, group.node_allocatable);
    let placed = pack(&order, &mut bins, Some(new_bin));
    let new_nodes = u32::try_from(bins.len() - ready - in_flight).unwrap_or(u32::MAX);
    let count = |range: std::ops::Range<usize>| placed.iter().flatten().filter(|&&i| range.contains(&i)).count();
    let (on_ready, on_in_flight) = (count(0..ready), count(ready..ready + in_flight));
    let unfittable = order.iter().zip(&placed).filter(|(_, at)| at.is_none()).map(|(p, _)| *p);
    let (skipped, largest) = unfittable.fold((0, None), |(n, max), p| (n + 1, max.max(Some(p))));
    let mut reason = format!(
        "{} pending pod(s): {on_ready} fit free capacity, {on_in_flight} fit {in_flight_nodes} \
         in-flight node(s), {} need {new_nodes} new node(s)",
        pending.len(),
        pending.len() - on_ready - on_in_flight - skipped,
    );
    if skipped > 0 {
        reason.push_str(&format!("; {skipped} fit no node of this flavor"));
    }
    let target = group.desired.saturating_add(new_nodes).max(group.min).min(group.max);
    if target > group.desired {
        if group.desired < group.min {
            reason.push_str(&format!("; below the minimum of {}", group.min));
        }
        if target < group.desired.saturating_add(new_nodes) {
            reason.push_str(&format!("; clamped to the maximum of {}", group.max));
        }
        return ScaleOut::Add { desired: target, reason };
    }
    match largest {
        _ if new_nodes > 0 => ScaleOut::AtMax { max: group.max, reason },
        Some(pod) => ScaleOut::Unfittable { pod, node: group.node_allocatable },
        None => ScaleOut::Hold { reason },
    }
}

/// What [`scale_in`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaleIn {
    Hold(ScaleInHold),
    /// Annotate `machine` for deletion, then set the replicas to `desired` (`current − 1`).
    Remove {
        node: String,
        machine: String,
        desired: u32,
    },
}

/// Why [`scale_in`] removes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaleInHold {
    NoUnneededNode,
    /// The group is at its minimum.
    AtMin {
        min: u32,
    },
    /// `node` has been unneeded the longest, for `remaining` less than required.
    Waiting {
        node: String,
        remaining: Duration,
    },
    /// These nodes are due, but have no Machine annotation, so no Machine can be targeted.
    NoMachine {
        nodes: Vec<String>,
    },
}

impl std::fmt::Display for ScaleInHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScaleInHold::NoUnneededNode => write!(f, "no node is unneeded"),
            ScaleInHold::AtMin { min } => write!(f, "at the minimum of {min} node(s)"),
            ScaleInHold::Waiting { node, remaining } => {
                write!(f, "node {node} is unneeded; removable in {}s", remaining.as_secs())
            }
            ScaleInHold::NoMachine { nodes } => write!(f, "node(s) {} are unneeded but have no {MACHINE_ANNOTATION} annotation", nodes.join(", ")),
        }
    }
}

/// The scale-in rules: `threshold` (a fraction of allocatable, e.g. 0.5) and how long a node
/// must stay unneeded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleInPolicy {
    pub threshold: f64,
    pub unneeded_time: Duration,
}

/// A worker is *unneeded* when it is ready and schedulable (a cordoned node may already be
/// draining for a removal), its requests are below `threshold` of its allocatable for both
/// CPU and memory, and its pods fit on the other ready schedulable workers (a bin-pack
/// simulation). `unneeded_since` maps node names to when they became unneeded, in seconds
/// since the Unix epoch (`now` too); the returned map replaces it: nodes no longer unneeded
/// (or gone) leave it. A node unneeded for `unneeded_time` is removed, one per call: the
/// longest unneeded, then the one with fewest pods, then by name, never below `group.min`.
/// Call it only when no pod is pending and no scale step is in flight.
pub fn scale_in(nodes: &[NodeView], unneeded_since: &BTreeMap<String, u64>, now: u64, policy: &ScaleInPolicy, group: &NodeGroup) -> (ScaleIn, BTreeMap<String, u64>) {
    let unneeded: BTreeMap<String, u64> =
        nodes.iter().filter(|n| is_unneeded(n, nodes, policy.threshold, group.max_pods)).map(|n| (n.name.clone(), unneeded_since.get(&n.name).copied().unwrap_or(now))).collect();
    let decision = choose(nodes, &unneeded, now, policy.unneeded_time, group);
    (decision, unneeded)
}

fn is_unneeded(node: &NodeView, nodes: &[NodeView], threshold: f64, max_pods: u32) -> bool {
    let used: Resources = node.pods.iter().copied().sum();
    // Σ requests / allocatable < threshold; false for a zero allocatable or a NaN threshold.
    let below = |used: u64, allocatable: u64| (used as f64) < threshold * allocatable as f64;
    if !node.worker() || !below(used.cpu_milli, node.allocatable.cpu_milli) || !below(used.memory_bytes, node.allocatable.memory_bytes) {
        return false;
    }
    let mut others: Vec<&NodeView> = nodes.iter().filter(|n| n.worker() && n.name != node.name).collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    let mut bins: Vec<Bin> = others.iter().map(|n| n.room(max_pods)).collect();
    let order = ffd_order(&node.pods, node.allocatable);
    pack(&order, &mut bins, None).iter().all(Option::is_some)
}

fn choose(nodes: &[NodeView], unneeded: &BTreeMap<String, u64>, now: u64, unneeded_time: Duration, group: &NodeGroup) -> ScaleIn {
    if unneeded.is_empty() {
        return ScaleIn::Hold(ScaleInHold::NoUnneededNode);
    }
    if group.desired <= group.min {
        return ScaleIn::Hold(ScaleInHold::AtMin { min: group.min });
    }
    let elapsed = |since: u64| Duration::from_secs(now.saturating_sub(since));
    // (since, pods, name): the removal order.
    let mut due: Vec<(u64, usize, &NodeView)> = nodes.iter().filter_map(|n| unneeded.get(&n.name).map(|since| (*since, n.pods.len(), n))).collect();
    due.sort_by(|a, b| (a.0, a.1, &a.2.name).cmp(&(b.0, b.1, &b.2.name)));
    let Some(&(first_since, _, first)) = due.first() else {
        return ScaleIn::Hold(ScaleInHold::NoUnneededNode);
    };
    due.retain(|(since, _, _)| elapsed(*since) >= unneeded_time);
    if due.is_empty() {
        let remaining = unneeded_time.saturating_sub(elapsed(first_since));
        return ScaleIn::Hold(ScaleInHold::Waiting { node: first.name.clone(), remaining });
    }
    match due.iter().find_map(|(_, _, n)| n.machine.as_ref().map(|m| (n, m))) {
        Some((node, machine)) => ScaleIn::Remove { node: node.name.clone(), machine: machine.clone(), desired: group.desired - 1 },
        None => ScaleIn::Hold(ScaleInHold::NoMachine { nodes: due.iter().map(|(_, _, n)| n.name.clone()).collect() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1024 * 1024 * 1024;
    const NODE: Resources = Resources::new(4000, 16 * GI);

    fn pod(cpu_milli: u64, gib: u64) -> Resources {
        Resources::new(cpu_milli, gib * GI)
    }

    fn node(name: &str, pods: &[Resources]) -> NodeView {
        NodeView {
            name: name.into(),
            machine: Some(format!("m-{name}")),
            ready: true,
            schedulable: true,
            control_plane: false,
            allocatable: NODE,
            pods: pods.to_vec(),
            pod_count: u32::try_from(pods.len()).expect("few pods"),
        }
    }

    fn group(desired: u32) -> NodeGroup {
        NodeGroup { desired, min: 1, max: 5, node_allocatable: NODE, max_pods: 110 }
    }

    fn desired(decision: &ScaleOut) -> Option<u32> {
        match decision {
            ScaleOut::Add { desired, .. } => Some(*desired),
            _ => None,
        }
    }

    #[test]
    fn free_capacity_absorbs_pending_pods() {
        let nodes = [node("a", &[pod(3000, 1)]), node("b", &[pod(1000, 1)])];
        let decision = scale_out(&nodes, &[pod(1000, 1), pod(2000, 2)], 0, &group(2));
        assert!(matches!(&decision, ScaleOut::Hold { reason } if reason.contains("2 fit free")));
        assert!(matches!(scale_out(&nodes, &[], 0, &group(2)), ScaleOut::Hold { .. }));
    }

    #[test]
    fn unready_cordoned_control_plane_and_full_nodes_offer_no_room() {
        let mut nodes = [node("a", &[]), node("b", &[]), node("c", &[]), node("d", &[])];
        nodes[0].ready = false;
        nodes[1].schedulable = false;
        nodes[2].control_plane = true;
        nodes[3].pod_count = 110;
        assert_eq!(desired(&scale_out(&nodes, &[pod(100, 1)], 0, &group(2))), Some(3));
    }

    #[test]
    fn the_same_pending_pods_add_one_step_only() {
        let nodes = [node("a", &[pod(3500, 1)])];
        let pending = [pod(3000, 1), pod(3000, 1), pod(500, 1)];
        let first = scale_out(&nodes, &pending, 0, &group(1));
        assert_eq!(desired(&first), Some(3), "{first:?}");
        // Next cycles: the two nodes are in flight, then one of them is ready.
        assert!(matches!(scale_out(&nodes, &pending, 2, &group(3)), ScaleOut::Hold { .. }));
        let ready = [node("a", &[pod(3500, 1)]), node("b", &[])];
        let later = scale_out(&ready, &pending[1..], 1, &group(3));
        assert!(matches!(later, ScaleOut::Hold { .. }), "{later:?}");
        // Only part of the demand is in flight: the rest is added.
        assert_eq!(desired(&scale_out(&nodes, &pending, 1, &group(2))), Some(3));
    }

    #[test]
    fn desired_is_clamped_to_max_and_raised_to_min() {
        let pending = vec![pod(3000, 1); 6];
        let decision = scale_out(&[], &pending, 0, &group(2));
        assert!(matches!(&decision, ScaleOut::Add { desired: 5, reason } if reason.contains("maximum")));
        assert!(matches!(scale_out(&[], &pending, 0, &group(5)), ScaleOut::AtMax { max: 5, .. }));
        let below = NodeGroup { min: 2, ..group(0) };
        assert_eq!(desired(&scale_out(&[], &[], 0, &below)), Some(2));
    }

    #[test]
    fn pods_bigger_than_a_node_are_unfittable() {
        let huge = pod(5000, 1);
        let decision = scale_out(&[node("a", &[])], &[huge], 0, &group(1));
        assert_eq!(decision, ScaleOut::Unfittable { pod: huge, node: NODE });
        // They do not block scaling for the others.
        let decision = scale_out(&[node("a", &[pod(4000, 1)])], &[huge, pod(1000, 1)], 0, &group(1));
        assert!(matches!(&decision, ScaleOut::Add { desired: 2, reason } if reason.contains("1 fit no")));
    }

    fn policy() -> ScaleInPolicy {
        ScaleInPolicy { threshold: 0.5, unneeded_time: Duration::from_secs(600) }
    }

    #[test]
    fn utilisation_is_measured_against_allocatable_in_both_dimensions() {
        let cases = [
            (pod(1900, 1), true),  // 47 % CPU: 1.x (vs remaining) said no
            (pod(2000, 1), false), // exactly 50 %
            (pod(100, 8), false),  // memory at 50 %
        ];
        for (load, unneeded) in cases {
            let nodes = [node("a", &[load]), node("b", &[])];
            let (_, map) = scale_in(&nodes, &BTreeMap::new(), 100, &policy(), &group(2));
            assert_eq!(map.contains_key("a"), unneeded, "{load:?}");
        }
    }

    #[test]
    fn the_window_is_held_then_reset() {
        let idle = [node("a", &[pod(3000, 1)]), node("b", &[pod(500, 1)])];
        let (decision, map) = scale_in(&idle, &BTreeMap::new(), 1000, &policy(), &group(2));
        let waiting = ScaleInHold::Waiting { node: "b".into(), remaining: Duration::from_secs(600) };
        assert_eq!((decision, map.clone()), (ScaleIn::Hold(waiting), BTreeMap::from([("b".into(), 1000)])));
        let (decision, map) = scale_in(&idle, &map, 1599, &policy(), &group(2));
        assert!(matches!(decision, ScaleIn::Hold(ScaleInHold::Waiting { .. })));
        // b gets busy for one cycle: its clock restarts.
        let busy = [node("a", &[pod(3000, 1)]), node("b", &[pod(2500, 1)])];
        let (_, map) = scale_in(&busy, &map, 1600, &policy(), &group(2));
        assert!(map.is_empty());
        let (_, map) = scale_in(&idle, &map, 1700, &policy(), &group(2));
        let (decision, _) = scale_in(&idle, &map, 2299, &policy(), &group(2));
        assert!(matches!(decision, ScaleIn::Hold(ScaleInHold::Waiting { .. })));
        let (decision, _) = scale_in(&idle, &map, 2300, &policy(), &group(2));
        let remove = ScaleIn::Remove { node: "b".into(), machine: "m-b".into(), desired: 1 };
        assert_eq!(decision, remove);
    }

    #[test]
    fn one_node_at_a_time_in_a_deterministic_order() {
        let nodes = [node("d", &[]), node("c", &[pod(100, 1)]), node("b", &[]), node("a", &[])];
        let since = BTreeMap::from([("a".into(), 50), ("b".into(), 10), ("c".into(), 10), ("d".into(), 10)]);
        let (decision, _) = scale_in(&nodes, &since, 1000, &policy(), &group(4));
        // b and d are the longest unneeded with no pod; c has one: b by name.
        assert_eq!(decision, ScaleIn::Remove { node: "b".into(), machine: "m-b".into(), desired: 3 });
    }

    #[test]
    fn never_below_min() {
        let nodes = [node("a", &[]), node("b", &[])];
        let since = BTreeMap::from([("a".into(), 0), ("b".into(), 0)]);
        let at_min = NodeGroup { min: 2, ..group(2) };
        let (decision, map) = scale_in(&nodes, &since, 1000, &policy(), &at_min);
        assert_eq!(decision, ScaleIn::Hold(ScaleInHold::AtMin { min: 2 }));
        assert_eq!(map, since, "the clocks keep running at the minimum");
    }

    #[test]
    fn pods_that_fit_nowhere_else_block_scale_in() {
        let nodes = [node("a", &[pod(1500, 1)]), node("b", &[pod(1500, 1), pod(1500, 1)])];
        let (decision, map) = scale_in(&nodes, &BTreeMap::new(), 0, &policy(), &group(2));
        assert_eq!((decision, map.len()), (ScaleIn::Hold(ScaleInHold::NoUnneededNode), 0));
        // The pod slots count too.
        let mut full = [node("a", &[pod(100, 1)]), node("b", &[])];
        full[1].pod_count = 110;
        let (_, map) = scale_in(&full, &BTreeMap::new(), 0, &policy(), &group(2));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["b"]);
        let no_cap = NodeGroup { max_pods: 0, ..group(2) };
        let (_, map) = scale_in(&full, &BTreeMap::new(), 0, &policy(), &no_cap);
        assert_eq!(map.len(), 2, "max_pods 0 is no cap");
    }

    #[test]
    fn control_plane_and_unannotated_nodes_are_not_removed() {
        let mut nodes = [node("cp", &[]), node("a", &[]), node("b", &[pod(100, 1)])];
        nodes[0].control_plane = true;
        nodes[0].schedulable = false;
        nodes[1].machine = None;
        let since = BTreeMap::from([("a".into(), 0), ("b".into(), 500), ("cp".into(), 0)]);
        let (decision, map) = scale_in(&nodes, &since, 1000, &policy(), &group(3));
        let hold = ScaleInHold::NoMachine { nodes: vec!["a".into()] };
        let text = hold.to_string();
        assert!(text.contains("a are unneeded but have no cluster.x-k8s.io/machine"), "{text}");
        assert_eq!(decision, ScaleIn::Hold(hold));
        assert!(!map.contains_key("cp"));
        let (decision, _) = scale_in(&nodes, &since, 1100, &policy(), &group(3));
        assert_eq!(decision, ScaleIn::Remove { node: "b".into(), machine: "m-b".into(), desired: 2 });
    }
}
