//! The `mck8s policy` commands, run as a user would.

use std::path::PathBuf;
use std::process::Command;

fn wasm_dir() -> PathBuf {
    mck8s_policy::built::ensure().unwrap_or_else(|e| panic!("{e}"))
}

fn mck8s(args: &[&str]) -> (bool, String, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mck8s")).args(args).env("XDG_CACHE_HOME", cache.path()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn check_reports_world_version_digest_and_self_check() {
    let file = wasm_dir().join("builtin/worst-fit.wasm");
    let (ok, out, err) = mck8s(&["policy", "check", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["world"], "placement");
    assert_eq!(v["witVersion"], "0.1.2");
    assert_eq!((&v["fleetUpdates"], &v["explains"]), (&true.into(), &true.into()));
    assert_eq!(v["selfCheck"], "passed");
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    let exports: Vec<&str> = v["exports"].as_array().unwrap().iter().filter_map(|e| e.as_str()).collect();
    assert!(exports.contains(&"mck8s:policy/placer@0.1.2") && exports.contains(&"mck8s:policy/fleet-updates@0.1.2"), "{exports:?}");
}

#[test]
fn check_runs_a_component_built_for_0_1_0_without_fleet_updates() {
    let file = wasm_dir().join("mck8s_guest_wit_0_1_0.wasm");
    let (ok, out, err) = mck8s(&["policy", "check", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((&v["witVersion"], &v["hostWitVersion"], &v["fleetUpdates"], &v["explains"]), (&"0.1.0".into(), &"0.1.2".into(), &false.into(), &false.into()));
    assert_eq!(v["selfCheck"], "passed");
}

#[test]
fn check_refuses_a_snooping_policy_with_a_clear_message() {
    let file = wasm_dir().join("mck8s_guest_wasi_fs.wasm");
    let (ok, _, err) = mck8s(&["policy", "check", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("wasi:filesystem") && err.contains("does not provide"), "{err}");
}

#[test]
fn eval_prints_the_decision_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.yaml");
    std::fs::write(
        &input,
        r#"
fleet:
  clusters:
    - {name: cluster2, nodes: [{cpu: "2", memory: 4Gi}]}
    - {name: cluster3, nodes: [{count: 2, cpu: "4", memory: 8Gi}]}
  rtt: [[cluster2, cluster3, 3.5]]
workload: {name: hello, replicas: 4, locations: cluster2, requests: {cpu: "1", memory: 1Gi}}
"#,
    )
    .unwrap();
    let file = wasm_dir().join("builtin/preferred.wasm");
    let (ok, out, err) = mck8s(&["policy", "eval", file.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let placements = v["placements"].as_array().unwrap();
    assert_eq!(placements.len(), 2, "{out}");
    assert_eq!(placements[1]["cluster"], "cluster3");
    assert_eq!(placements[1]["replicas"], 2);
    assert!(placements[1]["reason"].as_str().unwrap().contains("rtt 3.5 ms"), "{out}");
}

#[test]
fn eval_rejects_a_bad_input_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.yaml");
    std::fs::write(&input, "fleet: {clusters: [{name: a, nodes: [{cpu: lots, memory: 1Gi}]}]}\nworkload: {name: w, replicas: 1}\n").unwrap();
    let file = wasm_dir().join("builtin/worst-fit.wasm");
    let (ok, _, err) = mck8s(&["policy", "eval", file.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("node cpu") && err.contains("lots"), "{err}");
}

#[test]
fn compare_runs_every_builtin_on_the_embedded_default() {
    let dir = wasm_dir().join("builtin");
    let (ok, out, err) = mck8s(&["policy", "compare", "--policies", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    for p in ["worst-fit", "best-fit", "most-traffic", "divided", "preferred (cluster1,cluster4)"] {
        assert!(out.lines().any(|l| l.starts_with(p)), "{p} missing from:\n{out}");
    }
}

#[test]
fn test_runs_cases_and_properties_and_fails_a_bad_policy() {
    let cases = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/placement/auto-worst-fit.yaml");
    let good = wasm_dir().join("builtin/worst-fit.wasm");
    let (ok, out, err) = mck8s(&["policy", "test", good.to_str().unwrap(), cases.to_str().unwrap(), "--properties", "30"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("ok    auto-worst-fit") && out.contains("ok    properties on 30"), "{out}");

    let bad = wasm_dir().join("mck8s_guest_hostile.wasm");
    let (ok, out, _) = mck8s(&["policy", "test", bad.to_str().unwrap(), "--properties", "30", "--param", "mode=pile-up"]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL  properties") && out.contains("slots"), "{out}");
}
