//! The native test harness: the Rust example passes the shared example cases natively, and
//! the harness catches each kind of wrong policy the host or `policy test --properties`
//! would catch.

#[path = "../../../policies/examples/rust/src/lib.rs"]
mod example;

use mck8s_policy_sdk::testing::{HarnessError, assert_cases, load_cases, run_case};
use mck8s_policy_sdk::{Fleet, Info, Placement, PlacementPolicy, Request};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

fn cases() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies/examples/cases")
}

fn info() -> Info {
    Info { name: "wrong", description: "", parameters: &[] }
}

fn place_all_on(cluster: u32, n: u32, total: u32) -> Placement {
    let mut p = Placement { unplaced: total - n, ..Placement::default() };
    p.choices.push(mck8s_policy_sdk::Choice { cluster, replicas: n, reason: "test".into() });
    p
}

/// Everything on the first fog cluster by name, whatever its slots or health.
struct Greedy;
impl PlacementPolicy for Greedy {
    fn info() -> Info {
        info()
    }
    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String> {
        let fog = (0..fleet.len() as u32).find(|&c| !fleet.is_cloud(c)).ok_or("no fog cluster")?;
        Ok(place_all_on(fog, req.total, req.total))
    }
}

/// Loses a replica.
struct Leaky;
impl PlacementPolicy for Leaky {
    fn info() -> Info {
        info()
    }
    fn place(_: &Fleet, req: &Request) -> Result<Placement, String> {
        Ok(place_all_on(0, 1, req.total - 1))
    }
}

/// One replica fewer on every call.
struct Drifting;
static CALLS: AtomicU32 = AtomicU32::new(0);
impl PlacementPolicy for Drifting {
    fn info() -> Info {
        info()
    }
    fn place(_: &Fleet, req: &Request) -> Result<Placement, String> {
        let n = CALLS.fetch_add(1, Ordering::Relaxed) % 2 + 1;
        Ok(place_all_on(0, n, req.total))
    }
}

fn case(name: &str) -> mck8s_policy_sdk::testing::Case {
    load_cases(&cases().join(format!("{name}.yaml"))).unwrap().remove(0).1
}

#[test]
fn rust_example_passes_the_shared_cases_natively() {
    assert_cases::<example::EvenSpread>(cases());
}

#[test]
fn a_wrong_expectation_is_reported_with_what_differs() {
    let mut c = case("spread-round-robin");
    c.expect.unplaced += 1;
    let diff = run_case::<example::EvenSpread>(&c).unwrap().unwrap_err();
    assert!(diff.contains("expected"), "{diff}");
}

#[test]
fn more_than_the_slots_on_a_fog_cluster_is_refused() {
    // cluster1 (first by name) has 1 slot in this case and the workload asks for 10.
    let err = run_case::<Greedy>(&case("spread-overflow-cheapest-cloud")).unwrap_err();
    assert!(matches!(&err, HarnessError::Refused(m) if m.contains("slots")), "{err}");
}

#[test]
fn a_not_ready_cluster_is_refused() {
    let mut c = case("spread-round-robin");
    c.input.fleet.clusters[0].health = serde_yaml_ng::from_str("not-ready").unwrap();
    let err = run_case::<Greedy>(&c).unwrap_err();
    assert!(matches!(&err, HarnessError::Refused(m) if m.contains("not ready")), "{err}");
}

#[test]
fn replicas_that_do_not_add_up_are_refused() {
    let err = run_case::<Leaky>(&case("spread-round-robin")).unwrap_err();
    assert!(matches!(&err, HarnessError::Refused(m) if m.contains("missing")), "{err}");
}

#[test]
fn a_different_answer_to_the_same_input_is_caught() {
    let err = run_case::<Drifting>(&case("spread-round-robin")).unwrap_err();
    assert!(matches!(err, HarnessError::Nondeterministic(_)), "{err}");
}
