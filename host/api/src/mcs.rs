//! MultiClusterService: a Service propagated to where a MultiClusterDeployment runs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
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
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
}
