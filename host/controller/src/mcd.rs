//! The MultiClusterDeployment controller: spec → policy decision → child Deployments by
//! server-side apply in the chosen clusters → removal elsewhere → status.
//!
//! A placement is decided when the spec changes (mck8s re-placed on every spec update),
//! when it left replicas unplaced (retried every 30 s, as mck8s did), when a cluster it
//! uses left the registry, failed beyond the grace period (failover) or, having failed, is
//! Ready again (failback; see [`crate::failover`]). Otherwise the recorded placement is
//! re-applied, which also puts back children edited or deleted by hand. Children in
//! clusters no longer chosen drain: they go once the new placement is ready.

use crate::children;
use crate::context::Context;
use crate::failover::{self, Drain};
use crate::render::{self, Owner};
use crate::shared;
use crate::spec::{self, ParsedSpec};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use mck8s_api::conditions::{self, BURSTING, DEGRADED, INVALID_SPEC, PLACED, READY};
use mck8s_api::mcd::LegacyMessage;
use mck8s_api::{ClusterPlacement, DrainingChild, MultiClusterDeployment, MultiClusterDeploymentStatus};
use mck8s_policy::Decision;
use mck8s_policy::input::HealthDoc;
use mck8s_scheduler::{OwnerKey, PlacementRequest, ScheduleError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

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

/// Bytes of per-cluster reasons kept in one status, however many clusters there are.
const REASONS_MAX: usize = 16 << 10;

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
    let results = Controller::new(api, mck8s_clusters::watch_config())
        .reconcile_on(triggers)
        .reconcile_on(reschedules)
        .reconcile_all_on(policy_changes)
        .reconcile_all_on(cluster_changes)
        .shutdown_on_signal()
        .run(reconcile, shared::error_policy, ctx);
    shared::drive(results).await;
}

fn object_label(o: &OwnerKey) -> crate::metrics::ObjectLabel {
    crate::metrics::ObjectLabel { kind: o.kind.clone(), namespace: o.namespace.clone(), name: o.name.clone() }
}

fn owner_key(mcd: &MultiClusterDeployment) -> OwnerKey {
    OwnerKey { kind: KIND.into(), namespace: mcd.namespace().unwrap_or_default(), name: mcd.name_any() }
}

async fn reconcile(obj: Arc<MultiClusterDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    shared::reconcile(&ctx, KIND, obj, apply, cleanup, Error::Finalizer).await
}

/// The placement recorded in status, as cluster → replicas.
fn recorded(status: Option<&MultiClusterDeploymentStatus>) -> BTreeMap<String, u32> {
    status.map(|s| s.placement.iter().map(|p| (p.cluster.clone(), p.replicas.max(0) as u32)).collect()).unwrap_or_default()
}

