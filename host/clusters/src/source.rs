//! Where workload clusters come from: kubeconfig files or directories whose contexts are
//! named like the clusters (the mck8s convention), and labelled kubeconfig Secrets in the
//! management cluster. Roles default to the name (`cloud` in it means cloud), as in mck8s.

use crate::credentials::{self, Trust};
use kube::config::Kubeconfig;
use mck8s_api::labels;
use mck8s_fleet::Role;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// One workload cluster to connect to. Deliberately not `Debug`: it holds credentials.
#[derive(Clone)]
pub struct ClusterSpec {
    pub name: String,
    pub role: Option<Role>,
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
    #[error("kubeconfig {path}, context {context:?}: {refused}")]
    Refused { path: PathBuf, context: String, refused: credentials::Refused },
}

/// A YAML error without the text it quotes (a kubeconfig's lines hold credentials): where
/// it is, not what is there.
fn parse_error(text: &str) -> String {
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
        Err(e) => match e.location() {
            Some(at) => format!("not valid YAML at line {}, column {}", at.line(), at.column()),
            None => "not valid YAML".to_string(),
        },
        Ok(_) => "not a kubeconfig (a field has the wrong type)".to_string(),
    }
}

fn fingerprint(kubeconfig: &Kubeconfig, context: &str, labels: &BTreeMap<String, String>, role: &Option<Role>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(kubeconfig).unwrap_or_default().hash(&mut h);
    context.hash(&mut h);
    labels.hash(&mut h);
    format!("{role:?}").hash(&mut h);
    h.finish()
}

/// Parses a role label value.
pub fn role_from(value: Option<&str>) -> Option<Role> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        Some("cloud") => Some(Role::Cloud),
        Some("fog") | Some("edge") => Some(Role::Fog),
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

/// Every context of every kubeconfig under `path`, minus `exclude` (the management cluster),
/// and the contexts refused for what their credentials ask (see [`credentials`]).
pub fn from_path(path: &Path, exclude: &[String], trust: Trust) -> Result<(Vec<ClusterSpec>, Vec<SourceError>), SourceError> {
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for file in kubeconfig_files(path) {
        let unreadable = |message: String| SourceError::Kubeconfig { path: file.clone(), message };
        let text = std::fs::read_to_string(&file).map_err(|e| unreadable(e.kind().to_string()))?;
        // Where local files are allowed, `read_from` resolves relative paths against the file,
        // as kubectl does; elsewhere the text alone (a path is refused below anyway).
        let parsed = match trust {
            Trust::LocalFiles => Kubeconfig::read_from(&file),
            Trust::Untrusted => Kubeconfig::from_yaml(&text),
        };
        let kubeconfig = parsed.map_err(|_| unreadable(parse_error(&text)))?;
        let source = format!("file:{}", path.display());
        for spec in contexts_of(&kubeconfig, &source, exclude, BTreeMap::new(), None) {
            match credentials::check(&spec.kubeconfig, &spec.context, trust) {
                Ok(()) => out.push(spec),
                Err(r) => refused.push(SourceError::Refused { path: file.clone(), context: spec.context, refused: r }),
            }
        }
    }
    Ok((out, refused))
}

fn contexts_of(kubeconfig: &Kubeconfig, source: &str, exclude: &[String], labels: BTreeMap<String, String>, role: Option<Role>) -> Vec<ClusterSpec> {
    kubeconfig
        .contexts
        .iter()
        .filter(|c| !exclude.contains(&c.name))
        .map(|c| {
            let own = narrowed(kubeconfig, &c.name);
            ClusterSpec {
                name: c.name.clone(),
                role: role.clone(),
                labels: labels.clone(),
                source: source.to_string(),
                fingerprint: fingerprint(&own, &c.name, &labels, &role),
                kubeconfig: own,
                context: c.name.clone(),
            }
        })
        .collect()
}

