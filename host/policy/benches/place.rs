//! Per-decision latency of the built-in placement policies through Wasm against the very
//! same algorithm compiled natively, measured side by side in one run (interleaved rounds,
//! medians), plus instantiate, set-fleet and reload costs. Prints a Markdown table for
//! docs/benchmarks.md.
//!
//! `cargo bench -p mck8s-policy --bench place` (after scripts/build-policies.sh).
//! `MCK8S_BENCH_SIZES=10,100` limits the fleet sizes.

#[path = "../tests/common/mod.rs"]
mod common;

use mck8s_policy::input::PlacementInput;
use mck8s_policy::{EngineConfig, FleetSnapshot, Limits, LoadedPolicy, PlacementSession, PolicyEngine, synthetic};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `f` in batches of about 5 ms; returns µs per call for each round.
fn per_call_us(rounds: usize, mut f: impl FnMut()) -> Vec<f64> {
    let t = Instant::now();
    f();
    let once = t.elapsed().max(Duration::from_nanos(50));
    let batch = ((Duration::from_millis(5).as_nanos() / once.as_nanos()) as usize).clamp(1, 100_000);
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / batch as f64
        })
        .collect()
}

fn main() {
    let sizes: Vec<usize> = std::env::var("MCK8S_BENCH_SIZES")
        .unwrap_or_else(|_| "10,100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("size"))
        .collect();
    let engine = PolicyEngine::new(EngineConfig { cache_dir: None, ..EngineConfig::default() }).unwrap();
    println!("| policy | clusters | native µs | wasm place µs | wasm/native | instantiate+set-fleet+place µs | set-fleet µs | native fleet build µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for policy_name in ["worst-fit", "most-traffic", "preferred"] {
        let bytes = common::builtin(policy_name);
        let policy = Arc::new(LoadedPolicy::load(&engine, policy_name, &bytes, "bench", Limits::default()).unwrap());
        for &n in &sizes {
            let mut doc = PlacementInput { fleet: synthetic::fleet(n, 42), workload: synthetic::workload() };
            if policy_name == "preferred" {
                // Three preferred locations, as a user would list.
                let names: Vec<String> = doc.fleet.clusters.iter().filter(|c| !c.name.starts_with("cloud")).take(3).map(|c| c.name.clone()).collect();
                doc.workload.locations = Some(mck8s_policy::input::ListOrCsv::Csv(names.join(",")));
                doc.workload.replicas = 40;
            }
            let fleet = Arc::new(FleetSnapshot::from_doc(&doc.fleet).unwrap());
            let workload = fleet.workload(&doc.workload).unwrap();
            let native_fleet = common::native_fleet(&fleet);
            let mut session = PlacementSession::new(policy.clone(), fleet.clone()).unwrap();
            session.prepare().unwrap();
            // Same answer both ways, or the comparison means nothing.
            let wasm = session.place_raw(&workload).unwrap();
            let native = common::native_place(policy_name, &native_fleet, &workload).unwrap();
            assert_eq!(wasm.unplaced, native.unplaced);
            assert_eq!(wasm.choices.iter().map(|c| (c.cluster, c.replicas)).collect::<Vec<_>>(), native.choices.iter().map(|c| (c.cluster, c.replicas)).collect::<Vec<_>>());

            let (mut nat, mut was) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                nat.extend(per_call_us(1, || {
                    black_box(common::native_place(policy_name, &native_fleet, black_box(&workload)).unwrap());
                }));
                was.extend(per_call_us(1, || {
                    black_box(session.place_raw(black_box(&workload)).unwrap());
                }));
            }
            let fresh = per_call_us(5, || {
                black_box(PlacementSession::new(policy.clone(), fleet.clone()).unwrap().place_raw(&workload).unwrap());
            });
            let set_fleet = per_call_us(5, || {
                let mut s = PlacementSession::new(policy.clone(), fleet.clone()).unwrap();
                s.prepare().unwrap();
                black_box(&s);
            });
            // What the guest does in set-fleet, natively: build the policy's fleet view.
            let native_set_fleet = per_call_us(5, || {
                black_box(common::native_fleet(black_box(&fleet)));
            });
            let (nat, was) = (median(nat), median(was));
            println!(
                "| {policy_name} | {n} | {nat:.2} | {was:.2} | {:.2}× | {:.1} | {:.1} | {:.1} |",
                was / nat,
                median(fresh),
                median(set_fleet),
                median(native_set_fleet)
            );
        }
    }

    // Where the time goes: the same workload through a guest that converts the request and
    // returns an error at once (marshalling + SDK conversion, no algorithm).
    println!();
    println!("| clusters | marshalling + call only µs (hostile guest, mode=refuse) |");
    println!("|---:|---:|");
    let hostile = Arc::new(LoadedPolicy::load(&engine, "hostile", &common::guest("hostile"), "bench", Limits::default()).unwrap());
    for &n in &sizes {
        let mut doc = PlacementInput { fleet: synthetic::fleet(n, 42), workload: synthetic::workload() };
        doc.workload.params.insert("mode".into(), "refuse".into());
        let fleet = Arc::new(FleetSnapshot::from_doc(&doc.fleet).unwrap());
        let workload = fleet.workload(&doc.workload).unwrap();
        let mut session = PlacementSession::new(hostile.clone(), fleet).unwrap();
        session.prepare().unwrap();
        let t = median(per_call_us(ROUNDS, || {
            black_box(session.place_raw(black_box(&workload)).unwrap_err());
        }));
        println!("| {n} | {t:.2} |");
    }

    println!();
    println!("| reload step (worst-fit, {} KiB) | median |", common::builtin("worst-fit").len() / 1024);
    println!("|---|---:|");
    let bytes = common::builtin("worst-fit");
    let compile = median((0..5).map(|_| {
        let t = Instant::now();
        black_box(engine.compile(&bytes, "nocache").unwrap());
        t.elapsed().as_secs_f64() * 1e3
    }).collect());
    println!("| compile (cranelift) | {compile:.1} ms |");
    let dir = tempfile::tempdir().unwrap();
    let cached = PolicyEngine::new(EngineConfig { cache_dir: Some(dir.path().to_path_buf()), ..EngineConfig::default() }).unwrap();
    let digest = mck8s_policy::loaded::sha256_hex(&bytes);
    cached.compile(&bytes, &digest).unwrap();
    let load = median((0..20).map(|_| {
        let t = Instant::now();
        black_box(cached.cache().unwrap().get(cached.engine(), &digest).unwrap());
        t.elapsed().as_secs_f64() * 1e3
    }).collect());
    println!("| load compiled artifact from cache (mmap) | {load:.2} ms |");
    let registry = mck8s_policy::PolicyRegistry::new(cached.clone());
    let full = median((0..5).map(|i| {
        // Alternate two versions so every upsert is a real swap: load (cached) + link + info + self-check.
        let name = if i % 2 == 0 { "worst-fit" } else { "best-fit" };
        let b = common::builtin(name);
        cached.compile(&b, &mck8s_policy::loaded::sha256_hex(&b)).unwrap();
        let t = Instant::now();
        registry.upsert("p", &b, "bench").unwrap();
        t.elapsed().as_secs_f64() * 1e3
    }).collect());
    println!("| registry swap with warm cache (load, link, info, self-check, swap) | {full:.2} ms |");
}
