//! Misbehaves as the `mode` parameter says (spin, alloc, panic, unknown-cluster, surplus,
//! not-ready, refuse, verbose, chatty); without one it decides like worst-fit, so it passes the self-check.
//!
//! It also misbehaves in `update-fleet` when a cluster of the fleet it was given carries the
//! label `hostile-update` (spin, alloc, panic, refuse): `set-fleet` and `place` stay good,
//! so only the update is hostile.
//!
//! Its `explain` (WIT 0.1.2) misbehaves as the `explain-mode` parameter says (spin, alloc,
//! panic, refuse, unknown-cluster, twice, verbose); without one it explains like worst-fit.

use mck8s_policy_sdk::policies::placement::{Ranking, automatic, explain_ranking};
use mck8s_policy_sdk::{Choice, Fleet, Info, Level, Placement, PlacementPolicy, Request, Verdict, log};

/// Runs until the host's deadline interrupts it.
fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// Touches 1 GiB: beyond any policy's memory limit.
fn alloc_1gib() -> u8 {
    let v = vec![7u8; 1 << 30];
    std::hint::black_box(&v)[12]
}

pub struct Hostile;

impl PlacementPolicy for Hostile {
    fn info() -> Info {
        Info {
            name: "hostile",
            description: "misbehaves on request",
            parameters: &["mode: spin|alloc|panic|unknown-cluster|surplus|not-ready|refuse|verbose|chatty", "explain-mode: spin|alloc|panic|refuse|unknown-cluster|twice|verbose"],
        }
    }

    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String> {
        let mode = req.param("mode").unwrap_or("");
        let one = |cluster: u32, replicas: u32| Placement { choices: vec![Choice { cluster, replicas, reason: "hostile".into() }], unplaced: 0, summary: String::new() };
        match mode {
            "spin" => spin(),
            "alloc" => Ok(one(0, u32::from(alloc_1gib()))),
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

    fn explain(fleet: &Fleet, req: &Request) -> Vec<Verdict> {
        let verdict = |cluster: u32, reason: String| Verdict { cluster, rank: Some(1), score: Some(f64::NAN), reason };
        match req.param("explain-mode").unwrap_or("") {
            "spin" => spin(),
            "alloc" => vec![verdict(0, alloc_1gib().to_string())],
            "panic" => panic!("hostile guest panics in explain on purpose"),
            // The SDK's adapter turns no verdicts into an empty list; a refusal needs the raw
            // export, below.
            "unknown-cluster" => vec![verdict(fleet.len() as u32 + 5, "nowhere".into())],
            "twice" => vec![verdict(0, "once".into()), verdict(0, "twice".into())],
            // 64 KiB of reason for every cluster.
            "verbose" => (0..fleet.len() as u32).map(|c| verdict(c, "why ".repeat(1 << 14))).collect(),
            _ => explain_ranking(fleet, req, Ranking::WorstFit),
        }
    }
}

/// Misbehaves as a `hostile-update` label asks, or applies the update.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn update_fleet(mode: &str) -> Result<(), String> {
    match mode {
        "spin" => spin(),
        "alloc" => {
            alloc_1gib();
            Ok(())
        }
        "panic" => panic!("hostile guest panics in update-fleet on purpose"),
        "refuse" => Err("refusing the update on purpose".into()),
        _ => Ok(()),
    }
}

// The SDK's `export_placement!`, with `set-fleet` noting the `hostile-update` label and
// `update-fleet` acting on it, and `explain` refusing on `explain-mode: refuse`.
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

    impl bindings::exports::mck8s::policy::explanations::Guest for Placer {
        fn explain(workload: bindings::mck8s::policy::types::Workload) -> Result<Vec<bindings::exports::mck8s::policy::explanations::Verdict>, String> {
            if workload.params.iter().any(|(k, v)| k == "explain-mode" && v == "refuse") {
                return Err("refusing to explain on purpose".into());
            }
            sdk::explain::<Hostile>(workload)
        }
    }

    bindings::__export_explained_placement_world!(Placer with_types_in bindings);
};
