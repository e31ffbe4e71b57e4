//! The topology controller's share: one MachineDeployment per
//! `spec.topology.workers.machineDeployments[]` entry, its replicas kept in step with the
//! entry (except in cluster-autoscaler mode), and the webhook rule CAPI enforces on topologies
//! (no webhooks run on this 1.20 API server, so the simulator reports it as a condition).

use std::collections::BTreeMap;

use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PostParams};
use serde_json::{Value, json};

use super::{ANN_AUTOSCALER_MAX, ANN_AUTOSCALER_MIN, API_VERSION, Ctx, Kind, LABEL_CLUSTER_NAME, LABEL_DEPLOYMENT_NAME, LABEL_TOPOLOGY_DEPLOYMENT, LABEL_TOPOLOGY_OWNED, names};
use crate::Result;

/// One `workers.machineDeployments[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MdTopology {
    pub name: String,
    pub class: String,
    pub replicas: Option<i64>,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `workerFlavor`: the entry's override, else the Cluster's variable.
    pub flavor: Option<String>,
}

fn variable(list: &Value, name: &str) -> Option<String> {
    let v = list.as_array()?.iter().find(|v| v["name"] == name)?;
    v["value"].as_str().map(String::from)
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object().map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect()).unwrap_or_default()
}

/// The entries of a Cluster's `spec.topology`.
pub(super) fn entries(topology: &Value) -> Vec<MdTopology> {
    let cluster_flavor = variable(&topology["variables"], "workerFlavor");
    topology["workers"]["machineDeployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(MdTopology {
                name: e["name"].as_str()?.to_string(),
                class: e["class"].as_str().unwrap_or_default().to_string(),
                replicas: e["replicas"].as_i64(),
                annotations: string_map(&e["metadata"]["annotations"]),
                labels: string_map(&e["metadata"]["labels"]),
                flavor: variable(&e["variables"]["overrides"], "workerFlavor").or_else(|| cluster_flavor.clone()),
            })
        })
        .collect()
}

/// CAPI's webhook rejects `replicas` together with the cluster-autoscaler annotations.
pub(super) fn validate(entries: &[MdTopology]) -> std::result::Result<(), String> {
    for e in entries {
        if e.replicas.is_some() && (e.annotations.contains_key(ANN_AUTOSCALER_MIN) || e.annotations.contains_key(ANN_AUTOSCALER_MAX)) {
            return Err(format!(
                "machineDeployments[name={}]: replicas must not be set together with the annotations {ANN_AUTOSCALER_MIN} / {ANN_AUTOSCALER_MAX} \
                 (rejected by the Cluster API webhook; leave replicas unset to let the autoscaler own them)",
                e.name
            ));
        }
    }
    Ok(())
}

impl MdTopology {
    /// Autoscaler mode: whoever scales the MachineDeployment owns its replicas.
    pub fn autoscaled(&self) -> bool {
        self.replicas.is_none() && self.annotations.contains_key(ANN_AUTOSCALER_MIN)
    }

    /// Replicas of a new MachineDeployment: the entry's, else the autoscaler's minimum, else 1.
    pub fn initial_replicas(&self) -> i64 {
        self.replicas.or_else(|| self.annotations.get(ANN_AUTOSCALER_MIN).and_then(|m| m.trim().parse().ok())).unwrap_or(1)
    }
}

pub(super) fn deleting(o: &DynamicObject) -> bool {
    o.metadata.deletion_timestamp.is_some()
}

pub(super) fn label<'a>(o: &'a DynamicObject, key: &str) -> Option<&'a str> {
    o.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// Creates, updates and deletes the Cluster's MachineDeployments to match its topology;
