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
use crate::cpu_load::{self, Measured};
use crate::shared;
use base64::Engine as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use mck8s_api::conditions::{self, ABLE_TO_SCALE, INVALID_SPEC, SCALING_ACTIVE, SCALING_LIMITED};
use mck8s_api::{
    ClusterLoad, MultiClusterDeployment, MultiClusterDeploymentSpec, MultiClusterHorizontalPodAutoscaler, MultiClusterHorizontalPodAutoscalerSpec,
    MultiClusterHorizontalPodAutoscalerStatus,
};
use mck8s_policy::ScalingOutcome;
use mck8s_policy::bindings::wit_scaling::{ClusterSample, ScalingRequest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

pub const KIND: &str = "MultiClusterHorizontalPodAutoscaler";
pub const DEFAULT_POLICY: &str = "mchpa";
/// The sample that stands for replicas no cluster took: never measured, so policies hold it.
pub const UNPLACED_SAMPLE: &str = "(unplaced)";
/// The Kubernetes HPA's default target when `metrics` is empty.
const DEFAULT_TARGET: u32 = 80;
/// While the target has not caught up with the last change, look again this soon.
const TARGET_BUSY_RETRY: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Said as kube says it: a prefix here would repeat under a chain printer, which
    /// prints the source after it.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// A valid spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Autoscaling {
    pub target: String,
    pub target_utilization: u32,
    pub min: u32,
    pub max: u32,
    pub policy: String,
    pub params: Vec<(String, String)>,
    pub period: Duration,
}

/// Reads the spec as mck8s's example writes it (autoscaling/v2 `metrics`), and as the
/// v2beta1 form (`targetAverageUtilization`); anything it cannot honour is a clear message.
pub fn parse(spec: &MultiClusterHorizontalPodAutoscalerSpec) -> Result<Autoscaling, String> {
    let target_ref = spec.scale_target_ref.as_ref().ok_or("spec.scaleTargetRef is required")?;
    if target_ref.name.trim().is_empty() {
        return Err("spec.scaleTargetRef.name is empty".into());
    }
    if let Some(kind) = target_ref.kind.as_deref().filter(|k| *k != "MultiClusterDeployment") {
        return Err(format!("spec.scaleTargetRef.kind is {kind:?}; only MultiClusterDeployment can be scaled"));
    }
    if let Some(v) = target_ref.api_version.as_deref().filter(|v| *v != "fogguru.eu/v1") {
        return Err(format!("spec.scaleTargetRef.apiVersion is {v:?}; expected fogguru.eu/v1"));
    }
    let target_utilization = target_utilization(&spec.metrics)?;
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas.unwrap_or(100);
    if min < 1 {
        return Err(format!("spec.minReplicas is {min}: an autoscaler never scales to zero (delete the MultiClusterDeployment instead)"));
    }
    if max < min {
        return Err(format!("spec.maxReplicas {max} is below spec.minReplicas {min}"));
    }
    let policy = spec.scaling_policy.clone().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| DEFAULT_POLICY.into());
    let period = Duration::from_secs(spec.period_seconds.unwrap_or(30).max(1) as u64);
    Ok(Autoscaling {
        target: target_ref.name.clone(),
        target_utilization,
        min: min as u32,
        max: max as u32,
        policy,
        params: spec.scaling_params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        period,
    })
}

/// The CPU utilization target. Like the original, the first metric decides; it must be a
/// Resource cpu Utilization target.
fn target_utilization(metrics: &[serde_json::Value]) -> Result<u32, String> {
    let Some(m) = metrics.first() else {
        return Ok(DEFAULT_TARGET);
    };
    let type_ = m.get("type").and_then(|t| t.as_str()).unwrap_or("Resource");
    if type_ != "Resource" {
        return Err(format!("spec.metrics[0].type is {type_:?}; only Resource (cpu) metrics are supported"));
    }
    let resource = m.get("resource").ok_or("spec.metrics[0].resource is required")?;
    let name = resource.get("name").and_then(|n| n.as_str()).unwrap_or("");
    if name != "cpu" {
        return Err(format!("spec.metrics[0].resource.name is {name:?}; only cpu is supported"));
    }
    if let Some(t) = resource.pointer("/target/type").and_then(|t| t.as_str()).filter(|t| *t != "Utilization") {
        return Err(format!("spec.metrics[0].resource.target.type is {t:?}; only Utilization is supported"));
    }
    let value = resource.pointer("/target/averageUtilization").or_else(|| resource.get("targetAverageUtilization"));
    let v = value.ok_or("spec.metrics[0].resource.target.averageUtilization is required")?;
    match v.as_u64() {
        Some(u) if (1..=u32::MAX as u64).contains(&u) => Ok(u as u32),
        _ => Err(format!("spec.metrics[0].resource.target.averageUtilization must be a positive integer, got {v}")),
    }
}

