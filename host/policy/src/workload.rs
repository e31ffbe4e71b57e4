//! A workload lowered against a fleet snapshot: names resolved to cluster indices, the total
//! it must account for, and per cluster the slots its pod shape has (after the decision's
//! adjustments), so the per-decision payload is flat.

use crate::bindings::wit;
use crate::input::{InputError, KindDoc, ListOrCsv, WorkloadDoc, requests_of};
use crate::snapshot::FleetSnapshot;
use mck8s_capacity::{Reservation, Resources, adjusted_free, fits_any_node, slots_in, slots_in_cluster};

/// Slot adjustments for one cluster and one decision.
#[derive(Clone, Copy, Debug, Default)]
pub struct Adjustment<'a> {
    /// `(node index, resources)` of the workload's own bound pods.
    pub freed: &'a [(usize, Resources)],
    /// Other workloads' replicas decided but not yet bound.
    pub reserved: &'a [Reservation],
}

impl FleetSnapshot {
    /// Lowers a workload against this fleet: resolves names, computes the total and the
    /// per-cluster slots for its pod shape.
    pub fn workload(&self, w: &WorkloadDoc) -> Result<wit::Workload, InputError> {
        self.workload_adjusted(w, |_| None)
    }

    /// [`Self::workload`] with per-cluster slot adjustments: the workload's own bound pods
    /// freed and other workloads' not-yet-bound replicas reserved (see
    /// [`mck8s_capacity::adjust`]). `adjust(cluster)` returns them for a cluster index.
    pub fn workload_adjusted<'a>(&self, w: &WorkloadDoc, adjust: impl Fn(u32) -> Option<Adjustment<'a>>) -> Result<wit::Workload, InputError> {
        let bad = |what: String| InputError::Workload { workload: w.name.clone(), what };
        let cluster = |name: &str, field: &str| self.index_of(name).ok_or_else(|| bad(format!("{field} names unknown cluster {name:?}")));
        let request = requests_of(w)?;
        let locations = w.locations.as_ref().map(ListOrCsv::items).unwrap_or_default();
        let overrides: Vec<u32> = match &w.replica_overrides {
            None => Vec::new(),
            Some(o) => o.items().iter().map(|s| s.parse::<u32>().map_err(|_| bad(format!("replicaOverrides entry {s:?} is not a replica count")))).collect::<Result<_, _>>()?,
        };
        if !overrides.is_empty() && overrides.len() != locations.len() {
            return Err(bad(format!("replicaOverrides has {} entries for {} locations", overrides.len(), locations.len())));
        }
        let mut preferred = Vec::with_capacity(locations.len());
        for (i, l) in locations.iter().enumerate() {
            let c = cluster(l, "locations")?;
            if preferred.iter().any(|p: &wit::Preference| p.cluster == c) {
                return Err(bad(format!("locations lists {l:?} twice")));
            }
            preferred.push(wit::Preference { cluster: c, replicas: overrides.get(i).copied() });
        }
        let n = w.number_of_locations.unwrap_or(1).max(1);
        let total = if preferred.is_empty() {
            w.replicas.checked_mul(n).ok_or_else(|| bad("replicas × numberOfLocations overflows".into()))?
        } else {
            preferred.iter().map(|p| p.replicas.unwrap_or(w.replicas)).sum()
        };
        let mut current = Vec::with_capacity(w.current.len());
        for (name, r) in &w.current {
            current.push(wit::Assignment { cluster: cluster(name, "current")?, replicas: *r });
        }
        let app_traffic = if w.app_traffic.is_empty() {
            Vec::new()
        } else {
            let mut t = vec![0.0; self.len()];
            for (name, v) in &w.app_traffic {
                t[cluster(name, "appTraffic")? as usize] = *v;
            }
            t
        };
        let (mut slots, fits) = self.capacity_for(&request);
        for (c, slot) in slots.iter_mut().enumerate() {
            if !self.is_ready(c as u32) {
                continue;
            }
            if let Some(a) = adjust(c as u32) {
                let free = adjusted_free(self.nodes(c as u32), a.freed, a.reserved);
                *slot = slots_in(&free, &request);
            }
        }
        let unfit = (0..self.len() as u32).filter(|&c| self.is_ready(c) && !fits[c as usize]).collect();
        Ok(wit::Workload {
            kind: match w.kind {
                KindDoc::Deployment => wit::WorkloadKind::Deployment,
                KindDoc::Job => wit::WorkloadKind::Job,
            },
            name: w.name.clone(),
            namespace: w.namespace.clone(),
            replicas: w.replicas,
            number_of_locations: n,
            total,
            requests: wit::Resources { cpu_millis: request.cpu_millis, memory_bytes: request.memory_bytes },
            extended_requests: request.extended.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            preferred,
            current,
            params: w.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            slots,
            unfit,
            app_traffic,
        })
    }

    /// Per cluster: mck8s slots for `request`, and whether one pod fits an empty node.
    /// Clusters that are not ready get neither.
    pub fn capacity_for(&self, request: &Resources) -> (Vec<u32>, Vec<bool>) {
        self.all_nodes().enumerate().map(|(i, nodes)| if self.is_ready(i as u32) { (slots_in_cluster(nodes, request), fits_any_node(nodes, request)) } else { (0, false) }).unzip()
    }
}
