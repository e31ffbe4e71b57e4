//! Where `scripts/build-policies.sh` puts the components it builds: the built-in policies
//! (`builtin/<name>.wasm`, the registry name is the file stem) and the test guests
//! (`mck8s_guest_<name>.wasm`). One lookup for the tests, the benches, the simulator and the
//! CLI's defaults, so they cannot disagree about the place.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `$MCK8S_WASM_DIR`, else `$CARGO_TARGET_DIR/wasm32-wasip2/policy`, else the same under
/// `~/.cache/mck8s/target` (the default target directory of the repository's scripts).
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MCK8S_WASM_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/mck8s/target"));
    target.join("wasm32-wasip2/policy")
}

/// The built-in policies: `dir()/builtin`.
pub fn builtin_dir() -> PathBuf {
    dir().join("builtin")
}

/// A test guest's component: `dir()/mck8s_guest_<name>.wasm` (`hostile`, `broken`, …).
pub fn guest(name: &str) -> PathBuf {
    dir().join(format!("mck8s_guest_{}.wasm", name.replace('-', "_")))
}

/// For tests and benches: the components, built first when they are missing, so a bare
/// `cargo test` in a crate works on a fresh checkout. Builds at most once per process.
/// Components that exist are used as they are; `scripts/test.sh` rebuilds them before the
/// tests, so they are current there.
pub fn ensure() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = dir();
    let complete = |d: &Path| d.join("builtin/worst-fit.wasm").exists() && d.join("mck8s_guest_hostile.wasm").exists();
    if !complete(&dir) {
        BUILT.get_or_init(build).clone()?;
        if !complete(&dir) {
            return Err(format!("{}: still no components after scripts/build-policies.sh (MCK8S_WASM_DIR points elsewhere?)", dir.display()));
        }
    }
    Ok(dir)
}

/// For tests and benches: the bytes of a component under `ensure()`'s directory, or a panic
/// that says how to build it.
pub fn read(relative: impl AsRef<Path>) -> Vec<u8> {
    let dir = ensure().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; build the components with scripts/build-policies.sh", path.display()))
}

fn build() -> Result<(), String> {
    let script = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/build-policies.sh"));
    let out = std::process::Command::new("bash").arg(script).output().map_err(|e| format!("{}: {e}", script.display()))?;
    if out.status.success() { Ok(()) } else { Err(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim())) }
}
