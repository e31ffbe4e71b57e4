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

/// Measured RTTs as `(a, b, milliseconds)`, shared so that an unchanged list costs a
/// pointer comparison.
pub type Rtts = Arc<Vec<(String, String, f32)>>;

/// Immutable for a cycle; drivers build a new one when something changed.
#[derive(Debug)]
pub struct FleetCycle {
    pub snapshot: Arc<FleetSnapshot>,
    /// Indexed like the snapshot's clusters; shared with the drivers' [`StateCache`]s.
    states: Vec<Arc<ClusterState>>,
    /// For each cluster in the order the driver gave them: its index in the snapshot.
    position: Arc<Vec<u32>>,
    rtt: Rtts,
    /// Increases with every change the driver saw.
    pub version: u64,
}

impl FleetCycle {
    pub fn build(clusters: Vec<ClusterState>, rtt: &[(String, String, f32)], version: u64) -> Result<Self, InputError> {
        Self::build_shared(clusters.into_iter().map(Arc::new).collect(), &Arc::new(rtt.to_vec()), version)
    }

    /// From states a [`StateCache`] kept, lowering every cluster into a new snapshot.
    pub fn build_shared(clusters: Vec<Arc<ClusterState>>, rtt: &Rtts, version: u64) -> Result<Self, InputError> {
        let snapshot = FleetSnapshot::from_clusters(clusters.iter().map(|c| input_of(c)).collect(), rtt)?;
        // The snapshot orders clusters by name (and refuses duplicates).
        let mut order: Vec<usize> = (0..clusters.len()).collect();
        order.sort_by(|&a, &b| clusters[a].name.cmp(&clusters[b].name));
        let mut position = vec![0u32; clusters.len()];
        for (index, &pos) in order.iter().enumerate() {
            position[pos] = index as u32;
        }
        let mut slots: Vec<Option<Arc<ClusterState>>> = clusters.into_iter().map(Some).collect();
        let states = order.iter().map(|&pos| slots[pos].take().expect("each position once")).collect();
        Ok(FleetCycle { snapshot: Arc::new(snapshot), states, position: Arc::new(position), rtt: rtt.clone(), version })
    }

    /// The cycle after this one. `clusters` come in the same order as last time (each driver
    /// keeps one): a state that is the same `Arc` did not change, and only the others are
    /// lowered, into an update of this cycle's snapshot. A cluster that joined, left or
    /// changed what an update cannot carry makes it a full build.
    pub fn next(&self, clusters: Vec<Arc<ClusterState>>, rtt: &Rtts, version: u64) -> Result<Self, InputError> {
        if clusters.len() != self.states.len() {
            return Self::build_shared(clusters, rtt, version);
        }
        let mut changed = Vec::new();
        for (pos, c) in clusters.iter().enumerate() {
            let index = self.position[pos];
            let old = &self.states[index as usize];
            if Arc::ptr_eq(old, c) {
                continue;
            }
            if old.name != c.name {
                return Self::build_shared(clusters, rtt, version);
            }
            changed.push((index, pos));
        }
        let rtt_moved = !Arc::ptr_eq(&self.rtt, rtt) && self.rtt != *rtt;
        let snapshot = if changed.is_empty() && !rtt_moved {
            self.snapshot.clone()
        } else {
            let inputs = changed.iter().map(|&(index, pos)| (index, input_of(&clusters[pos]))).collect();
            match self.snapshot.updated(inputs, rtt_moved.then_some(rtt.as_slice())) {
                Some(s) => Arc::new(s),
                None => return Self::build_shared(clusters, rtt, version),
            }
        };
        let mut states = self.states.clone();
        for (index, pos) in changed {
            states[index as usize] = clusters[pos].clone();
        }
        Ok(FleetCycle { snapshot, states, position: self.position.clone(), rtt: rtt.clone(), version })
    }

    /// The state a cluster (snapshot index) was observed in.
    pub fn state(&self, cluster: u32) -> Option<&Arc<ClusterState>> {
        self.states.get(cluster as usize)
    }

