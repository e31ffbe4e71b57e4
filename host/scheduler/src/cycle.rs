//! One scheduling cycle's view of the fleet: the lowered [`FleetSnapshot`] plus, per
//! cluster, where each workload's pods are bound.

use mck8s_capacity::{NodeCapacity, Resources};
use mck8s_policy::input::{ClusterInput, HealthDoc, RoleDoc};
use mck8s_policy::{FleetSnapshot, input::InputError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Which multi-cluster object a pod belongs to (by the owner labels mck8s puts on children).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerKey {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl OwnerKey {
    /// The key its pods are counted under: the owner label's value, which hashes names
    /// longer than 63 characters. Idempotent.
    pub fn labelled(&self) -> OwnerKey {
        OwnerKey { kind: self.kind.clone(), namespace: self.namespace.clone(), name: mck8s_api::labels::owner_value(&self.name) }
    }
}

impl std::fmt::Display for OwnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// An owner's pods in one cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedPods {
    /// Requests of its bound pods, per node index (into the cluster's `nodes`).
    pub per_node: Vec<(usize, Resources)>,
    /// Its pods bound to a node.
    pub bound: u32,
}

/// One cluster as a driver observes it.
#[derive(Clone, Debug)]
pub struct ClusterState {
    pub name: String,
    pub role: Option<RoleDoc>,
    pub health: HealthDoc,
    pub labels: BTreeMap<String, String>,
    /// Schedulable nodes.
    pub nodes: Vec<NodeCapacity>,
    pub owned: HashMap<OwnerKey, OwnedPods>,
    pub traffic: f64,
    pub cost: f64,
}

/// Immutable for a cycle; drivers build a new one when something changed.
#[derive(Debug)]
pub struct FleetCycle {
    pub snapshot: Arc<FleetSnapshot>,
    /// Indexed like the snapshot's clusters.
    pub owned: Vec<HashMap<OwnerKey, OwnedPods>>,
    /// Increases with every change the driver saw; sessions re-send the fleet when it moves.
    pub version: u64,
}

impl FleetCycle {
    pub fn build(clusters: Vec<ClusterState>, rtt: &[(String, String, f32)], version: u64) -> Result<Self, InputError> {
        let mut owned_by_name: HashMap<String, HashMap<OwnerKey, OwnedPods>> = HashMap::with_capacity(clusters.len());
        let inputs = clusters
            .into_iter()
            .map(|c| {
                owned_by_name.insert(c.name.clone(), c.owned);
                ClusterInput { name: c.name, role: c.role, health: c.health, labels: c.labels, nodes: c.nodes, traffic: c.traffic, cost: c.cost }
            })
            .collect();
        let snapshot = FleetSnapshot::from_clusters(inputs, rtt)?;
        let owned = (0..snapshot.len() as u32).map(|i| owned_by_name.remove(snapshot.name_of(i)).unwrap_or_default()).collect();
        Ok(FleetCycle { snapshot: Arc::new(snapshot), owned, version })
    }

    pub fn bound(&self, cluster: u32, owner: &OwnerKey) -> u32 {
        self.owned_pods(cluster, owner).map_or(0, |o| o.bound)
    }

    /// `owner`'s bound pods in `cluster`.
    pub fn owned_pods(&self, cluster: u32, owner: &OwnerKey) -> Option<&OwnedPods> {
        self.owned.get(cluster as usize).and_then(|m| m.get(&owner.labelled()))
    }
}
