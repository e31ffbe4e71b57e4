//! MultiClusterService, MultiClusterJob, MultiClusterHorizontalPodAutoscaler and
//! AppRescheduler (the CloudProvisioner has its own file).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::mcd::{ClusterPlacement, LegacyMessage};

/// A Service in every cluster where the MultiClusterDeployment of the same name runs, or in
/// `locations` (§2.2).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "fogguru.eu",
    version = "v1",
    kind = "MultiClusterService",
    plural = "multiclusterservices",
    singular = "multiclusterservice",
    shortname = "mcs",
    shortname = "mcss",
    namespaced,
    status = "MultiClusterServiceStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "A Service propagated to the clusters of a MultiClusterDeployment or to listed clusters.",
    printcolumn(name = "Clusters", type_ = "string", json_path = ".status.summary"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::open_object)]
pub struct MultiClusterServiceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::string_or_list")]
    pub locations: Option<serde_json::Value>,
    /// The rest of the ServiceSpec, copied to the children.
    #[serde(flatten)]
    pub service: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterServiceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the Service is: `spec.locations`, or where the MultiClusterDeployment of the same
    /// name runs (its placement and its draining children).
    // Always written: a merge patch must be able to empty it.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// `cluster1,cluster2`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A Job copied to each selected cluster, placed by the same policies as a
/// MultiClusterDeployment with one replica per location (§2.3).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "fogguru.eu",
    version = "v1",
    kind = "MultiClusterJob",
    plural = "multiclusterjobs",
    singular = "multiclusterjob",
    shortname = "mcj",
    shortname = "mcjs",
    namespaced,
    status = "MultiClusterJobStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "A Job placed across clusters by a placement policy.",
    printcolumn(name = "Policy", type_ = "string", json_path = ".status.policy"),
    printcolumn(name = "Completions", type_ = "string", json_path = ".status.completions"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::open_object)]
pub struct MultiClusterJobSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub number_of_locations: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::string_or_list")]
    pub locations: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::string_or_list")]
    pub replica_overrides: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placement_params: BTreeMap<String, String>,
    /// The rest of the JobSpec, copied to the children.
    #[serde(flatten)]
    pub job: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterJobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The policy that placed the Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Per cluster: the replicas the policy reserved (the Job's parallelism) and its reason.
    // Always written: a merge patch must be able to empty it.
    #[serde(default)]
    pub placement: Vec<ClusterPlacement>,
    /// Per cluster: the state of its Job. A finished Job's entry is kept after the Job is
    /// gone (a TTL or a hand delete), so it is never run twice.
    // Always written: a merge patch must be able to empty it.
    #[serde(default)]
    pub jobs: Vec<ClusterJob>,
    /// Clusters whose Job completed.
    #[serde(default)]
    pub succeeded: i32,
    /// Clusters whose Job failed.
    #[serde(default)]
    pub failed: i32,
    /// `2/3`: clusters completed of clusters placed, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<String>,
    /// Jobs no cluster could take (the bursting count).
    #[serde(default)]
    pub unplaced: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<LegacyMessage>,
}

/// One cluster's Job, as last observed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterJob {
    pub cluster: String,
    /// `Pending` (not created yet), `Running`, `Complete` or `Failed`.
    pub state: String,
    #[serde(default)]
    pub active: i32,
    #[serde(default)]
    pub succeeded: i32,
    #[serde(default)]
    pub failed: i32,
}

/// Scales a MultiClusterDeployment's replicas from its clusters' CPU use (§2.4).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "fogguru.eu",
    version = "v1",
    kind = "MultiClusterHorizontalPodAutoscaler",
    plural = "multiclusterhorizontalpodautoscalers",
    singular = "multiclusterhorizontalpodautoscaler",
    shortname = "mchpa",
    shortname = "mchpas",
    namespaced,
    status = "MultiClusterHorizontalPodAutoscalerStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "A horizontal pod autoscaler for a MultiClusterDeployment.",
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.scaleTargetRef.name"),
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicas"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicas"),
    printcolumn(name = "Current", type_ = "integer", json_path = ".status.currentReplicas"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".status.desiredReplicas"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::open_object)]
pub struct MultiClusterHorizontalPodAutoscalerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_target_ref: Option<ScaleTargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replicas: Option<i32>,
    /// As in autoscaling/v2; mck8s read `metrics[0].resource.target.averageUtilization`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "any_list")]
    pub metrics: Vec<serde_json::Value>,
    /// The scaling policy (default `mchpa`). Beyond mck8s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_policy: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scaling_params: BTreeMap<String, String>,
    /// Seconds between evaluations (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub period_seconds: Option<i32>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

fn any_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
    })
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterHorizontalPodAutoscalerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Replicas of the target when last measured (placed and unplaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    /// The total the scaling policy last asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// The scaling policy that decided, and its sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
    /// The scaling policy's opaque state, base64; survives restarts and reloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_state: Option<String>,
    /// The policy's reason for its last decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per cluster: replicas and the CPU utilisation measured last time.
    // Always written: a merge patch must be able to empty it.
    #[serde(default)]
    pub clusters: Vec<ClusterLoad>,
    /// When the replica count last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// When the policy was last asked (the stabilisation window is measured between these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One cluster's share of an autoscaled MultiClusterDeployment, as measured.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterLoad {
    pub cluster: String,
    pub replicas: i32,
    /// Average CPU use of its pods in percent of their requests; absent when the metric is
    /// missing (see `source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<i32>,
    /// `metrics.k8s.io`, `prometheus`, or why there is no metric.
    pub source: String,
}

/// Its presence enables rescheduling from cloud back to fog (§2.6): every `periodSeconds`
/// each MultiClusterDeployment with replicas in a cloud cluster is placed again by its
/// policy as if new; where that puts fewer replicas in the cloud, they move to the fog,
/// new fog replicas first and cloud replicas removed only once those are ready.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "fogguru.eu",
    version = "v1",
    kind = "AppRescheduler",
    plural = "appreschedulers",
    singular = "apprescheduler",
    shortname = "appresch",
    shortname = "appres",
    status = "AppReschedulerStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "Enables moving replicas from cloud clusters back to fog clusters.",
    printcolumn(name = "Moving", type_ = "integer", json_path = ".status.moving"),
    printcolumn(name = "Moved", type_ = "integer", json_path = ".status.movedReplicas"),
    printcolumn(name = "Last", type_ = "date", json_path = ".status.lastRunTime")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::open_object)]
pub struct AppReschedulerSpec {
    /// Seconds between passes (default 120; mck8s waited 31 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub period_seconds: Option<i32>,
    /// Replicas one application moves per pass at most (default: all it can).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replicas_per_step: Option<i32>,
    /// Only these namespaces (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppReschedulerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Applications with a move started in the last pass.
    #[serde(default)]
    pub moving: i32,
    /// Replicas moved from cloud to fog since this object was created.
    #[serde(default)]
    pub moved_replicas: i64,
    /// What the last pass did, per application (`ns/name: cloud1=2 → cluster1=+2`).
    // Always written: a merge patch must be able to empty it.
    #[serde(default)]
    pub last_moves: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
