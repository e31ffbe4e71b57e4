//! What one evaluation of an MCHPA decides, without I/O. The shell (`mod.rs`) reads the
//! target and measures it; [`when_due`] says whether to evaluate at all, [`request`] builds
//! the scaling policy's question, [`measured`] records what was measured, [`settle`] turns the
//! policy's answer into the total to write, and [`scaled`] / [`held`] / [`inactive`] finish
//! the status. Each returns the Event to publish, if any.

use super::spec::{Autoscaling, elapsed_seconds};
use crate::cpu_load::Measured;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mck8s_api::conditions::{self, ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED};
use mck8s_api::{ClusterLoad, MultiClusterHorizontalPodAutoscalerStatus as Status};
use mck8s_policy::ScalingOutcome;
use mck8s_policy::bindings::wit_scaling::{ClusterSample, ScalingRequest};
use std::collections::HashMap;
use std::time::Duration;

/// The sample that stands for replicas no cluster took: never measured, so policies hold it.
pub const UNPLACED_SAMPLE: &str = "(unplaced)";
/// A reconcile this close to the period counts as due (timers fire a little early).
const EARLY: Duration = Duration::from_millis(200);

/// An Event to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub text: String,
}

impl Note {
    fn warning(reason: &'static str, text: impl Into<String>) -> Note {
        Note { warning: true, reason, text: text.into() }
    }
}

/// `None` when an evaluation is due; else how long until it is. Our own status writes wake
/// the reconcile too, so it evaluates once per period, unless the spec changed or another
/// version of the policy serves now than the one asked last (`swapped`).
pub fn when_due(status: &Status, generation: Option<i64>, swapped: bool, now: &Time, period: Duration) -> Option<Duration> {
    if swapped || status.observed_generation != generation {
        return None;
    }
    let last = status.last_evaluation_time.as_ref()?;
    let since = Duration::from_millis(now.0.duration_since(last.0).as_millis().max(0) as u64);
    (since + EARLY < period).then(|| period - since)
}

/// The target as measured: its replicas per cluster, what each measured, and its traffic.
pub struct Observed<'a> {
    pub placed: &'a [(String, u32)],
    /// One per entry of `placed`, in its order.
    pub measured: &'a [Measured],
    pub traffic: &'a HashMap<String, f64>,
    /// Replicas no cluster took.
    pub unplaced: u32,
}

impl Observed<'_> {
    /// Every replica the MCD asks for, placed or not.
    pub fn current_total(&self) -> u32 {
        self.placed.iter().map(|p| p.1).sum::<u32>() + self.unplaced
    }

    fn all_missing(&self) -> bool {
        self.measured.iter().all(|m| m.utilization.is_none())
    }
}

/// The scaling policy's question. Unplaced replicas are one more sample, never measured.
pub fn request(a: &Autoscaling, namespace: &str, o: &Observed<'_>, old: &Status, state: Vec<u8>, now: &Time) -> ScalingRequest {
    let mut samples: Vec<ClusterSample> = o
        .placed
        .iter()
        .zip(o.measured)
        .map(|((c, n), m)| ClusterSample { cluster: c.clone(), replicas: *n, utilization: m.utilization, traffic: o.traffic.get(c).copied() })
        .collect();
    if o.unplaced > 0 {
        samples.push(ClusterSample { cluster: UNPLACED_SAMPLE.into(), replicas: o.unplaced, utilization: None, traffic: None });
    }
    ScalingRequest {
        name: a.target.clone(),
        namespace: namespace.into(),
        samples,
        target_utilization: a.target_utilization,
        min_replicas: a.min,
        max_replicas: a.max,
        elapsed_seconds: elapsed_seconds(old.last_evaluation_time.as_ref(), now, a.period),
        params: a.params.clone(),
        state,
    }
}

/// Records the measurement in `new`; a MissingMetrics warning when metrics just went missing.
pub fn measured(new: &mut Status, old: &Status, o: &Observed<'_>, generation: Option<i64>, now: &Time) -> Option<Note> {
    new.current_replicas = Some(o.current_total() as i32);
    new.last_evaluation_time = Some(now.clone());
    new.clusters = o
        .placed
        .iter()
        .zip(o.measured)
        .map(|((c, n), m)| ClusterLoad { cluster: c.clone(), replicas: *n as i32, utilization: m.utilization.map(|u| u.round() as i32), source: m.source.clone() })
        .collect();
    let missing: Vec<String> = o.measured.iter().filter(|m| m.utilization.is_none()).map(|m| format!("{}: {}", m.cluster, m.source)).collect();
    if missing.is_empty() {
        conditions::set(&mut new.conditions, SCALING_ACTIVE, true, "ValidMetricFound", format!("CPU utilisation measured in {} clusters", o.measured.len()), generation, now);
        return None;
    }
    let msg = format!("no CPU metric for {} (holding their replicas; never scaling down on a missing metric)", missing.join("; "));
    let news = conditions::get(&old.conditions, SCALING_ACTIVE).is_none_or(|c| c.reason != "MissingMetrics");
    conditions::set(&mut new.conditions, SCALING_ACTIVE, false, "MissingMetrics", &msg, generation, now);
    news.then(|| Note::warning("MissingMetrics", msg))
}

