//! A **simulated** Cluster API. No real Cluster API controller can run offline (no images, no
//! container runtime), so `testenv capi-sim` plays core CAPI (the Cluster, topology,
//! MachineDeployment and Machine controllers), the control-plane provider (KCP: the kubeconfig
//! Secret) and an infrastructure provider together, behind the management cluster's real
//! kube-apiserver. It drives the externally visible v1beta2 behaviour a consumer sees
//! (`docs/cloud.md`, "The life of a cloud cluster"): phases, conditions, replica counters, the
//! `<cluster>-kubeconfig` Secret, scale-in order, staged deletion, Events.
//!
//! What is real: each provisioned Cluster gets its own kube-apiserver, kube-controller-manager
//! and kube-scheduler (the same binaries and flags as the fleet's clusters). What is simulated:
//! the Machines (no VMs) and the Nodes' kubelets (an in-process [`KubeletHandle`]).
//!
//! Modules: `crds` (CRDs + the ClusterClass), `record` (the workload clusters' processes on
//! disk), `workload` (starting and stopping them), `controller` (watches, one task per Cluster),
//! `cluster` (the Cluster's lifecycle), `topology` (topology -> MachineDeployments),
//! `templated` (a Cluster rendered from a template, without a topology), `machines`,
//! `deletion`, `secret` (the kubeconfig Secret), `faults`, `conditions`, `events`, `names`,
//! `access` (for tests).
//!
//! [`KubeletHandle`]: crate::kubelet::KubeletHandle

pub mod access;
mod cluster;
mod conditions;
mod controller;
pub mod crds;
mod deletion;
mod events;
pub mod faults;
mod machines;
pub mod names;
pub mod record;
mod secret;
mod templated;
mod topology;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject};

use crate::fleet::{CapiSim, Load};
use crate::state::StateDir;
use crate::{Error, Result, kubeconfig};

pub use faults::Faults;

/// Process name in `state.json` (and the `testenv` subcommand).
pub const PROC_NAME: &str = "capi-sim";
pub const GROUP: &str = "cluster.x-k8s.io";
pub const VERSION: &str = "v1beta2";
pub const API_VERSION: &str = "cluster.x-k8s.io/v1beta2";
/// Where the simulator's ClusterClass and fault ConfigMap live (management cluster).
pub const SIM_NAMESPACE: &str = "capi-sim-system";
pub const CLASS_NAME: &str = "mck8s-sim";
pub const FAULTS_CONFIGMAP: &str = "capi-sim-faults";

pub const LABEL_CLUSTER_NAME: &str = "cluster.x-k8s.io/cluster-name";
pub const LABEL_CONTROL_PLANE: &str = "cluster.x-k8s.io/control-plane";
pub const LABEL_DEPLOYMENT_NAME: &str = "cluster.x-k8s.io/deployment-name";
pub const LABEL_TOPOLOGY_OWNED: &str = "topology.cluster.x-k8s.io/owned";
pub const LABEL_TOPOLOGY_DEPLOYMENT: &str = "topology.cluster.x-k8s.io/deployment-name";
pub const ANN_DELETE_MACHINE: &str = "cluster.x-k8s.io/delete-machine";
pub const ANN_AUTOSCALER_MIN: &str = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size";
pub const ANN_AUTOSCALER_MAX: &str = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size";
/// Changing this Cluster annotation (any value) makes the simulated KCP rewrite the kubeconfig
/// Secret with the workload cluster's other admin token, as a certificate rotation would.
pub const ANN_ROTATE_KUBECONFIG: &str = "sim.mck8s.io/rotate-kubeconfig";
pub const FINALIZER_CLUSTER: &str = "cluster.cluster.x-k8s.io";
pub const FINALIZER_MACHINE: &str = "machine.cluster.x-k8s.io";
pub const SECRET_TYPE: &str = "cluster.x-k8s.io/secret";
/// `source.component` and `reportingComponent` of the simulator's Events.
pub const COMPONENT: &str = "capi-sim";

/// The kinds the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cluster,
    ClusterClass,
    MachineDeployment,
    MachineSet,
    Machine,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cluster => "Cluster",
            Kind::ClusterClass => "ClusterClass",
            Kind::MachineDeployment => "MachineDeployment",
            Kind::MachineSet => "MachineSet",
            Kind::Machine => "Machine",
        }
    }

    pub fn resource(self) -> ApiResource {
        let plural = match self {
            Kind::Cluster => "clusters",
            Kind::ClusterClass => "clusterclasses",
            Kind::MachineDeployment => "machinedeployments",
            Kind::MachineSet => "machinesets",
            Kind::Machine => "machines",
        };
        ApiResource { group: GROUP.into(), version: VERSION.into(), api_version: API_VERSION.into(), kind: self.name().into(), plural: plural.into() }
    }
}

/// Our writes show up in managedFields as `capi-sim`.
pub(crate) fn patch_params() -> kube::api::PatchParams {
    kube::api::PatchParams { field_manager: Some(COMPONENT.into()), ..Default::default() }
}

/// What every part of the simulator shares.
pub(crate) struct Ctx {
    /// The management cluster.
    pub mgmt: kube::Client,
    pub sd: StateDir,
    pub cfg: CapiSim,
    pub etcd_url: String,
    /// PEM of the environment's CA: every apiserver's serving certificate is signed by it.
    pub ca_pem: String,
    pub ports: crate::fleet::Ports,
    pub job_duration: Duration,
    pub load: Load,
}

impl Ctx {
    pub fn api(&self, kind: Kind, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.mgmt.clone(), ns, &kind.resource())
    }

    /// Where a workload cluster's files live (token file, kubeconfig, apiserver cert dir).
    pub fn workload_dir(&self, ns: &str, name: &str) -> PathBuf {
        self.sd.sub(format!("capi/{ns}/{name}"))
    }
}

/// Runs the simulator until the process is killed (`testenv capi-sim`, started by `up`).
pub async fn run(sd: &StateDir) -> Result<()> {
    let state = sd.read()?.ok_or_else(|| Error::NotRunning(sd.dir.clone()))?;
    let cfg = state.fleet.capi.clone().ok_or_else(|| Error::Config("the fleet has no capi section".into()))?;
    let mgmt = state.fleet.management().ok_or_else(|| Error::Config("no management cluster".into()))?.name.clone();
    let ca = sd.pki().join("ca.crt");
    let ctx = Ctx {
        mgmt: kubeconfig::client(&sd.kubeconfig(&mgmt), &mgmt).await?,
        sd: StateDir::new(sd.dir.clone()),
        cfg,
        etcd_url: crate::env::etcd_url(&state.fleet),
        ca_pem: std::fs::read_to_string(&ca).map_err(|e| Error::io(&ca, e))?,
        ports: state.fleet.ports(),
        job_duration: Duration::from_secs_f64(state.fleet.job_duration_seconds),
        load: Load::default(),
    };
    tracing::info!(management = %mgmt, "simulated Cluster API starting");
    controller::run(std::sync::Arc::new(ctx)).await
}
