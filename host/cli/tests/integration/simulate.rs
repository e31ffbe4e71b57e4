//! `mck8s simulate`, run as a user would: the embedded default with a user's component next to
//! built-ins, JSON and charts written; an unknown policy is a clear error.

use std::path::PathBuf;
use std::process::Command;

fn builtin(name: &str) -> PathBuf {
    mck8s_policy::built::ensure().unwrap_or_else(|e| panic!("{e}")).join("builtin").join(format!("{name}.wasm"))
}

fn mck8s(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mck8s")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn simulate_compares_a_user_component_with_built_ins_and_writes_json_and_charts() {
    let tmp = tempfile::tempdir().unwrap();
    // A user's component: the best-fit built-in under another name.
    let mine = tmp.path().join("mine.wasm");
    std::fs::copy(builtin("best-fit"), &mine).unwrap();
    let (json, charts) = (tmp.path().join("out.json"), tmp.path().join("charts"));
    let (ok, out, err) =
        mck8s(&["simulate", "--only", "worst-fit,kubefed-even", "--policy", mine.to_str().unwrap(), "--json", json.to_str().unwrap(), "--charts", charts.to_str().unwrap()]);
    assert!(ok, "{err}");
    for p in ["worst-fit", "kubefed-even", "mine"] {
        assert!(out.lines().any(|l| l.starts_with(&format!("| {p} |"))), "{p} missing:\n{out}");
    }
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(doc["scenario"]["name"], "paper-like");
    // The copy decides like best-fit itself: the same numbers, but for the timing column.
    let (ok, out_bf, err) = mck8s(&["simulate", "--only", "best-fit"]);
    assert!(ok, "{err}");
    let cells = |l: &str| l.split('|').map(|c| c.trim().to_string()).collect::<Vec<String>>();
    let row = |text: &str, p: &str| {
        // Drop the policy name and the timing column, found by its header so new columns don't shift it.
        let header = cells(text.lines().find(|l| l.starts_with("| policy |")).unwrap());
        let timing = header.iter().position(|c| c == "decisions/s").expect("a decisions/s column");
        let mut row = cells(text.lines().find(|l| l.starts_with(&format!("| {p} |"))).unwrap());
        row.remove(timing);
        row.remove(1);
        row
    };
    assert_eq!(row(&out, "mine"), row(&out_bf, "best-fit"));
    let svgs = std::fs::read_dir(&charts).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "svg")).count();
    assert_eq!(svgs, 2 * 3 + 1);
}

#[test]
fn simulate_names_the_loaded_policies_when_one_is_unknown() {
    let (ok, _, err) = mck8s(&["simulate", "--only", "no-such-policy"]);
    assert!(!ok);
    assert!(err.contains("no policy named \"no-such-policy\"") && err.contains("worst-fit") && err.contains("kubefed-even"), "{err}");
}

#[test]
fn simulate_rejects_a_scenario_naming_an_unknown_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("s.yaml");
    std::fs::write(&f, "name: s\ndurationSeconds: 60\nclusters: [{name: a, nodes: [{cpu: 1, memory: 1Gi}]}]\nworkloads: []\nfailures: [{cluster: b, at: 5}]\n").unwrap();
    let (ok, _, err) = mck8s(&["simulate", f.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("unknown cluster \"b\""), "{err}");
}
