//! What-if on a snapshot of the live fleet (`mck8s snapshot`, `mck8s simulate SNAPSHOT
//! --policy FILE`). Every multi-cluster object of the snapshot is decided again, one after
//! another as the controller decides them: the ledger starts with every recorded placement
//! (as after a controller restart), each object's own pods count as free, and each decision
//! replaces its own entry. This runs twice, once with each object's own policy and once with
//! the replacement, and compares the two per object and over the fleet.

use crate::cycle::FleetCycle;
use crate::scheduler::{PlacementRequest, Scheduler};
use mck8s_fleet::{ClusterState, OwnerKey};
use mck8s_policy::input::{InputError, WorkloadDoc, requests_of};
use mck8s_policy::registry::normalize;
use mck8s_policy::{PolicyRegistry, bindings::wit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The `format` of a snapshot file.
pub const FORMAT: &str = "mck8s/snapshot/v1";

/// The live fleet and its multi-cluster objects, reduced to what placement reads: node
/// capacities and requests, bound pods' requests per owner, RTTs, traffic, the objects'
/// workloads and recorded placements. No credential, no pod spec.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub format: String,
    /// RFC 3339.
    pub taken_at: String,
    pub clusters: Vec<ClusterState>,
    /// `(a, b, milliseconds)`.
    #[serde(default)]
    pub rtt: Vec<(String, String, f32)>,
    /// In the order the controller would meet them (oldest first).
    pub objects: Vec<SnapshotObject>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub policy: String,
    pub workload: WorkloadDoc,
    /// Replicas per cluster as the object's status records them.
    #[serde(default)]
    pub recorded: BTreeMap<String, u32>,
}

impl SnapshotObject {
    pub fn owner(&self) -> OwnerKey {
        OwnerKey { kind: self.kind.clone(), namespace: self.namespace.clone(), name: self.name.clone() }
    }
}

/// One object's two placements.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectWhatIf {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub policy: String,
    pub recorded: BTreeMap<String, u32>,
    /// Decided again by its own policy ...
    pub now: Outcome,
    /// ... and by the replacement (the same as `now` for an object it does not replace).
    pub what_if: Outcome,
    pub what_if_policy: String,
    /// Replicas the replacement puts on other clusters than its own policy does.
    pub moved: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub placement: BTreeMap<String, u32>,
    pub unplaced: u32,
    /// Why there is no placement (the spec is invalid, the policy failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One run over the whole fleet.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetFigures {
    pub placed: u32,
    pub unplaced: u32,
    pub on_cloud: u32,
    pub clusters_used: usize,
    pub failed: usize,
    /// Replicas per cluster, over every object.
    pub per_cluster: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIf {
    pub taken_at: String,
    pub policy: String,
    /// The policy it replaces; every object's when `None`.
    pub replacing: Option<String>,
    pub objects: Vec<ObjectWhatIf>,
    pub now: FleetFigures,
    pub what_if: FleetFigures,
}

#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    #[error("not a mck8s snapshot (format {0:?}, want {FORMAT:?})")]
    Format(String),
    #[error(transparent)]
    Fleet(#[from] InputError),
}

/// Replays `snapshot` with `policy` (a name in `registry`) in place of `replacing`, or of
/// every object's policy.
pub fn replay(registry: &Arc<PolicyRegistry>, snapshot: &Snapshot, policy: &str, replacing: Option<&str>) -> Result<WhatIf, WhatIfError> {
    if snapshot.format != FORMAT {
        return Err(WhatIfError::Format(snapshot.format.clone()));
    }
    let cycle = Arc::new(FleetCycle::build(snapshot.clusters.clone(), &snapshot.rtt, 1)?);
    let replaced = |o: &SnapshotObject| replacing.is_none_or(|r| normalize(r) == normalize(&o.policy));
    let now = run(registry, &cycle, snapshot, |o| o.policy.clone());
    let what_if = run(registry, &cycle, snapshot, |o| if replaced(o) { policy.to_string() } else { o.policy.clone() });
    let objects = snapshot
        .objects
        .iter()
        .zip(now.iter().zip(&what_if))
        .map(|(o, (n, w))| ObjectWhatIf {
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            policy: o.policy.clone(),
            recorded: o.recorded.clone(),
            moved: w.placement.iter().map(|(c, r)| r.saturating_sub(n.placement.get(c).copied().unwrap_or(0))).sum(),
            now: n.clone(),
            what_if: w.clone(),
            what_if_policy: if replaced(o) { policy.to_string() } else { o.policy.clone() },
        })
        .collect();
    Ok(WhatIf {
        taken_at: snapshot.taken_at.clone(),
        policy: policy.to_string(),
        replacing: replacing.map(str::to_string),
        objects,
        now: figures(&cycle, &now),
        what_if: figures(&cycle, &what_if),
    })
}

/// Every object decided in turn by `policy_of` it, on a ledger that starts with every
/// recorded placement.
fn run(registry: &Arc<PolicyRegistry>, cycle: &Arc<FleetCycle>, snapshot: &Snapshot, policy_of: impl Fn(&SnapshotObject) -> String) -> Vec<Outcome> {
    let scheduler = Scheduler::new(registry.clone());
    let known = |m: &BTreeMap<String, u32>| m.iter().filter(|(c, _)| cycle.snapshot.index_of(c).is_some()).map(|(c, r)| (c.clone(), *r)).collect::<BTreeMap<_, _>>();
    for o in &snapshot.objects {
        if let Ok(request) = requests_of(&o.workload) {
            scheduler.remember(&o.owner(), &request, &known(&o.recorded));
        }
    }
    snapshot
        .objects
        .iter()
        .map(|o| {
            let mut workload = o.workload.clone();
            workload.current = known(&o.recorded);
            let req = PlacementRequest { owner: o.owner(), policy: policy_of(o), workload };
            match scheduler.place(cycle, &req) {
                Ok(p) => Outcome { placement: p.decision.placements.iter().map(|c| (c.cluster.clone(), c.replicas)).collect(), unplaced: p.decision.unplaced, error: None },
                Err(e) => Outcome { error: Some(e.to_string()), ..Outcome::default() },
            }
        })
        .collect()
}

fn figures(cycle: &FleetCycle, outcomes: &[Outcome]) -> FleetFigures {
    let mut f = FleetFigures::default();
    for o in outcomes {
        f.failed += usize::from(o.error.is_some());
        f.unplaced += o.unplaced;
        for (c, r) in &o.placement {
            f.placed += r;
            *f.per_cluster.entry(c.clone()).or_default() += r;
            let cloud = cycle.snapshot.index_of(c).is_some_and(|i| cycle.snapshot.clusters()[i as usize].role == wit::Role::Cloud);
            if cloud {
                f.on_cloud += r;
            }
        }
    }
    f.clusters_used = f.per_cluster.values().filter(|r| **r > 0).count();
    f
}
