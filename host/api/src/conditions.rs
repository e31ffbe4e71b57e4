//! Condition types and helpers. A condition's `lastTransitionTime` only moves when its status
//! changes, as Kubernetes conventions ask.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const PLACED: &str = "Placed";
pub const READY: &str = "Ready";
pub const BURSTING: &str = "Bursting";
pub const DEGRADED: &str = "Degraded";
pub const INVALID_SPEC: &str = "InvalidSpec";
/// The active policy's shadow decided the same for the last decision (False: it diverged or
/// failed). Only while the policy has a shadow.
pub const SHADOW_AGREES: &str = "ShadowAgrees";
/// MultiClusterJob: every cluster's Job completed.
pub const COMPLETE: &str = "Complete";
/// MultiClusterJob: some cluster's Job failed.
pub const FAILED: &str = "Failed";
/// MultiClusterHorizontalPodAutoscaler (the names of the Kubernetes HPA's conditions): the
/// target was read and its metrics are there.
pub const SCALING_ACTIVE: &str = "ScalingActive";
/// MultiClusterHorizontalPodAutoscaler: the last decision could be written to the target.
pub const ABLE_TO_SCALE: &str = "AbleToScale";
/// MultiClusterHorizontalPodAutoscaler: the policy wanted more than maxReplicas or fewer
/// than minReplicas.
pub const SCALING_LIMITED: &str = "ScalingLimited";
/// AppRescheduler: its last pass ran.
pub const ACTIVE: &str = "Active";

/// The longest condition message kept, in bytes (the API allows 32 KiB; a status with a
/// few conditions must stay far below the request size limit).
pub const MESSAGE_MAX: usize = 4096;

/// Sets (or replaces) the condition `type_` in `conditions`: one per type, as the CRDs'
/// list-map schema requires.
pub fn set(conditions: &mut Vec<Condition>, type_: &str, status: bool, reason: &str, message: impl Into<String>, generation: Option<i64>, now: &Time) {
    let status = if status { "True" } else { "False" }.to_string();
    // The API server refuses a condition without a message (k8s-openapi omits an empty one).
    let mut message = Some(message.into()).filter(|m| !m.is_empty()).unwrap_or_else(|| reason.to_string());
    // Messages carry text from policies and API servers: bounded, so a status always fits.
    message.truncate(message.floor_char_boundary(MESSAGE_MAX));
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now.clone();
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message;
            c.observed_generation = generation;
        }
        None => {
            conditions.push(Condition { type_: type_.to_string(), status, reason: reason.to_string(), message, observed_generation: generation, last_transition_time: now.clone() })
        }
    }
}

/// Marks the spec invalid, saying why. True when that is news to announce: the spec changed
/// since it was last looked at (`observed` is the status's observedGeneration), or the
/// message did (compared as stored, so a message longer than [`MESSAGE_MAX`] is news once).
pub fn set_invalid_spec(conditions: &mut Vec<Condition>, observed: Option<i64>, message: &str, generation: Option<i64>, now: &Time) -> bool {
    let before = get(conditions, INVALID_SPEC).map(|c| (c.status.clone(), c.message.clone()));
    set(conditions, INVALID_SPEC, true, "InvalidSpec", message, generation, now);
    let after = get(conditions, INVALID_SPEC).map(|c| (c.status.clone(), c.message.clone()));
    observed != generation || before != after
}

/// A status with conditions and an observedGeneration, as every multi-cluster kind has.
pub trait Observed: Clone {
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    fn observed_generation(&self) -> Option<i64>;
    fn set_observed_generation(&mut self, generation: Option<i64>);
}

macro_rules! observed {
    ($($status:ty),*) => {$(
        impl Observed for $status {
            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.conditions
            }
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
        }
    )*};
}

observed!(
    crate::mcd::MultiClusterDeploymentStatus,
    crate::mcj::MultiClusterJobStatus,
    crate::mcs::MultiClusterServiceStatus,
    crate::mchpa::MultiClusterHorizontalPodAutoscalerStatus
);

/// `status` with the spec marked invalid ([`set_invalid_spec`]) and `generation` observed,
/// and whether that is news to announce.
pub fn invalid_spec<S: Observed>(status: &S, message: &str, generation: Option<i64>, now: &Time) -> (S, bool) {
    let mut new = status.clone();
    let news = set_invalid_spec(new.conditions_mut(), status.observed_generation(), message, generation, now);
    new.set_observed_generation(generation);
    (new, news)
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
}

pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_spec_is_news_once_per_generation_and_message() {
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(0).unwrap());
        let mut c = Vec::new();
        assert!(set_invalid_spec(&mut c, None, "bad", Some(1), &now), "first time");
        assert!(!set_invalid_spec(&mut c, Some(1), "bad", Some(1), &now), "same generation, same message");
        assert!(set_invalid_spec(&mut c, Some(1), "worse", Some(1), &now), "another message");
        assert!(set_invalid_spec(&mut c, Some(1), "worse", Some(2), &now), "another generation");
        let long = "x".repeat(MESSAGE_MAX + 10);
        assert!(set_invalid_spec(&mut c, Some(2), &long, Some(2), &now));
        assert!(!set_invalid_spec(&mut c, Some(2), &long, Some(2), &now), "a truncated message is the same message next time");
        assert!(is_true(&c, INVALID_SPEC));
    }

    #[test]
    fn a_refused_status_observes_the_generation_and_keeps_the_rest() {
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(0).unwrap());
        let status = crate::mcj::MultiClusterJobStatus { observed_generation: Some(1), ..Default::default() };
        let (refused, news) = invalid_spec(&status, "bad", Some(2), &now);
        assert!(news);
        assert_eq!(refused.observed_generation, Some(2));
        assert!(is_true(&refused.conditions, INVALID_SPEC));
        let (again, news) = invalid_spec(&refused, "bad", Some(2), &now);
        assert!(!news, "the same refusal of the same generation is no news");
        assert_eq!(again, refused);
    }
}
