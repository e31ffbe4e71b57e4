//! Decisions from several threads at once: the previous scheduler (one lock held across the
//! whole decision, policy call included) against this one (the lock covers the ledger only;
//! a decision is re-made when the ledger moved meanwhile). Same fleet, same requests, same
//! run, alternating rounds, medians. Prints a Markdown table for docs/benchmarks.md.
//!
//! `cargo bench -p mck8s-scheduler --bench parallel` (after scripts/build-policies.sh).
//! `MCK8S_BENCH_SIZES=100,1000` sets the fleet sizes, `MCK8S_BENCH_THREADS=2` the threads.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

use mck8s_capacity::{NodeCapacity, Resources};
use mck8s_fleet::{ClusterState, Health, OwnerKey, Role};
use mck8s_policy::input::WorkloadDoc;
use mck8s_policy::{EngineConfig, PolicyEngine, PolicyRegistry};
use mck8s_scheduler::{FleetCycle, PlacementRequest, Scheduler};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

const ROUNDS: usize = 5;
const DECISIONS: usize = 400;

fn registry() -> Arc<PolicyRegistry> {
    let registry = PolicyRegistry::new(PolicyEngine::new(EngineConfig { cache_dir: None, ..EngineConfig::default() }).unwrap());
    for name in ["worst-fit", "best-fit"] {
        registry.upsert(name, &mck8s_policy::built::read(format!("builtin/{name}.wasm")), "bench").unwrap();
    }
    Arc::new(registry)
}

/// `n` clusters of 4 nodes × 8 CPU, a tenth of them cloud, partly used.
fn cycle(n: usize) -> Arc<FleetCycle> {
    let clusters = (0..n)
        .map(|i| {
            let used = (i as u64 * 7919) % 6000;
            let node = NodeCapacity {
                allocatable: Resources { cpu_millis: 8000, memory_bytes: 32 << 30, pods: 110, ..Default::default() },
                requested: Resources { cpu_millis: used, memory_bytes: used << 20, pods: used / 500, ..Default::default() },
            };
            let cloud = i % 10 == 9;
            ClusterState {
                name: if cloud { format!("cloud{i:05}") } else { format!("cluster{i:05}") },
                role: Some(if cloud { Role::Cloud } else { Role::Fog }),
                health: Health::Ready,
                labels: BTreeMap::new(),
                nodes: vec![node.clone(); 4],
                owned: HashMap::new(),
                traffic: 0.0,
                cost: 0.0,
            }
        })
        .collect();
    Arc::new(FleetCycle::build(clusters, &[], 1).unwrap())
}

/// Every request with `policy`, or (`None`) worst-fit and best-fit in turn.
fn requests(policy: Option<&str>) -> Vec<PlacementRequest> {
    (0..DECISIONS)
        .map(|i| {
            let workload: WorkloadDoc = serde_yaml_ng::from_str(&format!("{{name: app{i}, replicas: 2, requests: {{cpu: 100m, memory: 128Mi}}}}")).unwrap();
            let owner = OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "bench".into(), name: format!("app{i}") };
            let policy = policy.unwrap_or(if i % 2 == 0 { "worst-fit" } else { "best-fit" });
            PlacementRequest { owner, policy: policy.into(), workload }
        })
        .collect()
}

/// Seconds for every request, split across `threads`; `serialised` holds one lock across
/// each whole decision, as the previous scheduler did.
fn run(registry: &Arc<PolicyRegistry>, cycle: &Arc<FleetCycle>, reqs: &Arc<Vec<PlacementRequest>>, threads: usize, serialised: bool) -> (f64, u64) {
    let scheduler = Arc::new(Scheduler::new(registry.clone()));
    // Warm one session per policy and thread, as a running controller has.
    for r in reqs.iter().take(2 * threads) {
        scheduler.preview(cycle, r).unwrap();
    }
    let whole = Arc::new(Mutex::new(()));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (scheduler, cycle, reqs, whole, barrier) = (scheduler.clone(), cycle.clone(), reqs.clone(), whole.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for r in reqs.iter().skip(t).step_by(threads) {
                    let _whole = serialised.then(|| whole.lock().unwrap());
                    std::hint::black_box(scheduler.place(&cycle, r).unwrap());
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    (started.elapsed().as_secs_f64(), scheduler.races())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("MCK8S_BENCH_SIZES").unwrap_or_else(|_| "100,1000".into()).split(',').map(|s| s.trim().parse().expect("size")).collect();
    let threads: usize = std::env::var("MCK8S_BENCH_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let registry = registry();
    println!(
        "{DECISIONS} decisions of 2 replicas from {threads} threads; median of {ROUNDS} rounds. Worst-fit alone is the contended case: every decision wants the roomiest clusters.\n"
    );
    println!(
        "| requests | clusters | one thread ms/decision | {threads} threads, one lock across the decision (before) ms/decision | {threads} threads, ledger lock only (now) ms/decision | before/now | decisions made again (now) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (label, policy) in [("worst-fit, best-fit in turn", None), ("worst-fit only", Some("worst-fit"))] {
        let reqs = Arc::new(requests(policy));
        for &n in &sizes {
            let cycle = cycle(n);
            let (mut one, mut before, mut now, mut races) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                one.push(run(&registry, &cycle, &reqs, 1, false).0);
                before.push(run(&registry, &cycle, &reqs, threads, true).0);
                let (t, r) = run(&registry, &cycle, &reqs, threads, false);
                now.push(t);
                races.push(r as f64);
            }
            let per = |s: f64| s * 1e3 / DECISIONS as f64;
            let (one, before, now) = (median(one), median(before), median(now));
            println!("| {label} | {n} | {:.3} | {:.3} | {:.3} | {:.2}× | {:.0} |", per(one), per(before), per(now), before / now, median(races));
        }
    }
}
