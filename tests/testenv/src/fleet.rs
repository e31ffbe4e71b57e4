//! The fleet description: which clusters to start and what their simulated nodes look like.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A fleet file, e.g. `tests/testenv/fleet.yaml`. Every field has a default so that a file can
/// name only what it changes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// First loopback port; every component's port is derived from it (see `Ports`).
    #[serde(default = "default_base_port")]
    pub base_port: u16,
    /// How long a simulated Job pod runs before it succeeds, unless the pod's
    /// `sim.mck8s.io/duration-seconds` annotation says otherwise.
    #[serde(default = "default_job_seconds")]
    pub job_duration_seconds: f64,
    pub clusters: Vec<ClusterSpec>,
    /// The simulated Cluster API (`testenv capi-sim`, see `crate::capi`); absent = not started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capi: Option<CapiSim>,
}

/// Delays and flavors of the simulated Cluster API. Delays are per step and are multiplied by
/// a cluster's fault `slow_factor`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CapiSim {
    /// Cluster created -> infrastructure provisioned, endpoint set, kubeconfig Secret published.
    #[serde(default = "default_capi_delay")]
    pub infra_delay_ms: u64,
    /// The workload API server answers -> ControlPlaneInitialized/Available.
    #[serde(default = "default_capi_delay")]
    pub control_plane_delay_ms: u64,
    /// Per Machine phase step (Pending -> Provisioning -> Provisioned -> Running) and for the
    /// infrastructure deletion of a Machine.
    #[serde(default = "default_capi_delay")]
    pub machine_delay_ms: u64,
    /// Between the stages of a Cluster deletion.
    #[serde(default = "default_deletion_step")]
    pub deletion_step_ms: u64,
    /// Worker capacity by flavor name (the ClusterClass variable `workerFlavor`).
    #[serde(default = "default_flavors")]
    pub flavors: BTreeMap<String, Flavor>,
}

/// What a simulated cloud instance type gives a Node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Flavor {
    pub cpu: String,
    pub memory: String,
    #[serde(default = "default_flavor_pods")]
    pub pods: String,
}

/// The flavor used when a Cluster names none (`workerFlavor` unset).
pub const DEFAULT_FLAVOR: &str = "k8s.large";

impl Default for CapiSim {
    fn default() -> Self {
        CapiSim {
            infra_delay_ms: default_capi_delay(),
            control_plane_delay_ms: default_capi_delay(),
            machine_delay_ms: default_capi_delay(),
            deletion_step_ms: default_deletion_step(),
            flavors: default_flavors(),
        }
    }
}

fn default_capi_delay() -> u64 {
    300
}
fn default_deletion_step() -> u64 {
    200
}
fn default_flavor_pods() -> String {
    "110".into()
}
/// The OpenStack-like table the original mck8s sized cloud clusters with.
fn default_flavors() -> BTreeMap<String, Flavor> {
    [("k8s.small", "2", "8Gi"), ("k8s.medium", "4", "16Gi"), ("k8s.large", "8", "32Gi"), ("k8s.xlarge", "16", "64Gi")]
        .into_iter()
        .map(|(name, cpu, memory)| (name.to_string(), Flavor { cpu: cpu.into(), memory: memory.into(), pods: default_flavor_pods() }))
        .collect()
}

