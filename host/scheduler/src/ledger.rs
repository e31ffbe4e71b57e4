//! Assume-and-deduct: what each owner was last decided to run where, so the next decision
//! deducts replicas the clusters do not show yet.

use crate::cycle::FleetCycle;
use mck8s_capacity::{Reservation, Resources};
use mck8s_fleet::{ClusterState, OwnerKey};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Ledger {
    /// cluster name → owner → (per-replica request, replicas decided).
    by_cluster: HashMap<String, HashMap<OwnerKey, (Resources, u32)>>,
    /// owner → clusters it has entries on, to replace them in one step.
    clusters_of: HashMap<OwnerKey, Vec<String>>,
    /// Moves with every change ...
    version: u64,
    /// ... and each cluster remembers the version that last changed its entries, so a
    /// decision made without the lock can tell whether the deductions it saw on the clusters
    /// it chose still hold.
    changed: HashMap<String, u64>,
    /// Per cluster, every owner's outstanding replicas, kept while neither the cluster's
    /// entries nor its state changed: a decision changes one or two clusters, and every
    /// decision reads all of them.
    outstanding: HashMap<String, Outstanding>,
}

#[derive(Debug)]
struct Outstanding {
    changed: u64,
    /// Held, not just compared by address, so a new state can never look like this one.
    state: Arc<ClusterState>,
    /// In owner order.
    reservations: Vec<(OwnerKey, Reservation)>,
}

impl Ledger {
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Replaces `owner`'s decided placement. Recording what is already there changes nothing
    /// (every settled reconcile re-records its placement).
    pub fn record(&mut self, owner: &OwnerKey, request: &Resources, desired: &BTreeMap<String, u32>) {
        if self.holds(owner, request, desired) {
            return;
        }
        self.forget(owner);
        self.version += 1;
        for (cluster, &n) in desired {
            if n == 0 {
                continue;
            }
            self.by_cluster.entry(cluster.clone()).or_default().insert(owner.clone(), (request.clone(), n));
            self.changed.insert(cluster.clone(), self.version);
        }
        self.clusters_of.insert(owner.clone(), desired.iter().filter(|(_, n)| **n > 0).map(|(c, _)| c.clone()).collect());
    }

    fn holds(&self, owner: &OwnerKey, request: &Resources, desired: &BTreeMap<String, u32>) -> bool {
        let Some(clusters) = self.clusters_of.get(owner) else { return false };
        clusters.len() == desired.values().filter(|n| **n > 0).count()
            && desired.iter().filter(|(_, n)| **n > 0).all(|(c, n)| self.by_cluster.get(c).and_then(|m| m.get(owner)).is_some_and(|(r, k)| r == request && k == n))
    }

    pub fn forget(&mut self, owner: &OwnerKey) {
        let Some(clusters) = self.clusters_of.remove(owner) else { return };
        self.version += 1;
        for c in clusters {
            if let Some(m) = self.by_cluster.get_mut(&c) {
                m.remove(owner);
                // A cluster nobody waits on any more holds nothing: not even the state its
                // outstanding replicas were last counted against (a cluster that left the
                // fleet would otherwise be kept alive here).
                if m.is_empty() {
                    self.by_cluster.remove(&c);
                    self.outstanding.remove(&c);
                }
            }
            self.changed.insert(c, self.version);
        }
    }

