//! Table-driven tests of every built-in placement policy against the mck8s spec: each case
//! in `tests/cases/placement/*.yaml` runs through the Wasm engine and, as a cross-check,
//! through the same algorithm compiled natively.

mod common;

use mck8s_policy::input::PlacementInput;
use mck8s_policy::FleetSnapshot;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Deserialize)]
struct Case {
    policy: String,
    #[serde(flatten)]
    input: PlacementInput,
    expect: Expect,
}

#[derive(Deserialize)]
struct Expect {
    placements: BTreeMap<String, u32>,
    unplaced: u32,
}

fn cases() -> Vec<(String, Case)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/placement");
    let mut out: Vec<(String, Case)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let case: Case = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_stem().unwrap().to_string_lossy().into_owned(), case)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
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
        let decision = registry
            .placement_session(&case.policy, fleet.clone())
            .and_then(|mut s| s.place(&workload))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
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
        let native = common::native_place(&case.policy, &common::native_fleet(&fleet), &workload).unwrap();
        let native_got: BTreeMap<String, u32> =
            native.choices.iter().map(|c| (fleet.name_of(c.cluster).to_string(), c.replicas)).collect();
        if native_got != got || native.unplaced != decision.unplaced || native.summary != decision.summary {
            failures.push(format!("{name}: native {native_got:?}/{} differs from wasm {got:?}/{}", native.unplaced, decision.unplaced));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn invalid_workloads_are_reported_not_placed() {
    let doc: PlacementInput = serde_yaml::from_str(
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

