//! The MultiClusterDeployment controller: spec → policy decision → child Deployments by
//! server-side apply in the chosen clusters → removal elsewhere → status. This file is the
//! I/O shell; what to do is decided in [`plan`].
//!
//! A placement is decided when the spec changes (mck8s re-placed on every spec update),
//! when it left replicas unplaced (retried every 30 s, as mck8s did), when a cluster it
//! uses left the registry, failed beyond the grace period (failover) or, having failed, is
//! Ready again (failback; see [`crate::failover`]). Otherwise the recorded placement is
//! re-applied, which also puts back children edited or deleted by hand. Children in
//! clusters no longer chosen drain: they go once the new placement is ready.

mod plan;
#[cfg(test)]
mod plan_tests;

use crate::children;
use crate::context::Context;
use crate::failover;
use crate::render::{self, Owner};
use crate::shared;
use crate::spec::{self, ParsedSpec};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use mck8s_api::conditions;
use mck8s_api::{MultiClusterDeployment, MultiClusterDeploymentStatus};
use mck8s_clusters::Member;
use mck8s_fleet::{Health, OwnerKey};
use mck8s_policy::Decision;
use mck8s_scheduler::{Explanation, FleetCycle, Placed, PlacementRequest, ScheduleError};
use plan::{ChildCounts, MemberView, Outcome};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const KIND: &str = "MultiClusterDeployment";
pub const FINALIZER: &str = shared::FINALIZER;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Said as kube says it: a prefix here would repeat under a chain printer, which
    /// prints the source after it.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("cluster {cluster}: {message}")]
    Cluster { cluster: String, message: String },
    /// Already names its cluster.
    #[error(transparent)]
    Child(#[from] children::ChildError),
}

/// The shared [`Context`] and this controller's status memo.
type State = shared::WithMemo<MultiClusterDeploymentStatus>;

pub async fn run(ctx: Arc<Context>, watch_namespace: Option<String>) {
    let api: Api<MultiClusterDeployment> = shared::scoped_api(&ctx.watches, &watch_namespace);
    // Children or their pods changed in some cluster: reconcile the owner.
    let triggers = shared::owner_triggers(&ctx, KIND, watch_namespace);
    // A policy loaded, replaced or removed: re-check every object (one naming a policy that
    // just appeared was InvalidSpec until now).
    let policy_changes = shared::policy_changes(&ctx);
    // A cluster added, removed, lost or back: re-check every object (placements using a
    // cluster that left are decided again).
    let cluster_changes = shared::cluster_changes(&ctx);
    // The rescheduler proposed a move from the cloud.
    let reschedules = ctx.reschedule.triggers().map(shared::tokio_stream);
    let reschedules = futures::stream::iter(reschedules).flatten().map(|o: OwnerKey| ObjectRef::new(&o.name).within(&o.namespace));
    let results = shared::controller(api, &ctx, shared::Wake::SpecOrLifecycle)
        .reconcile_on(triggers)
        .reconcile_on(reschedules)
        .reconcile_all_on(policy_changes)
        .reconcile_all_on(cluster_changes)
        .run(reconcile, shared::error_policy, Arc::new(State { ctx, status: Default::default() }));
    shared::drive(KIND, results).await;
}

fn object_label(o: &OwnerKey) -> crate::metrics::ObjectLabel {
    crate::metrics::ObjectLabel { kind: o.kind.clone(), namespace: o.namespace.clone(), name: o.name.clone() }
}

fn owner_key(mcd: &MultiClusterDeployment) -> OwnerKey {
    OwnerKey { kind: KIND.into(), namespace: mcd.namespace().unwrap_or_default(), name: mcd.name_any() }
}

async fn reconcile(obj: Arc<MultiClusterDeployment>, state: Arc<State>) -> Result<Action, Error> {
    shared::reconcile(&state, KIND, obj, apply, cleanup, Error::Finalizer).await
}

