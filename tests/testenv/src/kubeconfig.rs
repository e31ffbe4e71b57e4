//! Kubeconfig files: one per cluster and a merged one whose context names equal the cluster
//! names (the mck8s convention for member clusters).

use std::path::Path;

use serde_json::{Value, json};

use crate::{Error, Result};

pub struct Endpoint<'a> {
    pub cluster: &'a str,
    pub port: u16,
}

/// The CA is embedded (`certificate-authority-data`), as in a kubeconfig a user hands over:
/// the controller refuses kubeconfigs that point at local files unless told otherwise.
fn document(endpoints: &[Endpoint<'_>], ca_pem: &[u8], token: &str) -> Value {
    let ca = serde_json::to_value(k8s_openapi::ByteString(ca_pem.to_vec())).expect("bytes serialize");
    let clusters: Vec<Value> = endpoints
        .iter()
        .map(|e| {
            json!({"name": e.cluster, "cluster": {
                "server": format!("https://127.0.0.1:{}", e.port),
                "certificate-authority-data": ca,
            }})
        })
        .collect();
    let contexts: Vec<Value> = endpoints.iter().map(|e| json!({"name": e.cluster, "context": {"cluster": e.cluster, "user": "admin"}})).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "contexts": contexts,
        "current-context": endpoints.first().map(|e| e.cluster).unwrap_or_default(),
        "users": [{"name": "admin", "user": {"token": token}}],
        "preferences": {},
    })
}

pub fn write(path: &Path, endpoints: &[Endpoint<'_>], ca: &Path, token: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let ca_pem = std::fs::read(ca).map_err(|e| Error::io(ca, e))?;
    let text = serde_yaml_ng::to_string(&document(endpoints, &ca_pem, token)).map_err(|e| Error::State(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// A kube client for one context of a kubeconfig file.
pub async fn client(path: &Path, context: &str) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let options = kube::config::KubeConfigOptions { context: Some(context.into()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    Ok(kube::Client::try_from(config)?)
}
