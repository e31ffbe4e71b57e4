//! `mck8s policy test --properties` fails a policy for each property it promises: only
//! known, ready clusters; replicas that add up; no fog cluster over its slots (the hostile
//! guest misbehaves as its `mode` parameter says; determinism is in `new.rs`, a correct
//! policy passing in `cli.rs`).

use std::path::PathBuf;
use std::process::Command;

fn hostile() -> PathBuf {
    mck8s_policy::built::ensure().unwrap_or_else(|e| panic!("{e}"));
    mck8s_policy::built::guest("hostile")
}

fn properties(mode: &str) -> (bool, String) {
    let cache = tempfile::tempdir().unwrap();
    let param = format!("mode={mode}");
    let out = Command::new(env!("CARGO_BIN_EXE_mck8s"))
        .args(["policy", "test", hostile().to_str().unwrap(), "--properties", "30", "--param", &param])
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into())
}

#[test]
fn properties_fail_each_broken_promise() {
    for (mode, says) in [("unknown-cluster", "fleet has"), ("not-ready", "not ready"), ("surplus", "surplus replicas"), ("pile-up", "slots")] {
        let (ok, out) = properties(mode);
        assert!(!ok, "{mode}: {out}");
        assert!(out.contains("FAIL  properties") && out.contains(says), "{mode} should report {says:?}:\n{out}");
    }
}
