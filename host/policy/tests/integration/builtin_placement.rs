//! Table-driven tests of every built-in placement policy against the mck8s spec: each case
//! in `tests/cases/placement/*.yaml` runs through the Wasm engine and, as a cross-check,
//! through the same algorithm compiled natively.

use crate::common;
use mck8s_policy::FleetSnapshot;
use mck8s_policy::cases::{self, Case};
use mck8s_policy::input::PlacementInput;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

fn cases() -> Vec<(String, Case)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/placement");
    let out = cases::load(&dir).unwrap();
    assert!(out.len() >= 20, "expected the placement case table in {}", dir.display());
    out
}

#[test]
fn every_case_through_wasm_and_native() {
    let registry = common::registry_with_builtins();
    let mut failures = Vec::new();
    for (name, case) in cases() {
        let fleet = Arc::new(FleetSnapshot::from_doc(&case.input.fleet).unwrap());
        let workload = fleet.workload(&case.input.workload).unwrap();
        let decision = registry.placement_session(case.policy.as_deref().unwrap(), fleet.clone()).and_then(|mut s| s.place(&workload)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: BTreeMap<String, u32> = decision.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect();
        if got != case.expect.placements || decision.unplaced != case.expect.unplaced {
            failures.push(format!(
                "{name}: wasm placed {got:?} unplaced {} ({}); expected {:?} unplaced {}",
                decision.unplaced, decision.summary, case.expect.placements, case.expect.unplaced
            ));
        }
        for p in &decision.placements {
            assert!(!p.reason.is_empty(), "{name}: no reason for {}", p.cluster);
        }
        let native = common::native_place(case.policy.as_deref().unwrap(), &common::native_fleet(&fleet), &workload).unwrap();
        let native_got: BTreeMap<String, u32> = native.choices.iter().map(|c| (fleet.name_of(c.cluster).to_string(), c.replicas)).collect();
        if native_got != got || native.unplaced != decision.unplaced || native.summary != decision.summary {
            failures.push(format!("{name}: native {native_got:?}/{} differs from wasm {got:?}/{}", native.unplaced, decision.unplaced));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn invalid_workloads_are_reported_not_placed() {
    let doc: PlacementInput = serde_yaml_ng::from_str(
        r#"
fleet: {clusters: [{name: cluster1, nodes: [{cpu: "4", memory: 8Gi}]}]}
workload: {name: hello, replicas: 2, locations: "cluster1, nowhere", requests: {cpu: 1Gi}}
"#,
    )
    .unwrap();
    let fleet = FleetSnapshot::from_doc(&doc.fleet).unwrap();
    let err = fleet.workload(&doc.workload).unwrap_err().to_string();
    assert!(err.contains("nowhere"), "{err}");
    let mut w = doc.workload.clone();
    w.locations = None;
    w.requests.cpu = Some("one".into());
    let err = fleet.workload(&w).unwrap_err().to_string();
    assert!(err.contains("requests.cpu") && err.contains("one"), "{err}");
}

#[test]
fn every_builtin_has_the_placement_properties_on_generated_fleets() {
    let registry = common::registry_with_builtins();
    for name in common::PLACEMENT_BUILTINS {
        let policy = registry.get(name).unwrap();
        let violations = cases::check_properties(&policy, 150, 7, &BTreeMap::new());
        assert!(violations.is_empty(), "{name}: {} violations, first: {:?}", violations.len(), &violations[..violations.len().min(3)]);
    }
}

#[test]
fn property_check_catches_a_policy_that_overfills_a_cluster() {
    // The hostile guest piles every replica on the first ready fog cluster, whatever its slots:
    // valid output (right sum, known ready cluster), so only the slot property catches it.
    let registry = common::registry_with_builtins();
    registry.upsert("piles-up", &common::guest("hostile"), "test").unwrap();
    let params = BTreeMap::from([("mode".to_string(), "pile-up".to_string())]);
    let violations = cases::check_properties(&registry.get("piles-up").unwrap(), 50, 7, &params);
    assert!(violations.iter().any(|v| v.contains("slots")), "{violations:?}");
}
