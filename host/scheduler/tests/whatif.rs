//! What-if on a snapshot: each object decided again by its own policy reproduces what the
//! controller recorded; the replacement's placements and the fleet figures beside them; a
//! snapshot survives YAML unchanged.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failure with its message")]

use mck8s_capacity::{NodeCapacity, Resources};
use mck8s_fleet::{ClusterState, OwnedPods, OwnerKey};
use mck8s_policy::{EngineConfig, PolicyEngine, PolicyRegistry};
use mck8s_scheduler::whatif::{FORMAT, Snapshot, SnapshotObject, replay};
use std::collections::BTreeMap;
use std::sync::Arc;

fn cpu(m: u64) -> Resources {
    Resources { cpu_millis: m, memory_bytes: 100 << 20, pods: 1, ..Default::default() }
}

/// 2 nodes × 2 CPU; `owned`: (owner, node, replicas of 1 CPU).
fn cluster(name: &str, owned: &[(&str, usize, u32)]) -> ClusterState {
    let mut nodes = vec![NodeCapacity { allocatable: Resources { cpu_millis: 2000, memory_bytes: 8 << 30, pods: 50, ..Default::default() }, requested: Resources::default() }; 2];
    let mut by_owner = std::collections::HashMap::new();
    for (owner, node, n) in owned {
        for _ in 0..*n {
            nodes[*node].requested.add(&cpu(1000));
        }
        let e: &mut OwnedPods = by_owner.entry(key(owner)).or_default();
        e.per_node.push((*node, Resources { cpu_millis: 1000 * u64::from(*n), memory_bytes: (100 << 20) * u64::from(*n), pods: u64::from(*n), ..Default::default() }));
        e.bound += n;
    }
    ClusterState { name: name.into(), nodes, owned: by_owner, ..ClusterState::default() }
}

fn key(name: &str) -> OwnerKey {
    OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "default".into(), name: name.into() }
}

fn object(name: &str, policy: &str, replicas: u32, recorded: &[(&str, u32)], extra: &str) -> SnapshotObject {
    let workload = serde_yaml_ng::from_str(&format!("{{name: {name}, replicas: {replicas}, requests: {{cpu: 1000m, memory: 100Mi}}{extra}}}")).unwrap();
    SnapshotObject {
        kind: "MultiClusterDeployment".into(),
        namespace: "default".into(),
        name: name.into(),
        policy: policy.into(),
        workload,
        recorded: recorded.iter().map(|(c, r)| (c.to_string(), *r)).collect(),
    }
}

fn registry() -> Arc<PolicyRegistry> {
    let registry = PolicyRegistry::new(PolicyEngine::new(EngineConfig { cache_dir: None, ..EngineConfig::default() }).unwrap());
    for p in ["worst-fit", "best-fit"] {
        registry.upsert(p, &mck8s_policy::built::read(format!("builtin/{p}.wasm")), "test").unwrap();
    }
    Arc::new(registry)
}

#[test]
fn a_snapshot_replays_its_recorded_placements_and_shows_where_the_replacement_differs() {
    // a: web's 2 replicas on node 0 (4 slots in all, own pods free); b: filler's 2 (2 left).
    let snapshot = Snapshot {
        format: FORMAT.into(),
        taken_at: "2026-12-05T00:00:00Z".into(),
        clusters: vec![cluster("a", &[("web", 0, 2)]), cluster("b", &[("filler", 0, 2)])],
        rtt: vec![("a".into(), "b".into(), 3.0)],
        objects: vec![object("filler", "best-fit", 2, &[("b", 2)], ", locations: [b]"), object("web", "worst-fit", 2, &[("a", 2)], "")],
    };
    // Through YAML, as `mck8s snapshot` writes it.
    let snapshot: Snapshot = serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&snapshot).unwrap()).unwrap();
    assert_eq!(snapshot.clusters[0].owned[&key("web")].bound, 2);

    let w = replay(&registry(), &snapshot, "best-fit", Some("worst-fit")).unwrap();
    let web = w.objects.iter().find(|o| o.name == "web").unwrap();
    assert_eq!(web.now.placement, web.recorded, "its own policy decides what was recorded");
    assert_eq!(web.what_if.placement, BTreeMap::from([("b".to_string(), 2)]), "best-fit takes the fuller cluster");
    assert_eq!((web.moved, web.what_if_policy.as_str()), (2, "best-fit"));
    let filler = w.objects.iter().find(|o| o.name == "filler").unwrap();
    assert_eq!(
        (filler.now.placement.clone(), filler.what_if.placement.clone(), filler.moved),
        (filler.recorded.clone(), filler.recorded.clone(), 0),
        "best-fit objects are not replaced"
    );
    assert_eq!((w.now.placed, w.now.clusters_used, w.what_if.placed, w.what_if.clusters_used), (4, 2, 4, 1));
    assert_eq!(w.what_if.per_cluster, BTreeMap::from([("b".to_string(), 4)]));

    // Without --replacing, every object: worst-fit for all moves filler to a.
    let w = replay(&registry(), &snapshot, "worst-fit", None).unwrap();
    let filler = w.objects.iter().find(|o| o.name == "filler").unwrap();
    assert_eq!(filler.what_if_policy, "worst-fit");

    let mut bad = snapshot.clone();
    bad.format = "something/else".into();
    assert!(replay(&registry(), &bad, "best-fit", None).unwrap_err().to_string().contains("not a mck8s snapshot"));
}
