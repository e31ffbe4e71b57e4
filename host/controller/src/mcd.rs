//! The MultiClusterDeployment controller: spec → policy decision → child Deployments by
//! server-side apply in the chosen clusters → removal elsewhere → status.
//!
//! A placement is decided when the spec changes (mck8s re-placed on every spec update),
//! when it left replicas unplaced (retried every 30 s, as mck8s did), or when a cluster it
//! uses left the registry. Otherwise the recorded placement is re-applied, which also puts
//! back children edited or deleted by hand.

use crate::context::Context;
use crate::render::{self, Owner};
use crate::spec::{self, ParsedSpec};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use mck8s_api::conditions::{self, BURSTING, DEGRADED, INVALID_SPEC, PLACED, READY};
use mck8s_api::mcd::LegacyMessage;
use mck8s_api::{ClusterPlacement, MultiClusterDeployment, MultiClusterDeploymentStatus, labels};
use mck8s_policy::Decision;
use mck8s_scheduler::{OwnerKey, PlacementRequest, ScheduleError};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::Instrument;

pub const KIND: &str = "MultiClusterDeployment";
pub const FINALIZER: &str = "fogguru.eu/children";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("cluster {cluster}: {message}")]
    Cluster { cluster: String, message: String },
}

pub async fn run(ctx: Arc<Context>, watch_namespace: Option<String>) {
    let api: Api<MultiClusterDeployment> = match &watch_namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    // Children or their pods changed in some cluster: reconcile the owner.
    let owners = ctx.clusters.subscribe_owners();
    let triggers = tokio_stream(owners).filter_map(move |o| {
        let keep = o.kind == KIND && watch_namespace.as_ref().is_none_or(|ns| *ns == o.namespace);
        async move { keep.then(|| ObjectRef::new(&o.name).within(&o.namespace)) }
    });
    // A policy loaded, replaced or removed: re-check every object (one naming a policy that
    // just appeared was InvalidSpec until now).
    let policies = ctx.scheduler.registry().clone();
    let policy_changes = futures::stream::unfold(digests(&policies), move |last| {
        let policies = policies.clone();
        async move {
            let mut last = last;
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let now = digests(&policies);
                if now != last {
                    last = now;
                    return Some(((), last));
                }
            }
        }
    });
    // A cluster added, removed, lost or back: re-check every object (placements using a
    // cluster that left are decided again).
    let cluster_changes = tokio_stream(ctx.clusters.subscribe_health()).map(|_| ());
    Controller::new(api, watcher::Config::default())
        .reconcile_on(triggers)
        .reconcile_all_on(policy_changes)
        .reconcile_all_on(cluster_changes)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reconcile");
            }
        })
        .await;
}

fn digests(registry: &mck8s_policy::PolicyRegistry) -> Vec<(String, String)> {
    registry.list().iter().map(|p| (p.name.clone(), p.digest.clone())).collect()
}

fn tokio_stream<T: Send + 'static>(mut rx: tokio::sync::mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn error_policy(_mcd: Arc<MultiClusterDeployment>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed");
    Action::requeue(ctx.timing.error_retry)
}

fn object_label(o: &OwnerKey) -> crate::metrics::ObjectLabel {
    crate::metrics::ObjectLabel { kind: o.kind.clone(), namespace: o.namespace.clone(), name: o.name.clone() }
}

fn owner_key(mcd: &MultiClusterDeployment) -> OwnerKey {
    OwnerKey { kind: KIND.into(), namespace: mcd.namespace().unwrap_or_default(), name: mcd.name_any() }
}

async fn reconcile(mcd: Arc<MultiClusterDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = mcd.namespace().unwrap_or_else(|| "default".into());
    let span = tracing::info_span!("reconcile", kind = KIND, namespace = %ns, name = %mcd.name_any());
    let api: Api<MultiClusterDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, mcd, |event| async {
        match event {
            Finalizer::Apply(mcd) => apply(mcd, ctx.clone()).await,
            Finalizer::Cleanup(mcd) => cleanup(mcd, ctx.clone()).await,
        }
    })
    .instrument(span)
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    });
    let label = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics.reconciles.get_or_create(&crate::metrics::KindResult { kind: KIND.into(), result: label.into() }).inc();
    result
}

