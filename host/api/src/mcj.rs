//! MultiClusterJob: a Job placed on as many clusters as `numberOfLocations`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::mcd::{ClusterPlacement, LegacyMessage};

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
    printcolumn(name = "Complete", type_ = "string", json_path = ".status.conditions[?(@.type==\"Complete\")].status"),
    printcolumn(name = "Failed", type_ = "string", json_path = ".status.conditions[?(@.type==\"Failed\")].status"),
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
    #[schemars(schema_with = "crate::schema::conditions")]
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
