//! AppRescheduler: a cluster-wide switch for moving replicas from cloud back to fog.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    printcolumn(name = "Active", type_ = "string", json_path = ".status.conditions[?(@.type==\"Active\")].status"),
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
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
}
