//! The simulated kubelet: one process per cluster, playing the kubelet for all of the cluster's
//! nodes. It registers Nodes, keeps their Ready conditions and Leases fresh, runs bound pods
//! (Running and Ready with a pod IP), completes Job pods after a configurable time, finishes
//! graceful deletions, and serves per-pod load as Prometheus metrics plus a small control API
//! for node loss (`POST /nodes/NAME/lose`, `POST /nodes/NAME/restore`). In a cluster with
//! `metrics_api: true` it also plays metrics-server: `metrics.k8s.io/v1beta1` PodMetrics,
//! aggregated by the cluster's real API server.
//!
//! The same simulation also runs in-process ([`KubeletHandle`]) for clusters whose nodes come
//! and go at run time: the simulated Cluster API (`crate::capi`) adds a Node per Machine.

mod http;
mod metrics;
mod metrics_api;
mod nodes;
mod pods;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::fleet::{Capacity, ClusterSpec, Load};
use crate::kubeconfig;
use crate::state::StateDir;
use crate::{Error, Result};

pub use metrics::{CPU_METRIC, RX_METRIC};

/// Pod annotations that override the cluster's default load and Job duration.
pub const ANN_CPU: &str = "sim.mck8s.io/cpu";
pub const ANN_RX: &str = "sim.mck8s.io/rx-bytes-per-second";
pub const ANN_DURATION: &str = "sim.mck8s.io/duration-seconds";

/// True if the Node's Ready condition is True.
pub fn node_is_ready(node: Option<&Node>) -> bool {
    node.and_then(|n| n.status.as_ref()).and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready")).is_some_and(|c| c.status == "True")
}

/// What one simulated node reports: capacity, metadata and the taints it registers with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeProfile {
    pub capacity: Capacity,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Set at registration (the field is immutable afterwards), as a cloud provider does.
    pub provider_id: Option<String>,
    /// Kept on the node besides the loss taints (e.g. a control-plane NoSchedule taint).
    pub taints: Vec<Taint>,
}

