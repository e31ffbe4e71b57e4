//! Policy inputs as documents (YAML/JSON, cluster names rather than indices), read into the
//! fleet model ([`ClusterDoc::to_state`]). [`crate::snapshot`] lowers a fleet into the WIT
//! records once; [`crate::workload`] lowers each workload against it.

use crate::bindings::wit_scaling;
use mck8s_capacity::{NodeCapacity, Resources, parse_bytes, parse_cpu_millis};
use mck8s_fleet::{ClusterState, Health, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `mck8s policy eval --input`: a fleet and a workload.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementInput {
    pub fleet: FleetDoc,
    pub workload: WorkloadDoc,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetDoc {
    pub clusters: Vec<ClusterDoc>,
    /// `[a, b, milliseconds]` triples.
    #[serde(default)]
    pub rtt: Vec<(String, String, f32)>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterDoc {
    pub name: String,
    /// Default: `cloud` when the name contains "cloud" (the mck8s convention), else `fog`.
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub health: Health,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub nodes: Vec<NodeDoc>,
    #[serde(default)]
    pub traffic: f64,
    #[serde(default)]
    pub cost: f64,
}

/// One node shape (repeated `count` times) with what is already requested on it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeDoc {
    #[serde(default = "one")]
    pub count: u32,
    pub cpu: Qty,
    pub memory: Qty,
    #[serde(default = "default_pods")]
    pub pods: u64,
    #[serde(default)]
    pub extended: BTreeMap<String, u64>,
    #[serde(default)]
    pub used_cpu: Option<Qty>,
    #[serde(default)]
    pub used_memory: Option<Qty>,
    #[serde(default)]
    pub used_pods: u64,
    #[serde(default)]
    pub used_extended: BTreeMap<String, u64>,
}

/// A quantity written as a string (`"1Gi"`) or a bare YAML number (`4`, `0.5`), as
/// Kubernetes manifests allow.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Qty(pub String);

impl<'de> Deserialize<'de> for Qty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            U(u64),
            F(f64),
        }
        Ok(Qty(match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::U(u) => u.to_string(),
            Raw::F(f) => f.to_string(),
        }))
    }
}

impl std::ops::Deref for Qty {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Qty {
    fn from(s: &str) -> Self {
        Qty(s.to_string())
    }
}

fn one() -> u32 {
    1
}

fn default_pods() -> u64 {
    110
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KindDoc {
    #[default]
    Deployment,
    Job,
}

/// A string `"a, b"` or a list, as mck8s's `locations` and `replicaOverrides` accept.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ListOrCsv {
    Csv(String),
    List(Vec<serde_yaml_ng::Value>),
}

impl ListOrCsv {
    pub fn items(&self) -> Vec<String> {
        match self {
            ListOrCsv::Csv(s) => s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect(),
            ListOrCsv::List(v) => v
                .iter()
                .map(|x| match x {
                    serde_yaml_ng::Value::String(s) => s.trim().to_string(),
                    other => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestsDoc {
    #[serde(default)]
    pub cpu: Option<Qty>,
    #[serde(default)]
    pub memory: Option<Qty>,
    #[serde(default)]
    pub extended: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadDoc {
    #[serde(default)]
    pub kind: KindDoc,
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub replicas: u32,
    #[serde(default)]
    pub number_of_locations: Option<u32>,
    #[serde(default)]
    pub requests: RequestsDoc,
    #[serde(default)]
    pub locations: Option<ListOrCsv>,
    #[serde(default)]
    pub replica_overrides: Option<ListOrCsv>,
    #[serde(default)]
    pub current: BTreeMap<String, u32>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub app_traffic: BTreeMap<String, f64>,
}

fn default_namespace() -> String {
    "default".into()
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cluster {cluster:?}: {what}")]
    Cluster { cluster: String, what: String },
    #[error("workload {workload:?}: {what}")]
    Workload { workload: String, what: String },
    #[error("duplicate cluster name {0:?}")]
    DuplicateCluster(String),
}

/// The per-replica requests of a workload document.
pub fn requests_of(w: &WorkloadDoc) -> Result<Resources, InputError> {
    let bad = |what: String| InputError::Workload { workload: w.name.clone(), what };
    Ok(Resources {
        cpu_millis: w.requests.cpu.as_deref().map(parse_cpu_millis).transpose().map_err(|e| bad(format!("requests.cpu: {e}")))?.unwrap_or(0),
        memory_bytes: w.requests.memory.as_deref().map(parse_bytes).transpose().map_err(|e| bad(format!("requests.memory: {e}")))?.unwrap_or(0),
        pods: 1,
        extended: w.requests.extended.clone(),
    })
}

impl ClusterDoc {
    /// The cluster in the fleet model, with no pods bound (a document states used capacity
    /// per node instead).
    pub fn to_state(&self) -> Result<ClusterState, InputError> {
        Ok(ClusterState {
            name: self.name.clone(),
            role: self.role.clone(),
            health: self.health,
            labels: self.labels.clone(),
            nodes: lower_nodes(self)?,
            owned: Default::default(),
            traffic: self.traffic,
            cost: self.cost,
        })
    }
}

fn lower_nodes(c: &ClusterDoc) -> Result<Vec<NodeCapacity>, InputError> {
    let bad = |what: String| InputError::Cluster { cluster: c.name.clone(), what };
    let mut out = Vec::new();
    for n in &c.nodes {
        let node = NodeCapacity {
            allocatable: Resources {
                cpu_millis: parse_cpu_millis(&n.cpu).map_err(|e| bad(format!("node cpu: {e}")))?,
                memory_bytes: parse_bytes(&n.memory).map_err(|e| bad(format!("node memory: {e}")))?,
                pods: n.pods,
                extended: n.extended.clone(),
            },
            requested: Resources {
                cpu_millis: n.used_cpu.as_deref().map(parse_cpu_millis).transpose().map_err(|e| bad(format!("node usedCpu: {e}")))?.unwrap_or(0),
                memory_bytes: n.used_memory.as_deref().map(parse_bytes).transpose().map_err(|e| bad(format!("node usedMemory: {e}")))?.unwrap_or(0),
                pods: n.used_pods,
                extended: n.used_extended.clone(),
            },
        };
        out.extend(std::iter::repeat_n(node, n.count as usize));
    }
    Ok(out)
}

/// `mck8s policy eval --input` for a scaling policy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalingInput {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub samples: Vec<SampleDoc>,
    pub target_utilization: u32,
    #[serde(default = "one")]
    pub min_replicas: u32,
    #[serde(default = "default_max")]
    pub max_replicas: u32,
    #[serde(default)]
    pub elapsed_seconds: u32,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The previous call's state, as text.
    #[serde(default)]
    pub state: String,
}

fn default_max() -> u32 {
    100
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SampleDoc {
    pub cluster: String,
    pub replicas: u32,
    #[serde(default)]
    pub utilization: Option<f64>,
    #[serde(default)]
    pub traffic: Option<f64>,
}

impl ScalingInput {
    pub fn to_wit(&self) -> wit_scaling::ScalingRequest {
        wit_scaling::ScalingRequest {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            samples: self
                .samples
                .iter()
                .map(|s| wit_scaling::ClusterSample { cluster: s.cluster.clone(), replicas: s.replicas, utilization: s.utilization, traffic: s.traffic })
                .collect(),
            target_utilization: self.target_utilization,
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            elapsed_seconds: self.elapsed_seconds,
            params: self.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            state: self.state.clone().into_bytes(),
        }
    }
}
