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
//!
//! This file is the I/O shell; what to do is decided in [`plan`].

use crate::children::{self, Outcome};
use crate::context::Context;
use crate::render::{self, Owner};
use crate::shared;
use crate::spec::{self, ParsedJob};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use mck8s_api::{ClusterJob, MultiClusterJob, MultiClusterJobStatus};
use mck8s_fleet::{Health, OwnerKey};
use mck8s_scheduler::{Placed, PlacementRequest, ScheduleError};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const KIND: &str = "MultiClusterJob";
pub const FINALIZER: &str = shared::FINALIZER;

mod plan;

pub use plan::{COMPLETED, FAILED_STATE, PENDING, RUNNING};

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

/// The shared [`Context`] and this controller's status memo.
type State = shared::WithMemo<MultiClusterJobStatus>;

pub async fn run(ctx: Arc<Context>, watch_namespace: Option<String>) {
    let api: Api<MultiClusterJob> = shared::scoped_api(&ctx.watches, &watch_namespace);
    let triggers = shared::owner_triggers(&ctx, KIND, watch_namespace);
    let cluster_changes = shared::cluster_changes(&ctx);
    // An MCJ created before its policy loaded is InvalidSpec until the policy appears.
    let policy_changes = shared::policy_changes(&ctx);
    let results = shared::controller(api, &ctx, shared::Wake::SpecOrLifecycle).reconcile_on(triggers).reconcile_all_on(policy_changes).reconcile_all_on(cluster_changes).run(
        reconcile,
        shared::error_policy,
        Arc::new(State { ctx, status: Default::default() }),
    );
    shared::drive(KIND, results).await;
}

fn owner_key(mcj: &MultiClusterJob) -> OwnerKey {
    OwnerKey { kind: KIND.into(), namespace: mcj.namespace().unwrap_or_default(), name: mcj.name_any() }
}

