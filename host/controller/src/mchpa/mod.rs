//! The MultiClusterHorizontalPodAutoscaler controller (mck8s §4, with §9.2's bugs fixed).
//!
//! Every `periodSeconds` (default 30) it measures the target MultiClusterDeployment's CPU
//! utilisation in each cluster it runs in ([`crate::cpu_load`]), asks the scaling policy
//! named in the spec (default `mchpa`) for a total, and writes only the *count* into the
//! MCD: `spec.replicas` (per location, as mck8s defines it) or, for an MCD with `locations`,
//! an exact `replicaOverrides` split. Where the replicas go stays the placement policy's
//! call, so the autoscaler and the scheduler never fight over clusters; the
//! MultiClusterService follows the MCD's placement by itself. The policy's opaque state
//! (the stabilisation window) lives in this object's status, so it survives controller
//! restarts, leader changes and policy hot reloads.

use crate::context::Context;
use crate::cpu_load;
use crate::shared;
use base64::Engine as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use mck8s_api::conditions::{self, INVALID_SPEC, SCALING_ACTIVE};
use mck8s_api::{MultiClusterDeployment, MultiClusterHorizontalPodAutoscaler, MultiClusterHorizontalPodAutoscalerStatus};
use mck8s_policy::ScalingOutcome;
use mck8s_policy::bindings::wit_scaling::ScalingRequest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

mod plan;
pub mod spec;

pub use plan::UNPLACED_SAMPLE;
pub use spec::DEFAULT_POLICY;

pub const KIND: &str = "MultiClusterHorizontalPodAutoscaler";
/// While the target has not caught up with the last change, look again this soon.
const TARGET_BUSY_RETRY: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Said as kube says it: a prefix here would repeat under a chain printer, which
    /// prints the source after it.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// The controller's own state: which version of its scaling policy each MCHPA asked last,
/// successful or not. A different version serving now is asked at once (a policy swap or a
/// policy that just appeared), not at the next period; the same version that just failed is
/// not asked again before it.
/// The controller's own state beside the shared [`Context`].
struct Shared {
    ctx: Arc<Context>,
    asked: Mutex<HashMap<(String, String), String>>,
    /// Statuses written, for reconciles that run on a cached object from before the write.
    status: shared::StatusMemo<MultiClusterHorizontalPodAutoscalerStatus>,
    /// Which clusters serve `metrics.k8s.io`.
    metrics_api: cpu_load::MetricsApiProbe,
}

impl Shared {
    fn asked(&self, hpa: &MultiClusterHorizontalPodAutoscaler) -> Option<String> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).get(&key(hpa)).cloned()
    }

    fn remember(&self, hpa: &MultiClusterHorizontalPodAutoscaler, digest: Option<String>) {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        match digest {
            Some(d) => asked.insert(key(hpa), d),
            None => asked.remove(&key(hpa)),
        };
    }
}

fn key(hpa: &MultiClusterHorizontalPodAutoscaler) -> (String, String) {
    (hpa.namespace().unwrap_or_default(), hpa.name_any())
}

pub async fn run(ctx: Arc<Context>, watch_namespace: Option<String>) {
    let api: Api<MultiClusterHorizontalPodAutoscaler> = shared::scoped_api(&ctx.watches, &watch_namespace);
    let policy_changes = shared::policy_changes(&ctx);
    let state = Arc::new(Shared { ctx, asked: Mutex::default(), status: Default::default(), metrics_api: Default::default() });
    let results = shared::controller(api, &state.ctx, shared::Wake::EveryChange).reconcile_all_on(policy_changes).run(reconcile, error_policy, state);
    shared::drive(KIND, results).await;
}

fn error_policy(obj: Arc<MultiClusterHorizontalPodAutoscaler>, error: &Error, state: Arc<Shared>) -> Action {
    shared::error_policy(obj, error, state.ctx.clone())
}

async fn reconcile(obj: Arc<MultiClusterHorizontalPodAutoscaler>, state: Arc<Shared>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let ctx = &state.ctx;
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let span = tracing::info_span!("reconcile", kind = KIND, namespace = %ns, name = %obj.name_any());
    let result = evaluate(obj, &state, ns).instrument(span).await;
    ctx.metrics.reconciled(KIND, result.is_ok(), started);
    result
}

fn count(ctx: &Context, result: &str) {
    ctx.metrics.scaling.get_or_create(&crate::metrics::ResultLabel { result: result.into() }).inc();
}

