//! Reading an MCHPA's spec, and turning a total into the target MCD's replicas.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mck8s_api::{MultiClusterDeploymentSpec, MultiClusterHorizontalPodAutoscalerSpec};
use std::time::Duration;

pub const DEFAULT_POLICY: &str = "mchpa";
/// The Kubernetes HPA's default target when `metrics` is empty.
pub const DEFAULT_TARGET: u32 = 80;

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
pub fn target_utilization(metrics: &[serde_json::Value]) -> Result<u32, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mck8s_api::MultiClusterHorizontalPodAutoscaler;

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
