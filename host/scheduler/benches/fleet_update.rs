//! One cluster changes between two decisions: what the next decision costs before the policy
//! runs. Before (the previous code, still in the tree): a full `FleetCycle::build_shared` and,
//! for the policy, a new instance sent the whole fleet (`set-fleet`). Now: `FleetCycle::next`
//! patches the last snapshot and the pooled instance is sent an update (`update-fleet`).
//! Same fleet, same run, alternating, medians. Prints a Markdown table for docs/benchmarks.md.
//!
//! `cargo bench -p mck8s-scheduler --bench fleet_update` (after scripts/build-policies.sh).
//! `MCK8S_BENCH_SIZES=100,1000,5000` sets the fleet sizes.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

use mck8s_capacity::{NodeCapacity, Resources};
use mck8s_fleet::{ClusterState, Health, Role, Rtts};
use mck8s_policy::{EngineConfig, LoadedPolicy, PlacementSession, PolicyEngine, PolicyRegistry};
use mck8s_scheduler::FleetCycle;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const CHANGES: usize = 200;

/// Cluster `i` of 4 nodes × 8 CPU with two labels; `used` millicores requested per node.
fn state(i: usize, used: u64) -> Arc<ClusterState> {
    let node = NodeCapacity {
        allocatable: Resources { cpu_millis: 8000, memory_bytes: 32 << 30, pods: 110, ..Default::default() },
        requested: Resources { cpu_millis: used, memory_bytes: used << 20, pods: used / 500, ..Default::default() },
    };
    let cloud = i % 10 == 9;
    Arc::new(ClusterState {
        name: if cloud { format!("cloud{i:05}") } else { format!("cluster{i:05}") },
        role: Some(if cloud { Role::Cloud } else { Role::Fog }),
        health: Health::Ready,
        labels: [("region".to_string(), format!("r{}", i % 7)), ("tier".to_string(), "edge".to_string())].into(),
        nodes: vec![node; 4],
        owned: HashMap::new(),
        traffic: i as f64,
        cost: 0.0,
    })
}

/// A ring of RTTs, each cluster to its next 4 neighbours.
fn rtts(n: usize) -> Rtts {
    let name = |i: usize| if i % 10 == 9 { format!("cloud{i:05}") } else { format!("cluster{i:05}") };
    Arc::new((0..n).flat_map(|i| (1..=4).map(move |d| (name(i), name((i + d) % n), (d * 3) as f32))).collect())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("MCK8S_BENCH_SIZES").unwrap_or_else(|_| "100,1000,5000".into()).split(',').map(|s| s.trim().parse().expect("size")).collect();
    let registry = PolicyRegistry::new(PolicyEngine::new(EngineConfig { cache_dir: None, ..EngineConfig::default() }).unwrap());
    let names = ["worst-fit", "preferred"];
    for name in names {
        registry.upsert(name, &mck8s_policy::built::read(format!("builtin/{name}.wasm")), "bench").unwrap();
    }
    let policies: Vec<Arc<LoadedPolicy>> = names.iter().map(|n| registry.get(n).unwrap()).collect();
    println!("{CHANGES} changes of one cluster's requested CPU; median µs per change.\n");
    println!("| clusters | cycle: full build (before) | cycle: update (now) | before/now | policy | fresh instance + set-fleet (before) | update-fleet (now) | before/now |");
    println!("|---:|---:|---:|---:|---|---:|---:|---:|");
    for &n in &sizes {
        let rtt = rtts(n);
        let mut states: Vec<Arc<ClusterState>> = (0..n).map(|i| state(i, (i as u64 * 7919) % 6000)).collect();
        let mut previous = Arc::new(FleetCycle::build_shared(states.clone(), &rtt, 0).unwrap());
        let mut sessions: Vec<PlacementSession> = policies.iter().map(|p| PlacementSession::new(p.clone(), previous.snapshot.clone()).unwrap()).collect();
        for s in &mut sessions {
            s.prepare().unwrap();
        }
        let (mut full, mut update) = (Vec::new(), Vec::new());
        let (mut fresh, mut sent) = (vec![Vec::new(); policies.len()], vec![Vec::new(); policies.len()]);
        for k in 0..CHANGES {
            let i = (k * 7907) % n;
            states[i] = state(i, (k as u64 * 31) % 6000);
            let t = Instant::now();
            black_box(FleetCycle::build_shared(states.clone(), &rtt, k as u64 + 1).unwrap());
            full.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let cycle = Arc::new(previous.next(states.clone(), &rtt, k as u64 + 1).unwrap());
            update.push(t.elapsed().as_secs_f64());
            for (j, p) in policies.iter().enumerate() {
                let t = Instant::now();
                let mut s = PlacementSession::new(p.clone(), cycle.snapshot.clone()).unwrap();
                s.prepare().unwrap();
                fresh[j].push(t.elapsed().as_secs_f64());
                let t = Instant::now();
                sessions[j].advance(&cycle.snapshot);
                sessions[j].prepare().unwrap();
                sent[j].push(t.elapsed().as_secs_f64());
            }
            previous = cycle;
        }
        for (j, name) in names.iter().enumerate() {
            let sends = sessions[j].fleet_sends();
            // Every change must have gone as an update, or the row would not measure one.
            assert_eq!((sends.full, sends.updates), (1, CHANGES as u64), "{name}");
        }
        let us = |v: &Vec<f64>| median(v.clone()) * 1e6;
        for (j, name) in names.iter().enumerate() {
            let cycle_cols = if j == 0 { format!("{:.1} | {:.1} | {:.0}×", us(&full), us(&update), us(&full) / us(&update)) } else { " | | ".to_string() };
            let size = if j == 0 { n.to_string() } else { String::new() };
            println!("| {size} | {cycle_cols} | {name} | {:.1} | {:.1} | {:.0}× |", us(&fresh[j]), us(&sent[j]), us(&fresh[j]) / us(&sent[j]));
        }
    }
}