/// How a total becomes the target MCD's replicas. Without `locations`, `spec.replicas` is
/// per selected location (mck8s), so it is `ceil(total / numberOfLocations)`; with
/// `locations`, `replicaOverrides` splits the total exactly (the first locations take the
/// remainder; mck8s dropped it and rewrote `locations`, §9.2). `None` when nothing changes.
pub fn replicas_patch(spec: &MultiClusterDeploymentSpec, total: u32) -> Result<Option<serde_json::Value>, String> {
    let total = total.max(1);
    match &spec.locations {
        Some(l) => {
            let locations = crate::spec::cluster_list(l, "locations").map_err(|e| e.0)?;
            if locations.is_empty() {
                return Err("spec.locations is empty".into());
            }
            let n = locations.len() as u32;
            let split: Vec<String> = (0..n).map(|i| (total / n + u32::from(i < total % n)).to_string()).collect();
            let now = spec.replica_overrides.as_ref().map(|o| crate::spec::cluster_list(o, "replicaOverrides")).transpose().map_err(|e| e.0)?;
            if now.as_ref() == Some(&split) {
                return Ok(None);
            }
            Ok(Some(serde_json::json!({ "spec": { "replicaOverrides": split.join(",") } })))
        }
        None => {
            let n = spec.number_of_locations.unwrap_or(1).max(1) as u32;
            let per = total.div_ceil(n) as i32;
            if spec.replicas.unwrap_or(1) == per {
                return Ok(None);
            }
            Ok(Some(serde_json::json!({ "spec": { "replicas": per } })))
        }
    }
}

