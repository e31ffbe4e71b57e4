//! On-disk cache of compiled components, keyed by the component's sha256 and the engine's
//! compatibility hash: a restart (or a second controller replica on the node) loads a
//! policy by mmap in well under a millisecond instead of recompiling it.
//!
//! The cache holds at most `max_bytes`: every upload of a new policy version adds a file
//! (several MiB for a large component), and the chart gives the cache a bounded volume, so
//! each write evicts the least recently used files until the total fits. A hit marks its
//! file used (its mtime). Removing a file that a live component maps is safe: the mapping
//! keeps the data until it is dropped.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A temporary file this old was left by a write that died.
const STALE_TMP: Duration = Duration::from_secs(600);

pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
    max_bytes: u64,
}

impl ComponentCache {
    pub fn open(dir: &Path, engine: &Engine, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Only files this process family wrote may be deserialized (that is unsafe on
        // untrusted bytes), so keep the directory private.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        Ok(ComponentCache { dir: dir.to_path_buf(), engine_key: format!("{:016x}", h.finish()), max_bytes })
    }

    pub fn path_for(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    #[allow(unsafe_code, reason = "wasmtime deserializes only trusted precompiled files; see SAFETY below")]
    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path_for(digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `put` below, into a private directory, under a
        // name that includes this engine's compatibility hash.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => {
                // Used now: the last to be evicted.
                if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                Some(c)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unreadable compiled policy");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    pub fn put(&self, digest: &str, component: &Component) {
        let path = self.path_for(digest);
        let result = component.serialize().map_err(|e| std::io::Error::other(format!("{e:#}"))).and_then(|bytes| {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        });
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled policy");
        }
        self.evict(&path);
    }

    /// Removes the least recently used files (never `keep`, the one just written) until the
    /// cache fits in `max_bytes`, and temporary files left by writes that died.
    fn evict(&self, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let now = SystemTime::now();
        let mut files = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let is_tmp = path.extension().is_some_and(|x| x.to_string_lossy().starts_with("tmp"));
            if is_tmp && now.duration_since(used).unwrap_or_default() > STALE_TMP {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            files.push((used, meta.len(), path));
        }
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if path == keep || path.extension().is_none_or(|x| x != "cwasm") {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    total -= len;
                    tracing::info!(path = %path.display(), bytes = len, "evicted a compiled policy from the cache");
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not evict a compiled policy"),
            }
        }
    }

    /// Bytes the cache's files take now.
    pub fn size_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir).map(|d| d.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()).unwrap_or(0)
    }
}
