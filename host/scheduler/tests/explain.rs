//! `Scheduler::explain` on real components: every cluster's first reason (host facts before
//! the policy's words), the policy's ranks and reasons from the WIT 0.1.2 `explanations`
//! export, host reasons alone for a 0.1.0 component, and a hostile `explain` that costs only
//! the policy's reasons, never the decision.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failure with its message")]

use mck8s_capacity::{NodeCapacity, Resources, Shortfall};
use mck8s_fleet::{ClusterState, Health, OwnerKey, Role};
use mck8s_policy::input::WorkloadDoc;
use mck8s_policy::{EngineConfig, PolicyEngine, PolicyRegistry};
use mck8s_scheduler::{ClusterRow, Explanation, FleetCycle, PlacementRequest, Scheduler, Why};
use std::collections::BTreeMap;
use std::sync::Arc;

fn registry() -> Arc<PolicyRegistry> {
    let registry = PolicyRegistry::new(PolicyEngine::new(EngineConfig { cache_dir: None, ..EngineConfig::default() }).unwrap());
    registry.upsert("worst-fit", &mck8s_policy::built::read("builtin/worst-fit.wasm"), "test").unwrap();
    registry.upsert("old", &mck8s_policy::built::read("mck8s_guest_wit_0_1_0.wasm"), "test").unwrap();
    registry.upsert("hostile", &mck8s_policy::built::read("mck8s_guest_hostile.wasm"), "test").unwrap();
    Arc::new(registry)
}

/// `nodes` nodes of `cpu` millicores, `used` of each requested.
fn cluster(name: &str, nodes: usize, cpu: u64, used: u64, health: Health) -> ClusterState {
    let node = NodeCapacity {
        allocatable: Resources { cpu_millis: cpu, memory_bytes: 8 << 30, pods: 50, ..Default::default() },
        requested: Resources { cpu_millis: used, ..Default::default() },
    };
    ClusterState { name: name.into(), health, nodes: vec![node; nodes], ..ClusterState::default() }
}

fn owner(name: &str) -> OwnerKey {
    OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "default".into(), name: name.into() }
}

fn request(name: &str, replicas: u32, policy: &str, params: &str) -> PlacementRequest {
    let yaml = format!("{{name: {name}, replicas: {replicas}, requests: {{cpu: 1000m, memory: 100Mi}}, params: {{{params}}}}}");
    PlacementRequest { owner: owner(name), policy: policy.into(), workload: serde_yaml_ng::from_str::<WorkloadDoc>(&yaml).unwrap() }
}

/// big: 4 slots; mid: 2; full: 0; tiny: nodes of 500m; down: NotReady; held: 2 slots that
/// another decision in flight holds; cloud1.
fn fleet(scheduler: &Scheduler) -> Arc<FleetCycle> {
    let mut cloud = cluster("cloud1", 1, 4000, 0, Health::Ready);
    cloud.role = Some(Role::Cloud);
    let clusters = vec![
        cluster("big", 2, 2000, 0, Health::Ready),
        cluster("mid", 1, 2000, 0, Health::Ready),
        cluster("full", 2, 2000, 2000, Health::Ready),
        cluster("tiny", 3, 500, 0, Health::Ready),
        cluster("down", 2, 2000, 0, Health::NotReady),
        cluster("held", 1, 2000, 0, Health::Ready),
        cloud,
    ];
    let cpu = Resources { cpu_millis: 1000, memory_bytes: 100 << 20, pods: 1, ..Default::default() };
    scheduler.remember(&owner("other"), &cpu, &BTreeMap::from([("held".to_string(), 2)]));
    Arc::new(FleetCycle::build(clusters, &[], 1).unwrap())
}

fn row<'a>(e: &'a Explanation, cluster: &str) -> &'a ClusterRow {
    e.clusters.iter().find(|r| r.cluster == cluster).unwrap_or_else(|| panic!("no row for {cluster}"))
}

fn whys(e: &Explanation) -> Vec<(&str, Why, u32)> {
    e.clusters.iter().map(|r| (r.cluster.as_str(), r.why, r.replicas)).collect()
}