/// Seconds since the last evaluation, as the policy's clock. Capped at two periods: a
/// controller that was down does not know how the load went meanwhile, so the window goes on
/// only as if one evaluation had been missed.
pub fn elapsed_seconds(last: Option<&Time>, now: &Time, period: Duration) -> u32 {
    let Some(last) = last else { return 0 };
    let secs = now.0.duration_since(last.0).as_secs().max(0) as u64;
    secs.min(2 * period.as_secs()) as u32
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
    let results = Controller::new(api, mck8s_clusters::watch_config()).shutdown_on_signal().reconcile_all_on(policy_changes).run(reconcile, error_policy, state);
    shared::drive(results).await;
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

    let a = match parse(&hpa.spec) {
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

    // Our own status writes wake this reconcile too: evaluate once per period, unless
    // another version of the policy serves now than the one asked last.
    let serving = ctx.scheduler.registry().get(&a.policy).ok().map(|p| p.digest.clone());
    let swapped = serving.is_some() && serving != own.asked(&hpa).or_else(|| status.policy_digest.clone());
    if !swapped
        && status.observed_generation == generation
        && let Some(last) = &status.last_evaluation_time
    {
        let since = Duration::from_millis(now.0.duration_since(last.0).as_millis().max(0) as u64);
        if since + Duration::from_millis(200) < a.period {
            return Ok(Action::requeue(a.period - since));
        }
    }

    let mcds: Api<MultiClusterDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(mcd) = mcds.get_opt(&a.target).await? else {
        let msg = format!("MultiClusterDeployment {ns}/{} not found", a.target);
        return inactive(own, &hpa, status, new, "FailedGetScale", &msg, &now, a.period).await;
    };
    let Some(mcd_status) = mcd.status.as_ref().filter(|s| s.observed_generation == mcd.metadata.generation && !s.placement.is_empty()) else {
        // Not placed yet, or still placing the last change: measure what it is about to be.
        return inactive(own, &hpa, status, new, "TargetUpdating", &format!("{} has not been placed since its last change", a.target), &now, TARGET_BUSY_RETRY).await;
    };
    let parsed = match crate::spec::parse(&a.target, &ns, &mcd.spec) {
        Ok(p) => p,
        Err(e) => return inactive(own, &hpa, status, new, "InvalidTarget", &format!("{}: {}", a.target, e.0), &now, a.period).await,
    };
    if parsed.request.cpu_millis == 0 {
        let msg = format!("{}'s pods request no CPU: utilisation is measured against requests", a.target);
        return inactive(own, &hpa, status, new, "InvalidTarget", &msg, &now, a.period).await;
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
    let unplaced = mcd_status.unplaced.max(0) as u32;
    let current_total: u32 = placed.iter().map(|p| p.1).sum::<u32>() + unplaced;
    let mut samples: Vec<ClusterSample> =
        placed.iter().zip(&measured).map(|((c, n), m)| ClusterSample { cluster: c.clone(), replicas: *n, utilization: m.utilization, traffic: traffic.get(c).copied() }).collect();
    if unplaced > 0 {
        samples.push(ClusterSample { cluster: UNPLACED_SAMPLE.into(), replicas: unplaced, utilization: None, traffic: None });
    }
    let missing: Vec<&Measured> = measured.iter().filter(|m| m.utilization.is_none()).collect();

    let state = status.policy_state.as_deref().and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok()).unwrap_or_default();
    let request = ScalingRequest {
        name: a.target.clone(),
        namespace: ns.clone(),
        samples,
        target_utilization: a.target_utilization,
        min_replicas: a.min,
        max_replicas: a.max,
        elapsed_seconds: elapsed_seconds(status.last_evaluation_time.as_ref(), &now, a.period),
        params: a.params.clone(),
        state,
    };
    new.current_replicas = Some(current_total as i32);
    new.last_evaluation_time = Some(now.clone());
    new.clusters = placed
        .iter()
        .zip(&measured)
        .map(|((c, n), m)| ClusterLoad { cluster: c.clone(), replicas: *n as i32, utilization: m.utilization.map(|u| u.round() as i32), source: m.source.clone() })
        .collect();
    if missing.is_empty() {
        conditions::set(&mut new.conditions, SCALING_ACTIVE, true, "ValidMetricFound", format!("CPU utilisation measured in {} clusters", measured.len()), generation, &now);
    } else {
        let why: Vec<String> = missing.iter().map(|m| format!("{}: {}", m.cluster, m.source)).collect();
        let msg = format!("no CPU metric for {} (holding their replicas; never scaling down on a missing metric)", why.join("; "));
        if conditions::get(&status.conditions, SCALING_ACTIVE).is_none_or(|c| c.reason != "MissingMetrics") {
            publish(ctx, &hpa, EventType::Warning, "MissingMetrics", &msg).await;
        }
        conditions::set(&mut new.conditions, SCALING_ACTIVE, false, "MissingMetrics", msg, generation, &now);
    }

    own.remember(&hpa, serving);
    let outcome = match ask(ctx, &a.policy, request).await {
        Ok(o) => o,
        Err(msg) => {
            count(ctx, "error");
            publish(ctx, &hpa, EventType::Warning, "PolicyFailed", &msg).await;
            conditions::set(&mut new.conditions, ABLE_TO_SCALE, false, "PolicyFailed", format!("{msg}; replicas left as they are"), generation, &now);
            write_status(own, &hpa, &status, new).await?;
            return Ok(Action::requeue(a.period));
        }
    };
    let mut total = outcome.total;
    let mut reason = outcome.reason.clone();
    // Whatever the policy says, no metric at all is no reason to scale down.
    if missing.len() == measured.len() && total < current_total {
        total = current_total.clamp(a.min, a.max);
        reason = format!("every metric missing: holding {total} (the policy asked for {})", outcome.total);
    }
    new.policy = Some(outcome.policy.clone());
    new.policy_digest = Some(outcome.digest.clone());
    new.policy_state = Some(base64::engine::general_purpose::STANDARD.encode(&outcome.state));
    new.desired_replicas = Some(total as i32);
    new.reason = Some(reason.clone());
    let limited = if total >= a.max && total > 0 {
        Some(("TooManyReplicas", format!("at maxReplicas {}", a.max)))
    } else if total <= a.min {
        Some(("TooFewReplicas", format!("at minReplicas {}", a.min)))
    } else {
        None
    };
    match limited {
        Some((r, m)) => conditions::set(&mut new.conditions, SCALING_LIMITED, true, r, m, generation, &now),
        None => conditions::set(&mut new.conditions, SCALING_LIMITED, false, "DesiredWithinRange", format!("{total} within [{}, {}]", a.min, a.max), generation, &now),
    }

    let patch = match replicas_patch(&mcd.spec, total) {
        Ok(p) => p,
        Err(e) => return inactive(own, &hpa, status, new, "InvalidTarget", &e, &now, a.period).await,
    };
    let result = match (&patch, total.cmp(&current_total)) {
        (None, _) | (_, std::cmp::Ordering::Equal) => "steady",
        (Some(_), std::cmp::Ordering::Greater) => "scaled_out",
        (Some(_), std::cmp::Ordering::Less) => "scaled_in",
    };
    if let Some(p) = patch {
        if let Err(e) = mcds.patch(&a.target, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&p)).await {
            count(ctx, "error");
            let msg = format!("updating {}: {e}", a.target);
            publish(ctx, &hpa, EventType::Warning, "FailedRescale", &msg).await;
            conditions::set(&mut new.conditions, ABLE_TO_SCALE, false, "FailedUpdateScale", msg, generation, &now);
            write_status(own, &hpa, &status, new).await?;
            return Ok(Action::requeue(ctx.timing.error_retry.min(a.period)));
        }
        if total != current_total {
            new.last_scale_time = Some(now.clone());
            let (event, verb) = if total > current_total { ("ScaledOut", "scaled out") } else { ("ScaledIn", "scaled in") };
            tracing::info!(target = %a.target, from = current_total, to = total, %reason, "{verb}");
            publish(ctx, &hpa, EventType::Normal, event, &format!("{} {verb} {current_total} → {total} by {}: {reason}", a.target, outcome.policy)).await;
        }
        conditions::set(&mut new.conditions, ABLE_TO_SCALE, true, "SucceededRescale", format!("{} set to {total}: {reason}", a.target), generation, &now);
    } else {
        conditions::set(&mut new.conditions, ABLE_TO_SCALE, true, "ReadyForNewScale", reason.clone(), generation, &now);
    }
    count(ctx, if missing.len() == measured.len() && result == "steady" { "held" } else { result });
    write_status(own, &hpa, &status, new).await?;
    Ok(Action::requeue(a.period))
}