    pub fn bound(&self, cluster: u32, owner: &OwnerKey) -> u32 {
        self.owned_pods(cluster, owner).map_or(0, |o| o.bound)
    }

    /// `owner`'s bound pods in `cluster`.
    pub fn owned_pods(&self, cluster: u32, owner: &OwnerKey) -> Option<&OwnedPods> {
        let owned = &self.states.get(cluster as usize)?.owned;
        // Called per cluster and per ledger entry in every decision: a name that is its own
        // label value is looked up without building the key.
        if owner.name.len() <= mck8s_api::labels::LABEL_VALUE_MAX { owned.get(owner) } else { owned.get(&owner.labelled()) }
    }
}

fn input_of(c: &ClusterState) -> ClusterInput {
    ClusterInput { name: c.name.clone(), role: c.role.clone(), health: c.health, labels: c.labels.clone(), nodes: c.nodes.clone(), traffic: c.traffic, cost: c.cost }
}

/// Cluster states kept between cycles, each rebuilt only when its key moved. The key is
/// whatever tells its driver that a cluster changed (a revision, its health): a burst of
/// changes in one cluster rebuilds that cluster's state once, at the next cycle, and the
/// other clusters' states are reused.
#[derive(Clone, Debug)]
pub struct StateCache<K> {
    entries: HashMap<String, (K, Arc<ClusterState>)>,
}

impl<K> Default for StateCache<K> {
    fn default() -> Self {
        StateCache { entries: HashMap::new() }
    }
}

impl<K: PartialEq> StateCache<K> {
    /// The state of cluster `name` at `key`, built by `build` unless kept from before.
    pub fn get(&mut self, name: &str, key: K, build: impl FnOnce() -> ClusterState) -> Arc<ClusterState> {
        match self.entries.get(name) {
            Some((k, s)) if *k == key => s.clone(),
            _ => {
                let s = Arc::new(build());
                self.entries.insert(name.to_string(), (key, s.clone()));
                s
            }
        }
    }

    /// Drops the clusters `keep` refuses (they left the fleet).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|name, _| keep(name));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str, owner: &str, bound: u32) -> ClusterState {
        let key = OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "ns".into(), name: owner.into() };
        ClusterState {
            name: name.into(),
            role: None,
            health: HealthDoc::Ready,
            labels: BTreeMap::new(),
            nodes: Vec::new(),
            owned: [(key, OwnedPods { per_node: Vec::new(), bound })].into(),
            traffic: 0.0,
            cost: 0.0,
        }
    }

    #[test]
    fn a_state_is_rebuilt_only_when_its_key_moves() {
        let mut cache = StateCache::<u64>::default();
        let mut builds = 0;
        let mut get = |cache: &mut StateCache<u64>, name: &str, key: u64| {
            cache.get(name, key, || {
                builds += 1;
                state(name, "a", key as u32)
            })
        };
        let first = get(&mut cache, "c1", 1);
        let again = get(&mut cache, "c1", 1);
        assert!(Arc::ptr_eq(&first, &again));
        let moved = get(&mut cache, "c1", 2);
        assert!(!Arc::ptr_eq(&first, &moved));
        get(&mut cache, "c2", 1);
        assert_eq!(builds, 3);
        cache.retain(|n| n != "c1");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn shared_states_are_found_by_the_snapshots_index() {
        let owner = |n: &str| OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "ns".into(), name: n.into() };
        // Given out of name order: the snapshot sorts, and so must the states.
        let cycle = FleetCycle::build_shared(vec![Arc::new(state("zeta", "z", 3)), Arc::new(state("alpha", "a", 1))], &Rtts::default(), 1).unwrap();
        let (a, z) = (cycle.snapshot.index_of("alpha").unwrap(), cycle.snapshot.index_of("zeta").unwrap());
        assert_eq!((cycle.bound(a, &owner("a")), cycle.bound(z, &owner("z")), cycle.bound(a, &owner("z"))), (1, 3, 0));
    }
}
