//! MultiClusterHorizontalPodAutoscaler: scales a MultiClusterDeployment by a scaling policy.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    printcolumn(name = "Active", type_ = "string", json_path = ".status.conditions[?(@.type==\"ScalingActive\")].status"),
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
    #[schemars(schema_with = "crate::schema::conditions")]
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
