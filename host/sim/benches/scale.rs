//! The simulator at scale: 1,000 clusters (900 fog of 1–8 nodes, 100 autoscaled clouds,
//! RTTs to 8 neighbours) and 10,000 workload events (5,000 arrivals and 5,000 departures
//! over ~3.6 hours of virtual time; 1 in 20 autoscaled, 1 in 10 with preferred locations,
//! 10 cluster failures). Prints wall time and decision throughput per policy as Markdown.
//!
//! `cargo bench -p mck8s-sim --bench scale` (after scripts/build-policies.sh).
//! `MCK8S_BENCH_POLICIES=worst-fit,kubefed-even` picks the policies,
//! `MCK8S_BENCH_CLUSTERS` / `MCK8S_BENCH_WORKLOADS` the size.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

use mck8s_policy::synthetic::Rng;
use mck8s_sim::Scenario;
use mck8s_sim::driver::Cycles;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `MCK8S_BENCH_CYCLES=incremental` (or `rebuilt`, `states`) runs one way only, for a profiler.
fn modes() -> Vec<Cycles> {
    match std::env::var("MCK8S_BENCH_CYCLES").as_deref() {
        Ok("rebuilt") => vec![Cycles::Rebuilt],
        Ok("states") => vec![Cycles::StatesReused],
        Ok("incremental") => vec![Cycles::Incremental],
        _ => vec![Cycles::Rebuilt, Cycles::StatesReused, Cycles::Incremental],
    }
}