/// The part of `kubeconfig` that `context` uses: that context, its cluster and its user.
/// Each cluster keeps only its own: a merged kubeconfig of N contexts costs N entries, not
/// N² (100 contexts held 19 MB of copies), and editing one context changes only that
/// cluster's fingerprint (before, every cluster of the file reconnected).
fn narrowed(kubeconfig: &Kubeconfig, context: &str) -> Kubeconfig {
    let named = kubeconfig.contexts.iter().find(|c| c.name == context);
    let inner = named.and_then(|c| c.context.as_ref());
    let cluster = inner.map(|i| i.cluster.as_str());
    let user = inner.and_then(|i| i.user.as_deref());
    Kubeconfig {
        preferences: kubeconfig.preferences.clone(),
        clusters: kubeconfig.clusters.iter().filter(|c| Some(c.name.as_str()) == cluster).cloned().collect(),
        auth_infos: kubeconfig.auth_infos.iter().filter(|u| Some(u.name.as_str()) == user).cloned().collect(),
        contexts: named.cloned().into_iter().collect(),
        current_context: Some(context.to_string()),
        extensions: kubeconfig.extensions.clone(),
        kind: kubeconfig.kind.clone(),
        api_version: kubeconfig.api_version.clone(),
        other: kubeconfig.other.clone(),
    }
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
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|_| bad(format!("kubeconfig does not parse: {}", parse_error(text))))?;
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
    // A Secret is anyone's who may create one here: inline credentials only, in every entry.
    credentials::check_all(&kubeconfig, Trust::Untrusted).map_err(|r| bad(r.to_string()))?;
    let role = role_from(l.get(labels::CLUSTER_ROLE).map(String::as_str));
    let fp = fingerprint(&kubeconfig, &context, &cluster_labels, &role);
    Ok(ClusterSpec { name, role, labels: cluster_labels, source: format!("secret:{id}"), kubeconfig, context, fingerprint: fp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;

    fn secret(kubeconfig: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some("c1".into());
        s.metadata.namespace = Some("mck8s".into());
        s.metadata.labels = Some([(labels::CLUSTER_SECRET.to_string(), "true".to_string())].into());
        s.data = Some([("kubeconfig".to_string(), k8s_openapi::ByteString(kubeconfig.as_bytes().to_vec()))].into());
        s
    }

    fn err(kubeconfig: &str) -> String {
        match from_secret(&secret(kubeconfig)) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_broken_kubeconfig_is_reported_without_its_text() {
        let token = "sk-live-0123456789abcdef";
        for text in [
            format!("users:\n- name: u\n  user:\n    token: {token}\n  : : bad\n"),
            format!("users: [{{name: u, user: {{token: {token}}}}}\ncontexts: 12\n"),
            format!("clusters: {token}\n"),
        ] {
            let e = err(&text);
            assert!(!e.contains(token) && !e.contains("sk-live"), "{e}");
            assert!(e.starts_with("secret mck8s/c1: kubeconfig does not parse"), "{e}");
        }
    }

    #[test]
    fn a_secret_with_a_plugin_or_a_path_names_the_field_and_the_secret() {
        let base = "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n";
        let e = err(&format!("{base}users: [{{name: u, user: {{exec: {{command: /usr/bin/id}}}}}}]\n"));
        assert_eq!(e, "secret mck8s/c1: exec in user \"u\" is not allowed: credential plugins run a command as the controller");
        let e = err(&format!("{base}users: [{{name: u, user: {{tokenFile: /etc/shadow}}}}]\n"));
        assert!(e.starts_with("secret mck8s/c1: tokenFile in user \"u\" is not allowed") && !e.contains("/etc/shadow"), "{e}");
        assert!(from_secret(&secret(&format!("{base}users: [{{name: u, user: {{token: t}}}}]\n"))).is_ok());
    }

    #[test]
    fn each_context_of_a_merged_kubeconfig_keeps_only_its_own_entries() {
        let merged = |server_b: &str| {
            let mut text = String::from("apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts:\n");
            for c in ["a", "b", "c"] {
                text += &format!("- {{name: {c}, context: {{cluster: k-{c}, user: u-{c}}}}}\n");
            }
            text += "clusters:\n";
            for c in ["a", "b", "c"] {
                let server = if c == "b" { server_b.to_string() } else { format!("https://{c}:6443") };
                text += &format!("- {{name: k-{c}, cluster: {{server: '{server}'}}}}\n");
            }
            text += "users:\n";
            for c in ["a", "b", "c"] {
                text += &format!("- {{name: u-{c}, user: {{token: t-{c}}}}}\n");
            }
            contexts_of(&Kubeconfig::from_yaml(&text).unwrap(), "file", &["c".to_string()], BTreeMap::new(), None)
        };
        let specs = merged("https://b:6443");
        assert_eq!(specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        for s in &specs {
            let k = &s.kubeconfig;
            assert_eq!(k.contexts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), [s.name.as_str()]);
            assert_eq!(k.clusters.iter().map(|c| c.name.clone()).collect::<Vec<_>>(), [format!("k-{}", s.name)]);
            assert_eq!(k.auth_infos.iter().map(|u| u.name.clone()).collect::<Vec<_>>(), [format!("u-{}", s.name)]);
            assert_eq!(k.current_context.as_deref(), Some(s.name.as_str()));
            assert!(credentials::check(k, &s.context, Trust::Untrusted).is_ok());
        }
        // Another server for b: b reconnects, a does not.
        let moved = merged("https://b2:6443");
        assert_eq!(moved[0].fingerprint, specs[0].fingerprint);
        assert_ne!(moved[1].fingerprint, specs[1].fingerprint);
    }

    #[test]
    fn files_refuse_plugins_always_and_paths_unless_allowed() {
        let dir = std::env::temp_dir().join(format!("mck8s-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("kubeconfig");
        let text = "apiVersion: v1\nkind: Config\ncontexts: [{name: a, context: {cluster: k, user: path}}, {name: b, context: {cluster: k, user: plugin}}]\n\
                    clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n\
                    users: [{name: path, user: {client-key: key.pem, client-certificate: cert.pem}}, {name: plugin, user: {auth-provider: {name: gcp}}}]\n";
        std::fs::write(&file, text).unwrap();
        let names = |trust| {
            let (ok, refused) = from_path(&file, &[], trust).unwrap();
            (ok.iter().map(|s| s.name.clone()).collect::<Vec<_>>(), refused.len())
        };
        assert_eq!(names(Trust::Untrusted), (vec![], 2));
        assert_eq!(names(Trust::LocalFiles), (vec!["a".to_string()], 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
