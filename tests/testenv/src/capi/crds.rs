//! Installs the project-authored Cluster API CRDs (`tests/testenv/capi/crds.yaml`) and the
//! simulator's ClusterClass in the management cluster, by server-side apply (idempotent, so a
//! restarted simulator just re-applies).

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};

use super::{CLASS_NAME, COMPONENT, Kind, SIM_NAMESPACE};
use crate::{Error, Result};

/// The CRDs, one YAML document each.
pub const CRDS_YAML: &str = include_str!("../../capi/crds.yaml");
/// The simulated providers' kinds (deploy/capi/cluster-template-mck8s-openstack.yaml's).
pub const PROVIDER_CRDS_YAML: &str = include_str!("../../capi/provider-crds.yaml");
/// The ClusterClass `capi-sim-system/mck8s-sim`.
pub const CLASS_YAML: &str = include_str!("../../capi/clusterclass.yaml");

pub fn crds() -> Result<Vec<Value>> {
    parse(CRDS_YAML, "capi/crds.yaml")
}

pub fn provider_crds() -> Result<Vec<Value>> {
    parse(PROVIDER_CRDS_YAML, "capi/provider-crds.yaml")
}

fn parse(text: &str, file: &str) -> Result<Vec<Value>> {
    serde_yaml_ng::Deserializer::from_str(text).map(|doc| Value::deserialize(doc).map_err(|e| Error::Config(format!("{file}: {e}")))).collect()
}

/// The served resource of a v1beta2 reference (`apiGroup` + `kind`, no version): as Cluster
/// API does, the version is the CRD's `cluster.x-k8s.io/v1beta2` contract label.
pub(super) fn resource_for(group: &str, kind: &str) -> Option<kube::api::ApiResource> {
    static ALL: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        let mut v = crds().unwrap_or_default();
        v.extend(provider_crds().unwrap_or_default());
        v
    });
    let crd = all.iter().find(|c| c["spec"]["group"] == group && c["spec"]["names"]["kind"] == kind)?;
    let version = crd["metadata"]["labels"]["cluster.x-k8s.io/v1beta2"].as_str()?;
    Some(kube::api::ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: crd["spec"]["names"]["plural"].as_str()?.into(),
    })
}

use serde::Deserialize;

pub(super) async fn install(mgmt: &kube::Client) -> Result<()> {
    let pp = PatchParams::apply(COMPONENT).force();
    let api: Api<CustomResourceDefinition> = Api::all(mgmt.clone());
    let mut names = Vec::new();
    for crd in crds()?.into_iter().chain(provider_crds()?) {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
        api.patch(&name, &pp, &Patch::Apply(&crd)).await?;
        names.push(name);
    }
    for name in &names {
        tokio::time::timeout(Duration::from_secs(60), await_condition(api.clone(), name, conditions::is_crd_established()))
            .await
            .map_err(|_| Error::Timeout { what: format!("CRD {name} Established"), secs: 60 })?
            .map_err(|e| Error::State(e.to_string()))?;
    }
    let namespaces: Api<Namespace> = Api::all(mgmt.clone());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SIM_NAMESPACE}});
    namespaces.patch(SIM_NAMESPACE, &pp, &Patch::Apply(&ns)).await?;
    let class: Value = serde_yaml_ng::from_str(CLASS_YAML).map_err(|e| Error::Config(format!("capi/clusterclass.yaml: {e}")))?;
    let classes: Api<DynamicObject> = Api::namespaced_with(mgmt.clone(), SIM_NAMESPACE, &Kind::ClusterClass.resource());
    // A CRD that just became Established may take a moment to be served.
    let mut applied = None;
    for _ in 0..50 {
        match classes.patch(CLASS_NAME, &pp, &Patch::Apply(&class)).await {
            Ok(obj) => {
                applied = Some(obj);
                break;
            }
            Err(e) => tracing::debug!(error = %e, "applying the ClusterClass; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let applied = applied.ok_or_else(|| Error::Environment("the ClusterClass could not be applied".into()))?;
    // What CAPI's ClusterClass controller reports: the variables, and that they are usable.
    let generation = applied.metadata.generation.unwrap_or(1);
    let variables: Vec<Value> = class["spec"]["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| json!({"name": v["name"], "definitions": [{"from": "inline", "required": v["required"], "schema": v["schema"]}]}))
        .collect();
    let mut status = json!({"variables": variables, "observedGeneration": generation});
    super::conditions::set(&mut status, "VariablesReady", true, "VariablesReady", "", generation);
    super::conditions::set(&mut status, "RefVersionsUpToDate", true, "RefVersionsUpToDate", "", generation);
    classes.patch_status(CLASS_NAME, &super::patch_params(), &Patch::Merge(json!({"status": status}))).await?;
    tracing::info!("Cluster API CRDs and ClusterClass {SIM_NAMESPACE}/{CLASS_NAME} installed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_are_v1beta2_only_labelled_and_scalable() {
        let crds = crds().unwrap();
        let kinds: Vec<&str> = crds.iter().map(|c| c["spec"]["names"]["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Cluster", "ClusterClass", "MachineDeployment", "MachineSet", "Machine"]);
        for c in &crds {
            assert_eq!(c["metadata"]["labels"]["cluster.x-k8s.io/v1beta2"], "v1beta2");
            let versions = c["spec"]["versions"].as_array().unwrap();
            assert_eq!(versions.len(), 1);
            assert_eq!(versions[0]["name"], "v1beta2");
            assert!(versions[0]["subresources"]["status"].is_object());
            assert_eq!(c["spec"]["scope"], "Namespaced");
            assert!(!serde_json::to_string(c).unwrap().contains("int-or-string"));
        }
        let md = &crds[2]["spec"]["versions"][0]["subresources"]["scale"];
        assert_eq!(md["specReplicasPath"], ".spec.replicas");
        assert_eq!(md["statusReplicasPath"], ".status.replicas");
        assert_eq!(md["labelSelectorPath"], ".status.selector");
    }

    #[test]
    fn references_resolve_through_the_contract_label() {
        let osc = resource_for("infrastructure.cluster.x-k8s.io", "OpenStackCluster").unwrap();
        assert_eq!((osc.api_version.as_str(), osc.plural.as_str()), ("infrastructure.cluster.x-k8s.io/v1beta1", "openstackclusters"));
        let kcp = resource_for("controlplane.cluster.x-k8s.io", "KubeadmControlPlane").unwrap();
        assert_eq!(kcp.version, "v1beta2");
        assert!(resource_for("infrastructure.cluster.x-k8s.io", "AWSCluster").is_none());
        for c in provider_crds().unwrap() {
            let v = &c["spec"]["versions"][0];
            assert_eq!(v["name"], c["metadata"]["labels"]["cluster.x-k8s.io/v1beta2"]);
            assert_eq!(c["metadata"]["labels"]["mck8s.io/simulated"], "true");
        }
    }

    #[test]
    fn topology_lists_are_list_maps_keyed_by_name() {
        let crds = crds().unwrap();
        let topo = &crds[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["topology"]["properties"];
        for list in [&topo["variables"], &topo["workers"]["properties"]["machineDeployments"]] {
            assert_eq!(list["x-kubernetes-list-type"], "map");
            assert_eq!(list["x-kubernetes-list-map-keys"], json!(["name"]));
        }
        let class: Value = serde_yaml_ng::from_str(CLASS_YAML).unwrap();
        let vars: Vec<&str> = class["spec"]["variables"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(vars, ["workerFlavor", "controlPlaneFlavor"]);
    }
}
