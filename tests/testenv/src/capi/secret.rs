//! The `<cluster>-kubeconfig` Secret, as KubeadmControlPlane publishes it (control-plane
//! contract): in the Cluster's namespace, type `cluster.x-k8s.io/secret`, label
//! `cluster.x-k8s.io/cluster-name`, key `value`, owned by the Cluster. Published as soon as
//! the endpoint exists, before the API server answers, as KCP does. Changing the Cluster's
//! `sim.mck8s.io/rotate-kubeconfig` annotation switches it to the other admin token.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PostParams};
use serde_json::json;

use super::workload::{Workload, kubeconfig_text};
use super::{ANN_ROTATE_KUBECONFIG, Ctx, LABEL_CLUSTER_NAME, SECRET_TYPE, names, record, topology};
use crate::{Error, Result};

/// Creates or refreshes the Secret (after a rotation, or if someone changed or deleted it).
pub(super) async fn publish(ctx: &Ctx, cluster: &DynamicObject, wl: &mut Workload) -> Result<()> {
    let ns = cluster.metadata.namespace.clone().unwrap_or_default();
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let rotation = cluster.metadata.annotations.as_ref().and_then(|a| a.get(ANN_ROTATE_KUBECONFIG)).cloned();
    if rotation != wl.rec.rotation_seen {
        let key = names::key(&ns, &name);
        wl.rec = tokio::task::block_in_place(|| {
            record::update(&ctx.sd.dir, |recs| {
                let r = recs.clusters.get_mut(&key).ok_or_else(|| Error::State(format!("no record for {key}")))?;
                r.token_index = (r.token_index + 1) % 2;
                r.rotation_seen = rotation.clone();
                Ok(r.clone())
            })
        })?;
        tracing::info!(cluster = %key, token = wl.rec.token_index, "kubeconfig rotated (simulated certificate rotation)");
    }
    let value = kubeconfig_text(&name, wl.rec.port, &ctx.ca_pem, wl.rec.token()).into_bytes();
    let api: Api<Secret> = Api::namespaced(ctx.mgmt.clone(), &ns);
    let secret_name = names::kubeconfig_secret(&name);
    match api.get_opt(&secret_name).await? {
        Some(s) if s.data.as_ref().and_then(|d| d.get("value")).is_some_and(|v| v.0 == value) => Ok(()),
        Some(_) => {
            let patch = json!({"data": {"value": ByteString(value)}});
            api.patch(&secret_name, &super::patch_params(), &Patch::Merge(&patch)).await?;
            Ok(())
        }
        None => {
            let secret = json!({
                "metadata": {
                    "name": secret_name, "namespace": ns,
                    "labels": {LABEL_CLUSTER_NAME: name},
                    "ownerReferences": [topology::owner(cluster, "Cluster")],
                },
                "type": SECRET_TYPE,
                "data": {"value": ByteString(value)},
            });
            let secret: Secret = serde_json::from_value(secret).expect("secret shape");
            match api.create(&PostParams::default(), &secret).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Removed explicitly at the end of a deletion (the ownerReference would also collect it).
pub(super) async fn delete(ctx: &Ctx, ns: &str, cluster: &str) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.mgmt.clone(), ns);
    match api.delete(&names::kubeconfig_secret(cluster), &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
