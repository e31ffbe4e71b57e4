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
        let fleet: Fleet = serde_yaml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
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
            let ok = !c.name.is_empty()
                && c.name.len() <= 40
                && c.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(Error::Config(format!("cluster name {:?} is not a DNS label", c.name)));
            }
            if !seen.insert(&c.name) {
                return Err(Error::Config(format!("cluster {} appears twice", c.name)));
            }
        }
        Ok(())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_fleet_round_trips_through_yaml() {
        let fleet = Fleet::default_fleet();
        fleet.validate().unwrap();
        let text = serde_yaml::to_string(&fleet).unwrap();
        let back: Fleet = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, fleet);
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let fleet: Fleet = serde_yaml::from_str("clusters: [{name: a, role: fog}]").unwrap();
        assert_eq!(fleet.base_port, 26000);
        assert_eq!(fleet.clusters[0].nodes, 2);
        assert_eq!(fleet.clusters[0].node_names(), ["a-node0", "a-node1"]);
    }

    #[test]
    fn rejects_duplicate_and_bad_names() {
        let dup: Fleet =
            serde_yaml::from_str("clusters: [{name: a, role: fog}, {name: a, role: fog}]").unwrap();
        assert!(dup.validate().is_err());
        let bad: Fleet = serde_yaml::from_str("clusters: [{name: A_b, role: fog}]").unwrap();
        assert!(bad.validate().is_err());
    }
}