async fn apply(mcd: Arc<MultiClusterDeployment>, state: Arc<State>) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let owner = owner_key(&mcd);
    let generation = mcd.metadata.generation;
    let status = state.status.current(mcd.as_ref(), mcd.status.clone().unwrap_or_default());
    let now = Time(k8s_openapi::jiff::Timestamp::now());

    let parsed = match spec::parse(&owner.name, &owner.namespace, &mcd.spec) {
        Ok(p) => p,
        Err(invalid) => return reject(&mcd, &state, &owner, status, &invalid.0, now).await,
    };
    if let Err(e) = ctx.scheduler.registry().get(&parsed.policy) {
        let known: Vec<String> = ctx.scheduler.registry().list().iter().map(|p| p.name.clone()).collect();
        let msg = format!("unknown placementPolicy {:?} ({}); loaded policies: {}", parsed.policy, e.kind, known.join(", "));
        return reject(&mcd, &state, &owner, status, &msg, now).await;
    }

    // Observe: the recorded placement's clusters, and whether anything calls for a decision.
    let current = plan::recorded(&status);
    let clusters_gone = current.keys().any(|c| ctx.clusters.get(c).is_none());
    let health = |c: &str| ctx.clusters.get(c).map(|m| (m.health(), m.unhealthy_for()));
    let moves = failover::assess(current.keys(), &status.failed_over, ctx.timing.failover_grace, health);
    let mut must_decide = plan::must_decide(&status, generation, clusters_gone);
    let mut throttled = None;
    if moves.wants_move() && !must_decide {
        match ctx.moves.try_take() {
            Ok(()) => must_decide = true,
            Err(wait) => {
                ctx.metrics.moves_throttled.inc();
                throttled = Some(wait);
            }
        }
    }

    // Decide: the policy, a rescheduler step, or the recorded placement.
    let outcome = match adopt_reschedule(ctx, &owner, &parsed, &status, generation, must_decide) {
        Some(outcome) => outcome,
        None if must_decide => {
            let app_traffic = app_traffic(ctx, &owner, &parsed, &current).await;
            match decide(ctx, &owner, &parsed, &current, app_traffic).await {
                Ok(d) => {
                    if let Some(run) = &d.shadow {
                        shared::report_shadow(ctx, mcd.as_ref(), &parsed.policy, run).await;
                    }
                    Outcome::Decided(d)
                }
                Err(ScheduleError::Input(e)) => return reject(&mcd, &state, &owner, status, &e.to_string(), now).await,
                Err(ScheduleError::Policy(e)) => {
                    ctx.metrics.policy_errors.get_or_create(&crate::metrics::PolicyError { policy: parsed.policy.clone(), error: e.kind.label().into() }).inc();
                    publish(ctx, &mcd, EventType::Warning, "PolicyFailed", &e.to_string()).await;
                    Outcome::Failed(e.to_string())
                }
            }
        }
        None => {
            // Keep the recorded placement deducted until its pods are bound (after a restart
            // the ledger starts empty).
            ctx.scheduler.remember(&owner, &parsed.request, &current);
            Outcome::Kept
        }
    };
    let decided = matches!(outcome, Outcome::Decided(_) | Outcome::Rescheduled { .. });
    let policy_failed = matches!(outcome, Outcome::Failed(_));

    // Plan, then act: children applied and removed as planned.
    let members: BTreeMap<String, MemberView> = ctx.clusters.members().iter().map(|m| (m.name.clone(), member_view(m, &owner))).collect();
    let input = plan::Input { generation, status: &status, policy: &parsed.policy, outcome, moves: &moves, members: &members, now: &now, drain_timeout: ctx.timing.drain_timeout };
    let mut plan = plan::plan(input);
    let uid = mcd.uid().unwrap_or_default();
    let o = Owner { kind: KIND, namespace: &owner.namespace, name: &owner.name, uid: &uid };
    let mut cluster_errors = Vec::new();
    for (cluster, replicas) in &plan.apply {
        if let Err(e) = apply_child(ctx, cluster, &o, &parsed, *replicas).await {
            cluster_errors.push(e.to_string());
        }
    }
    for cluster in &plan.delete {
        let Some(member) = ctx.clusters.get(cluster) else { continue };
        match children::delete_all(&ctx.applied, &member, &member.children_of(&owner)).await {
            Ok(()) => {
                let (ready, placed) = (plan.ready, plan.placed);
                tracing::info!(%cluster, ready, placed, "child removed: cluster no longer chosen and the new placement is ready");
                count_moves(ctx, "drained", 1);
                publish(ctx, &mcd, EventType::Normal, "Drained", &format!("{cluster}: child removed, the new placement is ready ({ready}/{placed})")).await;
            }
            Err(e) => cluster_errors.push(e.to_string()),
        }
    }

    plan::finish(&mut plan, &cluster_errors, &moves, decided, generation, &now);
    if let Some(e) = &plan.event {
        if let Some((reason, n)) = e.moves {
            count_moves(ctx, reason, n);
        }
        publish(ctx, &mcd, if e.warning { EventType::Warning } else { EventType::Normal }, e.reason, &e.note).await;
    }
    write_status(&state, &mcd, &status, plan.status.clone()).await?;
    ctx.metrics.unplaced.get_or_create(&object_label(&owner)).set(i64::from(plan.unplaced));
    Ok(Action::requeue(plan::requeue(&plan, !cluster_errors.is_empty() || policy_failed, &moves, throttled, &ctx.timing)))
}

