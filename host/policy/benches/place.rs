//! Per-decision latency of the built-in placement policies through Wasm against the very
//! same algorithm compiled natively, measured side by side in one run (interleaved rounds,
//! medians), plus instantiate, set-fleet and reload costs. Prints a Markdown table for
//! docs/benchmarks.md.
//!
//! `cargo bench -p mck8s-policy --bench place` (after scripts/build-policies.sh).
//! `MCK8S_BENCH_SIZES=10,100` limits the fleet sizes.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

#[path = "../tests/integration/common.rs"]
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
    let sizes: Vec<usize> = std::env::var("MCK8S_BENCH_SIZES").unwrap_or_else(|_| "10,100,1000,10000".into()).split(',').map(|s| s.trim().parse().expect("size")).collect();
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
            println!("| {policy_name} | {n} | {nat:.2} | {was:.2} | {:.2}× | {:.1} | {:.1} | {:.1} |", was / nat, median(fresh), median(set_fleet), median(native_set_fleet));
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
    let compile = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                black_box(engine.compile(&bytes, "nocache").unwrap());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    println!("| compile (cranelift) | {compile:.1} ms |");
    let dir = tempfile::tempdir().unwrap();
    let cached = PolicyEngine::new(EngineConfig { cache_dir: Some(dir.path().to_path_buf()), ..EngineConfig::default() }).unwrap();
    let digest = mck8s_policy::loaded::sha256_hex(&bytes);
    cached.compile(&bytes, &digest).unwrap();
    let load = median(
        (0..20)
            .map(|_| {
                let t = Instant::now();
                black_box(cached.cache().unwrap().get(cached.engine(), &digest).unwrap());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    println!("| load compiled artifact from cache (mmap) | {load:.2} ms |");
    let registry = mck8s_policy::PolicyRegistry::new(cached.clone());
    let full = median(
        (0..5)
            .map(|i| {
                // Alternate two versions so every upsert is a real swap: load (cached) + link + info + self-check.
                let name = if i % 2 == 0 { "worst-fit" } else { "best-fit" };
                let b = common::builtin(name);
                cached.compile(&b, &mck8s_policy::loaded::sha256_hex(&b)).unwrap();
                let t = Instant::now();
                registry.upsert("p", &b, "bench").unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    println!("| registry swap with warm cache (load, link, info, self-check, swap) | {full:.2} ms |");

    scaling(&engine);
}

/// One autoscaler decision as the controller makes it (a fresh instance per call: scaling
/// calls come once per period per autoscaler, and the state travels in the request) against
/// the same formula compiled natively.
fn scaling(engine: &PolicyEngine) {
    use mck8s_policies::scaling::{Flavour, Sample, ScaleInput, scale};
    println!();
    println!("| scaling policy | clusters | native µs | wasm µs (instantiate + scale) | wasm/native |");
    println!("|---|---:|---:|---:|---:|");
    for (name, flavour) in [("mchpa", Flavour::Classic), ("mchpa-traffic", Flavour::TrafficAware)] {
        let policy = LoadedPolicy::load(engine, name, &common::builtin(name), "bench", Limits::default()).unwrap();
        for n in [3usize, 30, 300] {
            let samples: Vec<Sample> = (0..n)
                .map(|i| Sample { cluster: format!("cluster{i}"), replicas: 2 + (i % 5) as u32, utilization: Some(20.0 + (i * 37 % 100) as f64), traffic: Some((i * 1000) as f64) })
                .collect();
            let state: Vec<u8> = (0..n).filter(|i| i % 2 == 0).map(|i| format!("cluster{i}=60\n")).collect::<String>().into_bytes();
            let params = vec![("scaleDownStabilizationSeconds".to_string(), "330".to_string())];
            let native_in = ScaleInput { samples: &samples, target_utilization: 50, min_replicas: 1, max_replicas: 10_000, elapsed_seconds: 30, params: &params, state: &state };
            let request = mck8s_policy::bindings::wit_scaling::ScalingRequest {
                name: "web".into(),
                namespace: "default".into(),
                samples: samples
                    .iter()
                    .map(|s| mck8s_policy::bindings::wit_scaling::ClusterSample {
                        cluster: s.cluster.clone(),
                        replicas: s.replicas,
                        utilization: s.utilization,
                        traffic: s.traffic,
                    })
                    .collect(),
                target_utilization: 50,
                min_replicas: 1,
                max_replicas: 10_000,
                elapsed_seconds: 30,
                params: params.clone(),
                state: state.clone(),
            };
            // Same answer both ways, or the comparison means nothing.
            let native = scale(&native_in, flavour).unwrap();
            let wasm = policy.scale(&request).unwrap();
            assert_eq!((native.total, &native.desired, &native.state), (wasm.total, &wasm.desired, &wasm.state));
            let (mut nat, mut was) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                nat.extend(per_call_us(1, || {
                    black_box(scale(black_box(&native_in), flavour).unwrap());
                }));
                was.extend(per_call_us(1, || {
                    black_box(policy.scale(black_box(&request)).unwrap());
                }));
            }
            let (nat, was) = (median(nat), median(was));
            println!("| {name} | {n} | {nat:.2} | {was:.1} | {:.0}× |", was / nat);
        }
    }
}
