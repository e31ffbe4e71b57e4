//! Misbehaves as the `mode` parameter says (spin, alloc, panic, unknown-cluster, surplus,
//! not-ready, refuse, verbose, chatty); without one it decides like worst-fit, so it passes the self-check.

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

mck8s_policy_sdk::export_placement!(Hostile);
