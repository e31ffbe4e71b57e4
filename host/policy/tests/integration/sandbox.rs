//! Hostile guests (built from tests/guests by scripts/build-policies.sh): each misbehaviour
//! becomes a typed error naming the policy and its digest, and afterwards the host is
//! healthy: the same session and a good policy both decide normally.

use crate::common;
use mck8s_policy::input::PlacementInput;
use mck8s_policy::validate;
use mck8s_policy::{FleetSnapshot, Limits, LoadedPolicy, PlacementSession, PolicyErrorKind, PolicyRegistry};
use std::sync::Arc;
use std::time::Duration;

const INPUT: &str = r#"
fleet:
  clusters:
    - {name: cluster1, nodes: [{count: 2, cpu: "4", memory: 8Gi}]}
    - {name: cluster2, health: not-ready, nodes: [{cpu: "2", memory: 4Gi}]}
    - {name: cloud1, nodes: [{cpu: "16", memory: 64Gi}]}
workload: {name: hostile, replicas: 2, requests: {cpu: "1", memory: 1Gi}}
"#;

struct Fixture {
    registry: Arc<PolicyRegistry>,
    fleet: Arc<FleetSnapshot>,
    input: PlacementInput,
}

fn fixture() -> Fixture {
    let registry = Arc::new(PolicyRegistry::new(common::engine()));
    registry.upsert("worst-fit", &common::builtin("worst-fit"), "test").unwrap();
    registry.upsert("hostile", &common::guest("hostile"), "test").unwrap();
    let input: PlacementInput = serde_yaml_ng::from_str(INPUT).unwrap();
    let fleet = Arc::new(FleetSnapshot::from_doc(&input.fleet).unwrap());
    Fixture { registry, fleet, input }
}

impl Fixture {
    fn workload(&self, mode: &str) -> mck8s_policy::bindings::wit::Workload {
        let mut w = self.input.workload.clone();
        w.params.insert("mode".into(), mode.into());
        self.fleet.workload(&w).unwrap()
    }

    /// The host is healthy: a good policy decides, and so does the hostile one when asked nicely.
    fn assert_healthy(&self, session: &mut PlacementSession) {
        let good = self.registry.placement_session("worst-fit", self.fleet.clone()).unwrap().place(&self.workload("ok")).unwrap();
        assert_eq!(good.replicas_on("cluster1"), 2);
        let again = session.place(&self.workload("ok")).unwrap();
        assert_eq!(again.replicas_on("cluster1"), 2, "the session rebuilt its instance");
    }
}

fn run(mode: &str) -> (mck8s_policy::PolicyError, Fixture, PlacementSession) {
    let f = fixture();
    let mut session = f.registry.placement_session("hostile", f.fleet.clone()).unwrap();
    let err = session.place(&f.workload(mode)).expect_err(mode);
    let digest = f.registry.get("hostile").unwrap().digest.clone();
    assert_eq!(err.policy, "hostile");
    assert_eq!(err.digest, digest);
    let text = err.to_string();
    assert!(text.contains("\"hostile\"") && text.contains(&digest[..12]), "error names policy and digest: {text}");
    (err, f, session)
}

#[test]
fn infinite_loop_is_stopped_by_the_deadline() {
    let (err, f, mut session) = run("spin");
    assert!(matches!(err.kind, PolicyErrorKind::Timeout { limit_ms: 100, call: "place" }), "{err}");
    f.assert_healthy(&mut session);
}

#[test]
fn a_1gib_allocation_is_refused_with_a_clear_message() {
    let (err, f, mut session) = run("alloc");
    assert!(matches!(err.kind, PolicyErrorKind::OutOfMemory { limit_mib: 64, .. }), "{err}");
    assert!(err.to_string().contains("64 MiB"), "{err}");
    f.assert_healthy(&mut session);
}

#[test]
fn a_guest_panic_is_a_trap_carrying_the_panic_message() {
    let (err, f, mut session) = run("panic");
    match &err.kind {
        PolicyErrorKind::Trap { stderr, .. } => assert!(stderr.contains("hostile guest panics on purpose"), "{err}"),
        other => panic!("expected a trap, got {other}"),
    }
    f.assert_healthy(&mut session);
}

