//! The simulator and the controller must decide alike: the simulator's fleet (pods bound by
//! its kube-scheduler, Pending pods, a failed cluster) goes through its own fleet-building
//! code into `decide_once`; the same observations, as the Node and Pod objects a controller's
//! watches deliver, go through the controller's model (`ClusterInventory`) into
//! `mck8s_scheduler::Scheduler`. The decisions must be equal for every policy.

use crate::common;
use k8s_openapi::api::core::v1::{Node, Pod};
use mck8s_api::labels;
use mck8s_capacity::Resources;
use mck8s_fleet::inventory::ClusterInventory;
use mck8s_fleet::{ClusterState, Health, OwnerKey};
use mck8s_policy::input::WorkloadDoc;
use mck8s_scheduler::{FleetCycle, PlacementRequest, Scheduler};
use mck8s_sim::Fleet;
use mck8s_sim::scenario::ClusterSpec;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

const CLUSTERS: &str = r#"
- {name: cluster1, traffic: 900, nodes: [{count: 2, cpu: 2, memory: 2000Mi}]}
- {name: cluster2, traffic: 100, nodes: [{cpu: 4, memory: 4000Mi, usedCpu: 1000m, usedMemory: 1000Mi, usedPods: 3}]}
- {name: cluster3, traffic: 500, nodes: [{count: 3, cpu: 2, memory: 2000Mi}]}
- {name: cluster4, traffic: 50, nodes: [{count: 2, cpu: 4, memory: 4000Mi}]}
- {name: cloud1, cost: 2, nodes: [{cpu: 8, memory: 32Gi}]}
"#;

fn rtt() -> Vec<(String, String, f32)> {
    [("cluster1", "cluster2", 2.0), ("cluster1", "cluster3", 9.0), ("cluster1", "cluster4", 4.0), ("cluster2", "cluster4", 3.0)]
        .into_iter()
        .map(|(a, b, ms)| (a.to_string(), b.to_string(), ms))
        .collect()
}

fn owner(name: &str) -> OwnerKey {
    OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "default".into(), name: name.into() }
}

fn cpu(m: u64, pods: u64) -> Resources {
    Resources { cpu_millis: m, memory_bytes: m << 20, pods, ..Default::default() }
}

fn desired(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(c, n)| (c.to_string(), *n)).collect()
}

/// The simulator's fleet after a's and b's pods were created and bound (b has 2 Pending)
/// and cluster3 failed.
fn simulated() -> Fleet {
    let specs: Vec<ClusterSpec> = serde_yaml_ng::from_str(CLUSTERS).unwrap();
    let mut fleet = Fleet::new(&specs, &rtt()).unwrap();
    let (a, b) = (fleet.owner(&owner("a")), fleet.owner(&owner("b")));
    fleet.apply(a, &cpu(1000, 1), &desired(&[("cluster1", 3), ("cluster2", 1)])).unwrap();
    fleet.schedule();
    fleet.apply(b, &cpu(1000, 1), &desired(&[("cluster1", 3), ("cluster2", 2), ("cluster4", 1)])).unwrap();
    fleet.schedule();
    fleet.fail(fleet.index_of("cluster3").unwrap(), Health::NotReady);
    fleet
}

/// The same fleet as a controller observes it, through the controller's own model: the Node
/// and Pod objects its watches would deliver, fed into each cluster's `ClusterInventory`
/// (system pods without an owner make up the simulator's base usage; Pending pods have no
/// node). Only health comes from elsewhere (the member's probe), as in the controller.
fn observed() -> Vec<ClusterState> {
    let node = |name: &str, cpu: &str, memory: &str| -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}, "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap()
    };
    let pod = |name: &str, owner: Option<&str>, node: Option<&str>, cpu: &str, memory: &str| -> Pod {
        let labels = owner.map_or(json!({}), |o| json!({labels::OWNER_KIND: "MultiClusterDeployment", labels::OWNER_NAME: o}));
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
            "status": {"phase": if node.is_some() { "Running" } else { "Pending" }},
        }))
        .unwrap()
    };
    let app = |name: &str, owner: &str, node: Option<&str>| pod(name, Some(owner), node, "1000m", "1000Mi");
    let state = |name: &str, health: Health, nodes: Vec<Node>, pods: Vec<Pod>, traffic: f64, cost: f64| {
        let mut inventory = ClusterInventory::default();
        inventory.reset_nodes(&nodes);
        inventory.reset_pods(&pods);
        let (nodes, owned) = inventory.snapshot();
        ClusterState { name: name.into(), role: None, health, labels: BTreeMap::new(), nodes, owned, traffic, cost }
    };
    vec![
        // kube-scheduler spread a over both nodes (least allocated: n0, n1, n0); b's first pod
        // took n1's last CPU, its other two are Pending.
        state(
            "cluster1",
            Health::Ready,
            vec![node("n0", "2", "2000Mi"), node("n1", "2", "2000Mi")],
            vec![app("a1", "a", Some("n0")), app("a2", "a", Some("n1")), app("a3", "a", Some("n0")), app("b1", "b", Some("n1")), app("b2", "b", None), app("b3", "b", None)],
            900.0,
            0.0,
        ),
        state(
            "cluster2",
            Health::Ready,
            vec![node("n0", "4", "4000Mi")],
            vec![
                pod("sys1", None, Some("n0"), "400m", "400Mi"),
                pod("sys2", None, Some("n0"), "300m", "300Mi"),
                pod("sys3", None, Some("n0"), "300m", "300Mi"),
                app("a4", "a", Some("n0")),
                app("b4", "b", Some("n0")),
                app("b5", "b", Some("n0")),
            ],
            100.0,
            0.0,
        ),
        // Failed: its probe says NotReady, and its pods are gone.
        state("cluster3", Health::NotReady, vec![node("n0", "2", "2000Mi"), node("n1", "2", "2000Mi"), node("n2", "2", "2000Mi")], vec![], 500.0, 0.0),
        state("cluster4", Health::Ready, vec![node("n0", "4", "4000Mi"), node("n1", "4", "4000Mi")], vec![app("b6", "b", Some("n0"))], 50.0, 0.0),
        state("cloud1", Health::Ready, vec![node("n0", "8", "32Gi")], vec![], 0.0, 2.0),
    ]
}

