//! The child objects mck8s puts in workload clusters: the owner's spec with the decided
//! replicas, ownership labels (there are no cross-cluster ownerReferences) and the owner
//! labels on the pod template so the capacity model can tell the owner's pods apart.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
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

fn owner_annotations(owner: &Owner) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert(labels::OWNER_REF.into(), format!("{}/{}", owner.namespace, owner.name).into());
    m.insert(labels::OWNER_UID.into(), owner.uid.into());
    m
}

/// The owner labels on the pod template too, so the capacity model and the pod watch know
/// whose pods these are.
fn label_template(owner: &Owner, spec: &mut Value) {
    match spec.pointer_mut("/template/metadata/labels") {
        Some(Value::Object(m)) => m.extend(owner_labels(owner)),
        _ => {
            if spec["template"].get("metadata").is_none() {
                spec["template"]["metadata"] = json!({});
            }
            spec["template"]["metadata"]["labels"] = Value::Object(owner_labels(owner));
        }
    }
}

fn child<K: serde::de::DeserializeOwned>(api_version: &str, kind: &str, owner: &Owner, annotations: serde_json::Map<String, Value>, spec: Value) -> Result<K, serde_json::Error> {
    serde_json::from_value(json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": owner_labels(owner),
            "annotations": annotations,
        },
        "spec": spec,
    }))
}

/// The child Deployment for one cluster, as a server-side apply body.
pub fn deployment(owner: &Owner, spec: &Value, replicas: u32) -> Result<Deployment, serde_json::Error> {
    let mut spec = spec.clone();
    spec["replicas"] = json!(replicas);
    label_template(owner, &mut spec);
    child("apps/v1", "Deployment", owner, owner_annotations(owner), spec)
}

/// The child Job for one cluster: the JobSpec verbatim (every chosen cluster runs the whole
/// Job, as in mck8s), with the owner labels on its pods.
pub fn job(owner: &Owner, spec: &Value) -> Result<Job, serde_json::Error> {
    let mut spec = spec.clone();
    label_template(owner, &mut spec);
    child("batch/v1", "Job", owner, owner_annotations(owner), spec)
}

/// mck8s's annotations for cross-cluster routing (§7.1): Cilium ClusterMesh's global
/// service when the MultiClusterService has the key (any value), else external-dns's
/// hostname `<name>.fogguru.apps` when it asks for an internal hostname.
pub const CILIUM_GLOBAL: &str = "io.cilium/global-service";
pub const EXTERNAL_DNS_INTERNAL: &str = "external-dns.alpha.kubernetes.io/internal-hostname";
pub const EXTERNAL_DNS_HOSTNAME: &str = "external-dns.alpha.kubernetes.io/hostname";

/// The child Service for one cluster: the ServiceSpec of the MultiClusterService without
/// `locations`, with the routing annotations translated.
pub fn service(owner: &Owner, mcs_annotations: Option<&std::collections::BTreeMap<String, String>>, spec: &Value) -> Result<Service, serde_json::Error> {
    let mut spec = spec.clone();
    if let Some(m) = spec.as_object_mut() {
        m.remove("locations");
    }
    // `protocol` is half of the ports' list-map key: server-side apply refuses an entry
    // without it (the API server's default comes too late), so the default is set here.
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert_with(|| "TCP".into());
        }
    }
    let mut annotations = owner_annotations(owner);
    if let Some(a) = mcs_annotations {
        if a.contains_key(CILIUM_GLOBAL) {
            annotations.insert(CILIUM_GLOBAL.into(), "true".into());
        } else if a.contains_key(EXTERNAL_DNS_INTERNAL) {
            annotations.insert(EXTERNAL_DNS_HOSTNAME.into(), format!("{}.fogguru.apps", owner.name).into());
        }
    }
    child("v1", "Service", owner, annotations, spec)
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

    #[test]
    fn services_translate_the_routing_annotations_and_drop_locations() {
        let owner = Owner { kind: "MultiClusterService", namespace: "ns", name: "hello", uid: "u-2" };
        let spec = json!({"selector": {"app": "hello"}, "ports": [{"port": 80, "targetPort": "http"}], "locations": "cluster1"});
        let cilium = [(CILIUM_GLOBAL.to_string(), "yes".to_string()), (EXTERNAL_DNS_INTERNAL.to_string(), "x".to_string())].into();
        let s = service(&owner, Some(&cilium), &spec).unwrap();
        let a = s.metadata.annotations.unwrap();
        assert_eq!(a[CILIUM_GLOBAL], "true");
        assert!(!a.contains_key(EXTERNAL_DNS_HOSTNAME));
        assert_eq!(s.metadata.labels.unwrap()[labels::OWNER_KIND], "MultiClusterService");
        let port = &s.spec.unwrap().ports.unwrap()[0];
        assert_eq!((port.port, port.protocol.as_deref()), (80, Some("TCP")));
        let dns = [(EXTERNAL_DNS_INTERNAL.to_string(), "x".to_string())].into();
        let a = service(&owner, Some(&dns), &spec).unwrap().metadata.annotations.unwrap();
        assert_eq!(a[EXTERNAL_DNS_HOSTNAME], "hello.fogguru.apps");
        let a = service(&owner, None, &spec).unwrap().metadata.annotations.unwrap();
        assert_eq!(a.len(), 2, "only the owner annotations: {a:?}");
    }

    #[test]
    fn jobs_label_their_pods() {
        let owner = Owner { kind: "MultiClusterJob", namespace: "ns", name: "pi", uid: "u-3" };
        let spec = json!({"completions": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}});
        let j = job(&owner, &spec).unwrap();
        let s = j.spec.unwrap();
        assert_eq!(s.completions, Some(2));
        assert_eq!(s.template.metadata.unwrap().labels.unwrap()[labels::OWNER_KIND], "MultiClusterJob");
    }
}
