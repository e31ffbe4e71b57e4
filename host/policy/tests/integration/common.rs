//! Shared test helpers: where the components are, an engine with a private cache, and the
//! native reference runner (the same `mck8s-policies` code the guests wrap).
#![allow(dead_code)]

use mck8s_policies::placement::{self, Ranking};
use mck8s_policies::{Cluster, Fleet, Placement, Preference, Request, Role};
use mck8s_policy::bindings::wit;
use mck8s_policy::{EngineConfig, FleetSnapshot, PolicyEngine, PolicyRegistry};
use std::path::PathBuf;
use std::sync::Arc;

/// The components built by `scripts/build-policies.sh` (built first when missing).
pub fn wasm_dir() -> PathBuf {
    mck8s_policy::built::ensure().unwrap_or_else(|e| panic!("{e}"))
}

pub fn wasm(file: &str) -> Vec<u8> {
    mck8s_policy::built::read(file)
}

pub fn builtin(name: &str) -> Vec<u8> {
    wasm(&format!("builtin/{name}.wasm"))
}

pub fn guest(name: &str) -> Vec<u8> {
    wasm(&format!("mck8s_guest_{}.wasm", name.replace('-', "_")))
}

pub fn engine() -> PolicyEngine {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("mck8s=debug").try_init();
    PolicyEngine::new(EngineConfig { cache_dir: None, ..EngineConfig::default() }).expect("engine")
}

pub const PLACEMENT_BUILTINS: &[&str] = &["worst-fit", "best-fit", "most-traffic", "preferred", "divided"];

pub fn registry_with_builtins() -> Arc<PolicyRegistry> {
    let registry = Arc::new(PolicyRegistry::new(engine()));
    for name in PLACEMENT_BUILTINS.iter().chain(&["mchpa", "mchpa-traffic"]) {
        registry.upsert(name, &builtin(name), &format!("test:{name}")).unwrap_or_else(|e| panic!("{e}"));
    }
    registry
}

/// The fleet as a guest sees it after `set-fleet`, built natively.
pub fn native_fleet(snapshot: &FleetSnapshot) -> Fleet {
    let f = snapshot.wit();
    let clusters = f
        .clusters
        .iter()
        .map(|c| Cluster {
            name: snapshot.strings()[c.name as usize].clone(),
            role: if c.role == wit::Role::Cloud { Role::Cloud } else { Role::Fog },
            ready: c.health == wit::Health::Ready,
            traffic: c.traffic,
            cost: c.cost,
            labels: f.labels[c.labels_start as usize..][..c.labels_len as usize].iter().map(|l| (l.key, l.value)).collect(),
        })
        .collect();
    Fleet::with_strings(clusters, f.rtts.iter().map(|r| (r.a, r.b, r.millis)), snapshot.strings().to_vec())
}

/// Runs the built-in `policy`'s algorithm natively.
pub fn native_place(policy: &str, fleet: &Fleet, w: &wit::Workload) -> Result<Placement, String> {
    let preferred: Vec<Preference> = w.preferred.iter().map(|p| Preference { cluster: p.cluster, replicas: p.replicas }).collect();
    let current: Vec<(u32, u32)> = w.current.iter().map(|a| (a.cluster, a.replicas)).collect();
    let req = Request {
        replicas: w.replicas,
        number_of_locations: w.number_of_locations,
        total: w.total,
        preferred: &preferred,
        current: &current,
        params: &w.params,
        slots: &w.slots,
        unfit: &w.unfit,
        app_traffic: &w.app_traffic,
    };
    match mck8s_policy::registry::normalize(policy).as_str() {
        "worst-fit" => Ok(placement::rank_and_place(fleet, &req, Ranking::WorstFit)),
        "best-fit" => Ok(placement::rank_and_place(fleet, &req, Ranking::BestFit)),
        "most-traffic" => Ok(placement::rank_and_place(fleet, &req, Ranking::MostTraffic)),
        "preferred" if req.preferred.is_empty() => Ok(placement::automatic(fleet, &req, Ranking::WorstFit)),
        "preferred" => Ok(placement::preferred(fleet, &req)),
        "divided" => placement::divided(fleet, &req),
        other => Err(format!("no native baseline for {other}")),
    }
}
