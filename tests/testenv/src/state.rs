//! The state directory of a running environment: `state.json` (fleet + every process we
//! started), kubeconfigs, PKI, logs and data. Changes happen under an exclusive file lock so
//! concurrent `testenv` invocations and test processes (nextest runs one process per test)
//! never start two environments or lose a PID.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fleet::Fleet;
use crate::procs::ProcRecord;
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub fleet: Fleet,
    pub serf: bool,
    pub prometheus: bool,
    pub procs: Vec<ProcRecord>,
    /// Bearer token of the `admin` user (group `system:masters`) on every apiserver.
    pub admin_token: String,
}

pub struct StateDir {
    pub dir: PathBuf,
}

/// Held while the state is being changed; released on drop.
pub struct StateLock {
    _file: File,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    pub fn lock(&self) -> Result<StateLock> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.dir.join("lock");
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(StateLock { _file: file })
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn read(&self) -> Result<Option<State>> {
        let path = self.state_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| Error::State(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    pub fn write(&self, state: &State) -> Result<()> {
        let path = self.state_file();
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(state).map_err(|e| Error::State(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    pub fn kubeconfig(&self, cluster: &str) -> PathBuf {
        self.dir.join("kubeconfig").join(format!("{cluster}.yaml"))
    }

    pub fn merged_kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig").join("all.yaml")
    }

    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    pub fn sub(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.join(rel)
    }
}

impl State {
    pub fn proc(&self, name: &str) -> Option<&ProcRecord> {
        self.procs.iter().find(|p| p.name == name)
    }

    pub fn replace_proc(&mut self, rec: ProcRecord) {
        match self.procs.iter_mut().find(|p| p.name == rec.name) {
            Some(p) => *p = rec,
            None => self.procs.push(rec),
        }
    }
}
