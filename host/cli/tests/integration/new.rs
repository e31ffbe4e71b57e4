//! `mck8s policy new`: the project it writes is the example of `policies/examples/` under the
//! new name, and it builds and passes its cases with the toolchains `scripts/build-examples.sh`
//! installs. Also: the property checks of `policy test --properties` fail a policy that
//! answers the same input differently, built here from the C template.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where `scripts/build-examples.sh` installs wit-bindgen, componentize-py, wasm-tools and
/// componentize-js.
fn toolchains() -> PathBuf {
    let cache = std::env::var_os("MCK8S_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/mck8s"));
    let tc = cache.join("toolchains");
    assert!(tc.join("python/bin/componentize-py").is_file(), "{}: run scripts/build-examples.sh first", tc.display());
    tc
}

fn mck8s(args: &[&str]) -> (bool, String, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mck8s")).args(args).env("XDG_CACHE_HOME", cache.path()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn scaffold(lang: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    let (ok, out, err) = mck8s(&["policy", "new", lang, name, "--dir", dir.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("wrote") && out.contains("next"), "{out}");
    (tmp, dir)
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// Runs the project's build.sh with the cached toolchains on PATH, then `policy test` on its
/// own cases.
fn build_and_test(dir: &Path) {
    let tc = toolchains();
    let path = format!("{}:{}:{}", tc.join("wit-bindgen/bin").display(), tc.join("python/bin").display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash").arg(dir.join("build.sh")).arg(dir.join("policy.wasm")).env("PATH", path).env("NODE_MODULES", tc.join("node/node_modules")).output().unwrap();
    assert!(out.status.success(), "build failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let wasm = dir.join("policy.wasm");
    let (ok, out, err) = mck8s(&["policy", "test", wasm.to_str().unwrap(), dir.join("cases").to_str().unwrap(), "--properties", "20"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("3 passed") || out.contains("4 passed"), "{out}");
}

#[test]
fn every_language_scaffolds_the_example_under_the_new_name() {
    for (lang, source, example) in
        [("rust", "src/lib.rs", "rust/src/lib.rs"), ("c", "policy.c", "c/even_spread.c"), ("python", "policy.py", "python/policy.py"), ("js", "policy.js", "js/policy.js")]
    {
        let (_tmp, dir) = scaffold(lang, "my-policy");
        let expected = read(repo().join("policies/examples").join(example)).replace("even-spread", "my-policy");
        assert_eq!(read(dir.join(source)), expected, "{lang}");
        assert!(read(dir.join("README.md")).contains("my-policy"), "{lang}");
        assert!(read(dir.join("cases/spread-round-robin.yaml")).contains("policy: my-policy"), "{lang}");
        if lang == "rust" {
            let manifest = read(dir.join("Cargo.toml"));
            assert!(manifest.contains("name = \"my-policy\"") && manifest.contains("[workspace]"), "{manifest}");
            assert!(read(dir.join("tests/cases.rs")).contains("my_policy::EvenSpread"));
        } else {
            assert_eq!(read(dir.join("wit/types.wit")), read(repo().join("wit/types.wit")), "{lang}");
        }
    }
}

#[test]
fn new_refuses_a_bad_name_and_a_non_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = mck8s(&["policy", "new", "c", "Bad_Name", "--dir", tmp.path().join("x").to_str().unwrap()]);
    assert!(!ok && err.contains("lowercase"), "{err}");
    std::fs::write(tmp.path().join("keep"), "").unwrap();
    let (ok, _, err) = mck8s(&["policy", "new", "c", "fine", "--dir", tmp.path().to_str().unwrap()]);
    assert!(!ok && err.contains("not empty"), "{err}");
    assert!(std::fs::read_dir(tmp.path()).unwrap().count() == 1, "nothing written");
}

#[test]
fn scaffolded_c_project_builds_and_passes_its_cases() {
    let (_tmp, dir) = scaffold("c", "c-demo");
    build_and_test(&dir);
}

#[test]
fn scaffolded_python_project_builds_and_passes_its_cases() {
    let (_tmp, dir) = scaffold("python", "py-demo");
    build_and_test(&dir);
}

#[test]
fn scaffolded_js_project_builds_and_passes_its_cases() {
    let (_tmp, dir) = scaffold("js", "js-demo");
    build_and_test(&dir);
}

/// A policy whose summary counts its calls: valid every time, but a second call in the same
/// instance answers differently, which `--properties` must report.
#[test]
fn properties_fail_a_policy_that_answers_the_same_input_differently() {
    let (_tmp, dir) = scaffold("c", "drift");
    let source = read(dir.join("policy.c"));
    let patched = source.replacen("static bool have_fleet = false;", "static bool have_fleet = false;\nstatic uint32_t calls = 0;", 1).replacen(
        "put_str(p, \" unplaced\");",
        "p = put_str(p, \" unplaced, call \");\n  put_u32(p, ++calls);",
        1,
    );
    assert!(patched.contains("++calls") && patched.contains("static uint32_t calls"), "the C template changed: update this test");
    std::fs::write(dir.join("policy.c"), patched).unwrap();
    let err = std::panic::catch_unwind(|| build_and_test(&dir)).expect_err("a drifting policy must fail");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("FAIL  properties") && msg.contains("decided differently"), "{msg}");
}