impl CapiSim {
    /// The flavor called `name`, else the default one (a table without it gets 8 CPU / 32Gi).
    pub fn flavor(&self, name: Option<&str>) -> (String, Flavor) {
        let wanted = name.unwrap_or(DEFAULT_FLAVOR);
        if let Some(f) = self.flavors.get(wanted) {
            return (wanted.to_string(), f.clone());
        }
        let fallback = self.flavors.get(DEFAULT_FLAVOR).cloned().unwrap_or_else(|| default_flavors()[DEFAULT_FLAVOR].clone());
        (DEFAULT_FLAVOR.to_string(), fallback)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: String,
    /// `management`, `fog` or `cloud` (the mck8s roles); becomes the node label `mck8s.io/role`.
    pub role: String,
    /// Becomes the node label `topology.kubernetes.io/region`.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default = "default_nodes")]
    pub nodes: u32,
    #[serde(default)]
    pub capacity: Capacity,
    /// Extra labels on every node of the cluster.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Load each Running pod generates unless its annotations say otherwise.
    #[serde(default)]
    pub load: Load,
    /// Serve `metrics.k8s.io` (PodMetrics from the simulated load) through the cluster's API
    /// server, as a metrics-server would.
    #[serde(default)]
    pub metrics_api: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub cpu: String,
    pub memory: String,
    pub pods: String,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity { cpu: "4".into(), memory: "8Gi".into(), pods: "110".into() }
    }
}

/// Simulated per-pod load, exported as cAdvisor-style counters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// CPU cores each pod uses (`sim.mck8s.io/cpu` overrides per pod).
    pub cpu: f64,
    /// Bytes per second each pod receives (`sim.mck8s.io/rx-bytes-per-second` overrides).
    pub rx_bytes_per_second: f64,
}

impl Default for Load {
    fn default() -> Self {
        Load { cpu: 0.1, rx_bytes_per_second: 1000.0 }
    }
}

fn default_base_port() -> u16 {
    26000
}
fn default_job_seconds() -> f64 {
    3.0
}
fn default_nodes() -> u32 {
    2
}

impl Fleet {
    pub fn load(path: &Path) -> Result<Fleet, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let fleet: Fleet = serde_yaml_ng::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        fleet.validate()?;
        Ok(fleet)
    }

    /// The default fleet: management `cluster0`, fog `cluster1`..`cluster3`, cloud `cloud1`.
    pub fn default_fleet() -> Fleet {
        let fog = |n: u32, region: &str| ClusterSpec {
            name: format!("cluster{n}"),
            role: "fog".into(),
            region: Some(region.into()),
            nodes: 2,
            capacity: Capacity { cpu: "2".into(), memory: "4Gi".into(), pods: "50".into() },
            labels: BTreeMap::new(),
            load: Load::default(),
            // One fog cluster serves metrics.k8s.io, so both of the autoscaler's sources run.
            metrics_api: n == 3,
        };
        Fleet {
            base_port: default_base_port(),
            job_duration_seconds: default_job_seconds(),
            clusters: vec![
                ClusterSpec {
                    name: "cluster0".into(),
                    role: "management".into(),
                    region: Some("eu-central".into()),
                    nodes: 1,
                    capacity: Capacity::default(),
                    labels: BTreeMap::new(),
                    load: Load::default(),
                    metrics_api: false,
                },
                fog(1, "eu-west"),
                fog(2, "eu-central"),
                fog(3, "eu-north"),
                ClusterSpec {
                    name: "cloud1".into(),
                    role: "cloud".into(),
                    region: Some("eu-central".into()),
                    nodes: 3,
                    capacity: Capacity { cpu: "16".into(), memory: "64Gi".into(), pods: "110".into() },
                    labels: BTreeMap::new(),
                    load: Load::default(),
                    metrics_api: false,
                },
            ],
            // Small delays: tests see every phase, in seconds rather than minutes.
            capi: Some(CapiSim::default()),
        }
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.clusters.is_empty() {
            return Err(Error::Config("a fleet needs at least one cluster".into()));
        }
        if self.clusters.len() > 90 {
            return Err(Error::Config("at most 90 clusters (port layout)".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.clusters {
            let ok = !c.name.is_empty() && c.name.len() <= 40 && c.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(Error::Config(format!("cluster name {:?} is not a DNS label", c.name)));
            }
            if !seen.insert(&c.name) {
                return Err(Error::Config(format!("cluster {} appears twice", c.name)));
            }
        }
        Ok(())
    }

    /// The cluster with role `management`, else the first one: where Cluster API objects live.
    pub fn management(&self) -> Option<&ClusterSpec> {
        self.clusters.iter().find(|c| c.role == "management").or(self.clusters.first())
    }

    pub fn cluster(&self, name: &str) -> Option<&ClusterSpec> {
        self.clusters.iter().find(|c| c.name == name)
    }

    pub fn ports(&self) -> Ports {
        Ports { base: self.base_port }
    }
}

impl ClusterSpec {
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes).map(|i| format!("{}-node{i}", self.name)).collect()
    }
}