/// Parse → due? → read the target → measure → ask the policy → patch the target → status.
async fn evaluate(hpa: Arc<MultiClusterHorizontalPodAutoscaler>, own: &Shared, ns: String) -> Result<Action, Error> {
    let ctx = own.ctx.as_ref();
    if hpa.metadata.deletion_timestamp.is_some() {
        own.status.forget(hpa.as_ref());
        own.remember(&hpa, None);
        return Ok(Action::await_change());
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = own.status.current(hpa.as_ref(), hpa.status.clone().unwrap_or_default());
    let generation = hpa.metadata.generation;
    let mut new = status.clone();
    new.observed_generation = generation;

    let a = match spec::parse(&hpa.spec) {
        Ok(a) => a,
        Err(msg) => {
            let news = conditions::set_invalid_spec(&mut new.conditions, status.observed_generation, &msg, generation, &now);
            conditions::set(&mut new.conditions, SCALING_ACTIVE, false, "InvalidSpec", &msg, generation, &now);
            if news {
                publish(ctx, &hpa, EventType::Warning, "InvalidSpec", &msg).await;
            }
            write_status(own, &hpa, &status, new).await?;
            return Ok(Action::await_change());
        }
    };
    conditions::set(&mut new.conditions, INVALID_SPEC, false, "Valid", "", generation, &now);

    let serving = ctx.scheduler.registry().get(&a.policy).ok().map(|p| p.digest.clone());
    let swapped = serving.is_some() && serving != own.asked(&hpa).or_else(|| status.policy_digest.clone());
    if let Some(wait) = plan::when_due(&status, generation, swapped, &now, a.period) {
        return Ok(Action::requeue(wait));
    }

    // The target, placed for its current spec.
    let (hpa_ref, old) = (hpa.as_ref(), &status);
    let inactive = |new, reason, msg: String, retry| async move { inactive(own, hpa_ref, old, new, reason, &msg, retry).await };
    let mcds: Api<MultiClusterDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(mcd) = mcds.get_opt(&a.target).await? else {
        return inactive(new, "FailedGetScale", format!("MultiClusterDeployment {ns}/{} not found", a.target), a.period).await;
    };
    let Some(mcd_status) = mcd.status.as_ref().filter(|s| s.observed_generation == mcd.metadata.generation && !s.placement.is_empty()) else {
        // Not placed yet, or still placing the last change: measure what it is about to be.
        return inactive(new, "TargetUpdating", format!("{} has not been placed since its last change", a.target), TARGET_BUSY_RETRY).await;
    };
    let parsed = match crate::spec::parse(&a.target, &ns, &mcd.spec) {
        Ok(p) => p,
        Err(e) => return inactive(new, "InvalidTarget", format!("{}: {}", a.target, e.0), a.period).await,
    };
    if parsed.request.cpu_millis == 0 {
        return inactive(new, "InvalidTarget", format!("{}'s pods request no CPU: utilisation is measured against requests", a.target), a.period).await;
    }
    let selector: LabelSelector = parsed.deployment.get("selector").cloned().and_then(|s| serde_json::from_value(s).ok()).unwrap_or_default();

    // Measure where it runs.
    let placed: Vec<(String, u32)> = mcd_status.placement.iter().filter(|p| p.replicas > 0).map(|p| (p.cluster.clone(), p.replicas as u32)).collect();
    let clusters: Vec<String> = placed.iter().map(|p| p.0.clone()).collect();
    let measured = cpu_load::measure(ctx, &own.metrics_api, &ns, &a.target, &cpu_load::selector_string(&selector), parsed.request.cpu_millis, &clusters).await;
    let traffic = match &ctx.prometheus {
        Some(p) => p.app_traffic(&ns, &a.target).await.unwrap_or_default(),
        None => Default::default(),
    };
    let observed = plan::Observed { placed: &placed, measured: &measured, traffic: &traffic, unplaced: mcd_status.unplaced.max(0) as u32 };
    let current = observed.current_total();
    if let Some(note) = plan::measured(&mut new, &status, &observed, generation, &now) {
        announce(ctx, &hpa, note).await;
    }

    // Ask.
    let state = status.policy_state.as_deref().and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok()).unwrap_or_default();
    let request = plan::request(&a, &ns, &observed, &status, state, &now);
    own.remember(&hpa, serving);
    let outcome = match ask(ctx, &a.policy, request).await {
        Ok(o) => o,
        Err(msg) => {
            count(ctx, "error");
            announce(ctx, &hpa, plan::unable(&mut new, "PolicyFailed", &msg, generation, &now)).await;
            write_status(own, &hpa, &status, new).await?;
            return Ok(Action::requeue(a.period));
        }
    };
    let settled = plan::settle(&mut new, &a, &observed, &outcome, generation, &now);

    // Write the count into the target.
    let patch = match spec::replicas_patch(&mcd.spec, settled.total) {
        Ok(p) => p,
        Err(e) => return inactive(new, "InvalidTarget", e, a.period).await,
    };
    match &patch {
        Some(p) => {
            if let Err(e) = mcds.patch(&a.target, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(p)).await {
                count(ctx, "error");
                announce(ctx, &hpa, plan::unable(&mut new, "FailedUpdateScale", &format!("updating {}: {e}", a.target), generation, &now)).await;
                write_status(own, &hpa, &status, new).await?;
                return Ok(Action::requeue(ctx.timing.error_retry.min(a.period)));
            }
            if let Some(note) = plan::scaled(&mut new, &a, current, &settled, &outcome.policy, generation, &now) {
                tracing::info!(target = %a.target, from = current, to = settled.total, reason = %settled.reason, "{}", note.reason);
                announce(ctx, &hpa, note).await;
            }
        }
        None => plan::held(&mut new, &settled, generation, &now),
    }
    count(ctx, plan::result(&observed, &settled, patch.is_some()));
    write_status(own, &hpa, &status, new).await?;
    Ok(Action::requeue(a.period))
}

