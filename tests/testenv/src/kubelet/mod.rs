//! The simulated kubelet: one process per cluster, playing the kubelet for all of the cluster's
//! nodes. It registers Nodes, keeps their Ready conditions and Leases fresh, runs bound pods
//! (Running and Ready with a pod IP), completes Job pods after a configurable time, finishes
//! graceful deletions, and serves per-pod load as Prometheus metrics plus a small control API
//! for node loss (`POST /nodes/NAME/lose`, `POST /nodes/NAME/restore`). In a cluster with
//! `metrics_api: true` it also plays metrics-server: `metrics.k8s.io/v1beta1` PodMetrics,
//! aggregated by the cluster's real API server.

mod http;
mod metrics;
mod metrics_api;
mod nodes;
mod pods;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;

use crate::fleet::ClusterSpec;
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
    node.and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

#[derive(Debug, Default)]
struct NodeSim {
    index: usize,
    lost: bool,
    /// When `lost` last changed (or the kubelet started): the conditions' lastTransitionTime,
    /// which controllers use to tell how long a node has been NotReady.
    since: String,
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
}

#[derive(Clone)]
struct Kubelet {
    client: kube::Client,
    spec: Arc<ClusterSpec>,
    cluster_index: usize,
    port: u16,
    job_duration: Duration,
    sim: Arc<Mutex<Sim>>,
}

impl Kubelet {
    fn node_ip(&self, node: &str) -> String {
        let i = self.sim.lock().unwrap().nodes.get(node).map(|n| n.index).unwrap_or(0);
        format!("172.20.{}.{}", self.cluster_index, i + 1)
    }
}

/// Runs the simulated kubelet for `cluster` until the process is killed.
pub async fn run(sd: &StateDir, cluster: &str) -> Result<()> {
    let state = sd.read()?.ok_or_else(|| Error::NotRunning(sd.dir.clone()))?;
    let cluster_index = state
        .fleet
        .clusters
        .iter()
        .position(|c| c.name == cluster)
        .ok_or_else(|| Error::UnknownCluster(cluster.into()))?;
    let spec = state.fleet.clusters[cluster_index].clone();
    let client = kubeconfig::client(&sd.kubeconfig(cluster), cluster).await?;
    let sim = Sim {
        nodes: spec.node_names().into_iter().enumerate().map(|(i, n)| (n, NodeSim { index: i, lost: false, since: now() })).collect(),
        pods: HashMap::new(),
    };
    let kubelet = Kubelet {
        client,
        spec: Arc::new(spec),
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
    let metrics_api = match kubelet.spec.metrics_api {
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
