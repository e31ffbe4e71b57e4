//! Consecutive decisions against the same observed state never promise the same slots; the
//! workload's own pods count as free when it is re-placed; reservations end as pods bind.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

use mck8s_capacity::{NodeCapacity, Resources};
use mck8s_fleet::{ClusterState, Health, OwnedPods, OwnerKey};
use mck8s_policy::input::WorkloadDoc;
use mck8s_policy::{EngineConfig, PolicyEngine, PolicyRegistry};
use mck8s_scheduler::{FleetCycle, PlacementRequest, Scheduler};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

fn registry() -> Arc<PolicyRegistry> {
    let registry = PolicyRegistry::new(PolicyEngine::new(EngineConfig { cache_dir: None, ..EngineConfig::default() }).unwrap());
    for name in ["worst-fit", "best-fit"] {
        let bytes = mck8s_policy::built::read(format!("builtin/{name}.wasm"));
        registry.upsert(name, &bytes, "test").unwrap();
    }
    Arc::new(registry)
}

fn cpu(m: u64) -> Resources {
    Resources { cpu_millis: m, memory_bytes: m << 20, pods: 1, ..Default::default() }
}

/// Two fog clusters of 2 nodes × 2 CPU: 4 one-CPU slots each.
fn cluster(name: &str, owned: HashMap<OwnerKey, OwnedPods>, used: [u64; 2]) -> ClusterState {
    let node = |u: u64| NodeCapacity {
        allocatable: Resources { cpu_millis: 2000, memory_bytes: 2000 << 20, pods: 50, ..Default::default() },
        requested: Resources { cpu_millis: u, memory_bytes: u << 20, pods: u / 1000, ..Default::default() },
    };
    ClusterState { name: name.into(), role: None, health: Health::Ready, labels: BTreeMap::new(), nodes: vec![node(used[0]), node(used[1])], owned, traffic: 0.0, cost: 0.0 }
}

fn owner(name: &str) -> OwnerKey {
    OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "default".into(), name: name.into() }
}

fn request(name: &str, replicas: u32, policy: &str) -> PlacementRequest {
    let workload: WorkloadDoc = serde_yaml_ng::from_str(&format!("{{name: {name}, replicas: {replicas}, requests: {{cpu: 1000m, memory: 1000Mi}}}}")).unwrap();
    PlacementRequest { owner: owner(name), policy: policy.into(), workload }
}

#[test]
fn consecutive_decisions_do_not_over_commit() {
    let scheduler = Scheduler::new(registry());
    let cycle = Arc::new(FleetCycle::build(vec![cluster("cluster1", HashMap::new(), [0, 0]), cluster("cluster2", HashMap::new(), [0, 0])], &[], 1).unwrap());
    let mut total: BTreeMap<String, u32> = BTreeMap::new();
    let mut unplaced = 0;
    // Five apps of 2 replicas against 8 slots, all decided before any pod exists.
    for i in 0..5 {
        let d = scheduler.place(&cycle, &request(&format!("app{i}"), 2, "worst-fit")).unwrap().decision;
        for p in &d.placements {
            *total.entry(p.cluster.clone()).or_default() += p.replicas;
        }
        unplaced += d.unplaced;
    }
    assert!(total.values().all(|&n| n <= 4), "over-committed: {total:?}");
    assert_eq!(total.values().sum::<u32>(), 8);
    assert_eq!(unplaced, 2);
}

#[test]
fn reservations_end_when_the_pods_are_bound_and_own_pods_are_free() {
    let scheduler = Scheduler::new(registry());
    let empty = Arc::new(FleetCycle::build(vec![cluster("cluster1", HashMap::new(), [0, 0])], &[], 1).unwrap());
    let a = scheduler.place(&empty, &request("a", 3, "worst-fit")).unwrap().decision;
    assert_eq!(a.replicas_on("cluster1"), 3);
    // b sees one slot left while a's pods are not bound yet.
    let b = scheduler.place(&empty, &request("b", 2, "worst-fit")).unwrap().decision;
    assert_eq!((b.replicas_on("cluster1"), b.unplaced), (1, 1));
    // Now the cluster shows a's 3 pods and b's 1 pod bound: nothing is deducted twice.
    let mut owned = HashMap::new();
    owned.insert(owner("a"), OwnedPods { per_node: vec![(0, cpu(2000)), (1, cpu(1000))], bound: 3 });
    owned.insert(owner("b"), OwnedPods { per_node: vec![(1, cpu(1000))], bound: 1 });
    let bound = Arc::new(FleetCycle::build(vec![cluster("cluster1", owned, [2000, 2000])], &[], 2).unwrap());
    // a re-placed with 4 replicas keeps its own 3 slots and gets none of b's.
    let a2 = scheduler.place(&bound, &request("a", 4, "worst-fit")).unwrap().decision;
    assert_eq!((a2.replicas_on("cluster1"), a2.unplaced), (3, 1));
    // Forgetting a frees its reservation for c.
    scheduler.forget(&owner("a"));
    let c = scheduler.place(&bound, &request("c", 1, "worst-fit")).unwrap().decision;
    assert_eq!(c.unplaced, 1, "the cluster is full of bound pods");
}

/// Decisions run in parallel (the lock covers the ledger, not the policy call); the ledger
/// check still gives every slot to one owner only. Without the check this over-commits in most
/// rounds; five rounds make a miss unlikely.
#[test]
fn parallel_decisions_do_not_over_commit() {
    for _ in 0..5 {
        let scheduler = Arc::new(Scheduler::new(registry()));
        let cycle = Arc::new(FleetCycle::build(vec![cluster("cluster1", HashMap::new(), [0, 0]), cluster("cluster2", HashMap::new(), [0, 0])], &[], 1).unwrap());
        // Sixteen apps of 1 replica against 8 slots, from eight threads at once.
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (scheduler, cycle, barrier) = (scheduler.clone(), cycle.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let policy = if t % 2 == 0 { "worst-fit" } else { "best-fit" };
                    (0..2).map(|i| scheduler.place(&cycle, &request(&format!("app{t}-{i}"), 1, policy)).unwrap().decision).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut total: BTreeMap<String, u32> = BTreeMap::new();
        let mut unplaced = 0;
        for d in handles.into_iter().flat_map(|h| h.join().unwrap()) {
            for p in &d.placements {
                *total.entry(p.cluster.clone()).or_default() += p.replicas;
            }
            unplaced += d.unplaced;
        }
        assert!(total.values().all(|&n| n <= 4), "over-committed: {total:?}");
        assert_eq!((total.values().sum::<u32>(), unplaced), (8, 8), "{total:?}");
    }
}
