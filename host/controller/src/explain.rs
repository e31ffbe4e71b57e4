//! `GET /explain/{kind}/{namespace}/{name}`: why an MCD or MCJ is placed where it is. The
//! object is read from the management cluster and decided again on the live fleet with the
//! input a real decision gets (its own pods counted as free, other decisions in flight
//! deducted), without recording anything; beside it, the placement its status records.

use crate::context::Context;
use kube::Api;
use mck8s_api::{MultiClusterDeployment, MultiClusterJob};
use mck8s_scheduler::{Explanation, ScheduleError};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("unknown kind {0:?}: use mcd (MultiClusterDeployment) or mcj (MultiClusterJob)")]
    Kind(String),
    #[error("not a valid {what}: {value:?}")]
    Name { what: &'static str, value: String },
    #[error("{kind} {namespace}/{name} not found")]
    NotFound { kind: &'static str, namespace: String, name: String },
    #[error("the spec is invalid: {0}")]
    Invalid(String),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("reading the object: {0}")]
    Kube(#[from] kube::Error),
}

/// What `mck8s explain` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectExplanation {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// Replicas per cluster as the status records them.
    pub recorded: BTreeMap<String, u32>,
    /// Whether deciding now gives the recorded placement (else the fleet changed since, or a
    /// move is pending).
    pub same_as_recorded: bool,
    pub explanation: Explanation,
}

pub async fn explain(ctx: &Context, kind: &str, namespace: &str, name: &str) -> Result<ObjectExplanation, ExplainError> {
    // They become a path on the management API server: nothing but what a name may hold.
    for (what, v) in [("namespace", namespace), ("name", name)] {
        if !is_object_name(v) {
            return Err(ExplainError::Name { what, value: v.chars().take(64).collect() });
        }
    }
    let not_found = |kind| ExplainError::NotFound { kind, namespace: namespace.to_string(), name: name.to_string() };
    let (kind, (explanation, recorded)) = match kind.to_ascii_lowercase().as_str() {
        "mcd" | "multiclusterdeployment" | "multiclusterdeployments" => {
            let api: Api<MultiClusterDeployment> = Api::namespaced(ctx.client.clone(), namespace);
            let mcd = api.get_opt(name).await?.ok_or_else(|| not_found(crate::mcd::KIND))?;
            (crate::mcd::KIND, crate::mcd::explain(ctx, &mcd).await?)
        }
        "mcj" | "multiclusterjob" | "multiclusterjobs" => {
            let api: Api<MultiClusterJob> = Api::namespaced(ctx.client.clone(), namespace);
            let mcj = api.get_opt(name).await?.ok_or_else(|| not_found(crate::mcj::KIND))?;
            (crate::mcj::KIND, crate::mcj::explain(ctx, &mcj).await?)
        }
        other => return Err(ExplainError::Kind(other.to_string())),
    };
    let decided: BTreeMap<String, u32> = explanation.clusters.iter().filter(|r| r.replicas > 0).map(|r| (r.cluster.clone(), r.replicas)).collect();
    Ok(ObjectExplanation { kind, namespace: namespace.to_string(), name: name.to_string(), same_as_recorded: decided == recorded, recorded, explanation })
}

/// A DNS-1123 subdomain, as Kubernetes object names and namespaces are.
fn is_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_kubernetes_names_reach_the_api_server() {
        for ok in ["web", "a.b-c", "x1"] {
            assert!(super::is_object_name(ok), "{ok}");
        }
        for bad in ["", "../secrets", "a/b", "Web", "-a", "a.", &"a".repeat(254), "a%2F"] {
            assert!(!super::is_object_name(bad), "{bad}");
        }
    }
}