async fn apply(mcd: Arc<MultiClusterDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let owner = owner_key(&mcd);
    let generation = mcd.metadata.generation;
    let status = ctx.mcd_status.current(mcd.as_ref(), mcd.status.clone().unwrap_or_default());
    let now = Time(k8s_openapi::jiff::Timestamp::now());

    let parsed = match spec::parse(&owner.name, &owner.namespace, &mcd.spec) {
        Ok(p) => p,
        Err(invalid) => return reject(&mcd, &ctx, &owner, status, &invalid.0, now).await,
    };
    if let Err(e) = ctx.scheduler.registry().get(&parsed.policy) {
        let known: Vec<String> = ctx.scheduler.registry().list().iter().map(|p| p.name.clone()).collect();
        let msg = format!("unknown placementPolicy {:?} ({}); loaded policies: {}", parsed.policy, e.kind, known.join(", "));
        return reject(&mcd, &ctx, &owner, status, &msg, now).await;
    }

    let current = recorded(Some(&status));
    let clusters_gone = current.keys().any(|c| ctx.clusters.get(c).is_none());
    let health = |c: &str| ctx.clusters.get(c).map(|m| (m.health(), m.unhealthy_for()));
    let moves = failover::assess(current.keys(), &status.failed_over, ctx.timing.failover_grace, health);
    let mut must_decide = status.observed_generation != generation || current.is_empty() || status.unplaced > 0 || clusters_gone;
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
    let mut decision_error = None;
    let mut decision: Option<Decision> = None;
    // A rescheduler step is adopted only for the spec it was computed for, and only when
    // nothing else calls for a decision (which would supersede it).
    let proposal = ctx.reschedule.take(&owner);
    let mut rescheduled = None;
    if let Some(p) = proposal {
        let label = if !must_decide && p.generation == generation { "adopted" } else { "discarded" };
        ctx.metrics.reschedules.get_or_create(&crate::metrics::ResultLabel { result: label.into() }).inc();
        if label == "adopted" {
            ctx.scheduler.remember(&owner, &parsed.request, &p.placement);
            let placements = p
                .placement
                .iter()
                .map(|(c, r)| mck8s_policy::session::ClusterReplicas { cluster: c.clone(), replicas: *r, reason: format!("rescheduled from the cloud ({})", p.note) })
                .collect();
            decision = Some(Decision {
                policy: parsed.policy.clone(),
                digest: status.policy_digest.clone().unwrap_or_default(),
                placements,
                unplaced: 0,
                summary: format!("rescheduled: {}", p.note),
            });
            rescheduled = Some(p);
        }
    }
    if must_decide {
        let app_traffic = app_traffic(&ctx, &owner, &parsed, &current).await;
        match decide(&ctx, &owner, &parsed, &current, app_traffic) {
            Ok(d) => decision = Some(d),
            Err(ScheduleError::Input(e)) => return reject(&mcd, &ctx, &owner, status, &e.to_string(), now).await,
            Err(ScheduleError::Policy(e)) => {
                ctx.metrics.policy_errors.get_or_create(&crate::metrics::PolicyError { policy: parsed.policy.clone(), error: e.kind.label().into() }).inc();
                publish(&ctx, &mcd, EventType::Warning, "PolicyFailed", &e.to_string()).await;
                decision_error = Some(e.to_string());
            }
        }
    } else if rescheduled.is_none() {
        // Keep the recorded placement deducted until its pods are bound (after a restart
        // the ledger starts empty).
        ctx.scheduler.remember(&owner, &parsed.request, &current);
    }
    // Without a new decision (or when the policy failed), the last good placement stands.
    let desired: BTreeMap<String, u32> = match &decision {
        Some(d) => d.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect(),
        None => current.clone(),
    };
    let unplaced = decision.as_ref().map(|d| d.unplaced).unwrap_or(status.unplaced.max(0) as u32);
    let failed_over = match &decision {
        Some(_) => {
            let before: BTreeSet<String> = current.keys().cloned().collect();
            let after: BTreeSet<String> = desired.keys().cloned().collect();
            failover::failed_over_after(&status.failed_over, &before, &after, |c| ctx.clusters.get(c).map(|m| m.health()))
        }
        None => status.failed_over.clone(),
    };

    // Ready replicas of the new placement, as the child watches see them.
    let mut placement = Vec::new();
    let mut ready_total = 0u32;
    let reasons: BTreeMap<String, String> = match &decision {
        Some(d) => d.placements.iter().map(|p| (p.cluster.clone(), p.reason.clone())).collect(),
        None => status.placement.iter().map(|p| (p.cluster.clone(), p.reason.clone())).collect(),
    };
    let reasons = shared::bounded_reasons(reasons, REASONS_MAX);
    for (cluster, replicas) in &desired {
        // An unreachable cluster's cached status is stale: count nothing ready there.
        let ready = ctx.clusters.get(cluster).filter(|m| m.health() != HealthDoc::Unreachable).map(|m| ready_of(&m.children_of(&owner))).unwrap_or(0);
        ready_total += ready.min(*replicas);
        placement.push(ClusterPlacement {
            cluster: cluster.clone(),
            replicas: *replicas as i32,
            ready_replicas: ready as i32,
            reason: reasons.get(cluster).cloned().unwrap_or_default(),
        });
    }
    let placed: u32 = desired.values().sum();

    // Propagate where chosen. A cluster given fewer replicas than its child runs keeps them
    // while the rest of the new placement is not ready (a move, not a scale-in, would
    // otherwise dip below the desired count), as a cluster no longer chosen does below.
    let uid = mcd.uid().unwrap_or_default();
    let o = Owner { kind: KIND, namespace: &owner.namespace, name: &owner.name, uid: &uid };
    let mut cluster_errors = Vec::new();
    let mut draining = Vec::new();
    for (cluster, replicas) in &desired {
        let mut apply = *replicas;
        if let Some(member) = ctx.clusters.get(cluster) {
            let running = spec_replicas_of(&member.children_of(&owner));
            if running > *replicas {
                let since = status.draining.iter().find(|d| d.cluster == *cluster).map(|d| d.since.clone()).unwrap_or_else(|| now.clone());
                let draining_for = Duration::from_millis(now.0.duration_since(since.0).as_millis().max(0) as u64);
                let reachable = member.health() != HealthDoc::Unreachable;
                if let Drain::Keep(reason) = failover::drain(reachable, ready_total, placed, unplaced, draining_for, ctx.timing.drain_timeout) {
                    apply = running;
                    let ready = ready_of(&member.children_of(&owner)).saturating_sub(*replicas);
                    draining.push(DrainingChild { cluster: cluster.clone(), replicas: (running - replicas) as i32, ready_replicas: ready as i32, since, reason: reason.into() });
                }
            }
        }
        if let Err(e) = apply_child(&ctx, cluster, &o, &parsed, apply).await {
            cluster_errors.push(e.to_string());
        }
    }

    // Children elsewhere drain: removed once the new placement is ready, never while their
    // cluster is unreachable.
    for member in ctx.clusters.members() {
        if desired.contains_key(&member.name) {
            continue;
        }
        let children = member.children_of(&owner);
        if children.is_empty() {
            continue;
        }
        let since = status.draining.iter().find(|d| d.cluster == member.name).map(|d| d.since.clone()).unwrap_or_else(|| now.clone());
        let draining_for = Duration::from_millis(now.0.duration_since(since.0).as_millis().max(0) as u64);
        let reachable = member.health() != HealthDoc::Unreachable;
        match failover::drain(reachable, ready_total, placed, unplaced, draining_for, ctx.timing.drain_timeout) {
            Drain::Delete => match children::delete_all(&ctx.applied, &member, &children).await {
                Ok(()) => {
                    tracing::info!(cluster = %member.name, ready_total, placed, "child removed: cluster no longer chosen and the new placement is ready");
                    ctx.metrics.moves.get_or_create(&crate::metrics::MoveLabel { kind: KIND.into(), reason: "drained".into() }).inc();
                    let note = format!("{}: child removed, the new placement is ready ({ready_total}/{placed})", member.name);
                    publish(&ctx, &mcd, EventType::Normal, "Drained", &note).await;
                }
                Err(e) => cluster_errors.push(e.to_string()),
            },
            Drain::Keep(reason) => draining.push(DrainingChild {
                cluster: member.name.clone(),
                replicas: spec_replicas_of(&children) as i32,
                ready_replicas: ready_of(&children) as i32,
                since,
                reason: reason.into(),
            }),
        }
    }

    // Status.
    let mut new = status.clone();
    new.observed_generation = if decision_error.is_some() && decision.is_none() { status.observed_generation } else { generation };
    if let Some(d) = &decision {
        new.policy = Some(parsed.policy.clone());
        new.policy_digest = Some(d.digest.clone());
    }
    new.replicas = (placed + unplaced) as i32;
    new.ready_replicas = ready_total as i32;
    new.unplaced = unplaced as i32;
    new.summary = Some(desired.iter().map(|(c, r)| format!("{c}={r}")).collect::<Vec<_>>().join(","));
    new.placement = placement;
    new.draining = draining;
    new.failed_over = failed_over;
    let g = generation;
    conditions::set(&mut new.conditions, INVALID_SPEC, false, "Valid", "", g, &now);
    if let Some(e) = &decision_error {
        conditions::set(&mut new.conditions, PLACED, !desired.is_empty(), "PolicyFailed", format!("{e}; the last placement stands"), g, &now);
    } else {
        let summary = decision.as_ref().map(|d| d.summary.clone()).filter(|s| !s.is_empty());
        conditions::set(&mut new.conditions, PLACED, true, "Placed", summary.unwrap_or_else(|| format!("{} replicas in {} clusters", placed, desired.len())), g, &now);
    }
    if unplaced > 0 {
        conditions::set(&mut new.conditions, BURSTING, true, "NoCapacity", format!("{unplaced} replicas fit in no cluster; waiting for capacity (a cloud cluster)"), g, &now);
        new.message = Some(LegacyMessage { message: "to_cloud".into(), replicas: serde_json::json!(unplaced) });
    } else {
        conditions::set(&mut new.conditions, BURSTING, false, "Placed", "every replica has a cluster", g, &now);
        new.message = Some(LegacyMessage { message: "provisioned".into(), replicas: serde_json::json!(desired.values().collect::<Vec<_>>()) });
    }
    if !cluster_errors.is_empty() {
        conditions::set(&mut new.conditions, DEGRADED, true, "ClusterError", cluster_errors.join("; "), g, &now);
    } else if let Some((c, h, down)) = moves.failed.first().filter(|_| decision.is_none()) {
        conditions::set(&mut new.conditions, DEGRADED, true, "ClusterFailed", format!("{c} is {h:?} for {}s; failover waits for the move rate limit", down.as_secs()), g, &now);
    } else {
        conditions::set(&mut new.conditions, DEGRADED, false, "AllClustersReached", "", g, &now);
    }
    let all_ready = unplaced == 0 && ready_total == placed && placed > 0;
    conditions::set(
        &mut new.conditions,
        READY,
        all_ready,
        if all_ready { "AllReplicasReady" } else { "ReplicasNotReady" },
        format!("{ready_total}/{} ready", placed + unplaced),
        g,
        &now,
    );

    if let Some(d) = &decision
        && recorded(Some(&new)) != current
    {
        let summary = new.summary.clone().unwrap_or_default();
        if let Some(p) = &rescheduled {
            count_moves(&ctx, "rescheduled", p.moved as usize);
            publish(&ctx, &mcd, EventType::Normal, "Rescheduled", &format!("{} replicas back to the fog: {}; now {summary}", p.moved, p.note)).await;
        } else if !moves.failed.is_empty() {
            let why: Vec<String> = moves.failed.iter().map(|(c, h, down)| format!("{c} {h:?} for {}s", down.as_secs())).collect();
            count_moves(&ctx, "failover", moves.failed.len());
            publish(&ctx, &mcd, EventType::Warning, "FailedOver", &format!("{}: placed again by {}: {summary}; {} unplaced", why.join(", "), parsed.policy, d.unplaced)).await;
        } else if !moves.recovered.is_empty() {
            count_moves(&ctx, "failback", moves.recovered.len());
            publish(&ctx, &mcd, EventType::Normal, "FailedBack", &format!("{} Ready again: placed again by {}: {summary}", moves.recovered.join(", "), parsed.policy)).await;
        } else {
            let kind = if unplaced > 0 { EventType::Warning } else { EventType::Normal };
            let reason = if unplaced > 0 { "Bursting" } else { "Placed" };
            publish(&ctx, &mcd, kind, reason, &format!("{summary} by {}; {} unplaced", parsed.policy, d.unplaced)).await;
        }
    }
    write_status(&ctx, &mcd, &status, new.clone()).await?;
    ctx.metrics.unplaced.get_or_create(&object_label(&owner)).set(i64::from(unplaced));

    let mut next = if !cluster_errors.is_empty() || decision_error.is_some() {
        ctx.timing.error_retry
    } else if unplaced > 0 {
        ctx.timing.burst_retry
    } else {
        ctx.timing.resync
    };
    // Wake up when a failing cluster's grace ends, when the rate limit lets a move through,
    // and while children drain (their timeout; readiness changes wake us earlier).
    for wake in [moves.grace_left.map(|d| d + Duration::from_millis(100)), throttled, (!new.draining.is_empty()).then_some(ctx.timing.drain_timeout.min(ctx.timing.resync))]
        .into_iter()
        .flatten()
    {
        next = next.min(wake);
    }
    Ok(Action::requeue(next))
}