fn scenario(clusters: usize, workloads: usize) -> Scenario {
    let mut rng = Rng::new(7);
    let clouds = clusters / 10;
    let fog = clusters - clouds;
    let fog_name = |i: usize| format!("cluster{i:04}");
    let mut cs: Vec<Value> = Vec::with_capacity(clusters);
    for i in 0..fog {
        let cpu = [4, 8][rng.range(0, 1) as usize];
        cs.push(json!({
            "name": fog_name(i),
            "labels": {"zone": format!("z{}", i % 7)},
            "traffic": rng.range(0, 10_000),
            "nodes": [{"count": rng.range(1, 8), "cpu": cpu, "memory": format!("{}Gi", cpu * 4), "usedCpu": "300m", "usedMemory": "512Mi"}],
        }));
    }
    for i in 0..clouds {
        cs.push(json!({
            "name": format!("cloud{i:03}"),
            "cost": rng.range(1, 10),
            "nodes": [{"count": 1, "cpu": 8, "memory": "32Gi"}],
            "autoscaling": {"minNodes": 1, "maxNodes": 20, "provisionSeconds": 180, "scaleDownSeconds": 600},
        }));
    }
    let names: Vec<String> = cs.iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    let mut rtt = Vec::new();
    for i in 0..clusters {
        for k in 1..=8.min(clusters - 1) {
            let j = (i + k) % clusters;
            if i < j {
                rtt.push(json!([names[i], names[j], rng.range(1, 200) as f64 / 2.0]));
            }
        }
    }
    let every = 2u64;
    let mut ws: Vec<Value> = Vec::with_capacity(workloads);
    for i in 0..workloads {
        let cpu = ["250m", "500m", "1", "2"][rng.range(0, 3) as usize];
        let mut w = json!({
            "name": format!("app{i:05}"),
            "at": i as u64 * every,
            "lifetime": rng.range(1200, 4800),
            "replicas": rng.range(2, 10),
            "numberOfLocations": rng.range(1, 3),
            "requests": {"cpu": cpu, "memory": "512Mi"},
        });
        if i % 10 == 3 {
            let locs: Vec<String> = (0..3).map(|_| fog_name(rng.range(0, fog as u64 - 1) as usize)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
            w["locations"] = json!(locs.join(","));
            w.as_object_mut().unwrap().remove("numberOfLocations");
        }
        if i % 20 == 7 {
            let peak = rng.range(4, 20) as f64;
            w["autoscale"] = json!({"policy": if i % 40 == 7 { "mchpa" } else { "mchpa-traffic" }, "targetUtilization": 60, "minReplicas": 2, "maxReplicas": 40});
            w["load"] = json!([[0, 1], [600, peak], [1800, peak], [2400, 1]]);
        }
        ws.push(w);
    }
    let failures: Vec<Value> = (0..10).map(|k| json!({"cluster": fog_name(k * (fog / 10)), "at": 1800 + k as u64 * 900, "until": 2400 + k as u64 * 900})).collect();
    let doc = json!({
        "name": format!("scale-{clusters}x{workloads}"),
        "durationSeconds": workloads as u64 * every + 4800,
        "clusters": cs,
        "rtt": rtt,
        "workloads": ws,
        "failures": failures,
    });
    Scenario::parse(&serde_json::to_string(&doc).unwrap()).expect("generated scenario is valid")
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let clusters = env_or("MCK8S_BENCH_CLUSTERS", 1000);
    let workloads = env_or("MCK8S_BENCH_WORKLOADS", 5000);
    let policies: Vec<String> = std::env::var("MCK8S_BENCH_POLICIES").unwrap_or_else(|_| "worst-fit,preferred,kubefed-even".into()).split(',').map(str::to_string).collect();
    let registry = mck8s_sim::policies::new_registry().unwrap();
    mck8s_sim::policies::load_dir(&registry, &mck8s_policy::built::ensure().unwrap_or_else(|e| panic!("{e}")).join("builtin"))
        .unwrap_or_else(|e| panic!("{e}; run scripts/build-policies.sh first"));
    let registry = Arc::new(registry);
    let t = Instant::now();
    let s = scenario(clusters, workloads);
    let events = 2 * s.workloads.len(); // every workload arrives and departs
    eprintln!("generated {} in {:.2} s: {clusters} clusters, {events} workload events, {} s virtual", s.name, t.elapsed().as_secs_f64(), s.duration_seconds);
    // Every policy three ways in the same run: everything rebuilt at every cycle (first),
    // cluster states reused (issue 17's first step), and incremental snapshots with fleet
    // updates sent to the policy (now), with the same answers required.
    println!(
        "| policy | states | clusters | workload events | virtual time | wall time | decisions | decisions/s (deciding) | decisions/s (wall) | fleet cycles | cycle build ms | of which ClusterStates ms | policy call ms | virtual s per wall s | pending pods | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &policies {
        let mut walls = Vec::new();
        for cycles in modes() {
            let driver = mck8s_sim::driver::Driver::new(&s, registry.clone(), p).unwrap().cycles(cycles);
            let r = driver.run(&mut |_| {}).unwrap();
            walls.push((r.wall_seconds, r.decisions, r.unplaced_decisions));
            println!(
                "| {p} | {} | {clusters} | {events} | {:.1} h | {:.1} s | {} | {:.0} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1}% | {} |",
                match cycles {
                    Cycles::Rebuilt => "rebuilt (first)",
                    Cycles::StatesReused => "states reused (before)",
                    Cycles::Incremental => "incremental (now)",
                },
                s.duration_seconds as f64 / 3600.0,
                r.wall_seconds,
                r.decisions,
                r.summary.decisions_per_second,
                r.decisions as f64 / r.wall_seconds,
                r.cycles,
                1e3 * r.cycle_seconds / r.cycles.max(1) as f64,
                1e3 * r.state_seconds / r.cycles.max(1) as f64,
                1e3 * (r.decision_seconds - r.cycle_seconds) / r.decisions.max(1) as f64,
                s.duration_seconds as f64 / r.wall_seconds,
                100.0 * r.summary.pending_fraction,
                r.errors
            );
        }
        for w in &walls[1..] {
            assert_eq!((walls[0].1, walls[0].2), (w.1, w.2), "{p}: incremental cycles must decide as rebuilt ones");
        }
        if let [rebuilt, states, incremental] = walls.as_slice() {
            eprintln!("{p}: wall time rebuilt/incremental {:.2}×, states reused/incremental {:.2}×", rebuilt.0 / incremental.0, states.0 / incremental.0);
        }
    }
}
