//! Policies from ConfigMaps labelled `fogguru.eu/policy` in the controller's namespace:
//! every `binaryData` key `<name>.wasm` is a policy called `<name>`. Watched through the API,
//! so a change takes effect as soon as the watch event arrives and the component compiles;
//! the registry validates it and keeps the last good version serving when it is refused.
//!
//! The annotation `fogguru.eu/shadow-of: <policy>` makes the ConfigMap's policies shadows of
//! that policy (see [`mck8s_scheduler::shadow`]). A key `<name>.wasm.previous` is not a
//! policy: `mck8s policy promote` keeps the replaced version there for `rollback`.
//!
//! ConfigMaps are limited to 1 MiB by the API server; larger components (Python, JS) go in
//! the policy directory (a volume) instead.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client};
use mck8s_api::labels;
use mck8s_clusters::watch::{self, Change, Provided};
use mck8s_policy::PolicyRegistry;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The API server refuses ConfigMaps above this; said here so the error names the way out.
pub const CONFIGMAP_LIMIT: usize = 1024 * 1024;

fn origin(cm: &str, key: &str) -> String {
    format!("configmap/{cm}/{key}")
}

/// `(policy name, key, bytes)` of one ConfigMap's policies.
fn policies_of(cm: &ConfigMap) -> Vec<(String, String, Vec<u8>)> {
    cm.binary_data.iter().flatten().filter_map(|(k, v)| k.strip_suffix(".wasm").map(|n| (n.to_string(), k.clone(), v.0.clone()))).collect()
}

pub async fn watch(registry: Arc<PolicyRegistry>, client: Client, namespace: String) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let stream = watcher::watcher(api, mck8s_clusters::watch_config().labels(labels::POLICY_CONFIGMAP)).default_backoff();
    let mut changes = std::pin::pin!(watch::changes(stream, "policy ConfigMap".into(), true));
    // ConfigMap name → the (policy, key) pairs it provides, to remove what disappears.
    let mut provided: Provided<(String, String)> = Provided::default();
    while let Some(change) = changes.next().await {
        match change {
            Change::Reset(cms) => {
                for cm in &cms {
                    apply(&registry, &mut provided, cm).await;
                }
                let names = cms.iter().filter_map(|c| c.metadata.name.clone()).collect();
                for (name, items) in provided.retain(&names) {
                    remove_all(&registry, &name, items);
                }
            }
            Change::Applied(cm) => apply(&registry, &mut provided, &cm).await,
            Change::Deleted(cm) => {
                let name = cm.metadata.name.clone().unwrap_or_default();
                remove_all(&registry, &name, provided.remove(&name));
            }
        }
    }
}

async fn apply(registry: &Arc<PolicyRegistry>, provided: &mut Provided<(String, String)>, cm: &ConfigMap) {
    let name = cm.metadata.name.clone().unwrap_or_default();
    let now: Vec<(String, String, Vec<u8>)> = policies_of(cm);
    let keys: BTreeSet<(String, String)> = now.iter().map(|(p, k, _)| (p.clone(), k.clone())).collect();
    if now.is_empty() && cm.data.as_ref().is_some_and(|d| d.keys().any(|k| k.ends_with(".wasm"))) {
        tracing::warn!(configmap = %name, "a .wasm key is under `data`; components are binary and belong under `binaryData`");
    }
    let shadow_of = cm.metadata.annotations.as_ref().and_then(|a| a.get(labels::SHADOW_OF)).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    for (policy, key, bytes) in now {
        let registry = registry.clone();
        let origin = origin(&name, &key);
        let shadow_of = shadow_of.clone();
        // Compiling can take seconds for large components: off the async workers.
        let res = tokio::task::spawn_blocking(move || {
            let loaded = registry.upsert(&policy, &bytes, &origin).map(|_| ());
            registry.set_shadow(&policy, shadow_of.as_deref());
            loaded
        })
        .await;
        if let Ok(Err(e)) = res {
            tracing::warn!(configmap = %name, key, error = %e, "policy from ConfigMap refused; the previous version keeps serving");
        }
    }
    let dropped = provided.set(&name, keys);
    remove_all(registry, &name, dropped);
}

fn remove_all(registry: &PolicyRegistry, cm: &str, items: Vec<(String, String)>) {
    for (policy, key) in items {
        registry.remove(&policy, &origin(cm, &key));
    }
}

/// The ConfigMap for a policy file, or a clear refusal when it cannot fit.
pub fn configmap_for(name: &str, namespace: &str, bytes: &[u8]) -> Result<ConfigMap, String> {
    // The limit covers the whole object; leave room for metadata.
    if bytes.len() > CONFIGMAP_LIMIT - 16 * 1024 {
        return Err(format!(
            "{name}.wasm is {} KiB; a ConfigMap holds at most 1 MiB. Put it in the policy directory (a volume mounted at --policy-dir) instead",
            bytes.len() / 1024
        ));
    }
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(format!("mck8s-policy-{name}"));
    cm.metadata.namespace = Some(namespace.to_string());
    cm.metadata.labels = Some([(labels::POLICY_CONFIGMAP.to_string(), "true".to_string())].into());
    cm.binary_data = Some([(format!("{name}.wasm"), k8s_openapi::ByteString(bytes.to_vec()))].into());
    Ok(cm)
}