/// One scaling call, off the async workers ([`crate::policy_calls`]: it instantiates a sandboxed component).
async fn ask(ctx: &Context, policy: &str, request: ScalingRequest) -> Result<ScalingOutcome, String> {
    let loaded = ctx.scheduler.registry().get(policy).map_err(|e| {
        let known: Vec<String> = ctx.scheduler.registry().list().iter().filter(|p| p.kind == mck8s_policy::PolicyKind::Scaling).map(|p| p.name.clone()).collect();
        format!("scaling policy {policy:?}: {} (scaling policies loaded: {})", e.kind, known.join(", "))
    })?;
    let label = crate::metrics::PolicyLabel { policy: loaded.name.clone() };
    let result = ctx.policy_calls.run(move || loaded.scale(&request)).await;
    if let Err(e) = &result {
        ctx.metrics.policy_errors.get_or_create(&crate::metrics::PolicyError { policy: label.policy.clone(), error: e.kind.label().into() }).inc();
    }
    result.map_err(|e| e.to_string())
}

/// The target cannot be measured now: say why, change nothing, look again later.
async fn inactive(
    own: &Shared,
    hpa: &MultiClusterHorizontalPodAutoscaler,
    old: &MultiClusterHorizontalPodAutoscalerStatus,
    mut new: MultiClusterHorizontalPodAutoscalerStatus,
    reason: &'static str,
    msg: &str,
    retry: Duration,
) -> Result<Action, Error> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    if let Some(note) = plan::inactive(&mut new, old, reason, msg, hpa.metadata.generation, &now) {
        announce(&own.ctx, hpa, note).await;
    }
    count(&own.ctx, "held");
    write_status(own, hpa, old, new).await?;
    Ok(Action::requeue(retry))
}

async fn write_status(
    own: &Shared,
    hpa: &MultiClusterHorizontalPodAutoscaler,
    old: &MultiClusterHorizontalPodAutoscalerStatus,
    new: MultiClusterHorizontalPodAutoscalerStatus,
) -> Result<(), Error> {
    let produced = shared::write_status(&own.ctx, hpa, old, &new, hpa.status.is_some()).await?;
    own.status.remember(hpa, produced, new);
    Ok(())
}

async fn publish(ctx: &Context, hpa: &MultiClusterHorizontalPodAutoscaler, type_: EventType, reason: &str, note: &str) {
    shared::publish(ctx, hpa, type_, reason, "Scale", note).await
}

async fn announce(ctx: &Context, hpa: &MultiClusterHorizontalPodAutoscaler, note: plan::Note) {
    publish(ctx, hpa, if note.warning { EventType::Warning } else { EventType::Normal }, note.reason, &note.text).await
}
