//! Policy sources. [`DirSource`] serves a directory of `.wasm` files (a volume, or a
//! ConfigMap mounted as one) and follows changes with inotify: each burst of events
//! triggers a rescan, which handles plain writes, atomic renames and the `..data` symlink
//! swap Kubernetes uses for ConfigMap volumes alike.
//!
//! A file `<name>.shadow-of` next to `<name>.wasm` holds the name of the policy `<name>`
//! shadows (see `PolicyRegistry::set_shadow`).

use crate::registry::PolicyRegistry;
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// Events closer together than this are handled as one rescan.
const DEBOUNCE: Duration = Duration::from_millis(50);

pub struct DirSource {
    _watcher: notify::RecommendedWatcher,
    dir: PathBuf,
}

impl DirSource {
    /// Loads every `*.wasm` in `dir` (the file stem is the policy name), then follows changes
    /// until dropped.
    pub fn start(registry: Arc<PolicyRegistry>, dir: &Path) -> anyhow::Result<DirSource> {
        let dir = dir.to_path_buf();
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok() {
                let _ = tx.send(());
            }
        })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        let mut known = BTreeMap::new();
        rescan(&registry, &dir, &mut known);
        let worker_dir = dir.clone();
        std::thread::Builder::new().name("mck8s-policy-dir".into()).spawn(move || {
            while rx.recv().is_ok() {
                while rx.recv_timeout(DEBOUNCE).is_ok() {}
                rescan(&registry, &worker_dir, &mut known);
            }
        })?;
        Ok(DirSource { _watcher: watcher, dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn origin_of(path: &Path) -> String {
    format!("dir:{}", path.display())
}

/// Brings the registry in line with the directory. `known` maps policy names this source
/// loaded to their origin, so removals only touch its own.
fn rescan(registry: &PolicyRegistry, dir: &Path, known: &mut BTreeMap<String, String>) {
    let mut present = BTreeMap::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(stem) = wasm_stem(&path) else { continue };
                // Follows symlinks, so ConfigMap volumes (`name -> ..data/name`) work.
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        let origin = origin_of(&path);
                        // Errors are logged and recorded by the registry; the old version serves on.
                        let _ = registry.upsert(&stem, &bytes, &origin);
                        let shadow_of = std::fs::read_to_string(dir.join(format!("{stem}.shadow-of"))).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
                        registry.set_shadow(&stem, shadow_of.as_deref());
                        present.insert(crate::registry::normalize(&stem), origin);
                    }
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot read policy file"),
                }
            }
        }
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot read policy directory"),
    }
    for (name, origin) in known.iter() {
        if !present.contains_key(name) {
            registry.remove(name, origin);
        }
    }
    *known = present;
}

fn wasm_stem(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    name.strip_suffix(".wasm").map(str::to_string)
}
