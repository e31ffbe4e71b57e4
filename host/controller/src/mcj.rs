//! The MultiClusterJob controller (§7.2): one Job per cluster chosen by the placement
//! policy, every Job a full copy of the JobSpec (as in mck8s), each location reserving the
//! Job's `parallelism`.
//!
//! Beyond mck8s: completion and failure are tracked per cluster and aggregated in status
//! (`Complete`, `Failed`, `completions`); a Job deleted or edited by hand before it finished
//! is put back, and a finished Job is never run again (its result stays in `status.jobs`);
//! deleting the MultiClusterJob deletes the Jobs with their pods (mck8s orphaned the pods).
//! Jobs that fit nowhere are the bursting signal (`status.message: to_cloud`) and are placed
//! when capacity appears; Jobs already placed never move.

use crate::children::{self, Outcome};
use crate::context::Context;
use crate::render::{self, Owner};
use crate::shared;
use crate::spec::{self, ParsedJob};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use mck8s_api::conditions::{self, BURSTING, COMPLETE, DEGRADED, FAILED, INVALID_SPEC, PLACED};
use mck8s_api::mcd::LegacyMessage;
use mck8s_api::{ClusterJob, ClusterPlacement, MultiClusterJob, MultiClusterJobStatus};
use mck8s_policy::input::HealthDoc;
use mck8s_scheduler::{OwnerKey, PlacementRequest, ScheduleError};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const KIND: &str = "MultiClusterJob";
pub const FINALIZER: &str = shared::FINALIZER;

pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const COMPLETED: &str = "Complete";
pub const FAILED_STATE: &str = "Failed";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Said as kube says it: a prefix here would repeat under a chain printer, which
    /// prints the source after it.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error(transparent)]
    Child(#[from] children::ChildError),
}

pub async fn run(ctx: Arc<Context>, watch_namespace: Option<String>) {
    let api: Api<MultiClusterJob> = shared::scoped_api(&ctx.watches, &watch_namespace);
    let triggers = shared::owner_triggers(&ctx, KIND, watch_namespace);
    let cluster_changes = shared::cluster_changes(&ctx);
    // An MCJ created before its policy loaded is InvalidSpec until the policy appears.
    let policy_changes = shared::policy_changes(&ctx);
    let results = Controller::new(api, mck8s_clusters::watch_config())
        .reconcile_on(triggers)
        .reconcile_all_on(policy_changes)
        .reconcile_all_on(cluster_changes)
        .shutdown_on_signal()
        .run(reconcile, shared::error_policy, ctx);
    shared::drive(results).await;
}

fn owner_key(mcj: &MultiClusterJob) -> OwnerKey {
    OwnerKey { kind: KIND.into(), namespace: mcj.namespace().unwrap_or_default(), name: mcj.name_any() }
}

async fn reconcile(obj: Arc<MultiClusterJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    shared::reconcile(&ctx, KIND, obj, apply, cleanup, Error::Finalizer).await
}

/// A Job's state from its conditions and counts.
pub fn job_state(job: &Job) -> ClusterJob {
    let s = job.status.clone().unwrap_or_default();
    let is = |t: &str| s.conditions.iter().flatten().any(|c| c.type_ == t && c.status == "True");
    let state = if is("Complete") {
        COMPLETED
    } else if is("Failed") {
        FAILED_STATE
    } else {
        RUNNING
    };
    ClusterJob { cluster: String::new(), state: state.into(), active: s.active.unwrap_or(0), succeeded: s.succeeded.unwrap_or(0), failed: s.failed.unwrap_or(0) }
}