/// returns the ones that are not being deleted.
pub(super) async fn sync(ctx: &Ctx, cluster: &DynamicObject, entries: &[MdTopology]) -> Result<Vec<DynamicObject>> {
    let ns = cluster.metadata.namespace.clone().unwrap_or_default();
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let api = ctx.api(Kind::MachineDeployment, &ns);
    let lp = ListParams::default().labels(&format!("{LABEL_CLUSTER_NAME}={name},{LABEL_TOPOLOGY_OWNED}"));
    let mut mds: Vec<DynamicObject> = api.list(&lp).await?.items.into_iter().filter(|m| !deleting(m)).collect();
    let mut changed = false;
    for e in entries {
        match mds.iter().find(|m| label(m, LABEL_TOPOLOGY_DEPLOYMENT) == Some(e.name.as_str())) {
            None => {
                let md = new_machine_deployment(cluster, e);
                api.create(&PostParams::default(), &serde_json::from_value(md.clone()).expect("md shape")).await?;
                tracing::info!(md = ?md["metadata"]["name"], replicas = e.initial_replicas(), autoscaler = e.autoscaled(), "MachineDeployment created");
                changed = true;
            }
            Some(md) => {
                let mut patch = json!({});
                if let Some(r) = e.replicas
                    && md.data["spec"]["replicas"].as_i64() != Some(r)
                {
                    patch["spec"] = json!({"replicas": r});
                }
                let have = md.metadata.annotations.clone().unwrap_or_default();
                let missing: BTreeMap<&String, &String> = e.annotations.iter().filter(|(k, v)| have.get(*k) != Some(v)).collect();
                if !missing.is_empty() {
                    patch["metadata"] = json!({"annotations": missing});
                }
                if patch.as_object().is_some_and(|p| !p.is_empty()) {
                    api.patch(md.metadata.name.as_deref().unwrap_or_default(), &super::patch_params(), &Patch::Merge(&patch)).await?;
                    changed = true;
                }
            }
        }
    }
    for md in &mds {
        let entry = label(md, LABEL_TOPOLOGY_DEPLOYMENT);
        if !entries.iter().any(|e| Some(e.name.as_str()) == entry) {
            tracing::info!(md = ?md.metadata.name, "topology entry removed; deleting its MachineDeployment");
            api.delete(md.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default()).await?;
            changed = true;
        }
    }
    if changed {
        mds = api.list(&lp).await?.items.into_iter().filter(|m| !deleting(m)).collect();
    }
    Ok(mds)
}

fn new_machine_deployment(cluster: &DynamicObject, e: &MdTopology) -> Value {
    let ns = cluster.metadata.namespace.clone().unwrap_or_default();
    let cname = cluster.metadata.name.clone().unwrap_or_default();
    let name = names::machine_deployment(&cname, &e.name);
    let version = cluster.data["spec"]["topology"]["version"].clone();
    let selector = json!({LABEL_CLUSTER_NAME: cname, LABEL_DEPLOYMENT_NAME: name});
    let mut labels = e.labels.clone();
    labels.extend([(LABEL_CLUSTER_NAME.to_string(), cname.clone()), (LABEL_TOPOLOGY_OWNED.to_string(), String::new()), (LABEL_TOPOLOGY_DEPLOYMENT.to_string(), e.name.clone())]);
    let mut template_labels = labels.clone();
    template_labels.insert(LABEL_DEPLOYMENT_NAME.into(), name.clone());
    json!({
        "apiVersion": API_VERSION, "kind": "MachineDeployment",
        "metadata": {
            "name": name, "namespace": ns, "labels": labels, "annotations": e.annotations,
            "ownerReferences": [owner(cluster, "Cluster")],
        },
        "spec": {
            "clusterName": cname,
            "replicas": e.initial_replicas(),
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": template_labels},
                "spec": {
                    "clusterName": cname, "version": version,
                    "bootstrap": {"dataSecretName": format!("{name}-bootstrap")},
                    "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "SimMachine", "name": name},
                },
            },
        },
    })
}

/// A controller ownerReference to `o` (garbage collection after the owner is gone).
pub(super) fn owner(o: &DynamicObject, kind: &str) -> Value {
    json!({"apiVersion": API_VERSION, "kind": kind, "name": o.metadata.name, "uid": o.metadata.uid, "controller": true})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(yaml: &str) -> Value {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn entries_read_replicas_annotations_and_flavor() {
        let t = topo(
            "variables: [{name: workerFlavor, value: k8s.small}]
workers:
  machineDeployments:
  - {name: md-0, class: default-worker, replicas: 2}
  - name: md-1
    class: default-worker
    metadata: {annotations: {cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size: '3', cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size: '5'}}
    variables: {overrides: [{name: workerFlavor, value: k8s.xlarge}]}
  - {name: md-2, class: default-worker}",
        );
        let e = entries(&t);
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].replicas, e[0].flavor.as_deref(), e[0].autoscaled(), e[0].initial_replicas()), (Some(2), Some("k8s.small"), false, 2));
        assert_eq!((e[1].replicas, e[1].flavor.as_deref(), e[1].autoscaled(), e[1].initial_replicas()), (None, Some("k8s.xlarge"), true, 3));
        assert_eq!((e[2].autoscaled(), e[2].initial_replicas()), (false, 1));
        assert!(validate(&e).is_ok());
    }

    #[test]
    fn replicas_with_autoscaler_annotations_is_rejected() {
        let t = topo(
            "workers: {machineDeployments: [{name: md-0, class: c, replicas: 2, metadata: {annotations: {cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size: '4'}}}]}",
        );
        let err = validate(&entries(&t)).unwrap_err();
        assert!(err.contains("md-0") && err.contains("replicas"), "{err}");
    }
}
