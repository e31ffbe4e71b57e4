//! Policy test cases: a fleet, a workload and what the decision must be, in YAML (the format
//! of `tests/cases/placement/*.yaml`), and property checks on generated fleets. Used by the
//! test suite and by `mck8s policy test`.

use crate::input::{PlacementInput, WorkloadDoc};
use crate::session::Decision;
use crate::{FleetSnapshot, LoadedPolicy, PlacementSession, synthetic};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    /// Which policy the case was written for (informational when a file is given).
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(flatten)]
    pub input: PlacementInput,
    pub expect: Expect,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Expect {
    pub placements: BTreeMap<String, u32>,
    pub unplaced: u32,
}

/// Reads one case file, or every `*.yaml` in a directory (sorted by name).
pub fn load(path: &Path) -> anyhow::Result<Vec<(String, Case)>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml")).collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            let case: Case = serde_yaml_ng::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            Ok((p.file_stem().unwrap_or_default().to_string_lossy().into_owned(), case))
        })
        .collect()
}

/// Runs `case` through `policy`; returns the decision and, if it differs from the
/// expectation, what differs.
pub fn run(policy: &Arc<LoadedPolicy>, case: &Case) -> anyhow::Result<(Decision, Option<String>)> {
    let fleet = Arc::new(FleetSnapshot::from_doc(&case.input.fleet)?);
    let workload = fleet.workload(&case.input.workload)?;
    let decision = PlacementSession::new(policy.clone(), fleet)?.place(&workload)?;
    let got: BTreeMap<String, u32> = decision.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect();
    let mismatch = (got != case.expect.placements || decision.unplaced != case.expect.unplaced)
        .then(|| format!("placed {got:?} unplaced {}, expected {:?} unplaced {}", decision.unplaced, case.expect.placements, case.expect.unplaced));
    Ok((decision, mismatch))
}

/// Checks the properties every placement policy must have on `n` generated fleets and
/// workloads: it decides (the host already refuses unknown or unready clusters and sums that
/// do not add up), never puts more replicas on a fog cluster than it has slots for, and gives
/// the same answer to the same input, in a fresh instance and in a reused one. `params` are
/// given to every generated workload. Returns the violations found.
pub fn check_properties(policy: &Arc<LoadedPolicy>, n: usize, seed: u64, params: &BTreeMap<String, String>) -> Vec<String> {
    let mut rng = synthetic::Rng::new(seed);
    let mut violations = Vec::new();
    for i in 0..n {
        let size = [1, 2, 3, 5, 8, 20, 60, 200][rng.range(0, 7) as usize];
        let fleet_doc = synthetic::fleet(size, rng.next_u64());
        let mut w: WorkloadDoc = synthetic::workload();
        w.params = params.clone();
        w.replicas = rng.range(1, 40) as u32;
        w.number_of_locations = Some(rng.range(1, 4) as u32);
        w.requests.cpu = Some(format!("{}m", rng.range(100, 4000)).as_str().into());
        w.requests.memory = Some(format!("{}Mi", rng.range(64, 8192)).as_str().into());
        if rng.range(0, 3) == 0 {
            let fog: Vec<&str> = fleet_doc.clusters.iter().map(|c| c.name.as_str()).filter(|n| !n.starts_with("cloud")).collect();
            if !fog.is_empty() {
                let k = rng.range(1, fog.len().min(3) as u64) as usize;
                let start = rng.range(0, (fog.len() - k) as u64) as usize;
                w.locations = Some(crate::input::ListOrCsv::Csv(fog[start..start + k].join(",")));
            }
        }
        let label = format!("generated case {i} (seed {seed}, {size} clusters, {} × {:?})", w.replicas, w.number_of_locations);
        let fleet = match FleetSnapshot::from_doc(&fleet_doc) {
            Ok(f) => Arc::new(f),
            Err(e) => {
                violations.push(format!("{label}: generator produced an invalid fleet: {e}"));
                continue;
            }
        };
        let workload = match fleet.workload(&w) {
            Ok(w) => w,
            Err(e) => {
                violations.push(format!("{label}: generator produced an invalid workload: {e}"));
                continue;
            }
        };
        let decide = |session: &mut PlacementSession| session.place(&workload);
        let mut session = match PlacementSession::new(policy.clone(), fleet.clone()) {
            Ok(s) => s,
            Err(e) => return vec![e.to_string()],
        };
        let first = match decide(&mut session) {
            Ok(d) => d,
            Err(e) => {
                violations.push(format!("{label}: {e}"));
                continue;
            }
        };
        for p in &first.placements {
            let c = fleet.index_of(&p.cluster).expect("validated");
            let fog = fleet.clusters()[c as usize].role == crate::bindings::wit::Role::Fog;
            if fog && p.replicas > workload.slots[c as usize] {
                violations.push(format!("{label}: {} replicas on fog cluster {} which has {} slots", p.replicas, p.cluster, workload.slots[c as usize]));
            }
        }
        let again_same_instance = decide(&mut session);
        let again_fresh = PlacementSession::new(policy.clone(), fleet.clone()).and_then(|mut s| s.place(&workload));
        for (how, again) in [("the same instance", again_same_instance), ("a fresh instance", again_fresh)] {
            match again {
                Ok(d) if d == first => {}
                Ok(d) => violations.push(format!("{label}: a second call in {how} decided differently: {d:?} vs {first:?}")),
                Err(e) => violations.push(format!("{label}: a second call in {how} failed: {e}")),
            }
        }
    }
    violations
}