#[test]
fn every_cluster_gets_its_first_real_reason_and_worst_fit_its_ranks() {
    let scheduler = Scheduler::new(registry());
    let cycle = fleet(&scheduler);
    let e = scheduler.explain(&cycle, &request("web", 2, "worst-fit", "")).unwrap();
    assert!(e.policy_explains && e.policy_explain_error.is_none(), "{e:?}");
    assert_eq!(e.wit_version, mck8s_policy::WIT_VERSION);
    assert_eq!(
        whys(&e),
        [
            ("big", Why::Chosen, 2),
            ("cloud1", Why::PassedOver, 0),
            ("down", Why::NotReady, 0),
            ("full", Why::NoSlots, 0),
            ("held", Why::HeldInFlight, 0),
            ("mid", Why::PassedOver, 0),
            ("tiny", Why::TooSmall, 0),
        ]
    );
    let (big, mid) = (row(&e, "big"), row(&e, "mid"));
    assert_eq!((big.rank, big.score, big.slots, big.reason_from_policy), (Some(1), Some(4.0), 4, true));
    assert_eq!((mid.rank, mid.score, mid.slots), (Some(2), Some(2.0), 2));
    assert!(mid.reason_from_policy && mid.reason.starts_with("ranked #2 of 2 fog clusters by free slots"), "{}", mid.reason);
    assert!(row(&e, "cloud1").reason.starts_with("cloud: takes only what the fog clusters cannot"), "{}", row(&e, "cloud1").reason);
    let tiny = row(&e, "tiny");
    assert_eq!(tiny.shortfall, Some(Shortfall::Resource { resource: "cpu".into(), needed: 1000, largest: 500 }));
    assert_eq!(tiny.reason, "too small for one replica: needs 1000m cpu: the largest node has 500m");
    let held = row(&e, "held");
    assert_eq!((held.slots, held.in_flight_replicas, held.slots_without_in_flight), (0, 2, 2));
    assert!(!held.reason_from_policy && held.reason.contains("2 replicas of other decisions in flight"), "{}", held.reason);
    assert!(row(&e, "down").reason.contains("NotReady"));
}

#[test]
fn explaining_records_nothing() {
    let scheduler = Scheduler::new(registry());
    let cycle = fleet(&scheduler);
    scheduler.explain(&cycle, &request("web", 2, "worst-fit", "")).unwrap();
    // Had web's 2 replicas been recorded on big, big would rank level with mid (2 slots
    // each) and 4 replicas would not all fit there.
    let d = scheduler.place(&cycle, &request("x", 4, "worst-fit", "")).unwrap();
    assert_eq!(d.decision.replicas_on("big"), 4, "{:?}", d.decision);
}

#[test]
fn a_decision_s_passed_over_clusters_are_grouped_for_its_event() {
    let scheduler = Scheduler::new(registry());
    let cycle = fleet(&scheduler);
    let placed = scheduler.place(&cycle, &request("web", 2, "worst-fit", "")).unwrap();
    // Without nodes: held counts as having no slots.
    assert_eq!(placed.passed_over.to_string(), "down not ready; tiny too small for one replica; full, held no free slots; cloud1, mid passed over by the policy");
}

#[test]
fn a_0_1_0_component_is_explained_by_the_host_alone() {
    let scheduler = Scheduler::new(registry());
    let cycle = fleet(&scheduler);
    let e = scheduler.explain(&cycle, &request("web", 2, "old", "")).unwrap();
    assert_eq!((e.wit_version.as_str(), e.policy_explains, e.policy_explain_error.as_deref()), ("0.1.0", false, None));
    let new = scheduler.explain(&cycle, &request("web", 2, "worst-fit", "")).unwrap();
    assert_eq!(whys(&e), whys(&new), "the same decision, the same host facts");
    assert!(e.clusters.iter().all(|r| r.rank.is_none() && (r.why == Why::Chosen || !r.reason_from_policy)), "{e:?}");
    assert_eq!(row(&e, "mid").reason, "passed over by the policy: it had 2 free slots (the policy gives no reason)");
}

#[test]
fn a_hostile_explain_costs_only_the_policy_s_reasons() {
    let scheduler = Scheduler::new(registry());
    let cycle = fleet(&scheduler);
    let good = scheduler.explain(&cycle, &request("web", 2, "hostile", "")).unwrap();
    assert!(good.policy_explains, "{good:?}");
    for (mode, error) in [
        ("spin", "deadline in explain"),
        ("alloc", "memory"),
        ("panic", "panics in explain on purpose"),
        ("refuse", "refusing to explain on purpose"),
        ("unknown-cluster", "out of range"),
        ("twice", "big twice"),
    ] {
        let e = scheduler.explain(&cycle, &request("web", 2, "hostile", &format!("explain-mode: {mode}"))).unwrap();
        let err = e.policy_explain_error.clone().unwrap_or_else(|| panic!("{mode}: no error in {e:?}"));
        assert!(err.contains(error), "{mode}: {err}");
        assert!(!e.policy_explains, "{mode}");
        assert_eq!(whys(&e), whys(&good), "{mode}: the decision stands");
        assert!(e.clusters.iter().all(|r| r.rank.is_none()), "{mode}");
    }
    // 64 KiB of reason per cluster is cut; a NaN score is dropped.
    let e = scheduler.explain(&cycle, &request("web", 2, "hostile", "explain-mode: verbose")).unwrap();
    let mid = row(&e, "mid");
    assert!(e.policy_explains && mid.reason_from_policy && mid.score.is_none(), "{mid:?}");
    assert!(mid.reason.starts_with("why why") && mid.reason.len() <= 1100, "{} bytes", mid.reason.len());
    // The next decision is unaffected by whatever the instance went through.
    let after = scheduler.place(&cycle, &request("web2", 2, "hostile", "")).unwrap();
    assert_eq!(after.decision.replicas_on("big"), 2);
}
