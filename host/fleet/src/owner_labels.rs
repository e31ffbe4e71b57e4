//! Who owns a child or a pod: the labels and annotation mck8s writes on what it creates in
//! workload clusters, and the one way to read them back. Part of the fleet model because
//! counting a decision's own pods as free needs it; `mck8s_api::labels` re-exports it.

/// On child Deployments, Jobs, Services and their pod templates: the owning object's name
/// (or `h-<hash>` when the name is longer than a label value may be).
pub const OWNER_NAME: &str = "fogguru.eu/owner";
/// On children: the owner's kind (`MultiClusterDeployment`, ...).
pub const OWNER_KIND: &str = "fogguru.eu/owner-kind";
/// Annotation on children: `<namespace>/<name>` of the owner, and its uid.
pub const OWNER_REF: &str = "fogguru.eu/owner-ref";

/// The longest label value Kubernetes accepts.
pub const LABEL_VALUE_MAX: usize = 63;

/// The owner label value for `name`: the name itself when it is a valid label value,
/// else a stable hash (label values are at most [`LABEL_VALUE_MAX`] characters). Borrowed in
/// the common case: owners' children are looked up by it on every reconcile.
pub fn owner_value(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() <= LABEL_VALUE_MAX {
        return std::borrow::Cow::Borrowed(name);
    }
    // FNV-1a: stable across releases and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    std::borrow::Cow::Owned(format!("h-{h:016x}"))
}

/// Whether a child's labels name the owner of `kind` whose label value is `owner_value` (see
/// [`owner_value`]; computed once by callers that test many objects). The one owner test that
/// both the child stores and the live clean-up use.
pub fn labelled_owner(labels: Option<&std::collections::BTreeMap<String, String>>, kind: &str, owner_value: &str) -> bool {
    labels.is_some_and(|l| l.get(OWNER_KIND).map(String::as_str) == Some(kind) && l.get(OWNER_NAME).map(String::as_str) == Some(owner_value))
}

/// The owner's kind and name from a child's (or its pod's) labels and annotations: the one
/// place that reads them. The `owner-ref` annotation has the full name; without it (pods
/// carry only the template's labels) the name is the label value, which for a name longer
/// than 63 characters is its hash: compare such names through [`owner_value`].
pub fn owner_of(labels: Option<&std::collections::BTreeMap<String, String>>, annotations: Option<&std::collections::BTreeMap<String, String>>) -> Option<(String, String)> {
    let labels = labels?;
    let kind = labels.get(OWNER_KIND)?.clone();
    let full = annotations.and_then(|a| a.get(OWNER_REF)).and_then(|r| r.split_once('/')).map(|(_, n)| n.to_string());
    let name = full.or_else(|| labels.get(OWNER_NAME).cloned())?;
    Some((kind, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_of_prefers_the_full_name_and_agrees_on_long_ones() {
        let long = "x".repeat(70);
        let labels = std::collections::BTreeMap::from([(OWNER_KIND.to_string(), "MultiClusterDeployment".to_string()), (OWNER_NAME.to_string(), owner_value(&long).into_owned())]);
        let ann = std::collections::BTreeMap::from([(OWNER_REF.to_string(), format!("ns/{long}"))]);
        assert_eq!(owner_of(Some(&labels), Some(&ann)), Some(("MultiClusterDeployment".into(), long.clone())));
        // A pod: labels only. Its name compares equal once both sides are label values.
        let (_, pod_name) = owner_of(Some(&labels), None).unwrap();
        assert_eq!(owner_value(&pod_name), owner_value(&long));
        assert_eq!(owner_of(None, Some(&ann)), None);
    }

    #[test]
    fn labelled_owner_matches_kind_and_label_value_only() {
        let long = "y".repeat(80);
        let labels = std::collections::BTreeMap::from([(OWNER_KIND.to_string(), "MultiClusterJob".to_string()), (OWNER_NAME.to_string(), owner_value(&long).into_owned())]);
        assert!(labelled_owner(Some(&labels), "MultiClusterJob", &owner_value(&long)));
        assert!(!labelled_owner(Some(&labels), "MultiClusterDeployment", &owner_value(&long)), "another kind of the same name");
        assert!(!labelled_owner(Some(&labels), "MultiClusterJob", &owner_value(&"z".repeat(80))));
        assert!(!labelled_owner(None, "MultiClusterJob", &owner_value(&long)));
    }

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
