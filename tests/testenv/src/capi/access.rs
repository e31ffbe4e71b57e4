//! For tests (and anything else playing a Cluster API consumer): reach a simulated workload
//! cluster through its `<cluster>-kubeconfig` Secret, inject faults, see its processes.

use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::{FAULTS_CONFIGMAP, Faults, SIM_NAMESPACE, faults, names, record};
use crate::procs::ProcRecord;
use crate::{Error, Result};

/// A client for the current context of a kubeconfig document.
pub async fn client_from_kubeconfig(text: &str) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::from_yaml(text)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// The kubeconfig under the Secret's `value` key, as Cluster API publishes it.
pub fn kubeconfig_from_secret(secret: &Secret) -> Result<String> {
    let bytes = secret.data.as_ref().and_then(|d| d.get("value")).ok_or_else(|| Error::State("kubeconfig Secret without `value`".into()))?;
    String::from_utf8(bytes.0.clone()).map_err(|e| Error::State(format!("kubeconfig Secret: {e}")))
}

/// A client for the workload cluster of Cluster `ns/cluster`, from its kubeconfig Secret in
/// the management cluster (`mgmt`). The Secret appears before the API server answers.
pub async fn workload_client(mgmt: &kube::Client, ns: &str, cluster: &str) -> Result<kube::Client> {
    let secrets: Api<Secret> = Api::namespaced(mgmt.clone(), ns);
    let secret = secrets.get(&names::kubeconfig_secret(cluster)).await?;
    client_from_kubeconfig(&kubeconfig_from_secret(&secret)?).await
}

/// Sets (`Some`) or clears (`None`) the faults of Cluster `ns/cluster`; the simulator reads
/// them on its next step.
pub async fn set_faults(mgmt: &kube::Client, ns: &str, cluster: &str, f: Option<&Faults>) -> Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(mgmt.clone(), SIM_NAMESPACE);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": FAULTS_CONFIGMAP, "namespace": SIM_NAMESPACE}})).expect("static");
    match api.create(&PostParams::default(), &cm).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let value = match f {
        Some(f) => serde_json::Value::String(serde_yaml_ng::to_string(f).map_err(|e| Error::State(e.to_string()))?),
        None => serde_json::Value::Null,
    };
    let patch = serde_json::json!({"data": {faults::key(ns, cluster): value}});
    api.patch(FAULTS_CONFIGMAP, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}

/// The processes recorded for Cluster `ns/cluster` (empty once it is deleted).
pub fn processes(state_dir: &Path, ns: &str, cluster: &str) -> Vec<ProcRecord> {
    record::read(state_dir).ok().and_then(|mut r| r.clusters.remove(&names::key(ns, cluster))).map(|w| w.procs).unwrap_or_default()
}

/// Turns the simulated ClusterTopology feature gate off (`false`) or on (`true`, the
/// default) and waits until the API server enforces it. Cluster API refuses `spec.topology`
/// in its validating webhook when the gate is off; no webhook runs here, so the Cluster CRD's
/// schema refuses it instead (`maxProperties: 0`): the same 422 on `spec.topology`, from the
/// real API server. A restarted simulator re-applies its CRDs, which turns the gate on.
pub async fn set_cluster_topology_gate(mgmt: &kube::Client, on: bool) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::DynamicObject;
    let crds: Api<CustomResourceDefinition> = Api::all(mgmt.clone());
    let name = "clusters.cluster.x-k8s.io";
    let mut crd = serde_json::to_value(crds.get(name).await?).map_err(|e| Error::State(e.to_string()))?;
    let topology = crd
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/topology")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or_else(|| Error::State("the Cluster CRD has no spec.topology schema".into()))?;
    let changed = if on { topology.remove("maxProperties").is_some() } else { topology.insert("maxProperties".into(), serde_json::json!(0)) != Some(serde_json::json!(0)) };
    if changed {
        let crd: CustomResourceDefinition = serde_json::from_value(crd).map_err(|e| Error::State(e.to_string()))?;
        crds.replace(name, &PostParams::default(), &crd).await?;
    }
    // The API server rebuilds a CRD's handler asynchronously: probe with a dry run.
    let clusters: Api<DynamicObject> = Api::namespaced_with(mgmt.clone(), SIM_NAMESPACE, &super::Kind::Cluster.resource());
    let probe: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": super::API_VERSION, "kind": "Cluster",
        "metadata": {"name": "topology-gate-probe", "namespace": SIM_NAMESPACE},
        "spec": {"topology": {"classRef": {"name": super::CLASS_NAME}, "version": "v1.34.2"}},
    }))
    .map_err(|e| Error::State(e.to_string()))?;
    let dry = PostParams { dry_run: true, ..Default::default() };
    for _ in 0..150 {
        let refused = match clusters.create(&dry, &probe).await {
            Ok(_) => false,
            Err(kube::Error::Api(e)) if e.code == 422 => true,
            Err(e) => return Err(e.into()),
        };
        if refused != on {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(Error::Timeout { what: format!("the ClusterTopology gate {}", if on { "on" } else { "off" }), secs: 30 })
}
