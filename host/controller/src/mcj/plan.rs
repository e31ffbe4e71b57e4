//! What one reconcile of a MultiClusterJob does, decided without I/O. The shell (`mod.rs`)
//! observes and decides; [`placement`] merges the decision into the Jobs already placed
//! (placed Jobs never move), [`jobs`] says which clusters need their Job applied, and after
//! applying, [`status`] and [`events`] say what to write and publish.

use crate::context::Timing;
use mck8s_api::conditions::{self, BURSTING, COMPLETE, DEGRADED, FAILED, INVALID_SPEC, PLACED};
use mck8s_api::mcd::LegacyMessage;
use mck8s_api::{ClusterJob, ClusterPlacement, MultiClusterJobStatus};
use mck8s_policy::Decision;
use mck8s_scheduler::PassedOver;
use std::collections::BTreeMap;
use std::time::Duration;

pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const COMPLETED: &str = "Complete";
pub const FAILED_STATE: &str = "Failed";

pub fn finished(state: &str) -> bool {
    state == COMPLETED || state == FAILED_STATE
}

/// The placement recorded in status, as cluster → replicas.
pub fn recorded(status: &MultiClusterJobStatus) -> BTreeMap<String, u32> {
    status.placement.iter().map(|p| (p.cluster.clone(), p.replicas.max(0) as u32)).collect()
}

/// Adds clusters from a new decision to those already running a Job, up to `wanted`:
/// placed Jobs never move.
pub fn merge_placement(current: &BTreeMap<String, u32>, decided: &[(String, u32)], wanted: u32) -> BTreeMap<String, u32> {
    let mut out = current.clone();
    for (cluster, replicas) in decided {
        if out.len() as u32 >= wanted {
            break;
        }
        if *replicas > 0 {
            out.entry(cluster.clone()).or_insert(*replicas);
        }
    }
    out
}

/// Where the Jobs run after this reconcile, why, and how many fit nowhere.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub desired: BTreeMap<String, u32>,
    pub reasons: BTreeMap<String, String>,
    pub unplaced: u32,
}

/// The recorded placement, with `decision` (when there is one) filling the Jobs still
/// without a cluster.
pub fn placement(status: &MultiClusterJobStatus, decision: Option<&Decision>, wanted: u32) -> Placement {
    let current = recorded(status);
    let mut reasons: BTreeMap<String, String> = status.placement.iter().map(|p| (p.cluster.clone(), p.reason.clone())).collect();
    let desired = match decision {
        Some(d) => {
            for p in &d.placements {
                reasons.entry(p.cluster.clone()).or_insert_with(|| p.reason.clone());
            }
            let decided: Vec<(String, u32)> = d.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect();
            merge_placement(&current, &decided, wanted)
        }
        None => current,
    };
    let unplaced = wanted.saturating_sub(desired.len() as u32);
    Placement { desired, reasons, unplaced }
}

/// A chosen cluster, as this object sees it. Absent from the map: not registered.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberView {
    pub reachable: bool,
    /// Its Job's state, when it has one that is not being deleted.
    pub live: Option<ClusterJob>,
}

/// Each chosen cluster's Job as now known, the clusters whose Job is to be applied (created,
/// or put back while it runs), and what could not be reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Jobs {
    pub jobs: Vec<ClusterJob>,
    pub apply: Vec<String>,
    pub errors: Vec<String>,
}