fn finished(state: &str) -> bool {
    state == COMPLETED || state == FAILED_STATE
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

async fn apply(mcj: Arc<MultiClusterJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let owner = owner_key(&mcj);
    let status = ctx.mcj_status.current(mcj.as_ref(), mcj.status.clone().unwrap_or_default());
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let g = mcj.metadata.generation;

    let parsed: ParsedJob = match spec::parse_job(&owner.name, &owner.namespace, &mcj.spec) {
        Ok(p) => p,
        Err(invalid) => return reject(&mcj, &ctx, status, &invalid.0, now).await,
    };
    let policy = parsed.spec.policy.clone();
    if let Err(e) = ctx.scheduler.registry().get(&policy) {
        let known: Vec<String> = ctx.scheduler.registry().list().iter().map(|p| p.name.clone()).collect();
        return reject(&mcj, &ctx, status, &format!("unknown placementPolicy {policy:?} ({}); loaded policies: {}", e.kind, known.join(", ")), now).await;
    }

    // Place the Jobs still without a cluster.
    let current: BTreeMap<String, u32> = status.placement.iter().map(|p| (p.cluster.clone(), p.replicas.max(0) as u32)).collect();
    let mut reasons: BTreeMap<String, String> = status.placement.iter().map(|p| (p.cluster.clone(), p.reason.clone())).collect();
    let mut desired = current.clone();
    let mut policy_error = None;
    if (current.len() as u32) < parsed.wanted {
        let mut workload = parsed.spec.workload.clone();
        workload.current = current.clone();
        let decision = ctx.clusters.cycle().map_err(ScheduleError::from).and_then(|cycle| {
            workload.current.retain(|c, _| cycle.snapshot.index_of(c).is_some());
            ctx.scheduler.place(&cycle, &PlacementRequest { owner: owner.clone(), policy: policy.clone(), workload })
        });
        match decision {
            Ok(d) => {
                let decided: Vec<(String, u32)> = d.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect();
                desired = merge_placement(&current, &decided, parsed.wanted);
                for p in &d.placements {
                    reasons.entry(p.cluster.clone()).or_insert_with(|| p.reason.clone());
                }
                ctx.metrics.decisions.get_or_create(&crate::metrics::PolicyLabel { policy: mck8s_policy::registry::normalize(&policy) }).inc();
            }
            Err(ScheduleError::Input(e)) => return reject(&mcj, &ctx, status, &e.to_string(), now).await,
            Err(ScheduleError::Policy(e)) => {
                shared::publish(&ctx, mcj.as_ref(), EventType::Warning, "PolicyFailed", "Place", &e.to_string()).await;
                policy_error = Some(e.to_string());
            }
        }
    } else {
        ctx.scheduler.remember(&owner, &parsed.spec.request, &current);
    }
    let unplaced = parsed.wanted.saturating_sub(desired.len() as u32);

    // One Job per chosen cluster: created, repaired while it runs, left alone once finished.
    let uid = mcj.uid().unwrap_or_default();
    let o = Owner { kind: KIND, namespace: &owner.namespace, name: &owner.name, uid: &uid };
    let body = match render::job(&o, &parsed.spec.deployment) {
        Ok(b) => b,
        Err(e) => return reject(&mcj, &ctx, status, &format!("cannot render the Job: {e}"), now).await,
    };
    let recorded: BTreeMap<String, ClusterJob> = status.jobs.iter().map(|j| (j.cluster.clone(), j.clone())).collect();
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for cluster in desired.keys() {
        let before = recorded.get(cluster).cloned();
        let Some(member) = ctx.clusters.get(cluster) else {
            errors.push(format!("cluster {cluster}: not registered"));
            jobs.push(before.unwrap_or_else(|| ClusterJob { cluster: cluster.clone(), state: PENDING.into(), ..Default::default() }));
            continue;
        };
        let live = member.jobs_of(&owner).into_iter().find(|j| j.metadata.name.as_deref() == Some(&owner.name));
        let mut state = match (&live, &before) {
            (Some(j), _) if j.metadata.deletion_timestamp.is_none() => job_state(j),
            (_, Some(b)) => b.clone(),
            _ => ClusterJob { state: PENDING.into(), ..Default::default() },
        };
        state.cluster = cluster.clone();
        if !finished(&state.state) {
            if member.health() == HealthDoc::Unreachable {
                errors.push(format!("cluster {cluster}: unreachable"));
            } else {
                let outcome = children::apply(&ctx.applied, &member, &body, live.as_deref()).await;
                crate::mcd::count_apply(&ctx, "Job", &outcome);
                match outcome {
                    Ok(Outcome::Applied) if live.is_none() || live.as_ref().is_some_and(|j| j.metadata.deletion_timestamp.is_some()) => {
                        tracing::info!(%cluster, "job created");
                        if state.state == PENDING {
                            state.state = RUNNING.into();
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.is_invalid() => errors.push(format!("{e} (a Job's template cannot change: delete and re-create the MultiClusterJob)")),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        jobs.push(state);
    }

    // Status.
    let succeeded = jobs.iter().filter(|j| j.state == COMPLETED).count() as i32;
    let failed = jobs.iter().filter(|j| j.state == FAILED_STATE).count() as i32;
    let total = parsed.wanted as i32;
    let mut new = status.clone();
    new.observed_generation = g;
    new.policy = Some(policy.clone());
    new.placement = desired
        .iter()
        .map(|(c, r)| ClusterPlacement {
            cluster: c.clone(),
            replicas: *r as i32,
            ready_replicas: jobs.iter().find(|j| &j.cluster == c).map(|j| j.active).unwrap_or(0),
            reason: reasons.get(c).cloned().unwrap_or_default(),
        })
        .collect();
    new.jobs = jobs;
    new.succeeded = succeeded;
    new.failed = failed;
    new.unplaced = unplaced as i32;
    new.completions = Some(format!("{succeeded}/{total}"));
    conditions::set(&mut new.conditions, INVALID_SPEC, false, "Valid", "", g, &now);
    match &policy_error {
        Some(e) => conditions::set(&mut new.conditions, PLACED, !desired.is_empty(), "PolicyFailed", format!("{e}; retried"), g, &now),
        None => conditions::set(
            &mut new.conditions,
            PLACED,
            unplaced == 0,
            if unplaced == 0 { "Placed" } else { "Partly" },
            format!("{} of {total} Jobs placed", desired.len()),
            g,
            &now,
        ),
    }
    if unplaced > 0 {
        conditions::set(&mut new.conditions, BURSTING, true, "NoCapacity", format!("{unplaced} Jobs fit in no cluster; waiting for capacity (a cloud cluster)"), g, &now);
        new.message = Some(LegacyMessage { message: "to_cloud".into(), replicas: serde_json::json!(unplaced * parsed.spec.workload.replicas) });
    } else {
        conditions::set(&mut new.conditions, BURSTING, false, "Placed", "every Job has a cluster", g, &now);
        new.message = Some(LegacyMessage { message: "provisioned".into(), replicas: serde_json::json!(desired.values().collect::<Vec<_>>()) });
    }
    if errors.is_empty() {
        conditions::set(&mut new.conditions, DEGRADED, false, "AllClustersReached", "", g, &now);
    } else {
        conditions::set(&mut new.conditions, DEGRADED, true, "ClusterError", errors.join("; "), g, &now);
    }
    let complete = succeeded == total && unplaced == 0;
    conditions::set(&mut new.conditions, COMPLETE, complete, if complete { "AllJobsComplete" } else { "Running" }, format!("{succeeded}/{total} Jobs complete"), g, &now);
    conditions::set(&mut new.conditions, FAILED, failed > 0, if failed > 0 { "JobFailed" } else { "NoFailure" }, format!("{failed}/{total} Jobs failed"), g, &now);

    // Events for transitions.
    if desired != current {
        let summary: Vec<String> = desired.keys().cloned().collect();
        let (t, r) = if unplaced > 0 { (EventType::Warning, "Bursting") } else { (EventType::Normal, "Placed") };
        shared::publish(&ctx, mcj.as_ref(), t, r, "Place", &format!("Jobs in [{}] by {policy}; {unplaced} unplaced", summary.join(", "))).await;
    }
    for j in &new.jobs {
        let was = recorded.get(&j.cluster).map(|b| b.state.as_str()).unwrap_or(PENDING);
        if finished(&j.state) && was != j.state {
            let t = if j.state == COMPLETED { EventType::Normal } else { EventType::Warning };
            let note = format!("{}: Job {} ({} succeeded, {} failed pods)", j.cluster, j.state.to_lowercase(), j.succeeded, j.failed);
            shared::publish(&ctx, mcj.as_ref(), t, &format!("Job{}", j.state), "Run", &note).await;
        }
    }
    shared::write_status(&ctx, mcj.as_ref(), &status, &new, mcj.status.is_some()).await?;
    ctx.mcj_status.remember(mcj.as_ref(), new);

    Ok(Action::requeue(if !errors.is_empty() || policy_error.is_some() {
        ctx.timing.error_retry
    } else if unplaced > 0 {
        ctx.timing.burst_retry
    } else {
        ctx.timing.resync
    }))
}

/// InvalidSpec: say why, and touch nothing in any workload cluster.
async fn reject(mcj: &MultiClusterJob, ctx: &Context, status: MultiClusterJobStatus, msg: &str, now: Time) -> Result<Action, Error> {
    ctx.scheduler.forget(&owner_key(mcj));
    let mut new = status.clone();
    let g = mcj.metadata.generation;
    conditions::set(&mut new.conditions, INVALID_SPEC, true, "InvalidSpec", msg, g, &now);
    if status.observed_generation != g || status.conditions.iter().all(|c| c.type_ != INVALID_SPEC || c.status != "True" || c.message != msg) {
        shared::publish(ctx, mcj, EventType::Warning, "InvalidSpec", "Place", msg).await;
    }
    new.observed_generation = g;
    shared::write_status(ctx, mcj, &status, &new, mcj.status.is_some()).await?;
    Ok(Action::await_change())
}

async fn cleanup(mcj: Arc<MultiClusterJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let owner = owner_key(&mcj);
    for member in ctx.clusters.members() {
        children::delete_owned(&ctx.applied, &member, KIND, &owner.namespace, &owner.name, &member.jobs_of(&owner)).await?;
    }
    ctx.scheduler.forget(&owner);
    ctx.mcj_status.forget(mcj.as_ref());
    shared::publish(&ctx, mcj.as_ref(), EventType::Normal, "Deleted", "Place", "Jobs and their pods deleted in every cluster").await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn job_state_follows_the_conditions() {
        let job: Job = serde_json::from_value(serde_json::json!({"status": {"active": 1, "succeeded": 2}})).unwrap();
        assert_eq!(job_state(&job).state, RUNNING);
        assert_eq!((job_state(&job).active, job_state(&job).succeeded), (1, 2));
        let done: Job = serde_json::from_value(serde_json::json!({"status": {"succeeded": 3, "conditions": [{"type": "Complete", "status": "True"}]}})).unwrap();
        assert_eq!(job_state(&done).state, COMPLETED);
        let failed: Job = serde_json::from_value(serde_json::json!({"status": {"failed": 7, "conditions": [{"type": "Failed", "status": "True"}]}})).unwrap();
        assert_eq!(job_state(&failed).state, FAILED_STATE);
    }
}
