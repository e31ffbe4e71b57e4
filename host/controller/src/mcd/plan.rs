//! What one reconcile of a MultiClusterDeployment does, decided without I/O: from its status,
//! this reconcile's decision (or why there is none), what each member cluster shows of its
//! children, and the clock. The shell (`mod.rs`) observes and decides, calls [`plan`], applies
//! and deletes children as planned, then [`finish`]es the status with what that met.
//!
//! The placement: a new decision when there is one, else the recorded placement stands.
//! Children follow it; a cluster given fewer replicas than its child runs, and a cluster no
//! longer chosen, *drain*: their children keep serving until the new placement is ready (see
//! [`failover::drain`]).

use crate::context::Timing;
use crate::failover::{self, Assessment, Drain};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mck8s_api::conditions::{self, BURSTING, DEGRADED, INVALID_SPEC, PLACED, READY, SHADOW_AGREES};
use mck8s_api::mcd::LegacyMessage;
use mck8s_api::{ClusterPlacement, DrainingChild, MultiClusterDeploymentStatus};
use mck8s_fleet::Health;
use mck8s_policy::Decision;
use mck8s_scheduler::{PassedOver, Placed, ShadowOutcome};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Bytes of per-cluster reasons kept in one status, however many clusters there are.
pub const REASONS_MAX: usize = 16 << 10;

/// The placement recorded in status, as cluster → replicas.
pub fn recorded(status: &MultiClusterDeploymentStatus) -> BTreeMap<String, u32> {
    status.placement.iter().map(|p| (p.cluster.clone(), p.replicas.max(0) as u32)).collect()
}

/// Whether the placement is decided again without anything else asking: a new spec, nothing
/// placed yet, replicas still unplaced (the burst retry), or a cluster that left the registry.
pub fn must_decide(status: &MultiClusterDeploymentStatus, generation: Option<i64>, clusters_gone: bool) -> bool {
    status.observed_generation != generation || status.placement.is_empty() || status.unplaced > 0 || clusters_gone
}

/// One registered cluster, as this object sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberView {
    pub health: Health,
    /// The object's children there; `None` when it has none.
    pub child: Option<ChildCounts>,
}

impl MemberView {
    fn reachable(&self) -> bool {
        self.health != Health::Unreachable
    }
}

/// A cluster's children of this object, as last seen.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChildCounts {
    /// Replicas they are set to.
    pub replicas: u32,
    pub ready: u32,
}

/// Where this reconcile's placement comes from.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Nothing asked for a decision: the recorded placement stands.
    Kept,
    Decided(Placed),
    /// A rescheduler step, adopted as the decision.
    Rescheduled {
        decision: Decision,
        note: String,
        moved: u32,
    },
    /// The policy failed: the recorded placement stands.
    Failed(String),
}

impl Outcome {
    fn decision(&self) -> Option<&Decision> {
        match self {
            Outcome::Decided(Placed { decision: d, .. }) | Outcome::Rescheduled { decision: d, .. } => Some(d),
            Outcome::Kept | Outcome::Failed(_) => None,
        }
    }

    /// The clusters a new decision passed over, for its event.
    fn passed_over(&self) -> Option<&PassedOver> {
        match self {
            Outcome::Decided(p) if !p.passed_over.is_empty() => Some(&p.passed_over),
            _ => None,
        }
    }
}

pub struct Input<'a> {
    pub generation: Option<i64>,
    pub status: &'a MultiClusterDeploymentStatus,
    /// The policy the spec names.
    pub policy: &'a str,
    pub outcome: Outcome,
    pub moves: &'a Assessment,
    /// Every registered cluster.
    pub members: &'a BTreeMap<String, MemberView>,
    pub now: &'a Time,
    pub drain_timeout: Duration,
}

/// An Event saying how the placement changed, and the moves it counts.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacementEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
    /// `(reason, count)` for `mck8s_moves_total`.
    pub moves: Option<(&'static str, usize)>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    /// Children to apply, cluster → replicas (a draining cluster keeps what it runs).
    pub apply: BTreeMap<String, u32>,
    /// Clusters no longer chosen whose children go now.
    pub delete: Vec<String>,
    /// The new status; [`finish`] adds Degraded and Ready.
    pub status: MultiClusterDeploymentStatus,
    pub event: Option<PlacementEvent>,
    /// Ready replicas of the new placement, and replicas it places.
    pub ready: u32,
    pub placed: u32,
    pub unplaced: u32,
}