impl NodeProfile {
    /// A fleet cluster's node: the fleet's capacity and labels, no taints.
    pub fn for_fleet_node(spec: &ClusterSpec, name: &str) -> NodeProfile {
        let mut labels: BTreeMap<String, String> = [
            ("kubernetes.io/hostname", name),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("mck8s.io/cluster", spec.name.as_str()),
            ("mck8s.io/role", spec.role.as_str()),
            ("mck8s.io/simulated", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(region) = &spec.region {
            labels.insert("topology.kubernetes.io/region".into(), region.clone());
        }
        labels.extend(spec.labels.clone());
        NodeProfile { capacity: spec.capacity.clone(), labels, ..Default::default() }
    }
}

#[derive(Debug, Default)]
struct NodeSim {
    index: usize,
    lost: bool,
    /// When `lost` last changed (or the kubelet started): the conditions' lastTransitionTime,
    /// which controllers use to tell how long a node has been NotReady.
    since: String,
    /// The Node object exists (registration is retried until it does).
    registered: bool,
    profile: Arc<NodeProfile>,
}

#[derive(Debug, Clone)]
struct PodSim {
    node: String,
    ip: String,
    cpu_cores: f64,
    rx_bytes_per_second: f64,
    cpu_seconds: f64,
    rx_bytes: f64,
    containers: Vec<String>,
    /// For label selectors of the metrics API.
    labels: BTreeMap<String, String>,
}

/// What the kubelet knows; shared by the pod watcher, heartbeats, metrics and control API.
#[derive(Debug, Default)]
struct Sim {
    nodes: BTreeMap<String, NodeSim>,
    /// Running pods on our nodes, by (namespace, name).
    pods: HashMap<(String, String), PodSim>,
    /// Index of the next node added at run time (addresses are derived from it).
    next_index: usize,
}

#[derive(Clone)]
struct Kubelet {
    client: kube::Client,
    cluster: Arc<str>,
    /// Distinguishes the clusters' address ranges (node 172.20.I.N, pods 10.I.N.x).
    cluster_index: usize,
    /// The kubelet's HTTP port (metrics, node loss), reported as the daemon endpoint; 0 when
    /// running in-process without a server.
    port: u16,
    load: Load,
    job_duration: Duration,
    sim: Arc<Mutex<Sim>>,
}

impl Kubelet {
    fn node_ip(&self, node: &str) -> String {
        let i = self.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).nodes.get(node).map(|n| n.index).unwrap_or(0);
        format!("172.20.{}.{}", self.cluster_index % 256, i % 250 + 1)
    }
}

/// Runs the simulated kubelet for `cluster` until the process is killed.
pub async fn run(sd: &StateDir, cluster: &str) -> Result<()> {
    let state = sd.read()?.ok_or_else(|| Error::NotRunning(sd.dir.clone()))?;
    let cluster_index = state.fleet.clusters.iter().position(|c| c.name == cluster).ok_or_else(|| Error::UnknownCluster(cluster.into()))?;
    let spec = state.fleet.clusters[cluster_index].clone();
    let client = kubeconfig::client(&sd.kubeconfig(cluster), cluster).await?;
    let nodes = spec.node_names().into_iter().enumerate().map(|(i, n)| {
        let profile = Arc::new(NodeProfile::for_fleet_node(&spec, &n));
        (n, NodeSim { index: i, lost: false, since: now(), registered: false, profile })
    });
    let sim = Sim { nodes: nodes.collect(), pods: HashMap::new(), next_index: spec.nodes as usize };
    let kubelet = Kubelet {
        client,
        cluster: spec.name.as_str().into(),
        load: spec.load.clone(),
        cluster_index,
        port: state.fleet.ports().kubelet(cluster_index),
        job_duration: Duration::from_secs_f64(state.fleet.job_duration_seconds),
        sim: Arc::new(Mutex::new(sim)),
    };
    tracing::info!(cluster, port = kubelet.port, "simulated kubelet starting");
    let server = tokio::spawn(http::serve(kubelet.clone()));
    let beats = tokio::spawn(nodes::heartbeat_loop(kubelet.clone()));
    let meter = tokio::spawn(metrics::integrate_loop(kubelet.clone()));
    let pods = tokio::spawn(pods::run(kubelet.clone()));
    let metrics_api = match spec.metrics_api {
        true => tokio::spawn(metrics_api::run(kubelet.clone(), sd.pki(), state.fleet.ports().metrics_api(cluster_index))),
        false => tokio::spawn(std::future::pending()),
    };
    // Each task loops forever; if one ends, that is a bug worth dying for.
    tokio::select! {
        r = metrics_api => tracing::error!(?r, "metrics API ended"),
        r = server => tracing::error!(?r, "metrics server ended"),
        r = beats => tracing::error!(?r, "heartbeats ended"),
        r = meter => tracing::error!(?r, "metrics integration ended"),
        r = pods => tracing::error!(?r, "pod watcher ended"),
    }
    Err(Error::State("a simulated kubelet task ended".into()))
}

/// The simulated kubelet inside another process, for a cluster whose node set changes at run
/// time: heartbeats and the pod lifecycle as in [`run`], but no HTTP server, metrics or metrics
/// API. Dropping the handle stops it.
pub struct KubeletHandle {
    k: Kubelet,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KubeletHandle {
    /// Starts with no nodes. `ip_index` picks the address ranges (distinct per cluster).
    pub fn start(client: kube::Client, cluster: &str, ip_index: usize, load: Load, job_duration: Duration) -> KubeletHandle {
        let k = Kubelet { client, cluster: cluster.into(), cluster_index: ip_index, port: 0, load, job_duration, sim: Arc::new(Mutex::new(Sim::default())) };
        let tasks = vec![tokio::spawn(nodes::heartbeat_loop(k.clone())), tokio::spawn(pods::run(k.clone()))];
        KubeletHandle { k, tasks }
    }

    /// Starts simulating `name` and registers it at once (Ready, with a Lease). On error the
    /// node stays simulated and registration is retried by the heartbeat loop.
    pub async fn add_node(&self, name: &str, profile: NodeProfile) -> kube::Result<()> {
        {
            let mut sim = self.k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if sim.nodes.get(name).is_some_and(|n| *n.profile == profile && n.registered) {
                return Ok(());
            }
            let index = match sim.nodes.get(name) {
                Some(n) => n.index,
                None => {
                    sim.next_index += 1;
                    sim.next_index - 1
                }
            };
            let node = NodeSim { index, lost: false, since: now(), registered: false, profile: Arc::new(profile) };
            sim.nodes.insert(name.to_string(), node);
        }
        nodes::register_now(&self.k, name).await
    }

    /// Stops simulating `name` (no more heartbeats; its pods are no longer run). The Node
    /// object is left to the caller, who deletes it as a cloud provider would.
    pub fn remove_node(&self, name: &str) {
        let mut sim = self.k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sim.nodes.remove(name);
        sim.pods.retain(|_, p| p.node != name);
    }

    pub fn has_node(&self, name: &str) -> bool {
        self.k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).nodes.contains_key(name)
    }

    /// The InternalIP the node reports.
    pub fn node_ip(&self, name: &str) -> Option<String> {
        self.has_node(name).then(|| self.k.node_ip(name))
    }

    pub fn node_names(&self) -> Vec<String> {
        self.k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).nodes.keys().cloned().collect()
    }
}

impl Drop for KubeletHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Asks the kubelet of `cluster` to simulate the loss (or return) of one of its nodes.
pub async fn set_node_lost(port: u16, node: &str, lost: bool) -> Result<()> {
    let verb = if lost { "lose" } else { "restore" };
    let resp = reqwest::Client::new().post(format!("http://127.0.0.1:{port}/nodes/{node}/{verb}")).send().await?;
    if !resp.status().is_success() {
        return Err(Error::Command { what: format!("{verb} node {node}"), detail: resp.text().await.unwrap_or_default() });
    }
    Ok(())
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn now_micro() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}