/// A finished Job is left alone, and its result kept even once the Job is gone.
pub fn jobs(status: &MultiClusterJobStatus, desired: &BTreeMap<String, u32>, members: &BTreeMap<String, MemberView>) -> Jobs {
    let recorded: BTreeMap<&str, &ClusterJob> = status.jobs.iter().map(|j| (j.cluster.as_str(), j)).collect();
    let pending = |cluster: &str| ClusterJob { cluster: cluster.to_string(), state: PENDING.into(), ..Default::default() };
    let mut out = Jobs { jobs: Vec::new(), apply: Vec::new(), errors: Vec::new() };
    for cluster in desired.keys() {
        let before = recorded.get(cluster.as_str()).map(|j| (*j).clone());
        let Some(member) = members.get(cluster) else {
            out.errors.push(format!("cluster {cluster}: not registered"));
            out.jobs.push(before.unwrap_or_else(|| pending(cluster)));
            continue;
        };
        let mut job = member.live.clone().or(before).unwrap_or_else(|| pending(cluster));
        job.cluster = cluster.clone();
        if !finished(&job.state) {
            if member.reachable {
                out.apply.push(cluster.clone());
            } else {
                out.errors.push(format!("cluster {cluster}: unreachable"));
            }
        }
        out.jobs.push(job);
    }
    out
}

/// A Job the apply just created is running.
pub fn started(job: &mut ClusterJob) {
    if job.state == PENDING {
        job.state = RUNNING.into();
    }
}

pub struct StatusInput<'a> {
    pub status: &'a MultiClusterJobStatus,
    pub generation: Option<i64>,
    pub policy: &'a str,
    /// Jobs wanted (`numberOfLocations`), and replicas each reserves (the bursting count).
    pub wanted: u32,
    pub replicas_per_job: u32,
    pub placement: &'a Placement,
    pub jobs: Vec<ClusterJob>,
    pub errors: &'a [String],
    pub policy_error: Option<&'a str>,
    pub now: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
}

pub fn status(i: StatusInput<'_>) -> MultiClusterJobStatus {
    let (g, now, desired, unplaced) = (i.generation, i.now, &i.placement.desired, i.placement.unplaced);
    let succeeded = i.jobs.iter().filter(|j| j.state == COMPLETED).count() as i32;
    let failed = i.jobs.iter().filter(|j| j.state == FAILED_STATE).count() as i32;
    let total = i.wanted as i32;
    let mut new = i.status.clone();
    new.observed_generation = g;
    new.policy = Some(i.policy.to_string());
    new.placement = desired
        .iter()
        .map(|(c, r)| ClusterPlacement {
            cluster: c.clone(),
            replicas: *r as i32,
            ready_replicas: i.jobs.iter().find(|j| &j.cluster == c).map_or(0, |j| j.active),
            reason: i.placement.reasons.get(c).cloned().unwrap_or_default(),
        })
        .collect();
    new.jobs = i.jobs;
    new.succeeded = succeeded;
    new.failed = failed;
    new.unplaced = unplaced as i32;
    new.completions = Some(format!("{succeeded}/{total}"));
    conditions::set(&mut new.conditions, INVALID_SPEC, false, "Valid", "", g, now);
    match i.policy_error {
        Some(e) => conditions::set(&mut new.conditions, PLACED, !desired.is_empty(), "PolicyFailed", format!("{e}; retried"), g, now),
        None => {
            let reason = if unplaced == 0 { "Placed" } else { "Partly" };
            conditions::set(&mut new.conditions, PLACED, unplaced == 0, reason, format!("{} of {total} Jobs placed", desired.len()), g, now)
        }
    }
    if unplaced > 0 {
        conditions::set(&mut new.conditions, BURSTING, true, "NoCapacity", format!("{unplaced} Jobs fit in no cluster; waiting for capacity (a cloud cluster)"), g, now);
        new.message = Some(LegacyMessage { message: "to_cloud".into(), replicas: serde_json::json!(unplaced * i.replicas_per_job) });
    } else {
        conditions::set(&mut new.conditions, BURSTING, false, "Placed", "every Job has a cluster", g, now);
        new.message = Some(LegacyMessage { message: "provisioned".into(), replicas: serde_json::json!(desired.values().collect::<Vec<_>>()) });
    }
    if i.errors.is_empty() {
        conditions::set(&mut new.conditions, DEGRADED, false, "AllClustersReached", "", g, now);
    } else {
        conditions::set(&mut new.conditions, DEGRADED, true, "ClusterError", i.errors.join("; "), g, now);
    }
    let complete = succeeded == total && unplaced == 0;
    conditions::set(&mut new.conditions, COMPLETE, complete, if complete { "AllJobsComplete" } else { "Running" }, format!("{succeeded}/{total} Jobs complete"), g, now);
    conditions::set(&mut new.conditions, FAILED, failed > 0, if failed > 0 { "JobFailed" } else { "NoFailure" }, format!("{failed}/{total} Jobs failed"), g, now);
    new
}

