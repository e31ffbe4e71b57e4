//! The MultiClusterDeployment plan, case by case, without an API server: the four kinds of
//! spec update the original handled (replicas, locations, policy, numberOfLocations: each is
//! a new decision, so what differs is the decision the plan receives), failover and failback,
//! the burst retry, and draining.

use super::plan::*;
use crate::context::Timing;
use crate::failover::{Assessment, KEEP_BURSTING, KEEP_NOT_READY, KEEP_UNREACHABLE};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mck8s_api::conditions;
use mck8s_api::{ClusterPlacement, DrainingChild, MultiClusterDeploymentStatus};
use mck8s_fleet::Health;
use mck8s_policy::Decision;
use mck8s_policy::session::ClusterReplicas;
use mck8s_scheduler::{PassedOver, Placed, ShadowOutcome, ShadowRun, Why};
use std::collections::BTreeMap;
use std::time::Duration;

const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

fn at(secs: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap())
}

/// A settled object: placed as `placement` for generation 1 by worst-fit.
fn settled(placement: &[(&str, u32)]) -> MultiClusterDeploymentStatus {
    MultiClusterDeploymentStatus {
        observed_generation: Some(1),
        policy: Some("worst-fit".into()),
        replicas: placement.iter().map(|(_, r)| *r as i32).sum(),
        placement: placement.iter().map(|(c, r)| ClusterPlacement { cluster: c.to_string(), replicas: *r as i32, ready_replicas: *r as i32, reason: "roomiest".into() }).collect(),
        ..Default::default()
    }
}

fn decision(placement: &[(&str, u32)], unplaced: u32) -> Decision {
    Decision {
        policy: "worst-fit".into(),
        digest: "sha256:1".into(),
        placements: placement.iter().map(|(c, r)| ClusterReplicas { cluster: c.to_string(), replicas: *r, reason: format!("{c} had room") }).collect(),
        unplaced,
        summary: String::new(),
    }
}

/// A registered cluster: name, health, and its children's (replicas, ready) if any.
type Member<'a> = (&'a str, Health, Option<(u32, u32)>);

fn members(m: &[Member<'_>]) -> BTreeMap<String, MemberView> {
    m.iter().map(|(c, h, child)| (c.to_string(), MemberView { health: *h, child: child.map(|(replicas, ready)| ChildCounts { replicas, ready }) })).collect()
}

fn run(status: &MultiClusterDeploymentStatus, generation: i64, outcome: Outcome, moves: &Assessment, members: &BTreeMap<String, MemberView>, now: &Time) -> Plan {
    let mut p = plan(Input { generation: Some(generation), status, policy: "worst-fit", outcome, moves, members, now, drain_timeout: DRAIN_TIMEOUT });
    let decided = p.event.is_some();
    finish(&mut p, &[], moves, decided, Some(generation), now);
    p
}

fn decided(decision: Decision) -> Outcome {
    Outcome::Decided(Placed { decision, passed_over: PassedOver::default(), shadow: None })
}

fn apply_of(p: &Plan) -> Vec<(&str, u32)> {
    p.apply.iter().map(|(c, r)| (c.as_str(), *r)).collect()
}

fn condition<'a>(p: &'a Plan, type_: &str) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    conditions::get(&p.status.conditions, type_).unwrap_or_else(|| panic!("no {type_} in {:?}", p.status.conditions))
}

use Health::{NotReady, Ready, Unreachable};

#[test]
fn a_new_spec_is_decided_again_and_a_settled_one_is_not() {
    let s = settled(&[("c1", 2)]);
    assert!(!must_decide(&s, Some(1), false));
    assert!(must_decide(&s, Some(2), false), "spec changed");
    assert!(must_decide(&s, Some(1), true), "a cluster left the registry");
    assert!(must_decide(&MultiClusterDeploymentStatus::default(), None, false), "never placed");
    assert!(must_decide(&MultiClusterDeploymentStatus { unplaced: 1, ..s }, Some(1), false), "the burst retry");
}

