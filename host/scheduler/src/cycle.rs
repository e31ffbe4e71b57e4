//! One scheduling cycle's view of the fleet: the observed cluster states, lowered once into
//! a [`FleetSnapshot`] for the policies, plus where each workload's pods are bound.

use mck8s_fleet::{ClusterState, FleetSource, Observed, OwnedPods, OwnerKey, Rtts};
use mck8s_policy::{FleetSnapshot, input::InputError};
use std::sync::{Arc, Mutex};

/// Immutable for a cycle; drivers build a new one when something changed.
#[derive(Debug)]
pub struct FleetCycle {
    pub snapshot: Arc<FleetSnapshot>,
    /// Indexed like the snapshot's clusters; shared with the drivers' state caches.
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

    /// From states a driver kept, lowering every cluster into a new snapshot.
    pub fn build_shared(clusters: Vec<Arc<ClusterState>>, rtt: &Rtts, version: u64) -> Result<Self, InputError> {
        let snapshot = FleetSnapshot::from_clusters(&clusters, rtt)?;
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
            let inputs = changed.iter().map(|&(index, pos)| (index, &*clusters[pos]));
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
        self.states.get(cluster as usize)?.owned_pods(owner)
    }
}

/// The latest cycle of one [`FleetSource`], built anew only when its version moved, and
/// then from the cycle before ([`FleetCycle::next`]).
#[derive(Debug, Default)]
pub struct Cycles {
    last: Mutex<Option<Arc<FleetCycle>>>,
}

impl Cycles {
    pub fn current(&self, source: &impl FleetSource) -> Result<Arc<FleetCycle>, InputError> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = last.as_ref()
            && c.version == source.version()
        {
            return Ok(c.clone());
        }
        let Observed { states, rtt, version } = source.observe();
        let cycle = Arc::new(match last.as_ref() {
            Some(previous) => previous.next(states, &rtt, version)?,
            None => FleetCycle::build_shared(states, &rtt, version)?,
        });
        *last = Some(cycle.clone());
        Ok(cycle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str, owner: &str, bound: u32) -> ClusterState {
        let key = OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "ns".into(), name: owner.into() };
        ClusterState { name: name.into(), owned: [(key, OwnedPods { per_node: Vec::new(), bound })].into(), ..ClusterState::default() }
    }

    #[test]
    fn shared_states_are_found_by_the_snapshots_index() {
        let owner = |n: &str| OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "ns".into(), name: n.into() };
        // Given out of name order: the snapshot sorts, and so must the states.
        let cycle = FleetCycle::build_shared(vec![Arc::new(state("zeta", "z", 3)), Arc::new(state("alpha", "a", 1))], &Rtts::default(), 1).unwrap();
        let (a, z) = (cycle.snapshot.index_of("alpha").unwrap(), cycle.snapshot.index_of("zeta").unwrap());
        assert_eq!((cycle.bound(a, &owner("a")), cycle.bound(z, &owner("z")), cycle.bound(a, &owner("z"))), (1, 3, 0));
    }

    struct Source(Mutex<Observed>);

    impl FleetSource for Source {
        fn version(&self) -> u64 {
            self.0.lock().unwrap().version
        }
        fn observe(&self) -> Observed {
            self.0.lock().unwrap().clone()
        }
    }

    #[test]
    fn a_cycle_is_rebuilt_only_when_the_version_moves_and_then_from_the_last_one() {
        let states = vec![Arc::new(state("a", "x", 1)), Arc::new(state("b", "x", 2))];
        let source = Source(Mutex::new(Observed { states: states.clone(), rtt: Rtts::default(), version: 1 }));
        let cycles = Cycles::default();
        let first = cycles.current(&source).unwrap();
        assert!(Arc::ptr_eq(&first, &cycles.current(&source).unwrap()));
        {
            let mut o = source.0.lock().unwrap();
            o.states[1] = Arc::new(state("b", "x", 5));
            o.version = 2;
        }
        let second = cycles.current(&source).unwrap();
        assert_eq!(second.version, 2);
        let b = second.snapshot.index_of("b").unwrap();
        let owner = OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "ns".into(), name: "x".into() };
        assert_eq!(second.bound(b, &owner), 5);
        // An update of the first cycle's snapshot, not a new build: an instance holding the
        // first is sent only cluster b.
        let update = second.snapshot.update_since(&first.snapshot).expect("same lineage");
        assert_eq!(update.clusters.iter().map(|u| u.index).collect::<Vec<_>>(), [b]);
    }
}