/// An Event to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct JobEvent {
    pub warning: bool,
    pub reason: String,
    pub action: &'static str,
    pub note: String,
}

/// The placement when it changed, and each Job that finished since the last status.
/// `passed_over`: the clusters this reconcile's decision passed over, if it decided.
pub fn events(old: &MultiClusterJobStatus, new: &MultiClusterJobStatus, policy: &str, passed_over: Option<&PassedOver>) -> Vec<JobEvent> {
    let mut out = Vec::new();
    let desired = recorded(new);
    if desired != recorded(old) {
        let clusters: Vec<&str> = desired.keys().map(String::as_str).collect();
        let bursting = new.unplaced > 0;
        let mut note = format!("Jobs in [{}] by {policy}; {} unplaced", clusters.join(", "), new.unplaced);
        if let Some(p) = passed_over.filter(|p| !p.is_empty()) {
            note.push_str(&format!("; passed over: {p}"));
        }
        out.push(JobEvent { warning: bursting, reason: if bursting { "Bursting" } else { "Placed" }.into(), action: "Place", note });
    }
    for j in &new.jobs {
        let was = old.jobs.iter().find(|b| b.cluster == j.cluster).map_or(PENDING, |b| b.state.as_str());
        if finished(&j.state) && was != j.state {
            let note = format!("{}: Job {} ({} succeeded, {} failed pods)", j.cluster, j.state.to_lowercase(), j.succeeded, j.failed);
            out.push(JobEvent { warning: j.state != COMPLETED, reason: format!("Job{}", j.state), action: "Run", note });
        }
    }
    out
}

