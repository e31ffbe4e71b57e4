//! Slots as a decision should see them, which is not quite what the clusters report:
//!
//! - **freed**: the workload's own bound pods count as free when it is re-placed (mck8s's
//!   update mode, §3.1), so a re-placement can keep the capacity it already holds;
//! - **reserved**: replicas just decided for *other* workloads that the cluster does not yet
//!   show as bound pods are deducted (assume-and-deduct), so consecutive decisions never
//!   promise the same free slots twice (mck8s over-committed, §9.5).
//!
//! Reserved pods are put on nodes first-fit, as a scheduler filling nodes would, which keeps
//! the per-node bin-packing count honest.

use crate::slots::{NodeCapacity, Resources};

/// Pods of one shape not yet visible in a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub request: Resources,
    pub count: u32,
}

/// Per-node free resources after adding `freed[i]` to node `i` and placing `reserved` pods
/// first-fit. Reservations that fit nowhere are dropped: they will be Pending in the cluster
/// and take nothing from it.
pub fn adjusted_free(nodes: &[NodeCapacity], freed: &[(usize, Resources)], reserved: &[Reservation]) -> Vec<Resources> {
    let mut free: Vec<Resources> = nodes.iter().map(NodeCapacity::free).collect();
    for (i, r) in freed {
        if let Some(f) = free.get_mut(*i) {
            f.add(r);
            // Never above allocatable, whatever the bookkeeping says.
            *f = cap(f, &nodes[*i].allocatable);
        }
    }
    for res in reserved {
        let mut left = u64::from(res.count);
        for f in free.iter_mut() {
            if left == 0 {
                break;
            }
            let n = f.fits_times(&res.request).min(left);
            for _ in 0..n {
                *f = f.saturating_sub(&res.request);
            }
            left -= n;
        }
    }
    free
}

fn cap(r: &Resources, max: &Resources) -> Resources {
    Resources {
        cpu_millis: r.cpu_millis.min(max.cpu_millis),
        memory_bytes: r.memory_bytes.min(max.memory_bytes),
        pods: r.pods.min(max.pods),
        extended: r.extended.iter().map(|(k, v)| (k.clone(), (*v).min(max.extended.get(k).copied().unwrap_or(0)))).collect(),
    }
}

/// The slot count for `request` over adjusted per-node free resources.
pub fn slots_in(free: &[Resources], request: &Resources) -> u32 {
    let total = free.iter().map(|f| f.fits_times(request)).fold(0u64, u64::saturating_add);
    total.min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots_in_cluster;

    fn res(cpu: u64, mem_mib: u64, pods: u64) -> Resources {
        Resources { cpu_millis: cpu, memory_bytes: mem_mib << 20, pods, ..Default::default() }
    }

    fn node(used_cpu: u64) -> NodeCapacity {
        NodeCapacity { allocatable: res(2000, 4096, 50), requested: res(used_cpu, 0, used_cpu / 1000) }
    }

    #[test]
    fn without_adjustments_it_is_the_plain_slot_count() {
        let nodes = [node(500), node(0)];
        let one = res(1000, 1024, 1);
        assert_eq!(slots_in(&adjusted_free(&nodes, &[], &[]), &one), slots_in_cluster(&nodes, &one));
    }

    #[test]
    fn own_pods_count_as_free_up_to_allocatable() {
        let nodes = [node(2000), node(2000)];
        let one = res(1000, 1024, 1);
        assert_eq!(slots_in(&adjusted_free(&nodes, &[], &[]), &one), 0);
        let freed = [(0, res(1000, 1024, 1)), (1, res(5000, 1024, 5))];
        // Node 1 is capped at its allocatable: 2 slots, not 5.
        assert_eq!(slots_in(&adjusted_free(&nodes, &freed, &[]), &one), 3);
    }

    #[test]
    fn reservations_are_placed_first_fit_and_deducted() {
        let nodes = [node(0), node(0)];
        let one = res(1000, 1024, 1);
        let reserved = [Reservation { request: res(1500, 0, 1), count: 1 }];
        // 1.5 CPU on node 0 leaves it 0 slots of 1 CPU; node 1 keeps 2.
        assert_eq!(slots_in(&adjusted_free(&nodes, &[], &reserved), &one), 2);
        // More reserved than fits: the surplus takes nothing.
        let many = [Reservation { request: one.clone(), count: 9 }];
        assert_eq!(slots_in(&adjusted_free(&nodes, &[], &many), &one), 0);
    }
}
