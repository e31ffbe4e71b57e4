//! even-spread: the example placement policy, written the same way in Rust, C, Python and
//! JavaScript (`policies/examples/`, `docs/sdk.md`).
//!
//! One replica at a time, round robin over the ready fog clusters with free slots (name
//! order), each up to its slots and to the `maxPerCluster` parameter; what the fog cannot
//! hold goes to the cheapest ready cloud cluster; what is left is unplaced.

use mck8s_policy_sdk::helpers::{cheapest_ready_cloud, fog_with_room, param};
use mck8s_policy_sdk::{Allocator, Fleet, Info, Placement, PlacementPolicy, Request};

pub struct EvenSpread;

impl PlacementPolicy for EvenSpread {
    fn info() -> Info {
        Info {
            name: "even-spread",
            description: "Round robin over ready fog clusters with free slots, overflow to the cheapest ready cloud.",
            parameters: &["maxPerCluster: most replicas on one fog cluster (default: no limit)"],
        }
    }

    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String> {
        let cap = match param::<u32>(req, "maxPerCluster")? {
            Some(0) => return Err("parameter maxPerCluster must be at least 1".into()),
            Some(n) => n,
            None => u32::MAX,
        };
        let fog: Vec<u32> = fog_with_room(fleet, req).collect();
        let mut alloc = Allocator::new(fleet, req);
        // Count the round robin first, then grant once per cluster: one reason each.
        let room: Vec<u32> = fog.iter().map(|&c| alloc.room(c).min(cap)).collect();
        let mut share = vec![0u32; fog.len()];
        let mut left = req.total;
        while left > 0 {
            let before = left;
            for (i, s) in share.iter_mut().enumerate() {
                if left > 0 && *s < room[i] {
                    *s += 1;
                    left -= 1;
                }
            }
            if left == before {
                break;
            }
        }
        for (&c, &n) in fog.iter().zip(&share) {
            alloc.grant(c, n, |n| format!("fog: {n} of {} free slots, round robin over {} clusters", req.slots(c), fog.len()));
        }
        if let Some(cloud) = cheapest_ready_cloud(fleet) {
            let want = alloc.left();
            alloc.grant(cloud, want, |n| format!("cloud: {n} the fog clusters could not hold (cheapest ready cloud)"));
        }
        Ok(alloc.finish(|placed, unplaced| format!("even-spread: {placed} placed, {unplaced} unplaced")))
    }
}

mck8s_policy_sdk::export_placement!(EvenSpread);
