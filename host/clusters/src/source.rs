//! Where workload clusters come from: kubeconfig files or directories whose contexts are
//! named like the clusters (the mck8s convention), and labelled kubeconfig Secrets in the
//! management cluster. Roles default to the name (`cloud` in it means cloud), as in mck8s.

use kube::config::Kubeconfig;
use mck8s_api::labels;
use mck8s_policy::input::RoleDoc;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// One workload cluster to connect to. Deliberately not `Debug`: it holds credentials.
#[derive(Clone)]
pub struct ClusterSpec {
    pub name: String,
    pub role: Option<RoleDoc>,
    pub labels: BTreeMap<String, String>,
    /// `file:<path>` or `secret:<namespace>/<name>`; a source only removes its own clusters.
    pub source: String,
    pub kubeconfig: Kubeconfig,
    pub context: String,
    /// Changes when anything that needs a new client changes.
    pub fingerprint: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("secret {secret}: {message}")]
    Secret { secret: String, message: String },
}

fn fingerprint(kubeconfig: &Kubeconfig, context: &str, labels: &BTreeMap<String, String>, role: &Option<RoleDoc>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(kubeconfig).unwrap_or_default().hash(&mut h);
    context.hash(&mut h);
    labels.hash(&mut h);
    format!("{role:?}").hash(&mut h);
    h.finish()
}

/// Parses a role label value.
pub fn role_from(value: Option<&str>) -> Option<RoleDoc> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        Some("cloud") => Some(RoleDoc::Cloud),
        Some("fog") | Some("edge") => Some(RoleDoc::Fog),
        _ => None,
    }
}

/// The kubeconfig files of `path`: the file itself, or every regular file in the directory
/// (a mounted Secret or ConfigMap directory; `..data`-style entries are skipped).
pub fn kubeconfig_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}

/// Every context of every kubeconfig under `path`, minus `exclude` (the management cluster).
pub fn from_path(path: &Path, exclude: &[String]) -> Result<Vec<ClusterSpec>, SourceError> {
    let mut out = Vec::new();
    for file in kubeconfig_files(path) {
        let kubeconfig = Kubeconfig::read_from(&file).map_err(|e| SourceError::Kubeconfig { path: file.clone(), message: e.to_string() })?;
        let source = format!("file:{}", path.display());
        out.extend(contexts_of(&kubeconfig, &source, exclude, BTreeMap::new(), None));
    }
    Ok(out)
}

fn contexts_of(kubeconfig: &Kubeconfig, source: &str, exclude: &[String], labels: BTreeMap<String, String>, role: Option<RoleDoc>) -> Vec<ClusterSpec> {
    kubeconfig
        .contexts
        .iter()
        .filter(|c| !exclude.contains(&c.name))
        .map(|c| ClusterSpec {
            name: c.name.clone(),
            role: role.clone(),
            labels: labels.clone(),
            source: source.to_string(),
            kubeconfig: kubeconfig.clone(),
            context: c.name.clone(),
            fingerprint: fingerprint(kubeconfig, &c.name, &labels, &role),
        })
        .collect()
}

/// A cluster Secret: label `fogguru.eu/cluster` (value `true`, or the cluster name), data key
/// `kubeconfig` (or `value`, as Cluster API names it). The cluster's name is the label value,
/// else the Secret's name; the kubeconfig's current context (or its only one) is used.
/// Labels `fogguru.eu/role` and `topology.kubernetes.io/region` give role and region;
/// `fogguru.eu/cordoned: "true"` keeps new placements off it (it reports NotReady).
pub fn from_secret(secret: &k8s_openapi::api::core::v1::Secret) -> Result<ClusterSpec, SourceError> {
    let meta = &secret.metadata;
    let id = format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), meta.name.as_deref().unwrap_or(""));
    let bad = |message: String| SourceError::Secret { secret: id.clone(), message };
    let l = meta.labels.clone().unwrap_or_default();
    let name = match l.get(labels::CLUSTER_SECRET).map(String::as_str) {
        Some("true") | Some("") | None => meta.name.clone().unwrap_or_default(),
        Some(n) => n.to_string(),
    };
    let data = secret.data.as_ref().ok_or_else(|| bad("has no data".into()))?;
    let bytes = data.get("kubeconfig").or_else(|| data.get("value")).ok_or_else(|| bad("has no `kubeconfig` (or `value`) key".into()))?;
    let text = std::str::from_utf8(&bytes.0).map_err(|_| bad("kubeconfig is not UTF-8".into()))?;
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| bad(format!("kubeconfig does not parse: {e}")))?;
    let context = kubeconfig
        .current_context
        .clone()
        .or_else(|| (kubeconfig.contexts.len() == 1).then(|| kubeconfig.contexts[0].name.clone()))
        .ok_or_else(|| bad("kubeconfig has no current-context and more than one context".into()))?;
    let mut cluster_labels = BTreeMap::new();
    for key in [labels::CLUSTER_REGION, labels::CLUSTER_CORDONED] {
        if let Some(v) = l.get(key) {
            cluster_labels.insert(key.to_string(), v.clone());
        }
    }
    let role = role_from(l.get(labels::CLUSTER_ROLE).map(String::as_str));
    let fp = fingerprint(&kubeconfig, &context, &cluster_labels, &role);
    Ok(ClusterSpec { name, role, labels: cluster_labels, source: format!("secret:{id}"), kubeconfig, context, fingerprint: fp })
}