fn request(policy: &str, yaml: &str) -> PlacementRequest {
    let workload: WorkloadDoc = serde_yaml_ng::from_str(yaml).unwrap();
    PlacementRequest { owner: owner(&workload.name), policy: policy.into(), workload }
}

#[test]
fn simulator_and_controller_decide_the_same_placement() {
    let registry = common::registry();
    let fleet = simulated();
    let cases = [
        ("worst-fit", "{name: a, replicas: 6, requests: {cpu: 1000m, memory: 1000Mi}, current: {cluster1: 3, cluster2: 1}}"),
        ("best-fit", "{name: a, replicas: 3, numberOfLocations: 2, requests: {cpu: 1000m, memory: 1000Mi}}"),
        ("most-traffic", "{name: b, replicas: 5, requests: {cpu: 1000m, memory: 1000Mi}}"),
        ("divided", "{name: c, replicas: 9, requests: {cpu: 500m, memory: 500Mi}}"),
        ("preferred", "{name: a, replicas: 4, locations: 'cluster1, cluster3', requests: {cpu: 1000m, memory: 1000Mi}}"),
        ("kubefed-even", "{name: a, replicas: 7, requests: {cpu: 1000m, memory: 1000Mi}}"),
    ];
    for (policy, yaml) in cases {
        let req = request(policy, yaml);
        let sim = mck8s_sim::decide_once(registry.clone(), &fleet, &req).unwrap();
        let controller = if policy == mck8s_sim::EVEN_SPLIT {
            mck8s_sim::baseline::even_split(&FleetCycle::build(observed(), &rtt(), 1).unwrap(), &req.workload).unwrap()
        } else {
            let cycle = Arc::new(FleetCycle::build(observed(), &rtt(), 1).unwrap());
            Scheduler::new(registry.clone()).place(&cycle, &req).unwrap().decision
        };
        assert_eq!(sim, controller, "{policy}: the simulator and the controller disagree");
    }
}

#[test]
fn the_comparison_sees_own_pods_freed_and_pending_pods_as_nothing() {
    // Anchors the cross-check to the capacity model, so equal-but-wrong cannot pass: a's own
    // 3 pods on cluster1 count as free (3 slots), b's Pending pods take nothing, cluster2 has
    // a's 1 slot back, and cluster3 (failed) none.
    let d = mck8s_sim::decide_once(common::registry(), &simulated(), &request("worst-fit", "{name: a, replicas: 6, requests: {cpu: 1000m, memory: 1000Mi}}")).unwrap();
    let cycle = simulated().cycle(1).unwrap();
    let w = cycle.snapshot.workload(&request("worst-fit", "{name: z, replicas: 1, requests: {cpu: 1000m, memory: 1000Mi}}").workload).unwrap();
    let slots: Vec<u32> = w.slots.clone();
    // For a newcomer (nothing freed): cluster1 0, cluster2 0, cluster3 0 (failed), cluster4 7, cloud 8.
    let by_name = |n: &str| slots[cycle.snapshot.index_of(n).unwrap() as usize];
    assert_eq!([by_name("cluster1"), by_name("cluster2"), by_name("cluster3"), by_name("cluster4"), by_name("cloud1")], [0, 0, 0, 7, 8]);
    // For a: worst-fit ranks cluster4 (7 slots) first, which takes all 6.
    assert_eq!(d.replicas_on("cluster4"), 6, "{d:?}");
    let d = mck8s_sim::decide_once(common::registry(), &simulated(), &request("best-fit", "{name: a, replicas: 3, requests: {cpu: 1000m, memory: 1000Mi}}")).unwrap();
    // best-fit: cluster2 has 1 slot (a's own pod), cluster1 3 (a's own pods), cluster4 7.
    assert_eq!((d.replicas_on("cluster2"), d.replicas_on("cluster1")), (1, 2), "{d:?}");
}