/// Loopback port layout, derived from one base so that two environments with different bases
/// can run side by side.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    base: u16,
}

impl Ports {
    pub fn etcd_client(&self) -> u16 {
        self.base
    }
    pub fn etcd_peer(&self) -> u16 {
        self.base + 1
    }
    pub fn prometheus(&self) -> u16 {
        self.base + 90
    }
    pub fn apiserver(&self, index: usize) -> u16 {
        self.base + 100 + index as u16
    }
    pub fn kubelet(&self, index: usize) -> u16 {
        self.base + 200 + index as u16
    }
    pub fn serf_bind(&self, index: usize) -> u16 {
        self.base + 300 + index as u16
    }
    pub fn serf_rpc(&self, index: usize) -> u16 {
        self.base + 400 + index as u16
    }
    pub fn metrics_api(&self, index: usize) -> u16 {
        self.base + 500 + index as u16
    }
    /// API server of the simulated Cluster API's workload cluster in `slot`.
    pub fn capi_apiserver(&self, slot: u16) -> u16 {
        self.base + 600 + slot
    }
}

/// How many simulated Cluster API workload clusters can run at once (ports base+600..+649).
pub const CAPI_SLOTS: u16 = 50;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_fleet_round_trips_through_yaml() {
        let fleet = Fleet::default_fleet();
        fleet.validate().unwrap();
        let text = serde_yaml_ng::to_string(&fleet).unwrap();
        let back: Fleet = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, fleet);
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let fleet: Fleet = serde_yaml_ng::from_str("clusters: [{name: a, role: fog}]").unwrap();
        assert_eq!(fleet.base_port, 26000);
        assert_eq!(fleet.clusters[0].nodes, 2);
        assert_eq!(fleet.clusters[0].node_names(), ["a-node0", "a-node1"]);
    }

    #[test]
    fn capi_section_defaults_and_flavors() {
        let fleet: Fleet = serde_yaml_ng::from_str("clusters: [{name: a, role: management}]\ncapi: {machine_delay_ms: 50}").unwrap();
        let capi = fleet.capi.unwrap();
        assert_eq!((capi.infra_delay_ms, capi.machine_delay_ms, capi.deletion_step_ms), (300, 50, 200));
        let (name, large) = capi.flavor(None);
        assert_eq!((name.as_str(), large.cpu.as_str(), large.memory.as_str(), large.pods.as_str()), ("k8s.large", "8", "32Gi", "110"));
        assert_eq!(capi.flavor(Some("k8s.small")).1.cpu, "2");
        assert_eq!(capi.flavor(Some("nope")).0, "k8s.large");
        assert!(serde_yaml_ng::from_str::<Fleet>("clusters: [{name: a, role: fog}]\ncapi: {typo: 1}").is_err());
        let none: Fleet = serde_yaml_ng::from_str("clusters: [{name: a, role: fog}]").unwrap();
        assert!(none.capi.is_none());
        assert!(Fleet::default_fleet().capi.is_some());
    }

    #[test]
    fn rejects_duplicate_and_bad_names() {
        let dup: Fleet = serde_yaml_ng::from_str("clusters: [{name: a, role: fog}, {name: a, role: fog}]").unwrap();
        assert!(dup.validate().is_err());
        let bad: Fleet = serde_yaml_ng::from_str("clusters: [{name: A_b, role: fog}]").unwrap();
        assert!(bad.validate().is_err());
    }
}
