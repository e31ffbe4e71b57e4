//! The self-check a new policy version must pass before it replaces the current one: a
//! small fixed fleet and workload, whose output must validate. It catches components that
//! trap, time out or answer nonsense on ordinary input.

use crate::FleetSnapshot;
use crate::error::{PolicyError, PolicyErrorKind};
use crate::input::{PlacementInput, ScalingInput};
use crate::loaded::{LoadedPolicy, PolicyKind};
use crate::session::PlacementSession;
use std::sync::{Arc, OnceLock};

const PLACEMENT_CANARY: &str = r#"
fleet:
  clusters:
    - {name: cluster1, labels: {region: west}, nodes: [{count: 2, cpu: "4", memory: 8Gi, usedCpu: 500m}], traffic: 10}
    - {name: cluster2, labels: {region: east}, nodes: [{count: 1, cpu: "2", memory: 4Gi}], traffic: 30}
    - {name: cluster3, health: not-ready, nodes: [{count: 3, cpu: "8", memory: 16Gi}]}
    - {name: cloud1, nodes: [{count: 1, cpu: "16", memory: 64Gi}], cost: 2}
  rtt: [[cluster1, cluster2, 12.5], [cluster1, cluster3, 3], [cluster2, cluster3, 8]]
workload:
  name: canary
  replicas: 3
  numberOfLocations: 2
  requests: {cpu: 500m, memory: 512Mi}
"#;

const SCALING_CANARY: &str = r#"
name: canary
samples:
  - {cluster: cluster1, replicas: 2, utilization: 80}
  - {cluster: cluster2, replicas: 1, utilization: 10}
  - {cluster: cluster3, replicas: 1}
targetUtilization: 50
minReplicas: 1
maxReplicas: 10
elapsedSeconds: 30
"#;

fn placement_canary() -> &'static (Arc<FleetSnapshot>, crate::bindings::wit::Workload) {
    static CANARY: OnceLock<(Arc<FleetSnapshot>, crate::bindings::wit::Workload)> = OnceLock::new();
    CANARY.get_or_init(|| {
        let input: PlacementInput = serde_yaml_ng::from_str(PLACEMENT_CANARY).expect("canary parses");
        let fleet = FleetSnapshot::from_doc(&input.fleet).expect("canary fleet is valid");
        let w = fleet.workload(&input.workload).expect("canary workload is valid");
        (Arc::new(fleet), w)
    })
}

/// Runs the canary through `policy`; the error says what failed.
pub fn self_check(policy: &Arc<LoadedPolicy>) -> Result<(), PolicyError> {
    let wrap = |e: PolicyError| PolicyError::new(&e.policy, &e.digest, PolicyErrorKind::SelfCheck(e.kind.to_string()));
    match policy.kind {
        PolicyKind::Placement => {
            let (fleet, workload) = placement_canary();
            let mut session = PlacementSession::new(policy.clone(), fleet.clone()).map_err(wrap)?;
            session.place(workload).map_err(wrap)?;
        }
        PolicyKind::Scaling => {
            let input: ScalingInput = serde_yaml_ng::from_str(SCALING_CANARY).expect("canary parses");
            policy.scale(&input.to_wit()).map_err(wrap)?;
        }
    }
    Ok(())
}
