//! Assume-and-deduct: what each owner was last decided to run where, so the next decision
//! deducts replicas the clusters do not show yet.

use crate::cycle::{FleetCycle, OwnerKey};
use mck8s_capacity::{Reservation, Resources};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default)]
pub struct Ledger {
    /// cluster name → owner → (per-replica request, replicas decided).
    by_cluster: HashMap<String, HashMap<OwnerKey, (Resources, u32)>>,
    /// owner → clusters it has entries on, to replace them in one step.
    clusters_of: HashMap<OwnerKey, Vec<String>>,
}

impl Ledger {
    /// Replaces `owner`'s decided placement.
    pub fn record(&mut self, owner: &OwnerKey, request: &Resources, desired: &BTreeMap<String, u32>) {
        self.forget(owner);
        for (cluster, &n) in desired {
            if n == 0 {
                continue;
            }
            self.by_cluster.entry(cluster.clone()).or_default().insert(owner.clone(), (request.clone(), n));
        }
        self.clusters_of.insert(owner.clone(), desired.iter().filter(|(_, n)| **n > 0).map(|(c, _)| c.clone()).collect());
    }

    pub fn forget(&mut self, owner: &OwnerKey) {
        for c in self.clusters_of.remove(owner).unwrap_or_default() {
            if let Some(m) = self.by_cluster.get_mut(&c) {
                m.remove(owner);
            }
        }
    }

    /// Replicas decided for owners other than `except` on `cluster` and not yet bound there.
    /// In owner order: reservations are placed first-fit, so their order must not depend on
    /// hashing for the same state to give the same slots.
    pub fn outstanding(&self, cycle: &FleetCycle, cluster: u32, except: &OwnerKey) -> Vec<Reservation> {
        let name = cycle.snapshot.name_of(cluster);
        let Some(entries) = self.by_cluster.get(name) else { return Vec::new() };
        let mut owners: Vec<(&OwnerKey, &(Resources, u32))> = entries.iter().filter(|(o, _)| *o != except).collect();
        owners.sort_by(|a, b| a.0.cmp(b.0));
        owners
            .into_iter()
            .filter_map(|(o, (req, n))| {
                let missing = n.saturating_sub(cycle.bound(cluster, o));
                (missing > 0).then(|| Reservation { request: req.clone(), count: missing })
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