/// The placement recorded in status, as cluster → replicas.
fn recorded(status: Option<&MultiClusterDeploymentStatus>) -> BTreeMap<String, u32> {
    status.map(|s| s.placement.iter().map(|p| (p.cluster.clone(), p.replicas.max(0) as u32)).collect()).unwrap_or_default()
}

async fn apply(mcd: Arc<MultiClusterDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let owner = owner_key(&mcd);
    let generation = mcd.metadata.generation;
    let status = mcd.status.clone().unwrap_or_default();
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
    let must_decide = status.observed_generation != generation || current.is_empty() || status.unplaced > 0 || clusters_gone;
    let mut decision_error = None;
    let mut decision: Option<Decision> = None;
    if must_decide {
        let app_traffic = app_traffic(&ctx, &owner, &parsed, &current).await;
        match decide(&ctx, &owner, &parsed, &current, app_traffic) {
            Ok(d) => decision = Some(d),
            Err(ScheduleError::Input(e)) => return reject(&mcd, &ctx, &owner, status, &e.to_string(), now).await,
            Err(ScheduleError::Policy(e)) => {
                ctx.metrics
                    .policy_errors
                    .get_or_create(&crate::metrics::PolicyError { policy: parsed.policy.clone(), error: e.kind.label().into() })
                    .inc();
                publish(&ctx, &mcd, EventType::Warning, "PolicyFailed", &e.to_string()).await;
                decision_error = Some(e.to_string());
            }
        }
    } else {
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

    // Propagate: apply where chosen, then remove elsewhere.
    let uid = mcd.uid().unwrap_or_default();
    let o = Owner { kind: KIND, namespace: &owner.namespace, name: &owner.name, uid: &uid };
    let mut cluster_errors = Vec::new();
    for (cluster, replicas) in &desired {
        if let Err(e) = apply_child(&ctx, cluster, &o, &parsed, *replicas).await {
            cluster_errors.push(e.to_string());
        }
    }
    for member in ctx.clusters.members() {
        if desired.contains_key(&member.name) {
            continue;
        }
        for child in member.children_of(&owner) {
            let api: Api<Deployment> = Api::namespaced(member.client.clone(), &owner.namespace);
            match api.delete(&child.name_any(), &DeleteParams::background()).await {
                Ok(_) => tracing::info!(cluster = %member.name, "child removed: cluster no longer chosen"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => cluster_errors.push(format!("cluster {}: removing child: {e}", member.name)),
            }
        }
    }

    // Status.
    let reasons: BTreeMap<String, String> = match &decision {
        Some(d) => d.placements.iter().map(|p| (p.cluster.clone(), p.reason.clone())).collect(),
        None => status.placement.iter().map(|p| (p.cluster.clone(), p.reason.clone())).collect(),
    };
    let mut placement = Vec::new();
    let mut ready_total = 0;
    for (cluster, replicas) in &desired {
        let ready = ctx
            .clusters
            .get(cluster)
            .map(|m| m.children_of(&owner).iter().map(|d| d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)).sum::<i32>())
            .unwrap_or(0);
        ready_total += ready.min(*replicas as i32);
        placement.push(ClusterPlacement { cluster: cluster.clone(), replicas: *replicas as i32, ready_replicas: ready, reason: reasons.get(cluster).cloned().unwrap_or_default() });
    }
    let placed: u32 = desired.values().sum();
    let mut new = status.clone();
    new.observed_generation = if decision_error.is_some() && decision.is_none() { status.observed_generation } else { generation };
    if let Some(d) = &decision {
        new.policy = Some(parsed.policy.clone());
        new.policy_digest = Some(d.digest.clone());
    }
    new.replicas = (placed + unplaced) as i32;
    new.ready_replicas = ready_total;
    new.unplaced = unplaced as i32;
    new.summary = Some(desired.iter().map(|(c, r)| format!("{c}={r}")).collect::<Vec<_>>().join(","));
    new.placement = placement;
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
    if cluster_errors.is_empty() {
        conditions::set(&mut new.conditions, DEGRADED, false, "AllClustersReached", "", g, &now);
    } else {
        conditions::set(&mut new.conditions, DEGRADED, true, "ClusterError", cluster_errors.join("; "), g, &now);
    }
    let all_ready = unplaced == 0 && ready_total as u32 == placed && placed > 0;
    conditions::set(&mut new.conditions, READY, all_ready, if all_ready { "AllReplicasReady" } else { "ReplicasNotReady" }, format!("{ready_total}/{} ready", placed + unplaced), g, &now);

    if let Some(d) = &decision
        && recorded(Some(&new)) != current
    {
        let kind = if unplaced > 0 { EventType::Warning } else { EventType::Normal };
        let reason = if unplaced > 0 { "Bursting" } else { "Placed" };
        publish(&ctx, &mcd, kind, reason, &format!("{} by {}; {} unplaced", new.summary.clone().unwrap_or_default(), parsed.policy, d.unplaced)).await;
    }
    write_status(&ctx, &mcd, &status, new).await?;
    ctx.metrics.unplaced.get_or_create(&object_label(&owner)).set(i64::from(unplaced));

    Ok(if !cluster_errors.is_empty() || decision_error.is_some() {
        Action::requeue(ctx.timing.error_retry)
    } else if unplaced > 0 {
        Action::requeue(ctx.timing.burst_retry)
    } else {
        Action::requeue(ctx.timing.resync)
    })
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
    let child = render::deployment(owner, &parsed.deployment, replicas).map_err(|e| err(format!("rendering the Deployment: {e}")))?;
    let api: Api<Deployment> = Api::namespaced(member.client.clone(), owner.namespace);
    let pp = PatchParams::apply(labels::FIELD_MANAGER).force();
    match api.patch(owner.name, &pp, &Patch::Apply(&child)).await {
        Ok(_) => Ok(()),
        // The namespace does not exist there yet: create it, then retry once.
        Err(kube::Error::Api(s)) if s.code == 404 => {
            ensure_namespace(&member.client, owner.namespace).await.map_err(|e| err(format!("creating namespace {}: {e}", owner.namespace)))?;
            api.patch(owner.name, &pp, &Patch::Apply(&child)).await.map(|_| ()).map_err(|e| err(format!("applying the Deployment: {e}")))
        }
        Err(e) => Err(err(format!("applying the Deployment: {e}"))),
    }
}

async fn ensure_namespace(client: &kube::Client, ns: &str) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut n = Namespace::default();
    n.metadata.name = Some(ns.to_string());
    n.metadata.labels = Some([(labels::MANAGED_BY_KEY.to_string(), labels::MANAGED_BY.to_string())].into());
    match api.create(&PostParams::default(), &n).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
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
        for child in member.children_of(&owner) {
            let api: Api<Deployment> = Api::namespaced(member.client.clone(), &owner.namespace);
            match api.delete(&child.name_any(), &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => errors.push(Error::Cluster { cluster: member.name.clone(), message: format!("deleting child: {e}") }),
            }
        }
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    ctx.scheduler.forget(&owner);
    ctx.metrics.unplaced.remove(&object_label(&owner));
    publish(&ctx, &mcd, EventType::Normal, "Deleted", "children deleted in every cluster").await;
    Ok(Action::await_change())
}

async fn write_status(ctx: &Context, mcd: &MultiClusterDeployment, old: &MultiClusterDeploymentStatus, new: MultiClusterDeploymentStatus) -> Result<(), Error> {
    if *old == new && mcd.status.is_some() {
        return Ok(());
    }
    let api: Api<MultiClusterDeployment> = Api::namespaced(ctx.client.clone(), &mcd.namespace().unwrap_or_default());
    let patch = serde_json::json!({ "status": new });
    api.patch_status(&mcd.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

async fn publish(ctx: &Context, mcd: &MultiClusterDeployment, type_: EventType, reason: &str, note: &str) {
    let ev = Event { type_, reason: reason.into(), note: Some(note.chars().take(1000).collect()), action: "Place".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, &mcd.object_ref(&())).await {
        tracing::debug!(error = %e, "publishing an event");
    }
}
