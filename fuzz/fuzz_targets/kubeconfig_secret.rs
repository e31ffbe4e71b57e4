//! A kubeconfig Secret as anyone who may create Secrets in the controller's namespace could
//! write it: refused with a clear error or accepted with inline credentials only, never a
//! panic, and no credential value ever in the error text.
#![no_main]

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// Fields whose values are credentials.
const SECRET_FIELDS: [&str; 5] = ["token", "password", "client-key-data", "client-certificate-data", "certificate-authority-data"];

/// Every credential value in `v` (at least 6 bytes: shorter strings match by chance).
fn credentials(v: &serde_yaml_ng::Value, out: &mut Vec<String>) {
    match v {
        serde_yaml_ng::Value::Mapping(m) => {
            for (k, v) in m {
                if let (Some(k), Some(s)) = (k.as_str(), v.as_str()) {
                    if SECRET_FIELDS.contains(&k) && s.len() >= 6 {
                        out.push(s.to_string());
                    }
                }
                credentials(v, out);
            }
        }
        serde_yaml_ng::Value::Sequence(s) => s.iter().for_each(|v| credentials(v, out)),
        serde_yaml_ng::Value::Tagged(t) => credentials(&t.value, out),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut secret = Secret::default();
    secret.metadata.name = Some("cluster-c1".into());
    secret.metadata.namespace = Some("mck8s".into());
    secret.metadata.labels = Some(BTreeMap::from([(mck8s_api::labels::CLUSTER_SECRET.to_string(), "c1".to_string())]));
    secret.data = Some(BTreeMap::from([("kubeconfig".to_string(), ByteString(data.to_vec()))]));
    match mck8s_clusters::source::from_secret(&secret) {
        Err(e) => {
            let message = e.to_string();
            let mut secrets = Vec::new();
            if let Ok(v) = serde_yaml_ng::from_slice::<serde_yaml_ng::Value>(data) {
                credentials(&v, &mut secrets);
            }
            for s in secrets {
                assert!(!message.contains(&s), "the error quotes a credential: {message}");
            }
        }
        Ok(spec) => {
            // Only inline credentials get through.
            for a in spec.kubeconfig.auth_infos.iter().filter_map(|a| a.auth_info.as_ref()) {
                assert!(a.exec.is_none() && a.auth_provider.is_none() && a.token_file.is_none(), "{a:?}");
                assert!(a.client_certificate.is_none() && a.client_key.is_none(), "{a:?}");
            }
            for c in spec.kubeconfig.clusters.iter().filter_map(|c| c.cluster.as_ref()) {
                assert!(c.certificate_authority.is_none(), "{c:?}");
            }
        }
    }
});