/// One scaling call, off the async workers (it instantiates a sandboxed component).
async fn ask(ctx: &Context, policy: &str, request: ScalingRequest) -> Result<ScalingOutcome, String> {
    let loaded = ctx.scheduler.registry().get(policy).map_err(|e| {
        let known: Vec<String> = ctx.scheduler.registry().list().iter().filter(|p| p.kind == mck8s_policy::PolicyKind::Scaling).map(|p| p.name.clone()).collect();
        format!("scaling policy {policy:?}: {} (scaling policies loaded: {})", e.kind, known.join(", "))
    })?;
    let label = crate::metrics::PolicyLabel { policy: loaded.name.clone() };
    let result = tokio::task::spawn_blocking(move || loaded.scale(&request)).await.map_err(|e| format!("scaling call: {e}"))?;
    if let Err(e) = &result {
        ctx.metrics.policy_errors.get_or_create(&crate::metrics::PolicyError { policy: label.policy.clone(), error: e.kind.label().into() }).inc();
    }
    result.map_err(|e| e.to_string())
}

/// The target cannot be measured now: say why, change nothing, look again later.
#[allow(clippy::too_many_arguments)]
async fn inactive(
    own: &Shared,
    hpa: &MultiClusterHorizontalPodAutoscaler,
    old: MultiClusterHorizontalPodAutoscalerStatus,
    mut new: MultiClusterHorizontalPodAutoscalerStatus,
    reason: &str,
    msg: &str,
    now: &Time,
    retry: Duration,
) -> Result<Action, Error> {
    let ctx = own.ctx.as_ref();
    let g = hpa.metadata.generation;
    if conditions::get(&old.conditions, SCALING_ACTIVE).is_none_or(|c| c.reason != reason) && reason != "TargetUpdating" {
        publish(ctx, hpa, EventType::Warning, reason, msg).await;
    }
    conditions::set(&mut new.conditions, SCALING_ACTIVE, false, reason, msg, g, now);
    count(ctx, "held");
    write_status(own, hpa, &old, new).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> MultiClusterHorizontalPodAutoscalerSpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn the_mck8s_example_parses() {
        let path = format!("{}/../../../shared/mck8s/manifests/examples/example_mchpa.yaml", env!("CARGO_MANIFEST_DIR"));
        let doc: MultiClusterHorizontalPodAutoscaler = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let a = parse(&doc.spec).unwrap();
        assert_eq!((a.target.as_str(), a.target_utilization, a.min, a.max, a.policy.as_str(), a.period), ("hello", 50, 2, 10, "mchpa", Duration::from_secs(30)));
    }

    #[test]
    fn bad_specs_say_why() {
        let t = "scaleTargetRef: {name: web}\n";
        let cases = [
            ("minReplicas: 1", "scaleTargetRef is required"),
            ("scaleTargetRef: {name: web, kind: Deployment}", "only MultiClusterDeployment"),
            (&format!("{t}minReplicas: 0"), "never scales to zero"),
            (&format!("{t}minReplicas: 5\nmaxReplicas: 2"), "below spec.minReplicas"),
            (&format!("{t}metrics: [{{type: Pods}}]"), "only Resource"),
            (&format!("{t}metrics: [{{type: Resource, resource: {{name: memory, target: {{averageUtilization: 5}}}}}}]"), "only cpu"),
            (&format!("{t}metrics: [{{type: Resource, resource: {{name: cpu, target: {{type: AverageValue}}}}}}]"), "only Utilization"),
            (&format!("{t}metrics: [{{type: Resource, resource: {{name: cpu, target: {{averageUtilization: 0}}}}}}]"), "positive integer"),
        ];
        for (yaml, want) in cases {
            let err = parse(&spec(yaml)).unwrap_err();
            assert!(err.contains(want), "{yaml}: {err}");
        }
        let a = parse(&spec(&format!("{t}metrics: [{{resource: {{name: cpu, targetAverageUtilization: 70}}}}]\nscalingPolicy: mchpa-traffic\nperiodSeconds: 5"))).unwrap();
        assert_eq!((a.target_utilization, a.policy.as_str(), a.period, a.min, a.max), (70, "mchpa-traffic", Duration::from_secs(5), 1, 100));
        assert_eq!(parse(&spec(t)).unwrap().target_utilization, DEFAULT_TARGET);
    }

    #[test]
    fn totals_become_replicas_per_location_or_an_exact_split() {
        let mcd = |yaml: &str| -> MultiClusterDeploymentSpec { serde_yaml_ng::from_str(yaml).unwrap() };
        assert_eq!(replicas_patch(&mcd("replicas: 2"), 5).unwrap(), Some(serde_json::json!({"spec": {"replicas": 5}})));
        assert_eq!(replicas_patch(&mcd("replicas: 5"), 5).unwrap(), None);
        assert_eq!(replicas_patch(&mcd("replicas: 1\nnumberOfLocations: 2"), 5).unwrap(), Some(serde_json::json!({"spec": {"replicas": 3}})), "per location, rounded up");
        // mck8s: int(2/3) = 0 per cluster; here the remainder goes to the first locations.
        assert_eq!(replicas_patch(&mcd("locations: a,b,c"), 2).unwrap(), Some(serde_json::json!({"spec": {"replicaOverrides": "1,1,0"}})));
        assert_eq!(replicas_patch(&mcd("locations: [a, b]\nreplicaOverrides: '3,2'"), 5).unwrap(), None);
        assert_eq!(replicas_patch(&mcd("replicas: 3"), 0).unwrap(), Some(serde_json::json!({"spec": {"replicas": 1}})), "never zero");
    }

    #[test]
    fn the_window_clock_is_capped_at_two_periods() {
        let t = |s: i64| Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap());
        let p = Duration::from_secs(30);
        assert_eq!(elapsed_seconds(None, &t(100), p), 0);
        assert_eq!(elapsed_seconds(Some(&t(70)), &t(100), p), 30);
        assert_eq!(elapsed_seconds(Some(&t(0)), &t(3600), p), 60);
    }
}
