//! A shadow decides on the same input as every real decision and is compared, never
//! recorded; a hostile shadow changes nothing but its own report.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failure with its message")]

use mck8s_capacity::{NodeCapacity, Resources};
use mck8s_fleet::{ClusterState, OwnerKey};
use mck8s_policy::input::WorkloadDoc;
use mck8s_policy::{EngineConfig, PolicyEngine, PolicyRegistry};
use mck8s_scheduler::{FleetCycle, PlacementRequest, Scheduler, ShadowOutcome};
use std::sync::Arc;

fn cluster(name: &str, nodes: usize, used: u64) -> ClusterState {
    let node = NodeCapacity {
        allocatable: Resources { cpu_millis: 2000, memory_bytes: 8 << 30, pods: 50, ..Default::default() },
        requested: Resources { cpu_millis: used, ..Default::default() },
    };
    ClusterState { name: name.into(), nodes: vec![node; nodes], ..ClusterState::default() }
}

fn request(name: &str, replicas: u32, policy: &str, params: &str) -> PlacementRequest {
    let yaml = format!("{{name: {name}, replicas: {replicas}, requests: {{cpu: 1000m, memory: 100Mi}}, params: {{{params}}}}}");
    let owner = OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "default".into(), name: name.into() };
    PlacementRequest { owner, policy: policy.into(), workload: serde_yaml_ng::from_str::<WorkloadDoc>(&yaml).unwrap() }
}

#[test]
fn a_shadow_is_compared_never_recorded_and_a_hostile_one_changes_nothing() {
    let registry = PolicyRegistry::new(PolicyEngine::new(EngineConfig { cache_dir: None, ..EngineConfig::default() }).unwrap());
    registry.upsert("house", &mck8s_policy::built::read("builtin/worst-fit.wasm"), "test").unwrap();
    registry.upsert("next", &mck8s_policy::built::read("builtin/best-fit.wasm"), "test").unwrap();
    registry.set_shadow("next", Some("house"));
    let scheduler = Scheduler::new(Arc::new(registry));
    // big: 4 slots, small: 2.
    let cycle = Arc::new(FleetCycle::build(vec![cluster("big", 2, 0), cluster("small", 1, 0)], &[], 1).unwrap());
    let placed = scheduler.place(&cycle, &request("web", 2, "house", "")).unwrap();
    assert_eq!(placed.decision.replicas_on("big"), 2);
    let run = placed.shadow.expect("house has a shadow");
    assert_eq!((run.policy.as_str(), run.outcome), ("next", ShadowOutcome::Diverged { clusters: vec![("big".into(), 2, 0), ("small".into(), 0, 2)], unplaced: (0, 0) }));
    // Only house's decision holds slots: big has 2 left and small both of its own, so 4
    // more replicas fit (had the shadow's placement been recorded, 2 would not).
    let other = scheduler.place(&cycle, &request("other", 4, "next", "")).unwrap();
    assert_eq!((other.decision.replicas_on("big"), other.decision.replicas_on("small"), other.decision.unplaced), (2, 2, 0), "{:?}", other.decision);
    assert!(other.shadow.is_none(), "next itself has no shadow");

    for name in ["web", "other"] {
        scheduler.forget(&request(name, 1, "house", "").owner);
    }
    // The hostile guest as the shadow.
    scheduler.registry().upsert("next", &mck8s_policy::built::read("mck8s_guest_hostile.wasm"), "test").unwrap();
    // It loops, traps (a panic) or allocates 1 GiB as the workload's parameters say; the
    // real decision is made each time.
    for (mode, error) in [("spin", "deadline in place"), ("panic", "panics on purpose"), ("alloc", "memory")] {
        let placed = scheduler.place(&cycle, &request(mode, 1, "house", &format!("mode: {mode}"))).unwrap();
        assert_eq!(placed.decision.replicas_on("big"), 1, "{mode}: the real decision is made: {:?}", placed.decision);
        match placed.shadow.unwrap().outcome {
            ShadowOutcome::Failed(e) => assert!(e.contains(error), "{mode}: {e}"),
            o => panic!("{mode}: {o:?}"),
        }
        scheduler.forget(&request(mode, 1, "house", "").owner);
    }
    // Without the loop it decides like worst-fit: agreed.
    let placed = scheduler.place(&cycle, &request("calm", 1, "house", "")).unwrap();
    assert_eq!(placed.shadow.unwrap().outcome, ShadowOutcome::Agreed);
}