/// A rescheduler step is adopted only for the spec it was computed for, and only when
/// nothing else calls for a decision (which would supersede it).
fn adopt_reschedule(ctx: &Context, owner: &OwnerKey, parsed: &ParsedSpec, status: &MultiClusterDeploymentStatus, generation: Option<i64>, must_decide: bool) -> Option<Outcome> {
    let p = ctx.reschedule.take(owner)?;
    let adopted = !must_decide && p.generation == generation;
    let label = if adopted { "adopted" } else { "discarded" };
    ctx.metrics.reschedules.get_or_create(&crate::metrics::ResultLabel { result: label.into() }).inc();
    if !adopted {
        return None;
    }
    ctx.scheduler.remember(owner, &parsed.request, &p.placement);
    let placements = p
        .placement
        .iter()
        .map(|(c, r)| mck8s_policy::session::ClusterReplicas { cluster: c.clone(), replicas: *r, reason: format!("rescheduled from the cloud ({})", p.note) })
        .collect();
    let summary = format!("rescheduled: {}", p.note);
    let decision = Decision { policy: parsed.policy.clone(), digest: status.policy_digest.clone().unwrap_or_default(), placements, unplaced: 0, summary };
    Some(Outcome::Rescheduled { decision, note: p.note, moved: p.moved })
}

/// What the plan needs of a cluster: its health and this object's children there.
fn member_view(member: &Member, owner: &OwnerKey) -> MemberView {
    let child = member.child_of(owner).map(|d| ChildCounts { replicas: spec_replicas_of(&d), ready: ready_of(&d) });
    MemberView { health: member.health(), child }
}

fn count_moves(ctx: &Context, reason: &str, n: usize) {
    ctx.metrics.moves.get_or_create(&crate::metrics::MoveLabel { kind: KIND.into(), reason: reason.into() }).inc_by(n as u64);
}

/// Replicas a cluster's child is set to, as last seen.
fn spec_replicas_of(d: &Deployment) -> u32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as u32
}

/// Ready replicas of a cluster's child, as last seen.
fn ready_of(d: &Deployment) -> u32 {
    d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32
}

