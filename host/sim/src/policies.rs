//! Loading policies into a registry: the built-ins from the directory
//! `scripts/build-policies.sh` writes, and users' components from files.

use crate::SimError;
use mck8s_policy::{EngineConfig, PolicyEngine, PolicyKind, PolicyRegistry};
use std::path::{Path, PathBuf};

/// Where the built-in components are ([`mck8s_policy::built::builtin_dir`]).
pub fn builtin_dir() -> PathBuf {
    mck8s_policy::built::builtin_dir()
}

pub fn new_registry() -> Result<PolicyRegistry, SimError> {
    let engine = PolicyEngine::new(EngineConfig::default()).map_err(|e| SimError::Engine(format!("{e:#}")))?;
    Ok(PolicyRegistry::new(engine))
}

/// Loads every `.wasm` in `dir` under its file stem; returns the placement policies' names.
pub fn load_dir(registry: &PolicyRegistry, dir: &Path) -> Result<Vec<String>, SimError> {
    let io = |e| SimError::Io { path: format!("{} (build the built-ins with scripts/build-policies.sh)", dir.display()), source: e };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "wasm")).collect();
    files.sort();
    let mut placement = Vec::new();
    for f in files {
        let name = stem(&f);
        let p = load_as(registry, &f, &name)?;
        if p == PolicyKind::Placement {
            placement.push(mck8s_policy::registry::normalize(&name));
        }
    }
    Ok(placement)
}

/// Loads a user's component under its file stem (or `<stem>-file` when a built-in has that
/// name); returns the registry name.
pub fn load_file(registry: &PolicyRegistry, file: &Path) -> Result<String, SimError> {
    let mut name = mck8s_policy::registry::normalize(&stem(file));
    if registry.get(&name).is_ok() {
        name = format!("{name}-file");
    }
    load_as(registry, file, &name)?;
    Ok(name)
}

fn load_as(registry: &PolicyRegistry, file: &Path, name: &str) -> Result<PolicyKind, SimError> {
    let bytes = std::fs::read(file).map_err(|e| SimError::Io { path: file.display().to_string(), source: e })?;
    Ok(registry.upsert(name, &bytes, &format!("file:{}", file.display()))?.kind)
}

fn stem(p: &Path) -> String {
    p.file_stem().and_then(|s| s.to_str()).unwrap_or("policy").to_string()
}
