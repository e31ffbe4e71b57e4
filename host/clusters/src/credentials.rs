//! What a workload cluster's kubeconfig may ask of the controller. A kubeconfig Secret is
//! written by whoever may create Secrets in the controller's namespace; honouring an `exec`
//! or `auth-provider` plugin would run their command with the controller's identity, beside
//! every other cluster's credentials, and a file path (`tokenFile`, `client-key`, ...) would
//! read the controller's own files. So only inline credentials are accepted: the same rule
//! Flux applies unless told otherwise. Kubeconfig files given on the command line are the
//! operator's own and may use local files (not plugins) when `allow_local_files` says so.

use kube::config::Kubeconfig;

/// Which kubeconfigs may name local files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// From a Secret: inline credentials only.
    Untrusted,
    /// From a file the operator passed, with `--allow-kubeconfig-files`: local paths are
    /// allowed, plugins still are not.
    LocalFiles,
}

/// Why a kubeconfig is refused: the field and where it sits. Never any value from it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} in {place} is not allowed: {why}")]
pub struct Refused {
    pub field: &'static str,
    pub place: String,
    pub why: &'static str,
}

const PLUGIN: &str = "credential plugins run a command as the controller";
const LOCAL: &str = "only inline credentials are accepted (embed the data, e.g. `kubectl config view --flatten`)";

/// Checks the parts of `kubeconfig` that `context` uses: its cluster and its user (every
/// entry of that name). For the operator's kubeconfig files, which may hold other contexts
/// with plugins of their own (the operator's, never used by mck8s).
pub fn check(kubeconfig: &Kubeconfig, context: &str, trust: Trust) -> Result<(), Refused> {
    let ctx = kubeconfig.contexts.iter().find(|c| c.name == context).and_then(|c| c.context.as_ref());
    let cluster_name = ctx.map(|c| c.cluster.as_str());
    let user_name = ctx.and_then(|c| c.user.as_deref());
    check_entries(kubeconfig, |name| Some(name) == cluster_name, |name| Some(name) == user_name, trust)
}

/// Checks every cluster and user entry of `kubeconfig`. For a Secret's kubeconfig: it names
/// one cluster and is anyone's who may write Secrets, so nothing in it may ask for a plugin
/// or a local file, used by its context or not (fuzzing found one with a broken context
/// entry, which made [`check`] look at nothing while an `exec` user sat beside it).
pub fn check_all(kubeconfig: &Kubeconfig, trust: Trust) -> Result<(), Refused> {
    check_entries(kubeconfig, |_| true, |_| true, trust)
}

