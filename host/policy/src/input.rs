//! Policy inputs as documents (YAML/JSON, cluster names rather than indices) and their
//! lowering into the WIT records. The lowering interns every name and label once per
//! fleet ([`FleetSnapshot`]) and computes the per-cluster slot counts per workload, so the
//! per-decision payload is flat.

use crate::bindings::{wit, wit_scaling};
use mck8s_capacity::{NodeCapacity, Reservation, Resources, adjusted_free, fits_any_node, parse_bytes, parse_cpu_millis, slots_in, slots_in_cluster};
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
#[serde(rename_all = "lowercase")]
pub enum RoleDoc {
    Fog,
    Cloud,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthDoc {
    #[default]
    Ready,
    NotReady,
    Unreachable,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterDoc {
    pub name: String,
    /// Default: `cloud` when the name contains "cloud" (the mck8s convention), else `fog`.
    #[serde(default)]
    pub role: Option<RoleDoc>,
    #[serde(default)]
    pub health: HealthDoc,
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

pub use crate::snapshot::FleetSnapshot;

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

impl FleetSnapshot {
    pub fn from_doc(doc: &FleetDoc) -> Result<Self, InputError> {
        let clusters = doc.clusters.iter().map(ClusterInput::from_doc).collect::<Result<Vec<_>, InputError>>()?;
        // A document naming a cluster it does not define is a mistake worth reporting.
        for (a, b, _) in &doc.rtt {
            for n in [a, b] {
                if !clusters.iter().any(|c| &c.name == n) {
                    return Err(InputError::Cluster { cluster: n.clone(), what: "named in rtt but not in clusters".into() });
                }
            }
        }
        Self::from_clusters(clusters, &doc.rtt)
    }

    /// Lowers a workload against this fleet: resolves names, computes the total and the
    /// per-cluster slots for its pod shape.
    pub fn workload(&self, w: &WorkloadDoc) -> Result<wit::Workload, InputError> {
        self.workload_adjusted(w, |_| None)
    }

    /// [`Self::workload`] with per-cluster slot adjustments: the workload's own bound pods
    /// freed and other workloads' not-yet-bound replicas reserved (see
    /// [`mck8s_capacity::adjust`]). `adjust(cluster)` returns them for a cluster index.
    pub fn workload_adjusted<'a>(&self, w: &WorkloadDoc, adjust: impl Fn(u32) -> Option<Adjustment<'a>>) -> Result<wit::Workload, InputError> {
        let bad = |what: String| InputError::Workload { workload: w.name.clone(), what };
        let cluster = |name: &str, field: &str| self.index_of(name).ok_or_else(|| bad(format!("{field} names unknown cluster {name:?}")));
        let request = requests_of(w)?;
        let locations = w.locations.as_ref().map(ListOrCsv::items).unwrap_or_default();
        let overrides: Vec<u32> = match &w.replica_overrides {
            None => Vec::new(),
            Some(o) => o.items().iter().map(|s| s.parse::<u32>().map_err(|_| bad(format!("replicaOverrides entry {s:?} is not a replica count")))).collect::<Result<_, _>>()?,
        };
        if !overrides.is_empty() && overrides.len() != locations.len() {
            return Err(bad(format!("replicaOverrides has {} entries for {} locations", overrides.len(), locations.len())));
        }
        let mut preferred = Vec::with_capacity(locations.len());
        for (i, l) in locations.iter().enumerate() {
            let c = cluster(l, "locations")?;
            if preferred.iter().any(|p: &wit::Preference| p.cluster == c) {
                return Err(bad(format!("locations lists {l:?} twice")));
            }
            preferred.push(wit::Preference { cluster: c, replicas: overrides.get(i).copied() });
        }
        let n = w.number_of_locations.unwrap_or(1).max(1);
        let total = if preferred.is_empty() {
            w.replicas.checked_mul(n).ok_or_else(|| bad("replicas × numberOfLocations overflows".into()))?
        } else {
            preferred.iter().map(|p| p.replicas.unwrap_or(w.replicas)).sum()
        };
        let mut current = Vec::with_capacity(w.current.len());
        for (name, r) in &w.current {
            current.push(wit::Assignment { cluster: cluster(name, "current")?, replicas: *r });
        }
        let app_traffic = if w.app_traffic.is_empty() {
            Vec::new()
        } else {
            let mut t = vec![0.0; self.len()];
            for (name, v) in &w.app_traffic {
                t[cluster(name, "appTraffic")? as usize] = *v;
            }
            t
        };
        let (mut slots, fits) = self.capacity_for(&request);
        for (c, slot) in slots.iter_mut().enumerate() {
            if !self.is_ready(c as u32) {
                continue;
            }
            if let Some(a) = adjust(c as u32) {
                let free = adjusted_free(self.nodes(c as u32), a.freed, a.reserved);
                *slot = slots_in(&free, &request);
            }
        }
        let unfit = (0..self.len() as u32).filter(|&c| self.is_ready(c) && !fits[c as usize]).collect();
        Ok(wit::Workload {
            kind: match w.kind {
                KindDoc::Deployment => wit::WorkloadKind::Deployment,
                KindDoc::Job => wit::WorkloadKind::Job,
            },
            name: w.name.clone(),
            namespace: w.namespace.clone(),
            replicas: w.replicas,
            number_of_locations: n,
            total,
            requests: wit::Resources { cpu_millis: request.cpu_millis, memory_bytes: request.memory_bytes },
            extended_requests: request.extended.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            preferred,
            current,
            params: w.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            slots,
            unfit,
            app_traffic,
        })
    }

    /// Per cluster: mck8s slots for `request`, and whether one pod fits an empty node.
    /// Clusters that are not ready get neither.
    pub fn capacity_for(&self, request: &Resources) -> (Vec<u32>, Vec<bool>) {
        self.all_nodes().enumerate().map(|(i, nodes)| if self.is_ready(i as u32) { (slots_in_cluster(nodes, request), fits_any_node(nodes, request)) } else { (0, false) }).unzip()
    }
}

/// One cluster of a live fleet: what [`ClusterDoc`] says, with nodes already lowered.
#[derive(Clone, Debug)]
pub struct ClusterInput {
    pub name: String,
    /// `None`: from the name, as mck8s did.
    pub role: Option<RoleDoc>,
    pub health: HealthDoc,
    pub labels: BTreeMap<String, String>,
    /// Schedulable nodes only.
    pub nodes: Vec<NodeCapacity>,
    pub traffic: f64,
    pub cost: f64,
}

impl ClusterInput {
    pub fn from_doc(c: &ClusterDoc) -> Result<Self, InputError> {
        Ok(ClusterInput { name: c.name.clone(), role: c.role.clone(), health: c.health, labels: c.labels.clone(), nodes: lower_nodes(c)?, traffic: c.traffic, cost: c.cost })
    }
}

/// Slot adjustments for one cluster and one decision.
#[derive(Clone, Copy, Debug, Default)]
pub struct Adjustment<'a> {
    /// `(node index, resources)` of the workload's own bound pods.
    pub freed: &'a [(usize, Resources)],
    /// Other workloads' replicas decided but not yet bound.
    pub reserved: &'a [Reservation],
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