pub fn plan(i: Input<'_>) -> Plan {
    let status = i.status;
    let current = recorded(status);
    let decision = i.outcome.decision();
    // Without a new decision (or when the policy failed), the last good placement stands.
    let desired: BTreeMap<String, u32> = match decision {
        Some(d) => d.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect(),
        None => current.clone(),
    };
    let unplaced = decision.map_or(status.unplaced.max(0) as u32, |d| d.unplaced);
    let placed: u32 = desired.values().sum();
    let failed_over = match decision {
        Some(_) => {
            let before: BTreeSet<String> = current.keys().cloned().collect();
            let after: BTreeSet<String> = desired.keys().cloned().collect();
            failover::failed_over_after(&status.failed_over, &before, &after, |c| i.members.get(c).map(|m| m.health))
        }
        None => status.failed_over.clone(),
    };

    // Ready replicas of the new placement. An unreachable cluster's cached status is stale:
    // nothing counts as ready there.
    let ready_in = |c: &str| i.members.get(c).filter(|m| m.reachable()).and_then(|m| m.child).map_or(0, |c| c.ready);
    let reasons: BTreeMap<String, String> = match decision {
        Some(d) => d.placements.iter().map(|p| (p.cluster.clone(), p.reason.clone())).collect(),
        None => status.placement.iter().map(|p| (p.cluster.clone(), p.reason.clone())).collect(),
    };
    let reasons = crate::shared::bounded_reasons(reasons, REASONS_MAX);
    let mut ready_total = 0;
    let mut placement = Vec::new();
    for (cluster, replicas) in &desired {
        let ready = ready_in(cluster);
        ready_total += ready.min(*replicas);
        placement.push(ClusterPlacement {
            cluster: cluster.clone(),
            replicas: *replicas as i32,
            ready_replicas: ready as i32,
            reason: reasons.get(cluster).cloned().unwrap_or_default(),
        });
    }

    let drain = |cluster: &str, member: &MemberView| {
        let since = status.draining.iter().find(|d| d.cluster == cluster).map_or_else(|| i.now.clone(), |d| d.since.clone());
        let draining_for = Duration::from_millis(i.now.0.duration_since(since.0).as_millis().max(0) as u64);
        (failover::drain(member.reachable(), ready_total, placed, unplaced, draining_for, i.drain_timeout), since)
    };
    // A cluster given fewer replicas than its child runs keeps them while the rest of the new
    // placement is not ready: a move, not a scale-in, would otherwise dip below the count.
    let mut apply = BTreeMap::new();
    let mut draining = Vec::new();
    for (cluster, replicas) in &desired {
        let mut keep = *replicas;
        if let Some(member) = i.members.get(cluster)
            && let Some(child) = member.child.filter(|c| c.replicas > *replicas)
            && let (Drain::Keep(reason), since) = drain(cluster, member)
        {
            keep = child.replicas;
            let ready = child.ready.saturating_sub(*replicas);
            draining.push(DrainingChild { cluster: cluster.clone(), replicas: (child.replicas - replicas) as i32, ready_replicas: ready as i32, since, reason: reason.into() });
        }
        apply.insert(cluster.clone(), keep);
    }
    // Children elsewhere go once the new placement is ready, never while their cluster is
    // unreachable.
    let mut delete = Vec::new();
    for (cluster, member) in i.members {
        let Some(child) = member.child.filter(|_| !desired.contains_key(cluster)) else { continue };
        match drain(cluster, member) {
            (Drain::Delete, _) => delete.push(cluster.clone()),
            (Drain::Keep(reason), since) => {
                draining.push(DrainingChild { cluster: cluster.clone(), replicas: child.replicas as i32, ready_replicas: child.ready as i32, since, reason: reason.into() })
            }
        }
    }

    let mut new = status.clone();
    let g = i.generation;
    let now = i.now;
    // A failed policy leaves the spec not yet observed: the next reconcile decides again.
    new.observed_generation = if matches!(i.outcome, Outcome::Failed(_)) { status.observed_generation } else { g };
    if let Some(d) = decision {
        new.policy = Some(i.policy.to_string());
        new.policy_digest = Some(d.digest.clone());
    }
    new.replicas = (placed + unplaced) as i32;
    new.ready_replicas = ready_total as i32;
    new.unplaced = unplaced as i32;
    new.summary = Some(desired.iter().map(|(c, r)| format!("{c}={r}")).collect::<Vec<_>>().join(","));
    new.placement = placement;
    new.draining = draining;
    new.failed_over = failed_over;
    conditions::set(&mut new.conditions, INVALID_SPEC, false, "Valid", "", g, now);
    if let Outcome::Failed(e) = &i.outcome {
        conditions::set(&mut new.conditions, PLACED, !desired.is_empty(), "PolicyFailed", format!("{e}; the last placement stands"), g, now);
    } else {
        let summary = decision.map(|d| d.summary.clone()).filter(|s| !s.is_empty());
        conditions::set(&mut new.conditions, PLACED, true, "Placed", summary.unwrap_or_else(|| format!("{placed} replicas in {} clusters", desired.len())), g, now);
    }
    // What the shadow made of a new decision; nothing once the policy has no shadow.
    if let Outcome::Decided(p) = &i.outcome {
        match &p.shadow {
            Some(run) => {
                let reason = match run.outcome {
                    ShadowOutcome::Agreed => "Agrees",
                    ShadowOutcome::Diverged { .. } => "Diverges",
                    ShadowOutcome::Failed(_) => "ShadowFailed",
                };
                conditions::set(&mut new.conditions, SHADOW_AGREES, run.outcome == ShadowOutcome::Agreed, reason, run.to_string(), g, now);
            }
            None => new.conditions.retain(|c| c.type_ != SHADOW_AGREES),
        }
    }
    if unplaced > 0 {
        conditions::set(&mut new.conditions, BURSTING, true, "NoCapacity", format!("{unplaced} replicas fit in no cluster; waiting for capacity (a cloud cluster)"), g, now);
        new.message = Some(LegacyMessage { message: "to_cloud".into(), replicas: serde_json::json!(unplaced) });
    } else {
        conditions::set(&mut new.conditions, BURSTING, false, "Placed", "every replica has a cluster", g, now);
        new.message = Some(LegacyMessage { message: "provisioned".into(), replicas: serde_json::json!(desired.values().collect::<Vec<_>>()) });
    }

    let event = decision.filter(|_| desired != current).map(|d| placement_event(&i.outcome, d, i.moves, i.policy, new.summary.as_deref().unwrap_or_default()));
    Plan { apply, delete, status: new, event, ready: ready_total, placed, unplaced }
}

