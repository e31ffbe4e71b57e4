//! Misbehaves as the `mode` parameter says (spin, alloc, panic, unknown-cluster, surplus,
//! not-ready, refuse, verbose, chatty); without one it decides like worst-fit, so it passes the self-check.
//!
//! It also misbehaves in `update-fleet` when a cluster of the fleet it was given carries the
//! label `hostile-update` (spin, alloc, panic, refuse): `set-fleet` and `place` stay good,
//! so only the update is hostile.

use mck8s_policy_sdk::policies::placement::{Ranking, automatic};
use mck8s_policy_sdk::{Choice, Fleet, Info, Level, Placement, PlacementPolicy, Request, log};

pub struct Hostile;

impl PlacementPolicy for Hostile {
    fn info() -> Info {
        Info { name: "hostile", description: "misbehaves on request", parameters: &["mode: spin|alloc|panic|unknown-cluster|surplus|not-ready|refuse|verbose|chatty"] }
    }

    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String> {
        let mode = req.param("mode").unwrap_or("");
        let one = |cluster: u32, replicas: u32| Placement { choices: vec![Choice { cluster, replicas, reason: "hostile".into() }], unplaced: 0, summary: String::new() };
        match mode {
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let v = vec![7u8; 1 << 30];
                Ok(one(0, std::hint::black_box(&v)[12] as u32))
            }
            "panic" => panic!("hostile guest panics on purpose"),
            "unknown-cluster" => Ok(one(fleet.len() as u32 + 5, req.total)),
            "surplus" => Ok(one(0, req.total + 3)),
            "not-ready" => {
                let c = (0..fleet.len() as u32).find(|&c| !fleet.is_ready(c)).ok_or("no unready cluster")?;
                Ok(one(c, req.total))
            }
            "refuse" => Err("refusing on purpose".into()),
            // A valid placement carrying 4 MiB of reason and summary each.
            "verbose" => {
                let mut p = automatic(fleet, req, Ranking::WorstFit);
                let text = "why ".repeat(1 << 20);
                for c in &mut p.choices {
                    c.reason = text.clone();
                }
                p.summary = text;
                Ok(p)
            }
            // 10,000 log lines of 1 KiB (10 MB) in one call, then a good decision.
            "chatty" => {
                let line = "x".repeat(1024);
                for _ in 0..10_000 {
                    log(Level::Info, &line);
                }
                Ok(automatic(fleet, req, Ranking::WorstFit))
            }
            // Everything on the first ready fog cluster, whatever its capacity.
            "pile-up" => {
                let c = (0..fleet.len() as u32).find(|&c| fleet.is_ready(c) && !fleet.is_cloud(c)).ok_or("no ready fog cluster")?;
                Ok(one(c, req.total))
            }
            _ => Ok(automatic(fleet, req, Ranking::WorstFit)),
        }
    }
}

/// Misbehaves as a `hostile-update` label asks, or applies the update.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn update_fleet(mode: &str) -> Result<(), String> {
    match mode {
        "spin" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "alloc" => {
            let v = vec![7u8; 1 << 30];
            std::hint::black_box(&v);
            Ok(())
        }
        "panic" => panic!("hostile guest panics in update-fleet on purpose"),
        "refuse" => Err("refusing the update on purpose".into()),
        _ => Ok(()),
    }
}

// The SDK's `export_placement!`, with `set-fleet` noting the `hostile-update` label and
// `update-fleet` acting on it.
#[cfg(target_arch = "wasm32")]
const _: () = {
    use mck8s_policy_sdk::placement::{self as sdk, bindings};
    use std::cell::RefCell;

    thread_local! {
        static UPDATE_MODE: RefCell<String> = const { RefCell::new(String::new()) };
    }

    struct Placer;

    impl bindings::exports::mck8s::policy::placer::Guest for Placer {
        fn info() -> bindings::mck8s::policy::types::PolicyInfo {
            sdk::info::<Hostile>()
        }
        fn set_fleet(fleet: bindings::mck8s::policy::types::Fleet) -> Result<(), String> {
            let string = |i: u32| {
                let start = if i == 0 { 0 } else { fleet.ends[i as usize - 1] as usize };
                fleet.text.get(start..fleet.ends[i as usize] as usize).unwrap_or("").to_string()
            };
            let mode = fleet.labels.iter().find(|l| string(l.key) == "hostile-update").map(|l| string(l.value)).unwrap_or_default();
            UPDATE_MODE.with(|m| *m.borrow_mut() = mode);
            sdk::set_fleet(fleet)
        }
        fn place(workload: bindings::mck8s::policy::types::Workload) -> Result<bindings::mck8s::policy::types::Decision, String> {
            sdk::place::<Hostile>(workload)
        }
    }

    impl bindings::exports::mck8s::policy::fleet_updates::Guest for Placer {
        fn update_fleet(update: bindings::exports::mck8s::policy::fleet_updates::FleetUpdate) -> Result<(), String> {
            UPDATE_MODE.with(|m| update_fleet(&m.borrow()))?;
            sdk::update_fleet(update)
        }
    }

    bindings::__export_incremental_placement_world!(Placer with_types_in bindings);
};