#[test]
fn the_placed_event_says_which_clusters_were_passed_over_and_why() {
    let m = members(&[("c1", Ready, None), ("c2", NotReady, None), ("c3", Ready, None)]);
    let passed_over = PassedOver { groups: vec![(Why::NotReady, 1, vec!["c2".into()]), (Why::PassedOver, 1, vec!["c3".into()])] };
    let outcome = Outcome::Decided(Placed { decision: decision(&[("c1", 2)], 0), passed_over, shadow: None });
    let p = run(&MultiClusterDeploymentStatus::default(), 1, outcome, &Assessment::default(), &m, &at(0));
    let e = p.event.expect("placed");
    assert_eq!(e.reason, "Placed");
    assert!(e.note.ends_with("; passed over: c2 not ready; c3 passed over by the policy"), "{}", e.note);
    // Nothing passed over: nothing said.
    let p = run(&MultiClusterDeploymentStatus::default(), 1, decided(decision(&[("c1", 2)], 0)), &Assessment::default(), &m, &at(0));
    assert!(!p.event.expect("placed").note.contains("passed over"));
}

#[test]
fn the_shadow_s_view_is_a_condition_while_there_is_a_shadow() {
    let m = members(&[("c1", Ready, None), ("c2", Ready, None)]);
    let diverged = ShadowOutcome::Diverged { clusters: vec![("c1".into(), 2, 0), ("c2".into(), 0, 2)], unplaced: (0, 0) };
    let shadow = Some(ShadowRun { policy: "next".into(), digest: "abc".into(), outcome: diverged });
    let outcome = Outcome::Decided(Placed { decision: decision(&[("c1", 2)], 0), passed_over: PassedOver::default(), shadow });
    let p = run(&MultiClusterDeploymentStatus::default(), 1, outcome, &Assessment::default(), &m, &at(0));
    let c = condition(&p, conditions::SHADOW_AGREES);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Diverges"));
    assert_eq!(c.message, "shadow next (sha256 abc) would place c1=0,c2=2 where the active policy places c1=2,c2=0");
    assert_eq!(apply_of(&p), [("c1", 2)], "the shadow's placement is never applied");
    // The shadow is gone: so is the condition, at the next decision.
    let p = run(&p.status, 2, decided(decision(&[("c1", 3)], 0)), &Assessment::default(), &m, &at(1));
    assert!(conditions::get(&p.status.conditions, conditions::SHADOW_AGREES).is_none());
}

#[test]
fn update_replicas_scale_up_in_place() {
    // replicas 2 → 3 in the same two clusters: applied at once, nothing drains.
    let s = settled(&[("c1", 2), ("c2", 2)]);
    let m = members(&[("c1", Ready, Some((2, 2))), ("c2", Ready, Some((2, 2))), ("c3", Ready, None)]);
    let p = run(&s, 2, decided(decision(&[("c1", 3), ("c2", 3)], 0)), &Assessment::default(), &m, &at(0));
    assert_eq!(apply_of(&p), [("c1", 3), ("c2", 3)]);
    assert!(p.delete.is_empty() && p.status.draining.is_empty());
    assert_eq!((p.status.replicas, p.status.observed_generation, p.status.summary.as_deref()), (6, Some(2), Some("c1=3,c2=3")));
    assert_eq!(condition(&p, "Ready").status, "False", "4/6 ready until the new pods are");
    let e = p.event.expect("the placement changed");
    assert_eq!((e.reason, e.warning, e.moves), ("Placed", false, None));
}

