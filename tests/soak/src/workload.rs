//! The steady stream of user operations: MultiClusterDeployments created, scaled and
//! deleted (half of them with a MultiClusterService), MultiClusterJobs created and deleted.
//! An operation that fails because the management API server is down is counted, not fatal.

use crate::Rng;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use mck8s_api::{MultiClusterDeployment, MultiClusterJob, MultiClusterService};
use std::collections::BTreeMap;

pub const MCDS: usize = 8;
const STEP: std::time::Duration = std::time::Duration::from_secs(10);
pub const MCJS: usize = 3;
/// Policies the MCDs name; `house` is the one the soak breaks and restores.
pub const POLICIES: [&str; 3] = ["worst-fit", "best-fit", "house"];

#[derive(Default)]
pub struct Ops {
    pub done: BTreeMap<&'static str, u64>,
    pub failed: u64,
}

pub struct Workload {
    mcds: Api<MultiClusterDeployment>,
    mcss: Api<MultiClusterService>,
    mcjs: Api<MultiClusterJob>,
    pub ops: Ops,
    /// When each MCD was last created, scaled or deleted.
    pub touched: BTreeMap<String, std::time::Instant>,
}

fn mcd(name: &str, replicas: u32, policy: &str) -> MultiClusterDeployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "fogguru.eu/v1", "kind": "MultiClusterDeployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "placementPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}
        }
    }))
    .expect("static")
}

fn mcs(name: &str) -> MultiClusterService {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "fogguru.eu/v1", "kind": "MultiClusterService",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}
    }))
    .expect("static")
}

fn mcj(name: &str, locations: u32) -> MultiClusterJob {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "fogguru.eu/v1", "kind": "MultiClusterJob",
        "metadata": {"name": name},
        "spec": {
            "numberOfLocations": locations, "placementPolicy": "worst-fit",
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]}}
        }
    }))
    .expect("static")
}

impl Workload {
    pub fn new(client: kube::Client, ns: &str) -> Self {
        Workload {
            mcds: Api::namespaced(client.clone(), ns),
            mcss: Api::namespaced(client.clone(), ns),
            mcjs: Api::namespaced(client, ns),
            ops: Ops::default(),
            touched: BTreeMap::new(),
        }
    }

    /// One random operation, given at most 10 s (the management API server may be frozen:
    /// a hung operation must not hold up the soak, which thaws it).
    pub async fn step(&mut self, rng: &mut Rng) {
        let op = rng.below(10);
        let r = if op < 7 { tokio::time::timeout(STEP, self.mcd_op(rng)).await } else { tokio::time::timeout(STEP, self.mcj_op(rng)).await };
        match r {
            Ok(Ok(Some(what))) => *self.ops.done.entry(what).or_default() += 1,
            Ok(Ok(None)) => {}
            Ok(Err(_)) | Err(_) => self.ops.failed += 1,
        }
    }

    async fn mcd_op(&mut self, rng: &mut Rng) -> Result<Option<&'static str>, kube::Error> {
        let name = format!("soak-{}", rng.below(MCDS as u64));
        // Marked before the call: a write that times out may still have happened.
        self.touched.insert(name.clone(), std::time::Instant::now());
        let existing = self.mcds.get_opt(&name).await?;
        match existing {
            None => {
                let policy = POLICIES[rng.below(POLICIES.len() as u64) as usize];
                self.mcds.create(&PostParams::default(), &mcd(&name, 1 + rng.below(3) as u32, policy)).await?;
                if rng.below(2) == 0 && self.mcss.get_opt(&name).await?.is_none() {
                    self.mcss.create(&PostParams::default(), &mcs(&name)).await?;
                }
                Ok(Some("mcd create"))
            }
            Some(m) if m.metadata.deletion_timestamp.is_some() => Ok(None),
            Some(_) if rng.below(3) == 0 => {
                self.mcds.delete(&name, &DeleteParams::default()).await?;
                if self.mcss.get_opt(&name).await?.is_some() {
                    self.mcss.delete(&name, &DeleteParams::default()).await?;
                }
                Ok(Some("mcd delete"))
            }
            Some(_) => {
                let patch = serde_json::json!({"spec": {"replicas": 1 + rng.below(4)}});
                self.mcds.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                Ok(Some("mcd scale"))
            }
        }
    }

    async fn mcj_op(&mut self, rng: &mut Rng) -> Result<Option<&'static str>, kube::Error> {
        let name = format!("soak-job-{}", rng.below(MCJS as u64));
        match self.mcjs.get_opt(&name).await? {
            None => {
                self.mcjs.create(&PostParams::default(), &mcj(&name, 1 + rng.below(2) as u32)).await?;
                Ok(Some("mcj create"))
            }
            Some(j) if j.metadata.deletion_timestamp.is_none() && rng.below(2) == 0 => {
                self.mcjs.delete(&name, &DeleteParams::default()).await?;
                Ok(Some("mcj delete"))
            }
            Some(_) => Ok(None),
        }
    }
}