/// The total to write, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Settled {
    pub total: u32,
    pub reason: String,
}

/// The policy's answer, recorded in `new` with the limits it met. Whatever the policy says,
/// no metric at all is no reason to scale down.
pub fn settle(new: &mut Status, a: &Autoscaling, o: &Observed<'_>, outcome: &ScalingOutcome, generation: Option<i64>, now: &Time) -> Settled {
    let current = o.current_total();
    let (total, reason) = if o.all_missing() && outcome.total < current {
        let hold = current.clamp(a.min, a.max);
        (hold, format!("every metric missing: holding {hold} (the policy asked for {})", outcome.total))
    } else {
        (outcome.total, outcome.reason.clone())
    };
    new.policy = Some(outcome.policy.clone());
    new.policy_digest = Some(outcome.digest.clone());
    new.policy_state = Some(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &outcome.state));
    new.desired_replicas = Some(total as i32);
    new.reason = Some(reason.clone());
    match limit(total, a) {
        Some((r, m)) => conditions::set(&mut new.conditions, SCALING_LIMITED, true, r, m, generation, now),
        None => conditions::set(&mut new.conditions, SCALING_LIMITED, false, "DesiredWithinRange", format!("{total} within [{}, {}]", a.min, a.max), generation, now),
    }
    Settled { total, reason }
}

fn limit(total: u32, a: &Autoscaling) -> Option<(&'static str, String)> {
    if total >= a.max && total > 0 {
        Some(("TooManyReplicas", format!("at maxReplicas {}", a.max)))
    } else if total <= a.min {
        Some(("TooFewReplicas", format!("at minReplicas {}", a.min)))
    } else {
        None
    }
}

/// The target was patched to `s.total`: a ScaledOut or ScaledIn Event when the count moved.
pub fn scaled(new: &mut Status, a: &Autoscaling, current: u32, s: &Settled, policy: &str, generation: Option<i64>, now: &Time) -> Option<Note> {
    conditions::set(&mut new.conditions, ABLE_TO_SCALE, true, "SucceededRescale", format!("{} set to {}: {}", a.target, s.total, s.reason), generation, now);
    if s.total == current {
        return None;
    }
    new.last_scale_time = Some(now.clone());
    let (reason, verb) = if s.total > current { ("ScaledOut", "scaled out") } else { ("ScaledIn", "scaled in") };
    Some(Note { warning: false, reason, text: format!("{} {verb} {current} → {} by {policy}: {}", a.target, s.total, s.reason) })
}

/// Nothing to write to the target: the policy's count is what it has.
pub fn held(new: &mut Status, s: &Settled, generation: Option<i64>, now: &Time) {
    conditions::set(&mut new.conditions, ABLE_TO_SCALE, true, "ReadyForNewScale", &s.reason, generation, now);
}

/// Scaling failed (`reason` PolicyFailed or FailedUpdateScale): replicas stay as they are.
pub fn unable(new: &mut Status, reason: &'static str, msg: &str, generation: Option<i64>, now: &Time) -> Note {
    let text = if reason == "PolicyFailed" { format!("{msg}; replicas left as they are") } else { msg.to_string() };
    conditions::set(&mut new.conditions, ABLE_TO_SCALE, false, reason, text, generation, now);
    Note::warning(if reason == "PolicyFailed" { "PolicyFailed" } else { "FailedRescale" }, msg)
}

/// The target cannot be measured now (`reason` as the HPA says it): say why once, change
/// nothing. A target still placing its last change is no news.
pub fn inactive(new: &mut Status, old: &Status, reason: &'static str, msg: &str, generation: Option<i64>, now: &Time) -> Option<Note> {
    let news = conditions::get(&old.conditions, SCALING_ACTIVE).is_none_or(|c| c.reason != reason) && reason != "TargetUpdating";
    conditions::set(&mut new.conditions, SCALING_ACTIVE, false, reason, msg, generation, now);
    news.then(|| Note::warning(reason, msg))
}

/// The `scaling` metric's result label.
pub fn result(o: &Observed<'_>, s: &Settled, patched: bool) -> &'static str {
    let current = o.current_total();
    if !patched || s.total == current {
        if o.all_missing() { "held" } else { "steady" }
    } else if s.total > current {
        "scaled_out"
    } else {
        "scaled_in"
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
