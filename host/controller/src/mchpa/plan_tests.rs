//! The MCHPA's decisions, without an API server: due or not, the policy's question, missing
//! metrics, the hold rule, limits, and what is announced.

use super::*;
use crate::mchpa::spec::parse;

fn t(s: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
}

fn autoscaling(min: u32, max: u32) -> Autoscaling {
    let spec = serde_yaml_ng::from_str(&format!("scaleTargetRef: {{name: web}}\nminReplicas: {min}\nmaxReplicas: {max}\nperiodSeconds: 30")).unwrap();
    parse(&spec).unwrap()
}

fn m(cluster: &str, utilization: Option<f64>) -> Measured {
    Measured { cluster: cluster.into(), utilization, source: if utilization.is_some() { "metrics.k8s.io".into() } else { "no pods reported".into() } }
}

fn outcome(total: u32) -> ScalingOutcome {
    ScalingOutcome { policy: "mchpa".into(), digest: "d1".into(), desired: Vec::new(), total, reason: format!("policy says {total}"), state: b"window".to_vec() }
}

#[test]
fn due_once_per_period_unless_the_spec_or_the_policy_changed() {
    let p = Duration::from_secs(30);
    let never = Status::default();
    assert_eq!(when_due(&never, Some(1), false, &t(100), p), None, "never evaluated");
    let st = Status { observed_generation: Some(1), last_evaluation_time: Some(t(100)), ..Default::default() };
    assert_eq!(when_due(&st, Some(1), false, &t(110), p), Some(Duration::from_secs(20)));
    assert_eq!(when_due(&st, Some(1), false, &t(130), p), None, "a period later");
    assert_eq!(when_due(&st, Some(2), false, &t(110), p), None, "the spec changed");
    assert_eq!(when_due(&st, Some(1), true, &t(110), p), None, "another version of the policy serves");
}

#[test]
fn the_question_has_one_sample_per_cluster_and_one_for_the_unplaced() {
    let a = autoscaling(1, 10);
    let placed = [("c1".to_string(), 2), ("c2".to_string(), 1)];
    let samples = [m("c1", Some(90.0)), m("c2", None)];
    let traffic: HashMap<String, f64> = [("c1".to_string(), 5.0)].into();
    let o = Observed { placed: &placed, measured: &samples, traffic: &traffic, unplaced: 3 };
    let old = Status { last_evaluation_time: Some(t(70)), ..Default::default() };
    let r = request(&a, "ns", &o, &old, b"s".to_vec(), &t(100));
    let rows: Vec<_> = r.samples.iter().map(|s| (s.cluster.as_str(), s.replicas, s.utilization, s.traffic)).collect();
    assert_eq!(rows, [("c1", 2, Some(90.0), Some(5.0)), ("c2", 1, None, None), (UNPLACED_SAMPLE, 3, None, None)]);
    assert_eq!((r.elapsed_seconds, r.min_replicas, r.max_replicas, r.state.as_slice()), (30, 1, 10, b"s".as_slice()));
    assert_eq!(o.current_total(), 6);
}

#[test]
fn a_missing_metric_is_announced_once_and_never_scales_down() {
    let a = autoscaling(1, 10);
    let placed = [("c1".to_string(), 4)];
    let samples = [m("c1", None)];
    let traffic = HashMap::new();
    let o = Observed { placed: &placed, measured: &samples, traffic: &traffic, unplaced: 0 };
    let old = Status::default();
    let mut new = old.clone();
    let note = measured(&mut new, &old, &o, Some(1), &t(100)).unwrap();
    assert_eq!((note.reason, note.warning), ("MissingMetrics", true));
    assert!(note.text.contains("c1: no pods reported"), "{}", note.text);
    assert_eq!(measured(&mut new.clone(), &new, &o, Some(1), &t(130)), None, "still missing: no news");

    let s = settle(&mut new, &a, &o, &outcome(1), Some(1), &t(100));
    assert_eq!(s.total, 4, "held, not scaled down to 1");
    assert!(s.reason.starts_with("every metric missing: holding 4"), "{}", s.reason);
    assert_eq!(result(&o, &s, false), "held");
    // Scaling up on no metric is the policy's call: it stands.
    assert_eq!(settle(&mut new, &a, &o, &outcome(6), Some(1), &t(100)).total, 6);
}

#[test]
fn the_answer_is_recorded_with_the_limit_it_met() {
    let a = autoscaling(2, 5);
    let placed = [("c1".to_string(), 3)];
    let samples = [m("c1", Some(200.0))];
    let traffic = HashMap::new();
    let o = Observed { placed: &placed, measured: &samples, traffic: &traffic, unplaced: 0 };
    let mut new = Status::default();
    assert_eq!(measured(&mut new, &Status::default(), &o, Some(1), &t(100)), None);
    assert!(conditions::is_true(&new.conditions, SCALING_ACTIVE));
    assert_eq!(new.clusters[0].utilization, Some(200));

    let s = settle(&mut new, &a, &o, &outcome(5), Some(1), &t(100));
    let limited = conditions::get(&new.conditions, SCALING_LIMITED).unwrap();
    assert_eq!((limited.status.as_str(), limited.reason.as_str()), ("True", "TooManyReplicas"));
    assert_eq!((new.desired_replicas, new.policy_digest.as_deref(), new.policy_state.as_deref()), (Some(5), Some("d1"), Some("d2luZG93")));

    let note = scaled(&mut new, &a, 3, &s, "mchpa", Some(1), &t(100)).unwrap();
    assert_eq!((note.reason, note.warning, note.text.as_str()), ("ScaledOut", false, "web scaled out 3 → 5 by mchpa: policy says 5"));
    assert_eq!(new.last_scale_time, Some(t(100)));
    assert_eq!(result(&o, &s, true), "scaled_out");

    let s = settle(&mut new, &a, &o, &outcome(3), Some(1), &t(100));
    assert_eq!(conditions::get(&new.conditions, SCALING_LIMITED).unwrap().reason, "DesiredWithinRange");
    held(&mut new, &s, Some(1), &t(100));
    assert_eq!(conditions::get(&new.conditions, ABLE_TO_SCALE).unwrap().reason, "ReadyForNewScale");
    assert_eq!(result(&o, &s, false), "steady");
    assert_eq!(scaled(&mut new, &a, 3, &s, "mchpa", Some(1), &t(100)), None, "patched to the same count: nothing to announce");
}

#[test]
fn failures_and_an_unmeasurable_target_say_why() {
    let mut new = Status::default();
    let note = unable(&mut new, "PolicyFailed", "trap", Some(1), &t(1));
    assert_eq!((note.reason, note.text.as_str()), ("PolicyFailed", "trap"));
    assert_eq!(conditions::get(&new.conditions, ABLE_TO_SCALE).unwrap().message, "trap; replicas left as they are");
    assert_eq!(unable(&mut new, "FailedUpdateScale", "conflict", Some(1), &t(1)).reason, "FailedRescale");

    let old = Status::default();
    let mut new = old.clone();
    assert_eq!(inactive(&mut new, &old, "FailedGetScale", "not found", Some(1), &t(1)).map(|n| n.reason), Some("FailedGetScale"));
    assert_eq!(inactive(&mut new.clone(), &new, "FailedGetScale", "not found", Some(1), &t(2)), None, "said once");
    assert_eq!(inactive(&mut new.clone(), &old, "TargetUpdating", "placing", Some(1), &t(2)), None, "a target catching up is no news");
    assert!(!conditions::is_true(&new.conditions, SCALING_ACTIVE));
}
