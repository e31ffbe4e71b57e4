//! WIT compatibility and fleet updates. A component built against `mck8s:policy@0.1.0`
//! (`tests/guests/wit-0.1.0`, worst-fit over its own bindings) still loads under the 0.1.1
//! host and decides exactly like the 0.1.1 built-in, getting the whole fleet each cycle; a
//! built-in that is sent only updates decides exactly like a fresh instance given the whole
//! fleet.

use crate::common;
use mck8s_fleet::Health;
use mck8s_policy::input::{FleetDoc, Qty, WorkloadDoc};
use mck8s_policy::{FleetSends, FleetSnapshot, Limits, LoadedPolicy, PlacementSession};
use std::sync::Arc;

const FLEET: &str = r#"
clusters:
  - {name: c1, labels: {zone: a}, nodes: [{count: 2, cpu: "4", memory: 8Gi}]}
  - {name: c2, labels: {zone: a}, nodes: [{count: 3, cpu: "2", memory: 4Gi}]}
  - {name: c3, labels: {zone: b}, nodes: [{cpu: "8", memory: 16Gi, extended: {nvidia.com/gpu: 2}}]}
  - {name: c4, nodes: [{count: 4, cpu: "1", memory: 2Gi}]}
  - {name: cloud1, nodes: [{count: 8, cpu: "16", memory: 64Gi}]}
  - {name: cloud2, nodes: [{count: 8, cpu: "16", memory: 64Gi}]}
rtt: [[c1, c2, 4], [c1, c3, 9], [c1, c4, 20], [c2, c3, 6], [c3, c4, 3], [c1, cloud1, 40], [c2, cloud2, 35]]
"#;

const WORKLOADS: &str = r#"
- {name: spread, replicas: 3, numberOfLocations: 2, requests: {cpu: 500m, memory: 512Mi}}
- {name: near-c1, replicas: 12, locations: c1, requests: {cpu: "1", memory: 1Gi}}
- {name: big, replicas: 2, requests: {cpu: "3", memory: 2Gi}}
"#;

/// A cycle's change to the fleet document: the clusters it touched.
type Step = fn(&mut FleetDoc) -> Vec<&'static str>;

fn steps() -> Vec<Step> {
    vec![
        |f| {
            f.clusters[1].nodes[0].used_cpu = Some(Qty::from("1800m"));
            vec!["c2"]
        },
        |f| {
            f.clusters[2].health = Health::NotReady;
            vec!["c3"]
        },
        |f| {
            f.rtt[2].2 = 2.0; // c4 becomes c1's nearest neighbour
            vec![]
        },
        |f| {
            f.clusters[2].health = Health::Ready;
            f.clusters[2].nodes[0].used_extended.insert("nvidia.com/gpu".into(), 1);
            f.clusters[0].traffic = 5e6;
            f.clusters[0].nodes[0].used_cpu = Some(Qty::from("3"));
            vec!["c3", "c1"]
        },
        |f| {
            f.clusters[3].nodes[0].count = 1;
            f.clusters[4].cost = 2.5;
            vec!["c4", "cloud1"]
        },
    ]
}

/// The fleet after each step, as updates of the first snapshot (the controller's path).
fn snapshots() -> Vec<Arc<FleetSnapshot>> {
    let mut doc: FleetDoc = serde_yaml_ng::from_str(FLEET).unwrap();
    let mut out = vec![Arc::new(FleetSnapshot::from_doc(&doc).unwrap())];
    for step in steps() {
        let rtt_before = doc.rtt.clone();
        let touched = step(&mut doc);
        let last = out.last().unwrap();
        let changes: Vec<_> = touched.iter().map(|name| (last.index_of(name).unwrap(), doc.clusters.iter().find(|c| c.name == *name).unwrap().to_state().unwrap())).collect();
        let rtt = (doc.rtt != rtt_before).then_some(doc.rtt.as_slice());
        let next = last.updated(changes.iter().map(|(i, c)| (*i, c)), rtt).expect("these changes fit an update");
        assert_eq!(next.wit(), FleetSnapshot::from_doc(&doc).unwrap().wit(), "an update must equal a full build");
        out.push(Arc::new(next));
    }
    out
}

