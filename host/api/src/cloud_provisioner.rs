//! CloudProvisioner (`docs/original.md` §2.5): a cloud cluster created through Cluster API when
//! applications burst, its nodes scaled with the load, removed once idle. Every field of the
//! original is optional (its example omits `influxDBIP`, which crashed it); the new fields
//! all have defaults. Three differ from the original on purpose (`docs/cloud.md` says why):
//! sizing is `BinPack` (the original's formula is `Legacy`), scale-in waits for use below half
//! of allocatable, and removes one node at a time.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "fogguru.eu",
    version = "v1",
    kind = "CloudProvisioner",
    plural = "cloudprovisioners",
    singular = "cloudprovisioner",
    shortname = "cpro",
    shortname = "cp",
    status = "CloudProvisionerStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "Provisions and removes a cloud cluster as applications burst.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cloudClusterName"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Workers", type_ = "integer", json_path = ".status.workers.ready"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::open_object)]
pub struct CloudProvisionerSpec {
    /// The Cluster API Cluster, its namespace (unless `namespace` is set) and the registered
    /// workload cluster's name. Default: the CloudProvisioner's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_cluster_name: Option<String>,
    /// Original (OpenStack): the API server's floating IP → variable `apiServerFloatingIP`.
    #[serde(default, rename = "floatingIP", skip_serializing_if = "Option::is_none")]
    pub floating_ip: Option<String>,
    /// Original: the workers' route gateway → variable `gatewayIP`.
    #[serde(default, rename = "gatewayIP", skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<String>,
    /// Original: the external network → variable `externalNetworkID`.
    #[serde(default, rename = "extNetworkID", skip_serializing_if = "Option::is_none")]
    pub ext_network_id: Option<String>,
    /// Original: the machines' security group → variable `securityGroupID`.
    #[serde(default, rename = "securityGroupID", skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,
    /// Original: base64 `clouds.yaml`. Moved into the Secret `<cluster>-cloud-config` and
    /// referenced by the variable `identityRef`; never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clouds_yaml: Option<String>,
    /// Original: base64 OpenStack `cloud.conf`, moved into the same Secret (`cloud.conf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_text: Option<String>,
    /// Original: remote-write host for the cloud cluster's Prometheus → variable
    /// `remoteWriteHost`.
    #[serde(default, rename = "influxDBIP", skip_serializing_if = "Option::is_none")]
    pub influx_db_ip: Option<String>,