fn check_entries(kubeconfig: &Kubeconfig, cluster: impl Fn(&str) -> bool, user: impl Fn(&str) -> bool, trust: Trust) -> Result<(), Refused> {
    let local_ok = trust == Trust::LocalFiles;
    let refuse = |field: &'static str, place: String, why: &'static str| Err(Refused { field, place, why });

    for named in kubeconfig.clusters.iter().filter(|c| cluster(&c.name)) {
        let place = format!("cluster {:?}", named.name);
        if let Some(c) = &named.cluster
            && c.certificate_authority.is_some()
            && !local_ok
        {
            return refuse("certificate-authority", place, LOCAL);
        }
    }
    for named in kubeconfig.auth_infos.iter().filter(|u| user(&u.name)) {
        let place = format!("user {:?}", named.name);
        let Some(u) = &named.auth_info else { continue };
        if u.exec.is_some() {
            return refuse("exec", place, PLUGIN);
        }
        if u.auth_provider.is_some() {
            return refuse("auth-provider", place, PLUGIN);
        }
        if !local_ok {
            if u.token_file.is_some() {
                return refuse("tokenFile", place, LOCAL);
            }
            if u.client_certificate.is_some() {
                return refuse("client-certificate", place, LOCAL);
            }
            if u.client_key.is_some() {
                return refuse("client-key", place, LOCAL);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kc(user: &str, cluster: &str) -> Kubeconfig {
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{{name: c, context: {{cluster: k, user: u}}}}]\n\
             clusters: [{{name: k, cluster: {{server: 'https://127.0.0.1:1', {cluster}}}}}]\n\
             users: [{{name: u, user: {{{user}}}}}]\n"
        );
        Kubeconfig::from_yaml(&text).unwrap()
    }

    #[test]
    fn inline_credentials_pass_either_way() {
        let k = kc("token: abc", "certificate-authority-data: Zm9v");
        assert_eq!(check(&k, "c", Trust::Untrusted), Ok(()));
        assert_eq!(check(&k, "c", Trust::LocalFiles), Ok(()));
    }

    #[test]
    fn plugins_are_refused_even_from_files() {
        let exec = kc("exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/touch, args: [/tmp/pwned]}", "insecure-skip-tls-verify: true");
        for trust in [Trust::Untrusted, Trust::LocalFiles] {
            let e = check(&exec, "c", trust).unwrap_err();
            assert_eq!((e.field, e.place.as_str()), ("exec", "user \"u\""));
        }
        let provider = kc("auth-provider: {name: oidc, config: {client-id: x}}", "insecure-skip-tls-verify: true");
        assert_eq!(check(&provider, "c", Trust::LocalFiles).unwrap_err().field, "auth-provider");
    }

    #[test]
    fn local_paths_are_refused_from_secrets_only() {
        for (user, cluster, field) in [
            ("tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token", "insecure-skip-tls-verify: true", "tokenFile"),
            ("client-certificate: /etc/cert.pem", "insecure-skip-tls-verify: true", "client-certificate"),
            ("client-key: /etc/key.pem", "insecure-skip-tls-verify: true", "client-key"),
            ("token: abc", "certificate-authority: /etc/ca.pem", "certificate-authority"),
        ] {
            let k = kc(user, cluster);
            let e = check(&k, "c", Trust::Untrusted).unwrap_err();
            assert_eq!(e.field, field);
            assert!(!e.to_string().contains("/etc") && !e.to_string().contains("/var"), "no value quoted: {e}");
            assert_eq!(check(&k, "c", Trust::LocalFiles), Ok(()));
        }
    }

    #[test]
    fn only_the_context_in_use_counts() {
        let text = "apiVersion: v1\nkind: Config\ncontexts: [{name: a, context: {cluster: k, user: good}}, {name: b, context: {cluster: k, user: bad}}]\n\
                    clusters: [{name: k, cluster: {server: 'https://x'}}]\n\
                    users: [{name: good, user: {token: t}}, {name: bad, user: {exec: {command: sh}}}]\n";
        let k = Kubeconfig::from_yaml(text).unwrap();
        assert_eq!(check(&k, "a", Trust::Untrusted), Ok(()));
        assert_eq!(check(&k, "b", Trust::Untrusted).unwrap_err().field, "exec");
        // A Secret's kubeconfig is checked whole.
        assert_eq!(check_all(&k, Trust::Untrusted).unwrap_err().place, "user \"bad\"");
    }

    /// The fuzzer's find (fuzz/corpus/kubeconfig_secret/regression-broken-context): a context
    /// entry that does not parse as one made `check` look at nothing.
    #[test]
    fn a_plugin_beside_a_broken_context_is_refused_in_a_secret() {
        let text = "apiVersion: v1\nkind: Config\ncurrent-context: c1\nclusters: [{name: c1, cluster: {server: 'https://127.0.0.1:1'}}]\n\
                    users: [{name: u, user: {exec: {command: /bin/sh}}}]\ncontexts: [{name: c1, co+ntext: {cluster: c1, user: u}}]\n";
        let k = Kubeconfig::from_yaml(text).unwrap();
        assert_eq!(check(&k, "c1", Trust::Untrusted), Ok(()), "nothing in use to refuse");
        assert_eq!(check_all(&k, Trust::Untrusted).unwrap_err().field, "exec");
    }
}
