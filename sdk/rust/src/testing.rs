//! The native test harness (feature `testing`): runs case files, in the format of
//! `tests/cases/placement/*.yaml`, against a [`PlacementPolicy`] compiled for the host, so a
//! policy is unit-tested with `cargo test` before it is built as a component. The same
//! files then go through the Wasm host with `mck8s policy test FILE.wasm CASES`.
//!
//! The inputs are built by the host's own code (`mck8s-policy`: capacity model, slots,
//! interning), and every decision is checked as the host checks it, plus the properties
//! `mck8s policy test --properties` checks: no fog cluster over its slots, and the same
//! answer to the same input.

use crate::{Cluster, Fleet, Placement, PlacementPolicy, Preference, Request, Role};
use mck8s_policy::FleetSnapshot;
use mck8s_policy::bindings::wit;
use mck8s_policy::input::{InputError, PlacementInput};
use std::collections::BTreeMap;
use std::path::Path;

pub use mck8s_policy::cases::{Case, Expect, load as load_cases};

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("invalid input: {0}")]
    Input(#[from] InputError),
    #[error("the policy returned an error: {0}")]
    Policy(String),
    #[error("the host would refuse this decision: {0}")]
    Refused(String),
    #[error("a second call with the same input decided differently: {0}")]
    Nondeterministic(String),
}

/// A decision with cluster names resolved, as `mck8s policy eval` prints it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    /// `(cluster, replicas, reason)` in fleet (name) order.
    pub placements: Vec<(String, u32, String)>,
    pub unplaced: u32,
    pub summary: String,
}

impl Decided {
    pub fn replicas(&self) -> BTreeMap<String, u32> {
        self.placements.iter().map(|(c, n, _)| (c.clone(), *n)).collect()
    }
}

/// Runs `P` on one input natively and checks the decision as the host would.
pub fn decide<P: PlacementPolicy>(input: &PlacementInput) -> Result<Decided, HarnessError> {
    let snapshot = FleetSnapshot::from_doc(&input.fleet)?;
    let w = snapshot.workload(&input.workload)?;
    let fleet = native_fleet(&snapshot);
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
    let first = P::place(&fleet, &req).map_err(HarnessError::Policy)?;
    check(&snapshot, &w, &first).map_err(HarnessError::Refused)?;
    let again = P::place(&fleet, &req).map_err(HarnessError::Policy)?;
    if again != first {
        return Err(HarnessError::Nondeterministic(format!("{again:?} vs {first:?}")));
    }
    Ok(Decided {
        placements: first.choices.into_iter().map(|c| (snapshot.name_of(c.cluster).to_string(), c.replicas, c.reason)).collect(),
        unplaced: first.unplaced,
        summary: first.summary,
    })
}

/// Runs one case; `Ok(Err(diff))` when the policy decided validly but not as expected.
pub fn run_case<P: PlacementPolicy>(case: &Case) -> Result<Result<Decided, String>, HarnessError> {
    let d = decide::<P>(&case.input)?;
    let got = d.replicas();
    if got == case.expect.placements && d.unplaced == case.expect.unplaced {
        Ok(Ok(d))
    } else {
        Ok(Err(format!("placed {got:?} unplaced {}, expected {:?} unplaced {}", d.unplaced, case.expect.placements, case.expect.unplaced)))
    }
}

/// Runs every case in `path` (a case file or a directory of them) and panics with a report
/// of each failing case; for `#[test]` functions. Prints each cluster's reason (shown by
/// `cargo test -- --nocapture`).
pub fn assert_cases<P: PlacementPolicy>(path: impl AsRef<Path>) {
    let path = path.as_ref();
    let cases = load_cases(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    assert!(!cases.is_empty(), "{}: no cases", path.display());
    let mut failures = Vec::new();
    for (name, case) in &cases {
        match run_case::<P>(case) {
            Ok(Ok(d)) => {
                println!("ok    {name}");
                for (cluster, n, reason) in &d.placements {
                    println!("        {cluster:<12} {n:>4}  {reason}");
                }
            }
            Ok(Err(diff)) => failures.push(format!("{name}: {diff}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// What the host refuses (unknown or not-ready clusters, a cluster twice, replicas that do
/// not add up to `total`) plus the property checks' slot rule: a fog cluster never gets more
/// replicas than it has slots for (clouds scale out; what fits nowhere is `unplaced`).
fn check(snapshot: &FleetSnapshot, w: &wit::Workload, p: &Placement) -> Result<(), String> {
    let d = wit::Decision {
        choices: p.choices.iter().map(|c| wit::Choice { cluster: c.cluster, replicas: c.replicas, reason: c.reason.clone() }).collect(),
        unplaced: p.unplaced,
        summary: p.summary.clone(),
    };
    mck8s_policy::validate::placement(snapshot, w, &d)?;
    for c in &p.choices {
        let i = c.cluster as usize;
        if snapshot.clusters()[i].role == wit::Role::Fog && c.replicas > w.slots[i] {
            return Err(format!("{} replicas on fog cluster {:?}, which has {} slots", c.replicas, snapshot.name_of(c.cluster), w.slots[i]));
        }
    }
    Ok(())
}

/// The fleet exactly as [`crate::placement`] builds it from `set-fleet` in a component.
fn native_fleet(snapshot: &FleetSnapshot) -> Fleet {
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