#[test]
fn update_replicas_scale_down_keeps_the_surplus_until_the_placement_is_ready() {
    // replicas 3 → 1 while c2's pods are not ready: both keep running 3 (draining 2 each).
    let s = settled(&[("c1", 3), ("c2", 3)]);
    let m = members(&[("c1", Ready, Some((3, 3))), ("c2", Ready, Some((3, 0)))]);
    let p = run(&s, 2, decided(decision(&[("c1", 1), ("c2", 1)], 0)), &Assessment::default(), &m, &at(0));
    assert_eq!(apply_of(&p), [("c1", 3), ("c2", 3)]);
    assert_eq!(p.status.draining.iter().map(|d| (d.cluster.as_str(), d.replicas, d.reason.as_str())).collect::<Vec<_>>(), [("c1", 2, KEEP_NOT_READY), ("c2", 2, KEEP_NOT_READY)]);
    // Once ready: no surplus kept anywhere.
    let m = members(&[("c1", Ready, Some((3, 3))), ("c2", Ready, Some((3, 3)))]);
    let p = run(&s, 2, decided(decision(&[("c1", 1), ("c2", 1)], 0)), &Assessment::default(), &m, &at(0));
    assert_eq!(apply_of(&p), [("c1", 1), ("c2", 1)]);
    assert!(p.status.draining.is_empty());
    // A move, not a scale-in: c1 shrinks from 3 to 1 while c3's 2 new replicas start.
    let m = members(&[("c1", Ready, Some((3, 3))), ("c3", Ready, None)]);
    let p = run(&settled(&[("c1", 3)]), 2, decided(decision(&[("c1", 1), ("c3", 2)], 0)), &Assessment::default(), &m, &at(0));
    assert_eq!(apply_of(&p), [("c1", 3), ("c3", 2)], "c1 keeps its 3 until c3's are ready");
    assert_eq!(p.status.draining, [DrainingChild { cluster: "c1".into(), replicas: 2, ready_replicas: 2, since: at(0), reason: KEEP_NOT_READY.into() }]);
}

#[test]
fn update_locations_moves_and_the_old_cluster_drains_then_goes() {
    // locations c1 → c2: c1's child stays until c2's replicas are ready, then it goes.
    let s = settled(&[("c1", 2)]);
    let d = || decided(decision(&[("c2", 2)], 0));
    let m = members(&[("c1", Ready, Some((2, 2))), ("c2", Ready, None)]);
    let p = run(&s, 2, d(), &Assessment::default(), &m, &at(0));
    assert_eq!(apply_of(&p), [("c2", 2)]);
    assert!(p.delete.is_empty());
    assert_eq!(p.status.draining, [DrainingChild { cluster: "c1".into(), replicas: 2, ready_replicas: 2, since: at(0), reason: KEEP_NOT_READY.into() }]);
    // The next reconcile: recorded c2=2, both of its replicas ready. The drain started at 0
    // is remembered (since), and c1's child goes.
    let mut s2 = p.status.clone();
    s2.observed_generation = Some(2);
    let m = members(&[("c1", Ready, Some((2, 2))), ("c2", Ready, Some((2, 2)))]);
    let p2 = run(&s2, 2, Outcome::Kept, &Assessment::default(), &m, &at(30));
    assert_eq!(p2.delete, ["c1"]);
    assert!(p2.status.draining.is_empty() && p2.event.is_none(), "no new decision, no placement event");
    assert_eq!(condition(&p2, "Ready").status, "True");
}

#[test]
fn update_policy_or_number_of_locations_records_the_new_policy_and_its_digest() {
    let s = settled(&[("c1", 1), ("c2", 1), ("c3", 1)]);
    let m = members(&[("c1", Ready, Some((1, 1))), ("c2", Ready, Some((1, 1))), ("c3", Ready, Some((1, 1)))]);
    let mut d = decision(&[("c1", 1), ("c2", 1)], 0);
    d.digest = "sha256:best".into();
    let mut p = plan(Input {
        generation: Some(2),
        status: &s,
        policy: "best-fit",
        outcome: decided(d),
        moves: &Assessment::default(),
        members: &m,
        now: &at(0),
        drain_timeout: DRAIN_TIMEOUT,
    });
    finish(&mut p, &[], &Assessment::default(), true, Some(2), &at(0));
    assert_eq!((p.status.policy.as_deref(), p.status.policy_digest.as_deref()), (Some("best-fit"), Some("sha256:best")));
    assert_eq!(p.delete, ["c3"], "two locations now, and the new placement is ready");
    assert_eq!(p.status.placement.iter().map(|c| c.reason.as_str()).collect::<Vec<_>>(), ["c1 had room", "c2 had room"]);
}