/// mck8s's update mode for `most-traffic`: an app already running is ranked by its own
/// ingress per cluster rather than the whole cluster's. Best effort: without Prometheus or on
/// error the cluster-wide traffic is used.
async fn app_traffic(ctx: &Context, owner: &OwnerKey, parsed: &ParsedSpec, current: &BTreeMap<String, u32>) -> BTreeMap<String, f64> {
    let (Some(prom), false) = (&ctx.prometheus, current.is_empty()) else { return BTreeMap::new() };
    if mck8s_policy::registry::normalize(&parsed.policy) != "most-traffic" {
        return BTreeMap::new();
    }
    match prom.app_traffic(&owner.namespace, &owner.name).await {
        Ok(t) => t.into_iter().filter(|(c, _)| ctx.clusters.get(c).is_some()).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "app traffic; ranking by cluster traffic");
            BTreeMap::new()
        }
    }
}

/// Replicas per cluster as `status` records them.
pub(crate) fn recorded(status: &MultiClusterDeploymentStatus) -> BTreeMap<String, u32> {
    plan::recorded(status)
}

/// The request a decision for this object makes on `cycle`: its spec, where it runs now and
/// its own ingress, as far as the cycle knows those clusters.
fn request(owner: &OwnerKey, parsed: &ParsedSpec, current: &BTreeMap<String, u32>, app_traffic: BTreeMap<String, f64>, cycle: &FleetCycle) -> PlacementRequest {
    let mut workload = parsed.workload.clone();
    workload.current = current.iter().filter(|(c, _)| cycle.snapshot.index_of(c).is_some()).map(|(c, r)| (c.clone(), *r)).collect();
    workload.app_traffic = app_traffic.into_iter().filter(|(c, _)| cycle.snapshot.index_of(c).is_some()).collect();
    PlacementRequest { owner: owner.clone(), policy: parsed.policy.clone(), workload }
}

async fn decide(ctx: &Context, owner: &OwnerKey, parsed: &ParsedSpec, current: &BTreeMap<String, u32>, app_traffic: BTreeMap<String, f64>) -> Result<Placed, ScheduleError> {
    let started = std::time::Instant::now();
    let cycle = ctx.cycle()?;
    let req = request(owner, parsed, current, app_traffic, &cycle);
    let snapshot = started.elapsed();
    let scheduler = ctx.scheduler.clone();
    let (d, deciding) = ctx
        .policy_calls
        .run(move || {
            let started = std::time::Instant::now();
            (scheduler.place(&cycle, &req), started.elapsed())
        })
        .await;
    let d = d?;
    let label = crate::metrics::PolicyLabel { policy: mck8s_policy::registry::normalize(&parsed.policy) };
    ctx.metrics.decisions.get_or_create(&label).inc();
    // The snapshot and the decision, not the wait for a policy thread (`policy_call_wait`).
    ctx.metrics.decision_seconds.get_or_create(&label).observe((snapshot + deciding).as_secs_f64());
    let placement: Vec<_> = d.decision.placements.iter().map(|p| (&p.cluster, p.replicas)).collect();
    tracing::info!(?placement, unplaced = d.decision.unplaced, passed_over = %d.passed_over, "placement decided");
    Ok(d)
}

/// `mck8s explain`: what a decision for `mcd` would be on the fleet as it is now, with the
/// same input a real one gets, recorded nowhere; and the placement its status records.
pub(crate) async fn explain(ctx: &Context, mcd: &MultiClusterDeployment) -> Result<(Explanation, BTreeMap<String, u32>), crate::explain::ExplainError> {
    let owner = owner_key(mcd);
    let parsed = spec::parse(&owner.name, &owner.namespace, &mcd.spec).map_err(|e| crate::explain::ExplainError::Invalid(e.0))?;
    let status = mcd.status.clone().unwrap_or_default();
    let current = plan::recorded(&status);
    let app_traffic = app_traffic(ctx, &owner, &parsed, &current).await;
    let cycle = ctx.cycle().map_err(ScheduleError::from)?;
    let req = request(&owner, &parsed, &current, app_traffic, &cycle);
    let scheduler = ctx.scheduler.clone();
    let explanation = ctx.policy_calls.run(move || scheduler.explain(&cycle, &req)).await?;
    Ok((explanation, current))
}

