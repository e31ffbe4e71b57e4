//! mck8s test environment: real Kubernetes control planes (one etcd, an apiserver,
//! controller-manager and scheduler per cluster), simulated kubelets, and optionally real serf
//! agents and a real Prometheus, all on loopback.
//!
//! `testenv up` (see `env`) starts a fleet and records every process it started in the state
//! directory; [`TestEnv`] gives integration tests a client per cluster and a namespace per test.
//! With a `capi` section in the fleet it also runs a simulated Cluster API (`capi`).

pub mod addons;
pub mod capi;
pub mod env;
pub mod fixture;
pub mod fleet;
pub mod kubeconfig;
pub mod kubelet;
pub mod paths;
pub mod pki;
pub mod procs;
pub mod state;

use std::path::{Path, PathBuf};

pub use fixture::{TestEnv, TestNamespace};
pub use fleet::Fleet;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("fleet config: {0}")]
    Config(String),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout { what: String, secs: u64 },
    #[error("no environment is running in {0} (run `scripts/testenv.sh up`)")]
    NotRunning(PathBuf),
    #[error("unknown cluster {0}")]
    UnknownCluster(String),
    #[error("state file: {0}")]
    State(String),
    #[error("{0}")]
    Environment(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