    /// The Cluster API namespace. Default: the cloud cluster's name (as the original).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The ClusterClass. Default: `mck8s-openstack` in `mck8s-system` (deploy/capi/).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_class: Option<ClassRef>,
    /// How the Cluster is asked for: `Topology` (a Cluster with `spec.topology` and the
    /// ClusterClass), `Templates` (the provider's objects rendered from `clusterTemplate`, for
    /// management clusters without the ClusterTopology feature gate) or `Auto` (default:
    /// Topology, and Templates when Cluster API refuses `spec.topology`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_mode: Option<String>,
    /// The cluster template for `Templates`: a ConfigMap key holding clusterctl-style YAML
    /// with `${VARIABLE}` placeholders. Default: key `cluster-template.yaml` of ConfigMap
    /// `mck8s-openstack-template` in `mck8s-system` (deploy/capi/).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_template: Option<TemplateRef>,
    /// The workload cluster's Kubernetes version. Default: v1.34.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Extra ClusterClass variables, passed through (they override the mapped ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<ClusterVariable>,
    /// A Secret with `clouds.yaml` (and optionally `cloud.conf`, `cacert`) instead of the
    /// inline fields; copied into the Cluster's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<ControlPlaneSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkersSpec>,
    /// Node flavors for sizing. Default: the original's table (k8s.small … k8s.xlarge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flavors: Vec<FlavorSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizing: Option<SizingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<NodeAutoscalingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleSpec>,
    /// Anything else is kept (manifests written for later versions still apply).
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClassRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// The ConfigMap's name.
    pub name: String,
    /// Default: `mck8s-system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Default: `cluster-template.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterVariable {
    pub name: String,
    #[schemars(schema_with = "crate::schema::any_value")]
    pub value: serde_json::Value,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneSpec {
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replicas: Option<i32>,
    /// Default: the workers' flavor (as the original).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkersSpec {
    /// The ClusterClass's worker class. Default `default-worker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The topology's MachineDeployment name. Default `md-0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The ClusterClass variable that takes the worker flavor. Default `workerFlavor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor_variable: Option<String>,
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replicas: Option<i32>,
    /// Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replicas: Option<i32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlavorSpec {
    pub name: String,
    /// A Kubernetes quantity (`8`, `7500m`).
    pub cpu: String,
    /// A Kubernetes quantity (`32Gi`).
    pub memory: String,
    /// Default 110.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<i32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SizingSpec {
    /// `BinPack` (default: the cheapest flavor and count that hold the pending pods) or
    /// `Legacy` (the original: `k8s.large`, ceil of the demand over one node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// What the system takes of every node (BinPack). Default cpu 200m, memory 1Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_overhead: Option<ResourceAmounts>,
    /// Default 110.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pods_per_node: Option<i32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAmounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeAutoscalingSpec {
    /// `Builtin` (default: mck8s scales the workers), `ClusterAutoscaler` (mck8s writes the
    /// node-group min/max annotations and leaves `replicas` to cluster-autoscaler) or `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Unschedulable pods must stay pending this long before a scale-out (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_confirm_seconds: Option<i64>,
    /// A node must stay underused this long before it is removed (default 330: the
    /// original's 11 cycles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_unneeded_seconds: Option<i64>,
    /// Requests over allocatable below which a node is underused, for cpu and memory
    /// (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_utilization_threshold: Option<f64>,
    /// No scale-in this long after a scale-out (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_after_add_seconds: Option<i64>,
    /// A scale step whose machines are not ready by then is given up (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_startup_timeout_seconds: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleSpec {
    /// Demand must persist this long before a cluster is provisioned (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand_confirm_seconds: Option<i64>,
    /// From the Cluster's creation to usable (default 1200; the original waited forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision_timeout_seconds: Option<i64>,
    /// From usable to registered and probed by mck8s (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_timeout_seconds: Option<i64>,
    /// No mck8s workload and no demand this long → de-provisioned (default 630: the
    /// original's 21 cycles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprovision_after_idle_seconds: Option<i64>,
    /// Between no longer placing on the cluster and unjoining it, so a decision in flight
    /// is seen (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_grace_seconds: Option<i64>,
    /// Cluster deletion taking longer is reported as stuck (default 1200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timeout_seconds: Option<i64>,
    /// First wait after a failed attempt; it doubles with every attempt, up to 10 minutes
    /// (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff_seconds: Option<i64>,
    /// Failed provisioning attempts before `Failed` (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_attempts: Option<i32>,
    /// `Delete` (default: a failed cluster is deleted, so it costs nothing) or `Keep` (left
    /// for debugging; no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_provision_failure: Option<String>,
    /// When the CloudProvisioner is deleted: `DeleteWhenIdle` (default: de-provision once
    /// no workload runs there), `Delete` (now) or `Orphan` (unjoin, keep the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<String>,
}

/// What the provisioner did and sees. Timeouts are measured from the times recorded here,
/// so a restarted controller resumes where the last one stopped.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudProvisionerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Idle, Provisioning, Joining, Ready, Draining, Deprovisioning or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// When the phase was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<Time>,
    /// `<namespace>/<name>` of the Cluster API Cluster while it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// How the Cluster was asked for: `Topology` or `Templates` (observed on the Cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_mode: Option<String>,
    /// The worker flavor, fixed for the cluster's life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand: Option<DemandStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkersStatus>,
    /// Provisioning attempts since the last success (or the last retry asked for).
    #[serde(default)]
    pub attempts: i32,
    /// No new attempt before this time (backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Time>,
    /// The `fogguru.eu/retry` annotation value already acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_seen: Option<String>,
    /// Since when there has been demand without a cluster (confirmation window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand_since: Option<Time>,
    /// Since when the cluster has had no mck8s workload, no demand and no pending pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<Time>,
    /// Since when Unschedulable pods have been pending (scale-out confirmation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_since: Option<Time>,
    /// The scale step in flight, if any: at most one per cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_step: Option<ScaleStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_out: Option<Time>,
    /// Scale steps in a row that ended short of capacity (quota, stuck machines): each one
    /// doubles the wait before the next scale-out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub partial_steps: i32,
    /// Worker nodes underused since (scale-in window), by node name.
    // Always sent, even empty: when an apply drops the last key of an owned map, 1.20's
    // server-side apply leaves `null` behind, which the schema refuses on every later write.
    #[serde(default)]
    pub unneeded_since: BTreeMap<String, Time>,
    /// The `<cluster>-kubeconfig` Secret's resourceVersion copied into the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_version: Option<String>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DemandStatus {
    /// Unplaced replicas of MultiClusterDeployments and pods of MultiClusterJobs.
    pub replicas: i32,
    /// Their requests in total (quantities).
    pub cpu: String,
    pub memory: String,
    /// `<namespace>/<name>` of what asks, first few.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkersStatus {
    pub desired: i32,
    pub ready: i32,
    pub min: i32,
    pub max: i32,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleStep {
    /// `ScaleOut` or `ScaleIn`.
    pub kind: String,
    /// The workers asked for.
    pub desired: i32,
    pub started: Time,
    /// The node removed (scale-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}