#[test]
fn failover_places_again_and_keeps_the_unreachable_child_until_its_cluster_answers() {
    let s = settled(&[("c1", 2), ("c2", 2)]);
    let moves = Assessment { failed: vec![("c1".into(), Unreachable, Duration::from_secs(90))], ..Default::default() };
    let m = members(&[("c1", Unreachable, Some((2, 2))), ("c2", Ready, Some((2, 2))), ("c3", Ready, None)]);
    let p = run(&s, 1, decided(decision(&[("c2", 2), ("c3", 2)], 0)), &moves, &m, &at(0));
    assert_eq!(apply_of(&p), [("c2", 2), ("c3", 2)]);
    assert!(p.delete.is_empty(), "never delete in a cluster that cannot be reached");
    assert_eq!(p.status.draining[0].reason, KEEP_UNREACHABLE);
    assert_eq!(p.status.failed_over, ["c1"]);
    assert_eq!(p.status.ready_replicas, 2, "c1's cached ready replicas are stale and not counted");
    let e = p.event.expect("moved");
    assert_eq!((e.reason, e.warning, e.moves), ("FailedOver", true, Some(("failover", 1))));
    assert!(e.note.starts_with("c1 Unreachable for 90s: placed again by worst-fit: c2=2,c3=2"), "{}", e.note);
    // Without a new decision (the move rate limit said wait), Degraded says so.
    let mut waiting =
        plan(Input { generation: Some(1), status: &s, policy: "worst-fit", outcome: Outcome::Kept, moves: &moves, members: &m, now: &at(0), drain_timeout: DRAIN_TIMEOUT });
    finish(&mut waiting, &[], &moves, false, Some(1), &at(0));
    let degraded = condition(&waiting, "Degraded");
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "ClusterFailed"));
    assert_eq!(apply_of(&waiting), [("c1", 2), ("c2", 2)], "the recorded placement stands");
}

#[test]
fn failback_returns_to_a_recovered_cluster_and_forgets_it() {
    let mut s = settled(&[("c2", 2), ("c3", 2)]);
    s.failed_over = vec!["c1".into()];
    let moves = Assessment { recovered: vec!["c1".into()], ..Default::default() };
    let m = members(&[("c1", Ready, None), ("c2", Ready, Some((2, 2))), ("c3", Ready, Some((2, 2)))]);
    let p = run(&s, 1, decided(decision(&[("c1", 2), ("c2", 2)], 0)), &moves, &m, &at(0));
    assert!(p.status.failed_over.is_empty());
    let e = p.event.expect("moved");
    assert_eq!((e.reason, e.moves), ("FailedBack", Some(("failback", 1))));
    assert_eq!(p.status.draining[0].cluster, "c3", "c3 drains until c1's replicas are ready");
    // A cluster still NotReady and not chosen stays remembered.
    let mut s = settled(&[("c1", 2)]);
    s.failed_over = vec!["c9".into()];
    let m = members(&[("c1", Ready, Some((2, 2))), ("c9", NotReady, None)]);
    let p = run(&s, 2, decided(decision(&[("c1", 2)], 0)), &Assessment::default(), &m, &at(0));
    assert_eq!(p.status.failed_over, ["c9"]);
}

#[test]
fn unplaced_replicas_burst_and_are_retried_at_the_burst_interval() {
    // replicas 3 → 6, and only one more fits.
    let s = settled(&[("c1", 3)]);
    let m = members(&[("c1", Ready, Some((3, 3))), ("c2", Ready, Some((1, 1)))]);
    let p = run(&s, 2, decided(decision(&[("c1", 4)], 2)), &Assessment::default(), &m, &at(0));
    assert_eq!((p.status.unplaced, p.status.replicas), (2, 6));
    let bursting = condition(&p, "Bursting");
    assert_eq!((bursting.status.as_str(), bursting.reason.as_str()), ("True", "NoCapacity"));
    let legacy = p.status.message.clone().unwrap();
    assert_eq!((legacy.message.as_str(), legacy.replicas.clone()), ("to_cloud", serde_json::json!(2)));
    assert_eq!(p.status.draining[0].reason, KEEP_BURSTING, "an old child is the best there is for unplaced replicas");
    let timing = Timing::default();
    assert_eq!(requeue(&p, false, &Assessment::default(), None, &timing), timing.burst_retry.min(timing.drain_timeout).min(timing.resync));
    assert_eq!(p.event.map(|e| (e.reason, e.warning)), Some(("Bursting", true)));
    // Placed in full: provisioned, the resync.
    let m = members(&[("c1", Ready, Some((4, 4)))]);
    let p = run(&s, 2, decided(decision(&[("c1", 4)], 0)), &Assessment::default(), &m, &at(0));
    assert_eq!(p.status.message.clone().unwrap().message, "provisioned");
    assert_eq!(requeue(&p, false, &Assessment::default(), None, &timing), timing.resync);
    assert_eq!(requeue(&p, true, &Assessment::default(), None, &timing), timing.error_retry);
    // A failing cluster's grace ending, or the rate limit, wake it earlier.
    let grace = Assessment { grace_left: Some(Duration::from_secs(5)), ..Default::default() };
    assert_eq!(requeue(&p, false, &grace, Some(Duration::from_secs(7)), &timing), Duration::from_millis(5100));
}