#[test]
fn malformed_outputs_are_rejected() {
    for (mode, needle) in [("unknown-cluster", "fleet has 3 clusters"), ("surplus", "surplus replicas"), ("not-ready", "not ready")] {
        let (err, f, mut session) = run(mode);
        match &err.kind {
            PolicyErrorKind::InvalidOutput(msg) => assert!(msg.contains(needle), "{mode}: {msg}"),
            other => panic!("{mode}: expected invalid output, got {other}"),
        }
        f.assert_healthy(&mut session);
    }
}

#[test]
fn a_policy_error_is_reported_and_the_instance_kept() {
    let (err, f, mut session) = run("refuse");
    assert!(matches!(&err.kind, PolicyErrorKind::Refused(m) if m == "refusing on purpose"), "{err}");
    f.assert_healthy(&mut session);
}

#[test]
fn wasi_filesystem_import_is_refused_at_load() {
    let engine = common::engine();
    let err = LoadedPolicy::load(&engine, "wasi-fs", &common::guest("wasi-fs"), "test", Limits::default()).unwrap_err();
    match &err.kind {
        PolicyErrorKind::ForbiddenImport { imports } => {
            assert!(imports.iter().any(|i| i.starts_with("wasi:filesystem/")), "{err}")
        }
        other => panic!("expected a forbidden import, got {other}"),
    }
    assert!(err.to_string().contains("no filesystem, network"), "{err}");
}

#[test]
fn incompatible_wit_version_is_refused_with_the_versions() {
    let engine = common::engine();
    let err = LoadedPolicy::load(&engine, "future", &common::guest("future-wit"), "test", Limits::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err.kind, PolicyErrorKind::Incompatible(_)), "{text}");
    assert!(text.contains("mck8s:policy@0.2.0") && text.contains("0.1.*"), "{text}");
}

#[test]
fn bad_versions_are_refused_and_the_previous_keeps_serving() {
    let f = fixture();
    let before = f.registry.get("worst-fit").unwrap().digest.clone();
    for (what, bytes) in [
        ("garbage", b"not a component".to_vec()),
        ("self-check failure", common::guest("broken")),
        ("wrong world", common::builtin("mchpa")),
        ("forbidden import", common::guest("wasi-fs")),
    ] {
        let err = f.registry.upsert("worst-fit", &bytes, "test").expect_err(what);
        assert_eq!(err.digest, mck8s_policy::loaded::sha256_hex(&bytes), "{what}: the refusal names the refused version");
        let serving = f.registry.get("worst-fit").unwrap();
        assert_eq!(serving.digest, before, "{what}: the previous version keeps serving");
        let d = f.registry.placement_session("worst-fit", f.fleet.clone()).unwrap().place(&f.workload("ok")).unwrap();
        assert_eq!(d.replicas_on("cluster1"), 2, "{what}");
    }
    let refusals = f.registry.refusals();
    assert_eq!(refusals.len(), 1, "one refusal recorded per name: {refusals:?}");
    assert!(refusals[0].error.contains("wasi:filesystem"), "latest refusal kept: {:?}", refusals[0]);
}

#[test]
fn a_scaling_policy_cannot_serve_placement() {
    let engine = common::engine();
    let mchpa = Arc::new(LoadedPolicy::load(&engine, "mchpa", &common::builtin("mchpa"), "test", Limits::default()).unwrap());
    let f = fixture();
    let err = PlacementSession::new(mchpa, f.fleet.clone()).err().expect("refused");
    assert!(err.to_string().contains("scaling policy"), "{err}");
}

#[test]
fn per_policy_limits_apply() {
    let f = fixture();
    f.registry.set_limits("strict", Limits { deadline: Duration::from_millis(20), memory_bytes: 16 << 20 });
    f.registry.upsert("strict", &common::guest("hostile"), "test").unwrap();
    let mut s = f.registry.placement_session("strict", f.fleet.clone()).unwrap();
    let err = s.place(&f.workload("spin")).unwrap_err();
    assert!(matches!(err.kind, PolicyErrorKind::Timeout { limit_ms: 20, call: "place" }), "{err}");
    let err = s.place(&f.workload("alloc")).unwrap_err();
    assert!(matches!(err.kind, PolicyErrorKind::OutOfMemory { limit_mib: 16, .. }), "{err}");
}