fn workloads() -> Vec<WorkloadDoc> {
    serde_yaml_ng::from_str(WORKLOADS).unwrap()
}

fn load(name: &str, bytes: &[u8]) -> Arc<LoadedPolicy> {
    Arc::new(LoadedPolicy::load(&common::engine(), name, bytes, "test", Limits::default()).unwrap())
}

#[test]
fn a_0_1_0_component_loads_and_decides_like_the_0_1_1_builtin() {
    let old = load("worst-fit-0.1.0", &common::guest("wit-0-1-0"));
    let new = load("worst-fit", &common::builtin("worst-fit"));
    assert_eq!((old.wit_version.as_str(), old.incremental), ("0.1.0", false));
    assert_eq!((new.wit_version.as_str(), new.incremental), (mck8s_policy::WIT_VERSION, true));
    assert!(old.surface.exports.iter().any(|e| e == "mck8s:policy/placer@0.1.0"), "{:?}", old.surface.exports);

    let fleets = snapshots();
    let mut old_session = PlacementSession::new(old, fleets[0].clone()).unwrap();
    let mut new_session = PlacementSession::new(new, fleets[0].clone()).unwrap();
    let mut differing_cycles = 0;
    let mut previous = None;
    for fleet in &fleets {
        old_session.advance(fleet);
        new_session.advance(fleet);
        let mut placed = Vec::new();
        for w in workloads() {
            let workload = fleet.workload(&w).unwrap();
            let (a, b) = (old_session.place(&workload).unwrap(), new_session.place(&workload).unwrap());
            assert_eq!((&a.placements, a.unplaced, &a.summary), (&b.placements, b.unplaced, &b.summary), "{} differs", w.name);
            placed.push(b.placements);
        }
        differing_cycles += usize::from(previous.as_ref().is_some_and(|p| *p != placed));
        previous = Some(placed);
    }
    // The steps move decisions, so agreeing is not agreeing on a constant.
    assert!(differing_cycles >= 3, "only {differing_cycles} cycles changed a decision");
    let steps = fleets.len() as u64 - 1;
    assert_eq!(old_session.fleet_sends(), FleetSends { full: steps + 1, updates: 0, failed_updates: 0 });
    assert_eq!(new_session.fleet_sends(), FleetSends { full: 1, updates: steps, failed_updates: 0 });
}

#[test]
fn a_session_sent_updates_decides_like_a_fresh_instance() {
    let fleets = snapshots();
    for name in common::PLACEMENT_BUILTINS {
        let policy = load(name, &common::builtin(name));
        let mut kept = PlacementSession::new(policy.clone(), fleets[0].clone()).unwrap();
        for (i, fleet) in fleets.iter().enumerate() {
            kept.advance(fleet);
            let mut fresh = PlacementSession::new(policy.clone(), fleet.clone()).unwrap();
            for w in workloads() {
                let workload = fleet.workload(&w).unwrap();
                assert_eq!(kept.place(&workload).unwrap(), fresh.place(&workload).unwrap(), "{name}, step {i}, {}", w.name);
            }
        }
        assert_eq!(kept.fleet_sends(), FleetSends { full: 1, updates: fleets.len() as u64 - 1, failed_updates: 0 }, "{name}");
    }
}

#[test]
fn a_session_behind_another_lineage_gets_the_whole_fleet() {
    let fleets = snapshots();
    let other = Arc::new(FleetSnapshot::from_doc(&serde_yaml_ng::from_str(FLEET).unwrap()).unwrap());
    let mut session = PlacementSession::new(load("worst-fit", &common::builtin("worst-fit")), fleets[3].clone()).unwrap();
    let w = workloads().remove(0);
    session.place(&fleets[3].workload(&w).unwrap()).unwrap();
    session.advance(&other);
    session.place(&other.workload(&w).unwrap()).unwrap();
    // An older snapshot of the same lineage is no ancestor either.
    session.advance(&fleets[1]);
    session.place(&fleets[1].workload(&w).unwrap()).unwrap();
    assert_eq!(session.fleet_sends(), FleetSends { full: 3, updates: 0, failed_updates: 0 });
}
