//! MultiClusterDeployment: an `apps/v1` DeploymentSpec plus the mck8s placement keys
//! (`docs/original.md` §2.1). Everything that is not a placement key is
//! copied to the child Deployments.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "fogguru.eu",
    version = "v1",
    kind = "MultiClusterDeployment",
    plural = "multiclusterdeployments",
    singular = "multiclusterdeployment",
    shortname = "mcd",
    shortname = "mcds",
    namespaced,
    status = "MultiClusterDeploymentStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "A Deployment placed across clusters by a placement policy.",
    scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas"),
    printcolumn(name = "Policy", type_ = "string", json_path = ".status.policy"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.replicas"),
    printcolumn(name = "Ready Replicas", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Clusters", type_ = "string", json_path = ".status.summary"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::open_object)]
pub struct MultiClusterDeploymentSpec {
    /// Without `locations`: replicas per selected location. With `locations`: the default per
    /// location when `replicaOverrides` is absent. Default 1, as for a Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// The placement policy: a built-in (`most-traffic`, `worst-fit`, `best-fit`, `preferred`,
    /// `divided`) or one loaded from the policy directory or a ConfigMap. `_` and `-` are
    /// interchangeable. Default `most-traffic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_policy: Option<String>,
    /// How many of the top-ranked clusters each get `replicas`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub number_of_locations: Option<i32>,
    /// Preferred clusters: `"cluster2, cluster3"` or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::string_or_list")]
    pub locations: Option<serde_json::Value>,
    /// Replicas per entry of `locations`, by position: `"2,1"` or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::string_or_list")]
    pub replica_overrides: Option<serde_json::Value>,
    /// Parameters passed to the policy (for example `weights: "cluster1:2,cluster2:1"` for
    /// `divided`). Beyond mck8s.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placement_params: BTreeMap<String, String>,
    /// The rest of the DeploymentSpec (`selector`, `template`, `strategy`, ...), copied to the
    /// child Deployments.
    #[serde(flatten)]
    pub deployment: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterDeploymentStatus {
    /// The generation the placement below was decided for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The policy that made the placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Its sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
    /// Replicas asked for in total (placed + unplaced).
    #[serde(default)]
    pub replicas: i32,
    /// Ready replicas summed over clusters.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Replicas no cluster could take (the bursting count).
    #[serde(default)]
    pub unplaced: i32,
    /// `cluster1=2,cloud1=1`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Per cluster: replicas decided and ready, and the policy's reason.
    // Always written: a merge patch must be able to empty it.
    #[serde(default)]
    pub placement: Vec<ClusterPlacement>,
    /// Children in clusters no longer chosen, kept until the new placement is ready (so a
    /// move never leaves a gap in ready replicas), or until their cluster is reachable again.
    // Always written: a merge patch must be able to empty it.
    #[serde(default)]
    pub draining: Vec<DrainingChild>,
    /// Clusters this object's replicas were moved away from because they failed; when one
    /// is Ready again the placement is decided again (failback).
    // Always written: a merge patch must be able to empty it.
    #[serde(default)]
    pub failed_over: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// mck8s-compatible signal: `{message: to_cloud, replicas: N}` while replicas are
    /// unplaced, `{message: provisioned, replicas: [...]}` otherwise (§2.1). The cloud
    /// provisioner consumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<LegacyMessage>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlacement {
    pub cluster: String,
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A child kept in a cluster that is no longer chosen, or kept at more replicas than its
/// cluster is now given (a move to other clusters, such as a reschedule from the cloud).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DrainingChild {
    pub cluster: String,
    /// Replicas kept beyond the placement (all of the child's when its cluster is no longer
    /// chosen).
    #[serde(default)]
    pub replicas: i32,
    /// Ready replicas it still serves (as last seen).
    #[serde(default)]
    pub ready_replicas: i32,
    /// Since when it drains.
    pub since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// Why it is kept: `ReplacementsNotReady` or `ClusterUnreachable`.
    pub reason: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct LegacyMessage {
    /// `to_cloud` or `provisioned`.
    pub message: String,
    /// The unplaced count (`to_cloud`) or the per-cluster replicas (`provisioned`).
    #[schemars(schema_with = "crate::schema::any_value")]
    pub replicas: serde_json::Value,
}
