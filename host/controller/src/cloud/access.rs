//! The controller's access to the Secrets of a cloud cluster's namespace. With the chart's
//! narrow role it cannot read or write Secrets outside its own namespace: each namespace it
//! provisions into gets a RoleBinding of one ClusterRole (Secrets there, and deleting that
//! namespace) to the controller's own ServiceAccount. The chart grants `bind` on exactly that
//! ClusterRole, so the controller can hand itself nothing else. Without it (an admin
//! kubeconfig, as in development) nothing is bound.

use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

/// The RoleBinding's name in every cloud cluster's namespace.
pub const BINDING: &str = "mck8s-cloudprovisioner";

/// Whom to bind, to what (`--cloud-namespace-role`, `--service-account`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceAccess {
    /// The ClusterRole granted in each cloud cluster's namespace.
    pub cluster_role: String,
    /// The controller's ServiceAccount (in the controller's namespace).
    pub service_account: String,
    pub service_account_namespace: String,
}

impl NamespaceAccess {
    /// The RoleBinding, labelled with the CloudProvisioner that made it.
    pub fn binding(&self, namespace: &str, owner: &str) -> Value {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": BINDING, "namespace": namespace, "labels": {mck8s_api::labels::MADE_BY_PROVISIONER: owner, "fogguru.eu/managed-by": "mck8s"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": self.cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": self.service_account, "namespace": self.service_account_namespace}],
        })
    }
}

/// Binds the role in `namespace` (idempotent).
pub async fn grant(client: &Client, access: &NamespaceAccess, namespace: &str, owner: &str, manager: &str) -> Result<(), kube::Error> {
    let api: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    api.patch(BINDING, &PatchParams::apply(manager).force(), &Patch::Apply(&access.binding(namespace, owner))).await?;
    Ok(())
}

/// Removes the binding (when the namespace itself stays: it was not ours to delete).
pub async fn revoke(client: &Client, namespace: &str) -> Result<(), kube::Error> {
    let api: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    match api.delete(BINDING, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// RBAC is served from an informer: a binding just written may take a moment to apply.
/// Retries `call` on 403 for up to ~2 s after a grant; any other error, or a 403 that
/// persists, is returned as it is.
pub async fn after_grant<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(kube::Error::Api(e)) if e.code == 403 && tries < 10 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_names_only_the_role_and_the_controllers_account() {
        let a = NamespaceAccess { cluster_role: "mck8s-cloud-namespace".into(), service_account: "mck8s".into(), service_account_namespace: "mck8s-system".into() };
        let b = a.binding("cloud1", "cp1");
        assert_eq!(b["metadata"]["namespace"], "cloud1");
        assert_eq!(b["roleRef"], json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "mck8s-cloud-namespace"}));
        assert_eq!(b["subjects"], json!([{"kind": "ServiceAccount", "name": "mck8s", "namespace": "mck8s-system"}]));
        assert_eq!(b["metadata"]["labels"][mck8s_api::labels::MADE_BY_PROVISIONER], "cp1");
    }
}
