//! One cluster as a driver observes it, and the keys its bound pods are counted under.

use crate::owner_labels as labels;
use mck8s_capacity::{NodeCapacity, Resources};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Where a cluster runs. `None` in a [`ClusterState`] means "from the name", as mck8s did.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Fog,
    Cloud,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    #[default]
    Ready,
    NotReady,
    Unreachable,
}

/// Which multi-cluster object a pod belongs to (by the owner labels mck8s puts on children).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
pub struct OwnerKey {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl OwnerKey {
    /// The key its pods are counted under: the owner label's value, which hashes names
    /// longer than 63 characters. Idempotent, and borrowed (no allocation) for a name that
    /// is its own label value: it is looked up per cluster and per in-flight decision.
    pub fn labelled(&self) -> Cow<'_, OwnerKey> {
        if self.name.len() <= labels::LABEL_VALUE_MAX {
            Cow::Borrowed(self)
        } else {
            Cow::Owned(OwnerKey { kind: self.kind.clone(), namespace: self.namespace.clone(), name: labels::owner_value(&self.name).into_owned() })
        }
    }
}

impl std::fmt::Display for OwnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// An owner's pods in one cluster.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedPods {
    /// Requests of its bound pods, per node index (into the cluster's `nodes`).
    pub per_node: Vec<(usize, Resources)>,
    /// Its pods bound to a node.
    pub bound: u32,
}

/// One cluster as a driver observes it. Serialized (a what-if snapshot) it holds no
/// credential and no pod spec: capacities, requests and owner keys only.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    pub name: String,
    /// `None`: from the name (`cloud` when it contains "cloud"), as mck8s did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default)]
    pub health: Health,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Schedulable nodes.
    #[serde(default)]
    pub nodes: Vec<NodeCapacity>,
    #[serde(default, with = "owned_list", skip_serializing_if = "HashMap::is_empty")]
    pub owned: HashMap<OwnerKey, OwnedPods>,
    #[serde(default)]
    pub traffic: f64,
    #[serde(default)]
    pub cost: f64,
}

/// `owned` as a list sorted by owner (a map keyed by a struct has no JSON form).
mod owned_list {
    use super::{OwnedPods, OwnerKey};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::HashMap;

    #[derive(Deserialize, Serialize)]
    struct Entry {
        owner: OwnerKey,
        #[serde(flatten)]
        pods: OwnedPods,
    }

    pub fn serialize<S: Serializer>(owned: &HashMap<OwnerKey, OwnedPods>, s: S) -> Result<S::Ok, S::Error> {
        let mut list: Vec<Entry> = owned.iter().map(|(owner, pods)| Entry { owner: owner.clone(), pods: pods.clone() }).collect();
        list.sort_by(|a, b| a.owner.cmp(&b.owner));
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<OwnerKey, OwnedPods>, D::Error> {
        Ok(Vec::<Entry>::deserialize(d)?.into_iter().map(|e| (e.owner, e.pods)).collect())
    }
}

impl ClusterState {
    /// `owner`'s bound pods here.
    pub fn owned_pods(&self, owner: &OwnerKey) -> Option<&OwnedPods> {
        self.owned.get(&*owner.labelled())
    }
}

/// Measured RTTs as `(a, b, milliseconds)`, shared so that an unchanged list costs a
/// pointer comparison.
pub type Rtts = Arc<Vec<(String, String, f32)>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_of_a_long_named_owner_are_found_under_its_label_value() {
        let key = |name: &str| OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "ns".into(), name: name.into() };
        let short = key(&"s".repeat(labels::LABEL_VALUE_MAX));
        let long = key(&"l".repeat(labels::LABEL_VALUE_MAX + 1));
        assert!(matches!(short.labelled(), Cow::Borrowed(_)), "a valid label value is its own key");
        let hashed = long.labelled().into_owned();
        assert_eq!(hashed.name, labels::owner_value(&long.name));
        assert_eq!(hashed.labelled().as_ref(), &hashed, "idempotent");
        let pods = |bound| OwnedPods { per_node: Vec::new(), bound };
        let state = ClusterState { owned: [(short.clone(), pods(1)), (hashed, pods(2))].into(), ..ClusterState::default() };
        assert_eq!((state.owned_pods(&short).map(|p| p.bound), state.owned_pods(&long).map(|p| p.bound)), (Some(1), Some(2)));
    }
}
