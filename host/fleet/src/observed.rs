//! The fleet a driver observes, and what it hands a decision cycle.

use crate::ClusterState;
use crate::Rtts;
use std::collections::HashMap;
use std::sync::Arc;

/// Everything a cycle is built from. `states` come in the same order every time (each
/// driver keeps one), and a state that is the same `Arc` as last time did not change.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub states: Vec<Arc<ClusterState>>,
    pub rtt: Rtts,
    /// Moves with every change the driver saw.
    pub version: u64,
}

/// A driver's live view of the fleet: the controller's cluster registry, the simulator.
pub trait FleetSource {
    /// Cheap: read before every decision to tell whether anything changed.
    fn version(&self) -> u64;
    fn observe(&self) -> Observed;
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
    use crate::{OwnedPods, OwnerKey};

    fn state(name: &str, bound: u32) -> ClusterState {
        let key = OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "ns".into(), name: "a".into() };
        ClusterState { name: name.into(), owned: [(key, OwnedPods { per_node: Vec::new(), bound })].into(), ..ClusterState::default() }
    }

    #[test]
    fn a_state_is_rebuilt_only_when_its_key_moves() {
        let mut cache = StateCache::<u64>::default();
        let mut builds = 0;
        let mut get = |cache: &mut StateCache<u64>, name: &str, key: u64| {
            cache.get(name, key, || {
                builds += 1;
                state(name, key as u32)
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
}