    /// Whether any of `clusters` changed after version `seen`.
    pub fn changed_since<'a>(&self, seen: u64, mut clusters: impl Iterator<Item = &'a str>) -> bool {
        clusters.any(|c| self.changed.get(c).is_some_and(|v| *v > seen))
    }

    /// [`Ledger::outstanding`] for every cluster of `cycle` that has entries, by index: the
    /// rest have nothing outstanding.
    pub fn outstanding_all(&mut self, cycle: &FleetCycle, except: &OwnerKey) -> Vec<(u32, Vec<Reservation>)> {
        let mut out = Vec::new();
        for name in self.by_cluster.keys() {
            let Some(c) = cycle.snapshot.index_of(name) else { continue };
            let Some(state) = cycle.state(c) else { continue };
            let changed = self.changed.get(name).copied().unwrap_or(0);
            let fresh = |o: &Outstanding| o.changed == changed && Arc::ptr_eq(&o.state, state);
            if !self.outstanding.get(name).is_some_and(fresh) {
                let reservations = self.outstanding_of(cycle, c, None);
                self.outstanding.insert(name.clone(), Outstanding { changed, state: state.clone(), reservations });
            }
            let all = &self.outstanding[name].reservations;
            let mine: Vec<Reservation> = all.iter().filter(|(o, _)| o != except).map(|(_, r)| r.clone()).collect();
            if !mine.is_empty() {
                out.push((c, mine));
            }
        }
        out
    }

    /// Replicas decided for owners other than `except` on `cluster` and not yet bound there.
    /// In owner order: reservations are placed first-fit, so their order must not depend on
    /// hashing for the same state to give the same slots.
    pub fn outstanding(&self, cycle: &FleetCycle, cluster: u32, except: &OwnerKey) -> Vec<Reservation> {
        self.outstanding_of(cycle, cluster, Some(except)).into_iter().map(|(_, r)| r).collect()
    }

    fn outstanding_of(&self, cycle: &FleetCycle, cluster: u32, except: Option<&OwnerKey>) -> Vec<(OwnerKey, Reservation)> {
        let name = cycle.snapshot.name_of(cluster);
        let Some(entries) = self.by_cluster.get(name) else { return Vec::new() };
        let mut owners: Vec<(&OwnerKey, &(Resources, u32))> = entries.iter().filter(|(o, _)| Some(*o) != except).collect();
        owners.sort_by(|a, b| a.0.cmp(b.0));
        owners
            .into_iter()
            .filter_map(|(o, (req, n))| {
                let missing = n.saturating_sub(cycle.bound(cluster, o));
                (missing > 0).then(|| (o.clone(), Reservation { request: req.clone(), count: missing }))
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.clusters_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters_of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(name: &str) -> OwnerKey {
        OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "ns".into(), name: name.into() }
    }

    #[test]
    fn the_version_moves_with_changes_only() {
        let mut l = Ledger::default();
        let r = Resources { cpu_millis: 100, ..Default::default() };
        let placed: BTreeMap<String, u32> = [("c1".to_string(), 2), ("c2".to_string(), 0)].into();
        l.record(&owner("a"), &r, &placed);
        let v = l.version();
        l.record(&owner("a"), &r, &placed);
        assert_eq!(l.version(), v, "the same placement again");
        l.record(&owner("a"), &r, &[("c1".to_string(), 3)].into());
        assert!(l.version() > v, "more replicas");
        let v = l.version();
        l.record(&owner("a"), &Resources { cpu_millis: 200, ..Default::default() }, &[("c1".to_string(), 3)].into());
        assert!(l.version() > v, "a bigger request");
        let v = l.version();
        l.forget(&owner("b"));
        assert_eq!(l.version(), v, "forgetting an owner it never had");
        l.forget(&owner("a"));
        assert!(l.version() > v);
        assert!(l.is_empty());
        assert!(l.changed_since(v, ["c1"].into_iter()), "forgetting changed c1");
        assert!(!l.changed_since(v, ["c2", "c9"].into_iter()), "c2 held nothing since");
    }

    #[test]
    fn a_cluster_nobody_waits_on_is_dropped_with_its_cached_state() {
        let state = |name: &str| Arc::new(ClusterState { name: name.into(), ..ClusterState::default() });
        let cycle = FleetCycle::build_shared(vec![state("c1"), state("c2")], &Default::default(), 1).unwrap();
        let r = Resources { cpu_millis: 100, ..Default::default() };
        let mut l = Ledger::default();
        l.record(&owner("a"), &r, &[("c1".to_string(), 2), ("c2".to_string(), 1)].into());
        l.record(&owner("b"), &r, &[("c1".to_string(), 1)].into());
        assert_eq!(l.outstanding_all(&cycle, &owner("x")).len(), 2);
        assert_eq!(l.outstanding.len(), 2, "both clusters' reservations cached");
        l.forget(&owner("a"));
        assert_eq!((l.by_cluster.len(), l.outstanding.len()), (1, 1), "c2 had only a");
        assert_eq!(l.outstanding_all(&cycle, &owner("x")), [(cycle.snapshot.index_of("c1").unwrap(), vec![Reservation { request: r.clone(), count: 1 }])]);
        l.forget(&owner("b"));
        assert!(l.by_cluster.is_empty() && l.outstanding.is_empty());
    }
}