#[test]
fn megabytes_of_reason_and_summary_are_cut_with_a_marker() {
    let f = fixture();
    let mut session = f.registry.placement_session("hostile", f.fleet.clone()).unwrap();
    let d = session.place(&f.workload("verbose")).expect("a valid placement, however wordy");
    assert_eq!(d.replicas_on("cluster1"), 2);
    assert!(d.summary.len() <= validate::SUMMARY_MAX && d.summary.ends_with("bytes cut]"), "{}", d.summary.len());
    for p in &d.placements {
        assert!(p.reason.len() <= validate::REASON_MAX && p.reason.starts_with("why why") && p.reason.ends_with("bytes cut]"), "{}", p.reason.len());
    }
    f.assert_healthy(&mut session);
}

#[test]
fn a_log_flood_is_cut_to_a_few_lines_per_call_and_counted() {
    let f = fixture();
    let mut session = f.registry.placement_session("hostile", f.fleet.clone()).unwrap();
    let before = mck8s_policy::guest_log_lines_dropped();
    let result = session.place(&f.workload("chatty"));
    let dropped = mck8s_policy::guest_log_lines_dropped() - before;
    match result {
        // 10,000 lines asked for, 32 kept.
        Ok(d) => {
            assert_eq!(d.replicas_on("cluster1"), 2);
            assert_eq!(dropped, 10_000 - 32);
        }
        // A slow machine may spend the budget first; the flood was still cut.
        Err(e) => assert!(matches!(e.kind, PolicyErrorKind::Timeout { .. }) && dropped > 0, "{e}, {dropped} dropped"),
    }
    f.assert_healthy(&mut session);
}

/// `update-fleet` is a call into the guest like any other: a guest that loops, allocates
/// 1 GiB, panics or refuses there costs that update only. Its instance is dropped, the next
/// decision starts a new one with the whole (new) fleet, and decides on it.
#[test]
fn a_hostile_update_fleet_costs_only_the_update() {
    use mck8s_policy::FleetSends;
    // cluster1 fills up in the update: worst-fit then picks cloud1, so a decision on the
    // stale fleet would show.
    let fleet_with = |label: &str, used_cpu: &str| -> mck8s_policy::input::FleetDoc {
        serde_yaml_ng::from_str(&format!(
            r#"
clusters:
  - {{name: cluster1, labels: {{hostile-update: "{label}"}}, nodes: [{{count: 2, cpu: "4", memory: 8Gi, usedCpu: "{used_cpu}"}}]}}
  - {{name: cloud1, labels: {{hostile-update: "{label}"}}, nodes: [{{cpu: "3", memory: 64Gi}}]}}
"#
        ))
        .unwrap()
    };
    let f = fixture();
    for mode in ["", "spin", "alloc", "panic", "refuse"] {
        let before = Arc::new(FleetSnapshot::from_doc(&fleet_with(mode, "0")).unwrap());
        let mut session = f.registry.placement_session("hostile", before.clone()).unwrap();
        let workload = |fleet: &FleetSnapshot| fleet.workload(&f.input.workload).unwrap();
        assert_eq!(session.place(&workload(&before)).unwrap().replicas_on("cluster1"), 2, "{mode:?}");

        let full = fleet_with(mode, "3800m");
        let c1 = before.index_of("cluster1").unwrap();
        let after = Arc::new(before.updated([(c1, &full.clusters[0].to_state().unwrap())], None).expect("an update"));
        session.advance(&after);
        let decided = session.place(&workload(&after)).unwrap();
        assert_eq!((decided.replicas_on("cluster1"), decided.replicas_on("cloud1")), (0, 2), "{mode:?} decided on the new fleet");

        let want = if mode.is_empty() { FleetSends { full: 1, updates: 1, failed_updates: 0 } } else { FleetSends { full: 2, updates: 0, failed_updates: 1 } };
        assert_eq!(session.fleet_sends(), want, "{mode:?}");
    }
}