/// Why the placement changed, most specific first.
fn placement_event(outcome: &Outcome, d: &Decision, moves: &Assessment, policy: &str, summary: &str) -> PlacementEvent {
    if let Outcome::Rescheduled { note, moved, .. } = outcome {
        return PlacementEvent {
            warning: false,
            reason: "Rescheduled",
            note: format!("{moved} replicas back to the fog: {note}; now {summary}"),
            moves: Some(("rescheduled", *moved as usize)),
        };
    }
    if !moves.failed.is_empty() {
        let why: Vec<String> = moves.failed.iter().map(|(c, h, down)| format!("{c} {h:?} for {}s", down.as_secs())).collect();
        let note = format!("{}: placed again by {policy}: {summary}; {} unplaced", why.join(", "), d.unplaced);
        return PlacementEvent { warning: true, reason: "FailedOver", note, moves: Some(("failover", moves.failed.len())) };
    }
    if !moves.recovered.is_empty() {
        let note = format!("{} Ready again: placed again by {policy}: {summary}", moves.recovered.join(", "));
        return PlacementEvent { warning: false, reason: "FailedBack", note, moves: Some(("failback", moves.recovered.len())) };
    }
    let bursting = d.unplaced > 0;
    let mut note = format!("{summary} by {policy}; {} unplaced", d.unplaced);
    if let Some(p) = outcome.passed_over() {
        note.push_str(&format!("; passed over: {p}"));
    }
    PlacementEvent { warning: bursting, reason: if bursting { "Bursting" } else { "Placed" }, note, moves: None }
}

/// Degraded and Ready, once the children were applied: `errors` are what reaching the
/// clusters met. `decided`: this reconcile placed again (a failed cluster with no new
/// decision waits for the move rate limit).
pub fn finish(plan: &mut Plan, errors: &[String], moves: &Assessment, decided: bool, generation: Option<i64>, now: &Time) {
    let new = &mut plan.status;
    let g = generation;
    if !errors.is_empty() {
        conditions::set(&mut new.conditions, DEGRADED, true, "ClusterError", errors.join("; "), g, now);
    } else if let Some((c, h, down)) = moves.failed.first().filter(|_| !decided) {
        conditions::set(&mut new.conditions, DEGRADED, true, "ClusterFailed", format!("{c} is {h:?} for {}s; failover waits for the move rate limit", down.as_secs()), g, now);
    } else {
        conditions::set(&mut new.conditions, DEGRADED, false, "AllClustersReached", "", g, now);
    }
    let all = plan.placed + plan.unplaced;
    let all_ready = plan.unplaced == 0 && plan.ready == plan.placed && plan.placed > 0;
    let reason = if all_ready { "AllReplicasReady" } else { "ReplicasNotReady" };
    conditions::set(&mut new.conditions, READY, all_ready, reason, format!("{}/{all} ready", plan.ready), g, now);
}

/// When to look again: soon after an error, at the burst retry while replicas are unplaced,
/// else at the resync; earlier when a failing cluster's grace ends, when the move rate limit
/// lets a move through (`throttled`), and while children drain.
pub fn requeue(plan: &Plan, failed: bool, moves: &Assessment, throttled: Option<Duration>, timing: &Timing) -> Duration {
    let base = if failed {
        timing.error_retry
    } else if plan.unplaced > 0 {
        timing.burst_retry
    } else {
        timing.resync
    };
    let draining = (!plan.status.draining.is_empty()).then_some(timing.drain_timeout.min(timing.resync));
    [moves.grace_left.map(|d| d + Duration::from_millis(100)), throttled, draining].into_iter().flatten().fold(base, Duration::min)
}
