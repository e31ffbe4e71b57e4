//! A Cluster without a topology: what a consumer renders from a cluster template where the
//! ClusterTopology gate is off. Its infrastructure and control plane are the objects named
//! by `spec.infrastructureRef` and `spec.controlPlaneRef`; its workers are the
//! MachineDeployments whose `spec.clusterName` names it. The simulator plays their
//! providers' controllers only as far as a consumer can see: it waits for the referenced
//! objects, labels the MachineDeployments with the cluster's name (as Cluster API's defaulting
//! does) and reads the machine templates' flavor. Provisioning is then the same as a
//! topology's.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject, ListParams, Patch};
use serde_json::{Value, json};

use super::topology::{deleting, label};
use super::{Ctx, Kind, LABEL_CLUSTER_NAME, crds};
use crate::Result;

/// What a templated Cluster is made of.
pub(super) struct Parts {
    pub machine_deployments: Vec<DynamicObject>,
    /// Worker flavor by MachineDeployment name.
    pub flavors: BTreeMap<String, String>,
    pub control_plane_flavor: Option<String>,
}

/// The Cluster's parts, or why they are not all there yet.
pub(super) async fn parts(ctx: &Ctx, cluster: &DynamicObject) -> Result<std::result::Result<Parts, String>> {
    let ns = cluster.metadata.namespace.clone().unwrap_or_default();
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let spec = &cluster.data["spec"];
    for field in ["infrastructureRef", "controlPlaneRef"] {
        if referenced(ctx, &ns, &spec[field]).await?.is_none() {
            return Ok(Err(format!("waiting for spec.{field} {} {} (not found)", spec[field]["kind"].as_str().unwrap_or("?"), spec[field]["name"].as_str().unwrap_or("?"))));
        }
    }
    let control_plane = referenced(ctx, &ns, &spec["controlPlaneRef"]).await?;
    let control_plane_flavor = match control_plane {
        Some(cp) => flavor_of(ctx, &ns, &cp.data["spec"]["machineTemplate"]["spec"]).await?,
        None => None,
    };
    let api = ctx.api(Kind::MachineDeployment, &ns);
    let mut machine_deployments = Vec::new();
    let mut flavors = BTreeMap::new();
    for md in api.list(&ListParams::default()).await?.items {
        if deleting(&md) || md.data["spec"]["clusterName"].as_str() != Some(name.as_str()) {
            continue;
        }
        let md_name = md.metadata.name.clone().unwrap_or_default();
        if label(&md, LABEL_CLUSTER_NAME) != Some(name.as_str()) {
            let patch = json!({"metadata": {"labels": {LABEL_CLUSTER_NAME: name}}});
            api.patch(&md_name, &super::patch_params(), &Patch::Merge(&patch)).await?;
        }
        if let Some(f) = flavor_of(ctx, &ns, &md.data["spec"]["template"]["spec"]).await? {
            flavors.insert(md_name, f);
        }
        machine_deployments.push(md);
    }
    Ok(Ok(Parts { machine_deployments, flavors, control_plane_flavor }))
}

/// The object a v1beta2 reference (`{apiGroup, kind, name}`) names, if it exists.
async fn referenced(ctx: &Ctx, ns: &str, r: &Value) -> Result<Option<DynamicObject>> {
    let (Some(group), Some(kind), Some(name)) = (r["apiGroup"].as_str(), r["kind"].as_str(), r["name"].as_str()) else {
        return Ok(None);
    };
    let Some(resource) = crds::resource_for(group, kind) else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.mgmt.clone(), ns, &resource);
    Ok(api.get_opt(name).await?)
}

/// The flavor of the machine template a machine spec's `infrastructureRef` names.
async fn flavor_of(ctx: &Ctx, ns: &str, machine_spec: &Value) -> Result<Option<String>> {
    let Some(template) = referenced(ctx, ns, &machine_spec["infrastructureRef"]).await? else {
        return Ok(None);
    };
    Ok(flavor(&template.data["spec"]["template"]["spec"]["flavor"]))
}

/// CAPO's flavor: a name (v1beta1), or `{filter: {name}}` / `{id}` (v1beta2).
fn flavor(v: &Value) -> Option<String> {
    v.as_str().or_else(|| v["filter"]["name"].as_str()).or_else(|| v["name"].as_str()).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_read_every_capo_form() {
        assert_eq!(flavor(&json!("k8s.large")).as_deref(), Some("k8s.large"));
        assert_eq!(flavor(&json!({"filter": {"name": "k8s.small"}})).as_deref(), Some("k8s.small"));
        assert_eq!(flavor(&json!({"id": "abc"})), None);
        assert_eq!(flavor(&Value::Null), None);
    }
}