#[test]
fn a_drain_that_cannot_finish_ends_at_its_timeout() {
    let mut s = settled(&[("c2", 2)]);
    s.draining = vec![DrainingChild { cluster: "c1".into(), replicas: 2, ready_replicas: 2, since: at(0), reason: KEEP_NOT_READY.into() }];
    let m = members(&[("c1", Ready, Some((2, 2))), ("c2", Ready, Some((2, 0)))]);
    let p = run(&s, 1, Outcome::Kept, &Assessment::default(), &m, &at(60));
    assert!(p.delete.is_empty());
    assert_eq!(p.status.draining[0].since, at(0), "the drain's start is kept");
    let p = run(&s, 1, Outcome::Kept, &Assessment::default(), &m, &at(DRAIN_TIMEOUT.as_secs() as i64));
    assert_eq!(p.delete, ["c1"]);
}

#[test]
fn a_failed_policy_keeps_the_last_placement_and_leaves_the_spec_unobserved() {
    let s = settled(&[("c1", 2)]);
    let m = members(&[("c1", Ready, Some((2, 2)))]);
    let p = run(&s, 2, Outcome::Failed("trap: unreachable".into()), &Assessment::default(), &m, &at(0));
    assert_eq!(apply_of(&p), [("c1", 2)]);
    assert_eq!(p.status.observed_generation, Some(1), "decided again at the next reconcile");
    let placed = condition(&p, "Placed");
    assert_eq!((placed.reason.as_str(), placed.message.as_str()), ("PolicyFailed", "trap: unreachable; the last placement stands"));
    assert!(p.event.is_none());
}

#[test]
fn a_rescheduler_step_is_its_own_event_and_counts_its_moves() {
    let s = settled(&[("cloud1", 2)]);
    let m = members(&[("cloud1", Ready, Some((2, 2))), ("c1", Ready, None)]);
    let outcome = Outcome::Rescheduled { decision: decision(&[("c1", 2)], 0), note: "cloud1=2 → c1=+2".into(), moved: 2 };
    let p = run(&s, 1, outcome, &Assessment::default(), &m, &at(0));
    let e = p.event.expect("moved");
    assert_eq!((e.reason, e.moves), ("Rescheduled", Some(("rescheduled", 2))));
    assert_eq!(p.status.draining[0].cluster, "cloud1", "cloud replicas go once the fog's are ready");
}

#[test]
fn cluster_errors_make_it_degraded_with_their_message() {
    let s = settled(&[("c1", 2)]);
    let m = members(&[("c1", Ready, Some((2, 2)))]);
    let mut p = plan(Input {
        generation: Some(1),
        status: &s,
        policy: "worst-fit",
        outcome: Outcome::Kept,
        moves: &Assessment::default(),
        members: &m,
        now: &at(0),
        drain_timeout: DRAIN_TIMEOUT,
    });
    finish(&mut p, &["cluster c1: unreachable".to_string()], &Assessment::default(), false, Some(1), &at(0));
    let degraded = condition(&p, "Degraded");
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str(), degraded.message.as_str()), ("True", "ClusterError", "cluster c1: unreachable"));
}