async fn apply_child(ctx: &Context, cluster: &str, owner: &Owner<'_>, parsed: &ParsedSpec, replicas: u32) -> Result<(), Error> {
    let err = |message: String| Error::Cluster { cluster: cluster.to_string(), message };
    let member = ctx.clusters.get(cluster).ok_or_else(|| err("not registered".into()))?;
    if member.health() == Health::Unreachable {
        return Err(err("unreachable".into()));
    }
    let child = render::deployment(owner, &parsed.deployment, replicas).map_err(|e| err(format!("rendering the Deployment: {e}")))?;
    let live = member.child_of(&owner_key_of(owner));
    let outcome = children::apply(&ctx.applied, &member, &child, live.as_deref()).await;
    count_apply(ctx, "Deployment", &outcome);
    outcome.map(|_| ()).map_err(Error::Child)
}

pub(crate) fn count_apply(ctx: &Context, kind: &str, outcome: &Result<children::Outcome, children::ChildError>) {
    let result = match outcome {
        Ok(children::Outcome::Unchanged) => "unchanged",
        Ok(children::Outcome::Applied) => "applied",
        Err(_) => "error",
    };
    ctx.metrics.child_applies.get_or_create(&crate::metrics::KindResult { kind: kind.into(), result: result.into() }).inc();
}

fn owner_key_of(o: &Owner<'_>) -> OwnerKey {
    OwnerKey { kind: o.kind.into(), namespace: o.namespace.into(), name: o.name.into() }
}

/// InvalidSpec: say why, and touch nothing in any workload cluster.
async fn reject(mcd: &MultiClusterDeployment, state: &State, owner: &OwnerKey, status: MultiClusterDeploymentStatus, msg: &str, now: Time) -> Result<Action, Error> {
    let ctx = &state.ctx;
    ctx.scheduler.forget(owner);
    let (new, news) = conditions::invalid_spec(&status, msg, mcd.metadata.generation, &now);
    if news {
        publish(ctx, mcd, EventType::Warning, "InvalidSpec", msg).await;
    }
    write_status(state, mcd, &status, new).await?;
    Ok(Action::await_change())
}

async fn cleanup(mcd: Arc<MultiClusterDeployment>, state: Arc<State>) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let owner = owner_key(&mcd);
    let mut errors = Vec::new();
    for member in ctx.clusters.members() {
        if let Err(e) = children::delete_owned(&ctx.applied, &member, KIND, &owner.namespace, &owner.name, &member.children_of(&owner)).await {
            errors.push(Error::Child(e));
        }
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    ctx.scheduler.forget(&owner);
    state.status.forget(mcd.as_ref());
    ctx.metrics.unplaced.remove(&object_label(&owner));
    publish(ctx, &mcd, EventType::Normal, "Deleted", "children deleted in every cluster").await;
    Ok(Action::await_change())
}

async fn write_status(state: &State, mcd: &MultiClusterDeployment, old: &MultiClusterDeploymentStatus, new: MultiClusterDeploymentStatus) -> Result<(), Error> {
    let produced = shared::write_status(&state.ctx, mcd, old, &new, mcd.status.is_some()).await?;
    state.status.remember(mcd, produced, new);
    Ok(())
}

async fn publish(ctx: &Context, mcd: &MultiClusterDeployment, type_: EventType, reason: &str, note: &str) {
    shared::publish(ctx, mcd, type_, reason, "Place", note).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_kubernetes_error_is_reported_once_in_a_chain() {
        let api_error = || {
            let status: kube::core::Status =
                serde_json::from_value(serde_json::json!({"status": "Failure", "code": 409, "reason": "Conflict", "message": "the object has been modified"})).unwrap();
            kube::Error::Api(Box::new(status))
        };
        // Our wrapper adds nothing: before, the chain said the message twice.
        let ours = anyhow::Error::from(super::Error::from(api_error()));
        assert_eq!(format!("{ours:#}"), format!("{:#}", anyhow::Error::from(api_error())));
    }
}
