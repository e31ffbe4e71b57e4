//! Building blocks for placement policies: parameters and Kubernetes quantities, which
//! clusters may take replicas, and an [`Allocator`] that keeps a decision within free slots
//! and makes `placed + unplaced = total` hold by construction (the host refuses anything else).

use crate::{Fleet, Ledger, Placement, Request, Role};
use std::str::FromStr;

pub use mck8s_capacity::quantity::{QuantityError, parse_bytes, parse_cpu_millis, parse_quantity};

/// Parameter `key` parsed as `T`; `None` when absent. The error names the parameter, so the
/// user sees which one is wrong in the decision's error.
pub fn param<T: FromStr>(req: &Request, key: &str) -> Result<Option<T>, String> {
    req.param(key).map(|v| v.trim().parse::<T>().map_err(|_| format!("parameter {key}: cannot parse {v:?}"))).transpose()
}

/// Parameter `key` as a CPU quantity (`500m`, `2`), in millicores.
pub fn param_cpu_millis(req: &Request, key: &str) -> Result<Option<u64>, String> {
    req.param(key).map(|v| parse_cpu_millis(v).map_err(|e| format!("parameter {key}: {e}"))).transpose()
}

/// Parameter `key` as a memory quantity (`512Mi`, `1G`), in bytes.
pub fn param_bytes(req: &Request, key: &str) -> Result<Option<u64>, String> {
    req.param(key).map(|v| parse_bytes(v).map_err(|e| format!("parameter {key}: {e}"))).transpose()
}

/// Ready fog clusters with at least one free slot for this workload's shape, in fleet (name)
/// order.
pub fn fog_with_room<'a>(fleet: &'a Fleet, req: &'a Request) -> impl Iterator<Item = u32> + 'a {
    (0..fleet.len() as u32).filter(move |&c| !fleet.is_cloud(c) && fleet.is_ready(c) && req.slots(c) > 0)
}

/// Ready cloud clusters in fleet order. Clouds scale out, so they are not slot-limited.
pub fn ready_clouds(fleet: &Fleet) -> impl Iterator<Item = u32> + '_ {
    (0..fleet.len() as u32).filter(move |&c| fleet.is_cloud(c) && fleet.is_ready(c))
}

/// The ready cloud cluster with the lowest cost; fleet order breaks ties.
pub fn cheapest_ready_cloud(fleet: &Fleet) -> Option<u32> {
    ready_clouds(fleet).min_by(|&a, &b| fleet.clusters[a as usize].cost.total_cmp(&fleet.clusters[b as usize].cost).then(a.cmp(&b)))
}

/// Hands out the workload's `total` replicas. A fog cluster can take at most its free slots
/// (less what was already granted to it), a ready cloud any number, a cluster that is not
/// ready none. [`Allocator::finish`] reports what was not granted as `unplaced`.
pub struct Allocator {
    room: Vec<u32>,
    total: u32,
    left: u32,
    ledger: Ledger,
}

impl Allocator {
    pub fn new(fleet: &Fleet, req: &Request) -> Self {
        let room = (0..fleet.len() as u32)
            .map(|c| match (fleet.is_ready(c), fleet.clusters[c as usize].role) {
                (false, _) => 0,
                (true, Role::Cloud) => u32::MAX,
                (true, Role::Fog) => req.slots(c),
            })
            .collect();
        Allocator { room, total: req.total, left: req.total, ledger: Ledger::default() }
    }

    /// Replicas not granted yet.
    pub fn left(&self) -> u32 {
        self.left
    }

    /// How many more replicas cluster `c` can take (`u32::MAX` for a ready cloud).
    pub fn room(&self, c: u32) -> u32 {
        self.room.get(c as usize).copied().unwrap_or(0)
    }

    /// Grants up to `want` replicas to `c`, capped by its room and by what is left; returns
    /// how many were granted. `reason` gets that number and is only called when it is not 0.
    pub fn grant(&mut self, c: u32, want: u32, reason: impl FnOnce(u32) -> String) -> u32 {
        let n = want.min(self.room(c)).min(self.left);
        if n > 0 {
            self.room[c as usize] -= n;
            self.left -= n;
            self.ledger.grant(c, n, || reason(n));
        }
        n
    }

    /// The decision: grants merged per cluster in fleet order, the rest unplaced.
    pub fn finish(self, summary: impl FnOnce(u32, u32) -> String) -> Placement {
        let s = summary(self.total - self.left, self.left);
        self.ledger.finish(self.left, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cluster;

    fn fleet() -> Fleet {
        let c = |name: &str, role, ready, cost| Cluster { name: name.into(), role, ready, traffic: 0.0, cost, labels: vec![] };
        Fleet::new(
            vec![
                c("cloud-a", Role::Cloud, true, 2.0),
                c("cloud-b", Role::Cloud, true, 1.0),
                c("cloud-c", Role::Cloud, false, 0.5),
                c("fog-a", Role::Fog, true, 0.0),
                c("fog-b", Role::Fog, false, 0.0),
            ],
            [],
        )
    }

    fn request<'a>(slots: &'a [u32], params: &'a [(String, String)], total: u32) -> Request<'a> {
        Request { replicas: total, number_of_locations: 1, total, preferred: &[], current: &[], params, slots, unfit: &[], app_traffic: &[] }
    }

    #[test]
    fn allocator_caps_fog_at_slots_and_accounts_for_every_replica() {
        let f = fleet();
        let slots = [0, 0, 0, 3, 9];
        let req = request(&slots, &[], 10);
        let mut a = Allocator::new(&f, &req);
        assert_eq!(a.grant(3, 5, |n| format!("{n} on fog-a")), 3);
        assert_eq!(a.grant(4, 5, |_| unreachable!("not ready: nothing granted")), 0);
        assert_eq!(a.grant(2, 5, |_| unreachable!("not ready: nothing granted")), 0);
        assert_eq!(a.grant(1, 4, |n| format!("{n} on cloud-b")), 4);
        assert_eq!(a.left(), 3);
        let p = a.finish(|placed, unplaced| format!("{placed}+{unplaced}"));
        assert_eq!(p.placed() + p.unplaced, 10);
        assert_eq!((p.replicas_on(3), p.replicas_on(1), p.unplaced), (3, 4, 3));
        assert_eq!(p.summary, "7+3");
        assert_eq!(p.choices.iter().map(|c| c.cluster).collect::<Vec<_>>(), [1, 3], "fleet order");
    }

    #[test]
    fn eligibility_helpers() {
        let f = fleet();
        let slots = [5, 5, 5, 2, 9];
        let req = request(&slots, &[], 1);
        assert_eq!(fog_with_room(&f, &req).collect::<Vec<_>>(), [3]);
        assert_eq!(ready_clouds(&f).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(cheapest_ready_cloud(&f), Some(1), "cloud-c is cheaper but not ready");
    }

    #[test]
    fn params_and_quantities() {
        let params = [("n".to_string(), " 7 ".to_string()), ("cpu".into(), "1500m".into()), ("mem".into(), "1Gi".into())];
        let slots = [];
        let req = request(&slots, &params, 1);
        assert_eq!(param::<u32>(&req, "n"), Ok(Some(7)));
        assert_eq!(param::<u32>(&req, "absent"), Ok(None));
        assert!(param::<u32>(&req, "cpu").unwrap_err().contains("parameter cpu"));
        assert_eq!(param_cpu_millis(&req, "cpu"), Ok(Some(1500)));
        assert_eq!(param_bytes(&req, "mem"), Ok(Some(1 << 30)));
        assert!(param_bytes(&req, "n").is_ok(), "a plain number is a quantity");
    }
}
