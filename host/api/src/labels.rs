//! Labels and annotations mck8s puts on what it creates in workload clusters. Children are
//! found by these (there are no cross-cluster ownerReferences).

/// `app.kubernetes.io/managed-by` value on every child.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "mck8s";
/// On child Deployments, Jobs, Services and their pod templates: the owning object's name
/// (or `h-<hash>` when the name is longer than a label value may be).
pub const OWNER_NAME: &str = "fogguru.eu/owner";
/// On children: the owner's kind (`MultiClusterDeployment`, ...).
pub const OWNER_KIND: &str = "fogguru.eu/owner-kind";
/// Annotation on children: `<namespace>/<name>` of the owner, and its uid.
pub const OWNER_REF: &str = "fogguru.eu/owner-ref";
pub const OWNER_UID: &str = "fogguru.eu/owner-uid";
/// Server-side apply field manager.
pub const FIELD_MANAGER: &str = "mck8s";

/// Kubeconfig Secrets in the management cluster that register workload clusters.
pub const CLUSTER_SECRET: &str = "fogguru.eu/cluster";
/// Role (`fog` or `cloud`) of a registered cluster, on its Secret.
pub const CLUSTER_ROLE: &str = "fogguru.eu/role";
/// Region of a registered cluster, on its Secret.
pub const CLUSTER_REGION: &str = "topology.kubernetes.io/region";
/// On a cluster Secret: `true` while the cluster takes no new placements (a cloud cluster
/// draining before it is removed). The registry reports it NotReady.
pub const CLUSTER_CORDONED: &str = "fogguru.eu/cordoned";
/// ConfigMaps holding policies (`binaryData` keys `<name>.wasm`).
pub const POLICY_CONFIGMAP: &str = "fogguru.eu/policy";

/// The owner label value for `name`: the name itself when it is a valid label value,
/// else a stable hash (label values are at most 63 characters).
pub fn owner_value(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_string();
    }
    // FNV-1a: stable across releases and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("h-{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_hash_to_valid_label_values() {
        assert_eq!(owner_value("hello"), "hello");
        let long = "a".repeat(200);
        let v = owner_value(&long);
        assert!(v.len() <= 63 && v.starts_with("h-"));
        assert_eq!(v, owner_value(&long));
        assert_ne!(v, owner_value(&"b".repeat(200)));
    }
}