fn count_moves(ctx: &Context, reason: &str, n: usize) {
    ctx.metrics.moves.get_or_create(&crate::metrics::MoveLabel { kind: KIND.into(), reason: reason.into() }).inc_by(n as u64);
}

/// Replicas a cluster's children are set to, as last seen.
fn spec_replicas_of(children: &[Arc<Deployment>]) -> u32 {
    children.iter().map(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as u32).sum()
}

/// Ready replicas of a cluster's children, as last seen.
fn ready_of(children: &[Arc<Deployment>]) -> u32 {
    children.iter().map(|d| d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32).sum()
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

fn decide(ctx: &Context, owner: &OwnerKey, parsed: &ParsedSpec, current: &BTreeMap<String, u32>, app_traffic: BTreeMap<String, f64>) -> Result<Decision, ScheduleError> {
    let started = std::time::Instant::now();
    let cycle = ctx.clusters.cycle()?;
    let mut workload = parsed.workload.clone();
    workload.current = current.iter().filter(|(c, _)| cycle.snapshot.index_of(c).is_some()).map(|(c, r)| (c.clone(), *r)).collect();
    workload.app_traffic = app_traffic.into_iter().filter(|(c, _)| cycle.snapshot.index_of(c).is_some()).collect();
    let req = PlacementRequest { owner: owner.clone(), policy: parsed.policy.clone(), workload };
    let d = ctx.scheduler.place(&cycle, &req)?;
    let label = crate::metrics::PolicyLabel { policy: mck8s_policy::registry::normalize(&parsed.policy) };
    ctx.metrics.decisions.get_or_create(&label).inc();
    ctx.metrics.decision_seconds.get_or_create(&label).observe(started.elapsed().as_secs_f64());
    tracing::info!(placement = ?d.placements.iter().map(|p| (&p.cluster, p.replicas)).collect::<Vec<_>>(), unplaced = d.unplaced, "placement decided");
    Ok(d)
}

async fn apply_child(ctx: &Context, cluster: &str, owner: &Owner<'_>, parsed: &ParsedSpec, replicas: u32) -> Result<(), Error> {
    let err = |message: String| Error::Cluster { cluster: cluster.to_string(), message };
    let member = ctx.clusters.get(cluster).ok_or_else(|| err("not registered".into()))?;
    if member.health() == HealthDoc::Unreachable {
        return Err(err("unreachable".into()));
    }
    let child = render::deployment(owner, &parsed.deployment, replicas).map_err(|e| err(format!("rendering the Deployment: {e}")))?;
    let live = member.children_of(&owner_key_of(owner)).into_iter().find(|d| d.metadata.name.as_deref() == Some(owner.name));
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
async fn reject(mcd: &MultiClusterDeployment, ctx: &Context, owner: &OwnerKey, status: MultiClusterDeploymentStatus, msg: &str, now: Time) -> Result<Action, Error> {
    ctx.scheduler.forget(owner);
    let mut new = status.clone();
    let g = mcd.metadata.generation;
    conditions::set(&mut new.conditions, INVALID_SPEC, true, "InvalidSpec", msg, g, &now);
    if status.observed_generation != g || status.conditions.iter().all(|c| c.type_ != INVALID_SPEC || c.status != "True" || c.message != msg) {
        publish(ctx, mcd, EventType::Warning, "InvalidSpec", msg).await;
    }
    new.observed_generation = g;
    write_status(ctx, mcd, &status, new).await?;
    Ok(Action::await_change())
}

async fn cleanup(mcd: Arc<MultiClusterDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
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
    ctx.mcd_status.forget(mcd.as_ref());
    ctx.metrics.unplaced.remove(&object_label(&owner));
    publish(&ctx, &mcd, EventType::Normal, "Deleted", "children deleted in every cluster").await;
    Ok(Action::await_change())
}

async fn write_status(ctx: &Context, mcd: &MultiClusterDeployment, old: &MultiClusterDeploymentStatus, new: MultiClusterDeploymentStatus) -> Result<(), Error> {
    shared::write_status(ctx, mcd, old, &new, mcd.status.is_some()).await?;
    ctx.mcd_status.remember(mcd, new);
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
