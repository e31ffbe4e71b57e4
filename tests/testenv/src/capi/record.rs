//! `capi-procs.json` in the state dir: every simulated workload cluster and the processes
//! started for it, so that `testenv down` stops them and a restarted `capi-sim` re-adopts them
//! instead of starting duplicates. Changed only under `capi-procs.lock`; `down` holds that lock
//! while it stops `capi-sim`, so no process can be started without being recorded.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::procs::ProcRecord;
use crate::{Error, Result};

pub const FILE: &str = "capi-procs.json";
pub const LOCK_FILE: &str = "capi-procs.lock";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Records {
    /// By `<namespace>/<cluster>`.
    pub clusters: BTreeMap<String, WorkloadRecord>,
}

/// One simulated workload cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadRecord {
    pub namespace: String,
    pub name: String,
    /// UID of the Cluster it belongs to: a recreated Cluster of the same name gets new ones.
    pub uid: String,
    pub slot: u16,
    pub port: u16,
    pub etcd_prefix: String,
    /// Two admin tokens (both `system:masters`): the kubeconfig Secret holds one of them;
    /// rotating switches to the other.
    pub tokens: [String; 2],
    /// Which token the Secret currently holds.
    #[serde(default)]
    pub token_index: usize,
    /// The value of the rotation annotation last acted on.
    #[serde(default)]
    pub rotation_seen: Option<String>,
    /// kube-apiserver, kube-controller-manager, kube-scheduler (the last two once the API
    /// server has answered).
    pub procs: Vec<ProcRecord>,
}

impl WorkloadRecord {
    pub fn token(&self) -> &str {
        &self.tokens[self.token_index % 2]
    }

    pub fn proc(&self, component: &str) -> Option<&ProcRecord> {
        self.procs.iter().find(|p| p.name.ends_with(&format!("/{component}")))
    }
}

/// Held while records change; released on drop.
pub struct RecordLock {
    _file: File,
}

/// Blocks until no one else changes the records.
pub fn lock(dir: &Path) -> Result<RecordLock> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(LOCK_FILE);
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    file.lock().map_err(|e| Error::io(&path, e))?;
    Ok(RecordLock { _file: file })
}

pub fn read(dir: &Path) -> Result<Records> {
    let path = dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| Error::State(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records::default()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Writes atomically (readers never see half a file). Call with the lock held.
pub fn write(dir: &Path, records: &Records) -> Result<()> {
    let path = dir.join(FILE);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(records).map_err(|e| Error::State(e.to_string()))?;
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

/// Read, change, write, under the lock. `f` may start or stop processes: it runs with the
/// lock held, so `down` waits for it.
pub fn update<T>(dir: &Path, f: impl FnOnce(&mut Records) -> Result<T>) -> Result<T> {
    let _lock = lock(dir)?;
    let mut records = read(dir)?;
    let out = f(&mut records);
    // Persist even when `f` failed half-way: whatever it started must stay recorded.
    write(dir, &records)?;
    out
}

/// Every recorded process (for `down` and `status`); empty when there are no records.
pub fn all_procs(dir: &Path) -> Vec<ProcRecord> {
    read(dir).map(|r| r.clusters.into_values().flat_map(|w| w.procs).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_persists_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("mck8s-capi-record-{}", std::process::id()));
        assert!(read(&dir).unwrap().clusters.is_empty());
        let rec = WorkloadRecord {
            namespace: "ns".into(),
            name: "c".into(),
            uid: "u".into(),
            slot: 3,
            port: 26603,
            etcd_prefix: "/p".into(),
            tokens: ["a".into(), "b".into()],
            token_index: 1,
            rotation_seen: None,
            procs: vec![],
        };
        update(&dir, |r| {
            r.clusters.insert("ns/c".into(), rec.clone());
            Ok(())
        })
        .unwrap();
        let back = read(&dir).unwrap();
        assert_eq!(back.clusters["ns/c"], rec);
        assert_eq!(back.clusters["ns/c"].token(), "b");
        assert!(all_procs(&dir).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