async fn reconcile(obj: Arc<MultiClusterJob>, state: Arc<State>) -> Result<Action, Error> {
    shared::reconcile(&state, KIND, obj, apply, cleanup, Error::Finalizer).await
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

async fn apply(mcj: Arc<MultiClusterJob>, own: Arc<State>) -> Result<Action, Error> {
    let ctx = &own.ctx;
    let owner = owner_key(&mcj);
    let status = own.status.current(mcj.as_ref(), mcj.status.clone().unwrap_or_default());
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let g = mcj.metadata.generation;

    let parsed: ParsedJob = match spec::parse_job(&owner.name, &owner.namespace, &mcj.spec) {
        Ok(p) => p,
        Err(invalid) => return reject(&mcj, ctx, status, &invalid.0, now).await,
    };
    let policy = parsed.spec.policy.clone();
    if let Err(e) = ctx.scheduler.registry().get(&policy) {
        let known: Vec<String> = ctx.scheduler.registry().list().iter().map(|p| p.name.clone()).collect();
        return reject(&mcj, ctx, status, &format!("unknown placementPolicy {policy:?} ({}); loaded policies: {}", e.kind, known.join(", ")), now).await;
    }
    let uid = mcj.uid().unwrap_or_default();
    let o = Owner { kind: KIND, namespace: &owner.namespace, name: &owner.name, uid: &uid };
    let body = match render::job(&o, &parsed.spec.deployment) {
        Ok(b) => b,
        Err(e) => return reject(&mcj, ctx, status, &format!("cannot render the Job: {e}"), now).await,
    };

    // Decide for the Jobs still without a cluster.
    let current = plan::recorded(&status);
    let mut policy_error = None;
    let mut decision = None;
    if (current.len() as u32) < parsed.wanted {
        let mut workload = parsed.spec.workload.clone();
        workload.current = current.clone();
        let decided = match ctx.cycle() {
            Ok(cycle) => {
                workload.current.retain(|c, _| cycle.snapshot.index_of(c).is_some());
                let (scheduler, req) = (ctx.scheduler.clone(), PlacementRequest { owner: owner.clone(), policy: policy.clone(), workload });
                ctx.policy_calls.run(move || scheduler.place(&cycle, &req)).await
            }
            Err(e) => Err(ScheduleError::from(e)),
        };
        match decided {
            Ok(d) => {
                ctx.metrics.decisions.get_or_create(&crate::metrics::PolicyLabel { policy: mck8s_policy::registry::normalize(&policy) }).inc();
                if let Some(run) = &d.shadow {
                    shared::report_shadow(ctx, mcj.as_ref(), &policy, run).await;
                }
                decision = Some(d);
            }
            Err(ScheduleError::Input(e)) => return reject(&mcj, ctx, status, &e.to_string(), now).await,
            Err(ScheduleError::Policy(e)) => {
                shared::publish(ctx, mcj.as_ref(), EventType::Warning, "PolicyFailed", "Place", &e.to_string()).await;
                policy_error = Some(e.to_string());
            }
        }
    } else {
        ctx.scheduler.remember(&owner, &parsed.spec.request, &current);
    }
    let placement = plan::placement(&status, decision.as_ref().map(|p: &Placed| &p.decision), parsed.wanted);

    // One Job per chosen cluster: created, repaired while it runs, left alone once finished.
    let mut live_jobs = BTreeMap::new();
    let mut members = BTreeMap::new();
    for cluster in placement.desired.keys() {
        let Some(member) = ctx.clusters.get(cluster) else { continue };
        let live = member.job_of(&owner);
        let running = live.as_ref().filter(|j| j.metadata.deletion_timestamp.is_none()).map(|j| job_state(j));
        members.insert(cluster.clone(), plan::MemberView { reachable: member.health() != Health::Unreachable, live: running });
        live_jobs.insert(cluster.clone(), (member, live));
    }
    let mut jobs = plan::jobs(&status, &placement.desired, &members);
    for cluster in &jobs.apply {
        let Some((member, live)) = live_jobs.get(cluster) else { continue };
        let outcome = children::apply(&ctx.applied, member, &body, live.as_deref()).await;
        crate::mcd::count_apply(ctx, "Job", &outcome);
        match outcome {
            // Created (there was none, or only one being deleted).
            Ok(Outcome::Applied) if live.as_ref().is_none_or(|j| j.metadata.deletion_timestamp.is_some()) => {
                tracing::info!(%cluster, "job created");
                jobs.jobs.iter_mut().filter(|j| &j.cluster == cluster).for_each(plan::started);
            }
            Ok(_) => {}
            Err(e) if e.is_invalid() => jobs.errors.push(format!("{e} (a Job's template cannot change: delete and re-create the MultiClusterJob)")),
            Err(e) => jobs.errors.push(e.to_string()),
        }
    }

    let new = plan::status(plan::StatusInput {
        status: &status,
        generation: g,
        policy: &policy,
        wanted: parsed.wanted,
        replicas_per_job: parsed.spec.workload.replicas,
        placement: &placement,
        jobs: jobs.jobs,
        errors: &jobs.errors,
        policy_error: policy_error.as_deref(),
        now: &now,
    });
    for e in plan::events(&status, &new, &policy, decision.as_ref().map(|p| &p.passed_over)) {
        shared::publish(ctx, mcj.as_ref(), if e.warning { EventType::Warning } else { EventType::Normal }, &e.reason, e.action, &e.note).await;
    }
    let produced = shared::write_status(ctx, mcj.as_ref(), &status, &new, mcj.status.is_some()).await?;
    own.status.remember(mcj.as_ref(), produced, new);
    Ok(Action::requeue(plan::requeue(!jobs.errors.is_empty() || policy_error.is_some(), placement.unplaced, &ctx.timing)))
}

/// Replicas (Jobs) per cluster as `status` records them.
pub(crate) fn recorded(status: &MultiClusterJobStatus) -> BTreeMap<String, u32> {
    plan::recorded(status)
}

/// `mck8s explain`: what a decision for `mcj`'s Jobs would be on the fleet as it is now,
/// recorded nowhere; and the placement its status records.
pub(crate) async fn explain(ctx: &Context, mcj: &MultiClusterJob) -> Result<(mck8s_scheduler::Explanation, BTreeMap<String, u32>), crate::explain::ExplainError> {
    let owner = owner_key(mcj);
    let parsed = spec::parse_job(&owner.name, &owner.namespace, &mcj.spec).map_err(|e| crate::explain::ExplainError::Invalid(e.0))?;
    let current = plan::recorded(&mcj.status.clone().unwrap_or_default());
    let cycle = ctx.cycle().map_err(ScheduleError::from)?;
    let mut workload = parsed.spec.workload.clone();
    workload.current = current.iter().filter(|(c, _)| cycle.snapshot.index_of(c).is_some()).map(|(c, r)| (c.clone(), *r)).collect();
    let (scheduler, req) = (ctx.scheduler.clone(), PlacementRequest { owner, policy: parsed.spec.policy.clone(), workload });
    let explanation = ctx.policy_calls.run(move || scheduler.explain(&cycle, &req)).await?;
    Ok((explanation, current))
}

/// InvalidSpec: say why, and touch nothing in any workload cluster.
async fn reject(mcj: &MultiClusterJob, ctx: &Context, status: MultiClusterJobStatus, msg: &str, now: Time) -> Result<Action, Error> {
    ctx.scheduler.forget(&owner_key(mcj));
    Ok(shared::reject(ctx, mcj, &status, mcj.status.is_some(), "Place", msg, now).await?)
}

async fn cleanup(mcj: Arc<MultiClusterJob>, state: Arc<State>) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let owner = owner_key(&mcj);
    for member in ctx.clusters.members() {
        children::delete_owned(&ctx.applied, &member, KIND, &owner.namespace, &owner.name, &member.jobs_of(&owner)).await?;
    }
    ctx.scheduler.forget(&owner);
    state.status.forget(mcj.as_ref());
    shared::publish(ctx, mcj.as_ref(), EventType::Normal, "Deleted", "Place", "Jobs and their pods deleted in every cluster").await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

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
