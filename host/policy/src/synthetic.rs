//! Deterministic synthetic fleets for benchmarks, `mck8s policy bench` and generated tests.

use crate::input::{ClusterDoc, FleetDoc, NodeDoc, WorkloadDoc};
use mck8s_fleet::{Health, Role};
use std::collections::BTreeMap;

/// A small xorshift generator: reproducible across platforms, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// `n` clusters: about 1 in 10 cloud, 1 in 20 not ready, 3 labels each, 1–8 nodes of a few
/// sizes partly used, traffic and cost, and RTTs to the 8 next clusters by index (a ring, so
/// every cluster has neighbours but the list stays O(n)).
pub fn fleet(n: usize, seed: u64) -> FleetDoc {
    let mut rng = Rng::new(seed);
    let regions = ["eu-west", "eu-central", "us-east", "ap-south"];
    let mut clusters = Vec::with_capacity(n);
    for i in 0..n {
        let cloud = i % 10 == 9;
        let name = if cloud { format!("cloud{i:05}") } else { format!("cluster{i:05}") };
        let cpu = [2u64, 4, 8, 16][rng.range(0, 3) as usize];
        let nodes = vec![NodeDoc {
            count: rng.range(1, 8) as u32,
            cpu: crate::input::Qty(cpu.to_string()),
            memory: crate::input::Qty(format!("{}Gi", cpu * 4)),
            pods: 110,
            extended: BTreeMap::new(),
            used_cpu: Some(crate::input::Qty(format!("{}m", rng.range(0, cpu * 1000)))),
            used_memory: Some(crate::input::Qty(format!("{}Mi", rng.range(0, cpu * 4 * 1024)))),
            used_pods: rng.range(0, 30),
            used_extended: BTreeMap::new(),
        }];
        let mut labels = BTreeMap::new();
        labels.insert("region".to_string(), regions[i % regions.len()].to_string());
        labels.insert("tier".to_string(), if cloud { "cloud" } else { "edge" }.to_string());
        labels.insert("zone".to_string(), format!("z{}", i % 7));
        clusters.push(ClusterDoc {
            name,
            role: Some(if cloud { Role::Cloud } else { Role::Fog }),
            health: if i % 20 == 7 { Health::NotReady } else { Health::Ready },
            labels,
            nodes,
            traffic: rng.range(0, 1_000_000) as f64,
            cost: if cloud { rng.range(1, 10) as f64 } else { 0.0 },
        });
    }
    let names: Vec<String> = clusters.iter().map(|c| c.name.clone()).collect();
    let mut rtt = Vec::new();
    if n > 1 {
        for i in 0..n {
            for k in 1..=8.min(n - 1) {
                let j = (i + k) % n;
                if i < j || k > n / 2 {
                    rtt.push((names[i].clone(), names[j].clone(), rng.range(1, 200) as f32 / 2.0));
                }
            }
        }
    }
    FleetDoc { clusters, rtt }
}

/// The workload the benchmarks place: 10 replicas of 500m / 1 GiB on 3 locations.
pub fn workload() -> WorkloadDoc {
    serde_yaml_ng::from_str("{name: bench, replicas: 10, numberOfLocations: 3, requests: {cpu: 500m, memory: 1Gi}}").expect("static workload parses")
}
