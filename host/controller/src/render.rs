//! The child objects mck8s puts in workload clusters: the owner's spec with the decided
//! replicas, ownership labels (there are no cross-cluster ownerReferences) and the owner
//! labels on the pod template so the capacity model can tell the owner's pods apart.

use k8s_openapi::api::apps::v1::Deployment;
use mck8s_api::labels;
use serde_json::{Value, json};

/// Identity of the owning multi-cluster object.
#[derive(Clone, Debug)]
pub struct Owner<'a> {
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

pub fn owner_labels(owner: &Owner) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert(labels::MANAGED_BY_KEY.into(), labels::MANAGED_BY.into());
    m.insert(labels::OWNER_NAME.into(), labels::owner_value(owner.name).into());
    m.insert(labels::OWNER_KIND.into(), owner.kind.into());
    m
}

/// The child Deployment for one cluster, as a server-side apply body.
pub fn deployment(owner: &Owner, spec: &Value, replicas: u32) -> Result<Deployment, serde_json::Error> {
    let mut spec = spec.clone();
    spec["replicas"] = json!(replicas);
    let tmpl_labels = spec.pointer_mut("/template/metadata/labels");
    match tmpl_labels {
        Some(Value::Object(m)) => m.extend(owner_labels(owner)),
        _ => {
            if spec["template"].get("metadata").is_none() {
                spec["template"]["metadata"] = json!({});
            }
            spec["template"]["metadata"]["labels"] = Value::Object(owner_labels(owner));
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": owner_labels(owner),
            "annotations": {
                labels::OWNER_REF: format!("{}/{}", owner.namespace, owner.name),
                labels::OWNER_UID: owner.uid,
            },
        },
        "spec": spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_carry_ownership_and_the_decided_replicas() {
        let owner = Owner { kind: "MultiClusterDeployment", namespace: "ns", name: "web", uid: "u-1" };
        let spec = json!({"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "img"}]}}, "strategy": {"type": "Recreate"}});
        let d = deployment(&owner, &spec, 3).unwrap();
        let s = d.spec.unwrap();
        assert_eq!(s.replicas, Some(3));
        assert_eq!(s.strategy.unwrap().type_.as_deref(), Some("Recreate"));
        let tl = s.template.metadata.unwrap().labels.unwrap();
        assert_eq!(tl["app"], "web");
        assert_eq!(tl[labels::OWNER_NAME], "web");
        assert_eq!(d.metadata.labels.unwrap()[labels::MANAGED_BY_KEY], "mck8s");
        assert_eq!(d.metadata.annotations.unwrap()[labels::OWNER_REF], "ns/web");
    }
}
