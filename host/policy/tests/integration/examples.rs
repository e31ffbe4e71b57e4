//! The example policies of `policies/examples/` (even-spread in Rust, C, Python and
//! JavaScript, built by `scripts/build-examples.sh`) through the Wasm host: every one must
//! exist, pass the one shared case directory and the generated-fleet properties, and an
//! interpreted one (too large for a ConfigMap) must load and serve from a directory source.
//! All run with the default limits (100 ms of CPU per call, 64 MiB), as the controller would.

use crate::common;
use mck8s_policy::{DirSource, Limits, LoadedPolicy, PolicyRegistry, cases};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LANGUAGES: &[&str] = &["rust", "c", "python", "js"];

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/examples/cases")
}

fn example(lang: &str) -> Vec<u8> {
    let path = common::wasm_dir().join(format!("examples/even-spread-{lang}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; build the examples with scripts/build-examples.sh", path.display()))
}

fn load(lang: &str) -> Arc<LoadedPolicy> {
    let name = format!("even-spread-{lang}");
    let policy = LoadedPolicy::load(&common::engine(), &name, &example(lang), "test", Limits::default());
    Arc::new(policy.unwrap_or_else(|e| panic!("{lang}: {e}")))
}

fn check_example(lang: &str, policy: &Arc<LoadedPolicy>) {
    assert_eq!(policy.info.name, "even-spread", "{lang}");
    let all = cases::load(&cases_dir()).unwrap();
    assert!(all.len() >= 3, "the shared cases are there");
    let mut failures = Vec::new();
    for (name, case) in &all {
        match cases::run(policy, case) {
            Ok((d, None)) => assert!(d.placements.iter().all(|p| !p.reason.is_empty()), "{lang} {name}: a reason per cluster"),
            Ok((_, Some(diff))) => failures.push(format!("{name}: {diff}")),
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
    }
    assert!(failures.is_empty(), "{lang}:\n{}", failures.join("\n"));
    let violations = cases::check_properties(policy, 40, 7, &BTreeMap::new());
    assert!(violations.is_empty(), "{lang}:\n{}", violations.join("\n"));
}

#[test]
fn rust_example_passes_the_shared_cases() {
    check_example("rust", &load("rust"));
}

#[test]
fn c_example_passes_the_shared_cases() {
    check_example("c", &load("c"));
}

#[test]
fn js_example_passes_the_shared_cases() {
    check_example("js", &load("js"));
}

#[test]
fn every_language_has_an_example_and_a_build() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/examples");
    for lang in LANGUAGES {
        assert!(root.join(lang).is_dir(), "policies/examples/{lang} is missing");
        assert!(common::wasm_dir().join(format!("examples/even-spread-{lang}.wasm")).is_file(), "{lang} was not built");
    }
}

/// Python and JS components are megabytes, past a ConfigMap's 1 MiB: they are deployed as
/// files in a directory (a volume). So the Python example is checked as served by a
/// directory source, picked up after start and written the way a volume update lands (a new
/// file renamed into place).
#[test]
fn python_example_served_from_a_directory_passes_the_shared_cases() {
    let bytes = example("python");
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(PolicyRegistry::new(common::engine()));
    let _source = DirSource::start(registry.clone(), dir.path()).unwrap();
    assert!(registry.get("even-spread").is_err(), "empty directory, no policy yet");

    std::fs::write(dir.path().join(".even-spread.wasm.tmp"), &bytes).unwrap();
    std::fs::rename(dir.path().join(".even-spread.wasm.tmp"), dir.path().join("even-spread.wasm")).unwrap();
    // Liveness bound only: compiling CPython's component takes seconds to a minute on a
    // loaded machine.
    let t = Instant::now();
    while registry.get("even-spread").is_err() {
        assert!(registry.refusals().is_empty(), "refused: {:?}", registry.refusals());
        assert!(t.elapsed() < Duration::from_secs(300), "the directory source never loaded the component");
        std::thread::sleep(Duration::from_millis(20));
    }
    let served = registry.get("even-spread").unwrap();
    assert_eq!(served.size_bytes, bytes.len());
    check_example("python", &served);
}
