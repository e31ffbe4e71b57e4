//! Where things live: binary caches (keyed by version, outside the clone) and the state dir.

use std::path::PathBuf;

#[allow(dead_code)]
pub const KUBE_VERSION: &str = "v1.20.2";
/// Cache key of our build of it (see scripts/testenv.sh `KUBE_BUILD`).
pub const KUBE_BUILD: &str = "v1.20.2-r2";

/// Environment variable naming the state directory of a running environment.
pub const STATE_DIR_ENV: &str = "MCK8S_TESTENV_DIR";

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"))
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("MCK8S_CACHE").map(PathBuf::from).unwrap_or_else(|| home().join(".cache/mck8s"))
}

pub fn kube_bin(name: &str) -> PathBuf {
    cache_dir().join("kube").join(KUBE_BUILD).join(name)
}

/// Helm and kubectl from the PyPI wheel; falls back to whatever is on PATH.
pub fn tool_bin(name: &str) -> PathBuf {
    let cached = cache_dir().join("bin").join(name);
    if cached.exists() { cached } else { PathBuf::from(name) }
}

pub fn default_state_dir() -> PathBuf {
    std::env::var_os(STATE_DIR_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp/mck8s-testenv"))
}