/// Soon after an error, at the burst retry while Jobs are unplaced, else at the resync.
pub fn requeue(failed: bool, unplaced: u32, timing: &Timing) -> Duration {
    if failed {
        timing.error_retry
    } else if unplaced > 0 {
        timing.burst_retry
    } else {
        timing.resync
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use mck8s_policy::session::ClusterReplicas;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap())
    }

    fn decision(clusters: &[&str]) -> Decision {
        let placements = clusters.iter().map(|c| ClusterReplicas { cluster: c.to_string(), replicas: 1, reason: format!("{c} had room") }).collect();
        Decision { policy: "worst-fit".into(), digest: "d".into(), placements, unplaced: 0, summary: String::new() }
    }

    fn job(cluster: &str, state: &str) -> ClusterJob {
        ClusterJob { cluster: cluster.into(), state: state.into(), ..Default::default() }
    }

    fn placed(clusters: &[&str]) -> MultiClusterJobStatus {
        MultiClusterJobStatus {
            observed_generation: Some(1),
            placement: clusters.iter().map(|c| ClusterPlacement { cluster: c.to_string(), replicas: 1, ready_replicas: 0, reason: "was".into() }).collect(),
            jobs: clusters.iter().map(|c| job(c, RUNNING)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn placed_jobs_stay_and_new_ones_fill_up_to_the_wanted_count() {
        let current: BTreeMap<String, u32> = [("c2".to_string(), 1)].into();
        let decided = vec![("c1".to_string(), 1), ("c2".to_string(), 1), ("c3".to_string(), 1), ("c4".to_string(), 0)];
        let m = merge_placement(&current, &decided, 2);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["c1", "c2"]);
        let m = merge_placement(&current, &decided, 5);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["c1", "c2", "c3"], "a cluster given 0 runs nothing");
        let m = merge_placement(&BTreeMap::new(), &[], 3);
        assert!(m.is_empty());
    }

    #[test]
    fn a_decision_fills_the_missing_jobs_and_keeps_the_recorded_reasons() {
        let s = placed(&["c2"]);
        let p = placement(&s, Some(&decision(&["c1", "c2", "c3"])), 2);
        assert_eq!(p.desired.keys().collect::<Vec<_>>(), ["c1", "c2"]);
        assert_eq!((p.reasons["c1"].as_str(), p.reasons["c2"].as_str(), p.unplaced), ("c1 had room", "was", 0));
        // No decision (all placed, or the policy failed): the recorded placement, the rest unplaced.
        let p = placement(&s, None, 3);
        assert_eq!((p.desired.len(), p.unplaced), (1, 2));
    }

    #[test]
    fn finished_jobs_are_left_alone_and_unreachable_clusters_are_errors() {
        let mut s = placed(&["c1", "c2", "c3", "c4"]);
        s.jobs[0] = job("c1", COMPLETED);
        let desired = recorded(&s);
        let members: BTreeMap<String, MemberView> = [
            // c1's Job finished and is gone (a TTL): its result stays, nothing is applied.
            ("c1".to_string(), MemberView { reachable: true, live: None }),
            // c2's Job runs: applied (put back if edited).
            ("c2".to_string(), MemberView { reachable: true, live: Some(job("", RUNNING)) }),
            ("c3".to_string(), MemberView { reachable: false, live: None }),
        ]
        .into();
        let j = jobs(&s, &desired, &members);
        assert_eq!(j.apply, ["c2"]);
        assert_eq!(j.errors, ["cluster c3: unreachable", "cluster c4: not registered"]);
        assert_eq!(j.jobs.iter().map(|j| (j.cluster.as_str(), j.state.as_str())).collect::<Vec<_>>(), [("c1", COMPLETED), ("c2", RUNNING), ("c3", RUNNING), ("c4", RUNNING)]);
        let mut pending = job("c5", PENDING);
        started(&mut pending);
        assert_eq!(pending.state, RUNNING);
    }

    #[test]
    fn the_status_aggregates_jobs_and_says_when_jobs_burst() {
        let s = MultiClusterJobStatus::default();
        let p = placement(&s, Some(&decision(&["c1"])), 3);
        let jobs = vec![ClusterJob { succeeded: 1, ..job("c1", COMPLETED) }];
        let new = status(StatusInput {
            status: &s,
            generation: Some(1),
            policy: "worst-fit",
            wanted: 3,
            replicas_per_job: 2,
            placement: &p,
            jobs,
            errors: &[],
            policy_error: None,
            now: &now(),
        });
        assert_eq!((new.succeeded, new.unplaced, new.completions.as_deref()), (1, 2, Some("1/3")));
        assert_eq!(new.message.clone().unwrap().replicas, serde_json::json!(4), "2 Jobs × parallelism 2 to the cloud");
        assert!(conditions::is_true(&new.conditions, BURSTING) && !conditions::is_true(&new.conditions, COMPLETE));
        assert_eq!(conditions::get(&new.conditions, PLACED).unwrap().reason, "Partly");
        let ev = events(&s, &new, "worst-fit", None);
        assert_eq!(ev.iter().map(|e| (e.reason.as_str(), e.warning)).collect::<Vec<_>>(), [("Bursting", true), ("JobComplete", false)]);
        // The next pass: nothing changed, nothing to say; the burst retry.
        assert!(events(&new, &new, "worst-fit", None).is_empty());
        let timing = Timing::default();
        assert_eq!(requeue(false, 2, &timing), timing.burst_retry);
        assert_eq!(requeue(true, 0, &timing), timing.error_retry);
        assert_eq!(requeue(false, 0, &timing), timing.resync);
    }
}
