//! mck8s's own identity in a cloud cluster it joins. Cluster API publishes an admin
//! kubeconfig (a client certificate of `kubernetes-admin`). The registry gets a ServiceAccount
//! token instead, bound to the ClusterRole of `deploy/member/rbac.yaml`: what the controller
//! does in a workload cluster, nothing more. The admin kubeconfig stays in the Cluster's
//! namespace and is used only to set this up and for the provisioner's own probe.

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{AuthInfo, Kubeconfig, NamedAuthInfo, NamedContext};
use serde_json::Value;

/// The member role, shared with the fog clusters' instructions (docs/deploy.md).
pub const MEMBER_RBAC: &str = include_str!("../../../../deploy/member/rbac.yaml");
const NAMESPACE: &str = "kube-system";
const TOKEN_SECRET: &str = "mck8s-member-token";
const USER: &str = "mck8s-member";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("setting up mck8s's identity in the cloud cluster: {what}: {source}")]
    Kube { what: String, source: kube::Error },
    /// The token controller has not filled the Secret in yet.
    #[error("the ServiceAccount token in {NAMESPACE}/{TOKEN_SECRET} is not issued yet")]
    NotYet,
    #[error("{0}")]
    Invalid(String),
}

/// Applies the member role in the cloud cluster (idempotent) and returns `admin` with its
/// user replaced by the ServiceAccount's token: same server and CA, one context, one user.
pub async fn token_kubeconfig(workload: &Client, admin: &Kubeconfig, manager: &str) -> Result<Kubeconfig, IdentityError> {
    apply_member_rbac(workload, manager).await?;
    let secret = Api::<Secret>::namespaced(workload.clone(), NAMESPACE)
        .get_opt(TOKEN_SECRET)
        .await
        .map_err(|source| IdentityError::Kube { what: format!("reading {NAMESPACE}/{TOKEN_SECRET}"), source })?;
    let token = secret.and_then(|s| s.data).and_then(|d| d.get("token").cloned()).filter(|t| !t.0.is_empty()).ok_or(IdentityError::NotYet)?;
    let token = String::from_utf8(token.0).map_err(|_| IdentityError::Invalid("the ServiceAccount token is not UTF-8".into()))?;
    with_token(admin, token)
}

/// `admin`'s current context, with a user holding only `token`.
fn with_token(admin: &Kubeconfig, token: String) -> Result<Kubeconfig, IdentityError> {
    let current = admin.current_context.clone().or_else(|| admin.contexts.first().map(|c| c.name.clone()));
    let context =
        admin.contexts.iter().find(|c| Some(&c.name) == current.as_ref()).cloned().ok_or_else(|| IdentityError::Invalid("the kubeconfig has no current context".into()))?;
    let mut inner = context.context.clone().ok_or_else(|| IdentityError::Invalid("the kubeconfig's context is empty".into()))?;
    let cluster = admin.clusters.iter().find(|c| c.name == inner.cluster).cloned().ok_or_else(|| IdentityError::Invalid("the kubeconfig's context names no cluster".into()))?;
    inner.user = Some(USER.into());
    Ok(Kubeconfig {
        clusters: vec![cluster],
        auth_infos: vec![NamedAuthInfo { name: USER.into(), auth_info: Some(AuthInfo { token: Some(token.into()), ..Default::default() }), other: Default::default() }],
        contexts: vec![NamedContext { name: context.name.clone(), context: Some(inner), other: Default::default() }],
        current_context: Some(context.name),
        kind: Some("Config".into()),
        api_version: Some("v1".into()),
        ..Default::default()
    })
}

async fn apply_member_rbac(client: &Client, manager: &str) -> Result<(), IdentityError> {
    let pp = PatchParams::apply(manager).force();
    for doc in documents()? {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let patch = Patch::Apply(&doc);
        let result = match kind.as_str() {
            "ServiceAccount" => Api::<ServiceAccount>::namespaced(client.clone(), NAMESPACE).patch(&name, &pp, &patch).await.map(drop),
            "Secret" => Api::<Secret>::namespaced(client.clone(), NAMESPACE).patch(&name, &pp, &patch).await.map(drop),
            "ClusterRole" => Api::<ClusterRole>::all(client.clone()).patch(&name, &pp, &patch).await.map(drop),
            "ClusterRoleBinding" => Api::<ClusterRoleBinding>::all(client.clone()).patch(&name, &pp, &patch).await.map(drop),
            other => return Err(IdentityError::Invalid(format!("deploy/member/rbac.yaml: unexpected kind {other}"))),
        };
        result.map_err(|source| IdentityError::Kube { what: format!("{kind} {name}"), source })?;
    }
    Ok(())
}

fn documents() -> Result<Vec<Value>, IdentityError> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(MEMBER_RBAC)
        .map(|d| Value::deserialize(d).map_err(|e| IdentityError::Invalid(format!("deploy/member/rbac.yaml: {e}"))))
        .filter(|d| !matches!(d, Ok(Value::Null)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_rbac_is_four_objects_and_never_touches_secrets_or_escalates() {
        let docs = documents().unwrap();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret"]);
        let rules = docs[1]["rules"].as_array().unwrap();
        for r in rules {
            let resources: Vec<&str> = r["resources"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            let verbs: Vec<&str> = r["verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            assert!(!resources.iter().any(|x| ["secrets", "*", "clusterroles", "clusterrolebindings", "roles", "rolebindings"].contains(x)), "{r}");
            assert!(!verbs.iter().any(|v| ["*", "escalate", "bind", "impersonate"].contains(v)), "{r}");
        }
    }

    #[test]
    fn the_token_kubeconfig_keeps_server_and_ca_and_drops_the_admin() {
        let admin = Kubeconfig::from_yaml(
            "apiVersion: v1
kind: Config
clusters:
- {name: c, cluster: {server: 'https://10.0.0.1:6443', certificate-authority-data: Q0E=}}
- {name: other, cluster: {server: 'https://10.9.9.9'}}
users:
- {name: admin, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}
contexts:
- {name: c-admin@c, context: {cluster: c, user: admin}}
current-context: c-admin@c
",
        )
        .unwrap();
        let kc = with_token(&admin, "t0k".into()).unwrap();
        assert_eq!(kc.clusters.len(), 1);
        assert_eq!(kc.clusters[0].cluster.as_ref().unwrap().server.as_deref(), Some("https://10.0.0.1:6443"));
        let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.client_certificate_data.is_none() && user.client_key_data.is_none());
        let yaml = serde_yaml_ng::to_string(&kc).unwrap();
        assert!(yaml.contains("t0k") && !yaml.contains("Q0VSVA") && !yaml.contains("S0VZ") && !yaml.contains("10.9.9.9"), "{yaml}");
        assert_eq!(kc.contexts[0].context.as_ref().unwrap().user.as_deref(), Some(USER));
        assert_eq!(kc.current_context.as_deref(), Some("c-admin@c"));
    }
}
