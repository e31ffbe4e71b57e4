//! MultiClusterDeployment, MultiClusterJob and MultiClusterService objects as a hostile user
//! could store them (the CRD schema is loose where the original was: strings or lists,
//! free-form maps), through the controller's own parsing: a clear error or a plan, never a
//! panic.
#![no_main]

mod fleet;

use libfuzzer_sys::fuzz_target;
use mck8s_api::{MultiClusterDeployment, MultiClusterJob, MultiClusterService};
use mck8s_controller::spec;
use mck8s_policy::FleetSnapshot;
use std::sync::OnceLock;

/// Where a parsed workload goes next: the policy input for a small fleet.
fn fleet() -> &'static FleetSnapshot {
    static FLEET: OnceLock<FleetSnapshot> = OnceLock::new();
    FLEET.get_or_init(|| fleet::from_yaml(
        "clusters:\n- {name: cluster1, nodes: [{count: 2, cpu: '4', memory: 8Gi}]}\n- {name: cloud1, nodes: [{cpu: '16', memory: 64Gi}]}\n",
    ))
}

fuzz_target!(|data: &[u8]| {
    // The API server hands objects over as JSON; kubectl takes YAML (a superset).
    let value: serde_json::Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(_) => match serde_yaml_ng::from_slice(data) {
            Ok(v) => v,
            Err(_) => return,
        },
    };
    if let Ok(mcd) = serde_json::from_value::<MultiClusterDeployment>(value.clone()) {
        if let Ok(plan) = spec::parse("fuzz", "ns", &mcd.spec) {
            // The children get the replicas mck8s decides, never the user's.
            assert!(plan.deployment.get("replicas").is_none());
            let _ = fleet().workload(&plan.workload);
        }
    }
    if let Ok(mcj) = serde_json::from_value::<MultiClusterJob>(value.clone()) {
        if let Ok(plan) = spec::parse_job("fuzz", "ns", &mcj.spec) {
            assert!(plan.spec.deployment["parallelism"].as_i64().is_some_and(|p| p >= 1));
            let _ = fleet().workload(&plan.spec.workload);
        }
    }
    let _ = serde_json::from_value::<MultiClusterService>(value);
});
