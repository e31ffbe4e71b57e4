//! CPU utilisation of an application per cluster, for the autoscaler: from the cluster's
//! `metrics.k8s.io` API where it serves one (metrics-server, what the Kubernetes HPA reads),
//! else from the management Prometheus (cAdvisor's `container_cpu_usage_seconds_total`,
//! labelled `cluster_name`). Utilisation is in percent of the pods' CPU *requests* (mck8s
//! divided by limits, §9.2) and averaged over the pods that reported, so pods still starting
//! neither dilute nor inflate it. A cluster without a number says why.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use mck8s_fleet::Health;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::context::Context;

pub const SOURCE_METRICS_API: &str = "metrics.k8s.io";
pub const SOURCE_PROMETHEUS: &str = "prometheus";

/// One cluster's measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub cluster: String,
    /// Percent of the requests, averaged over the pods that reported; `None` when missing.
    pub utilization: Option<f64>,
    /// Where the number came from, or why there is none.
    pub source: String,
}

/// Whether each cluster serves `metrics.k8s.io`, re-checked every few minutes (a
/// metrics-server may be installed or removed at any time).
#[derive(Default)]
pub struct MetricsApiProbe {
    served: Mutex<HashMap<String, (bool, Instant)>>,
}

const PROBE_TTL: Duration = Duration::from_secs(300);

impl MetricsApiProbe {
    async fn served(&self, cluster: &str, client: &Client) -> bool {
        if let Some((served, at)) = self.served.lock().unwrap_or_else(|p| p.into_inner()).get(cluster).copied()
            && at.elapsed() < PROBE_TTL
        {
            return served;
        }
        let served = client.list_api_group_resources("metrics.k8s.io/v1beta1").await.is_ok_and(|l| l.resources.iter().any(|r| r.name == "pods"));
        self.served.lock().unwrap_or_else(|p| p.into_inner()).insert(cluster.to_string(), (served, Instant::now()));
        served
    }
}

/// A label selector in the API's query syntax (`app=web,tier in (a,b),!canary`).
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// Cores used, summed over the PodMetrics items, and how many pods reported.
pub fn pod_metrics_cpu(items: &[DynamicObject]) -> (f64, u32) {
    let mut cores = 0.0;
    let mut pods = 0;
    for item in items {
        let Some(containers) = item.data.get("containers").and_then(|c| c.as_array()) else { continue };
        let millis: u64 = containers.iter().filter_map(|c| c.pointer("/usage/cpu").and_then(|q| q.as_str())).filter_map(|q| mck8s_capacity::parse_cpu_millis(q).ok()).sum();
        cores += millis as f64 / 1000.0;
        pods += 1;
    }
    (cores, pods)
}

fn pod_metrics_resource() -> ApiResource {
    ApiResource { group: "metrics.k8s.io".into(), version: "v1beta1".into(), api_version: "metrics.k8s.io/v1beta1".into(), kind: "PodMetrics".into(), plural: "pods".into() }
}

/// Percent of the requests: `cores` used by `pods` pods that each request `request_millis`.
pub fn utilization(cores: f64, pods: u32, request_millis: u64) -> Option<f64> {
    (pods > 0 && request_millis > 0 && cores.is_finite()).then(|| 100.0 * cores * 1000.0 / (f64::from(pods) * request_millis as f64))
}

/// Measures `app` (pods matching `selector` in `namespace`) in each of `clusters`.
pub async fn measure(ctx: &Context, metrics_api: &MetricsApiProbe, namespace: &str, app: &str, selector: &str, request_millis: u64, clusters: &[String]) -> Vec<Measured> {
    let mut out = Vec::with_capacity(clusters.len());
    let mut from_prometheus: Option<Result<HashMap<String, mck8s_signals::AppCpu>, String>> = None;
    for cluster in clusters {
        let Some(member) = ctx.clusters.get(cluster) else {
            out.push(Measured { cluster: cluster.clone(), utilization: None, source: "cluster not registered".into() });
            continue;
        };
        if member.health() == Health::Unreachable {
            out.push(Measured { cluster: cluster.clone(), utilization: None, source: "cluster unreachable".into() });
            continue;
        }
        if metrics_api.served(cluster, &member.client).await {
            let api: Api<DynamicObject> = Api::namespaced_with(member.client.clone(), namespace, &pod_metrics_resource());
            match api.list(&ListParams::default().labels(selector)).await {
                Ok(list) => {
                    let (cores, pods) = pod_metrics_cpu(&list.items);
                    let u = utilization(cores, pods, request_millis);
                    let source = if u.is_some() { SOURCE_METRICS_API.to_string() } else { format!("{SOURCE_METRICS_API}: no pod metrics yet") };
                    out.push(Measured { cluster: cluster.clone(), utilization: u, source });
                    continue;
                }
                Err(e) => tracing::debug!(%cluster, error = %e, "metrics.k8s.io; trying Prometheus"),
            }
        }
        let Some(prom) = &ctx.prometheus else {
            out.push(Measured { cluster: cluster.clone(), utilization: None, source: "no metrics.k8s.io in the cluster and no Prometheus configured".into() });
            continue;
        };
        if from_prometheus.is_none() {
            from_prometheus = Some(prom.app_cpu(namespace, app, ctx.timing.cpu_window).await.map_err(|e| e.to_string()));
        }
        let m = match from_prometheus.as_ref().expect("queried above") {
            Ok(by_cluster) => match by_cluster.get(cluster) {
                Some(c) => match utilization(c.cores, c.pods, request_millis) {
                    Some(u) => Measured { cluster: cluster.clone(), utilization: Some(u), source: SOURCE_PROMETHEUS.into() },
                    None => Measured { cluster: cluster.clone(), utilization: None, source: "prometheus: no pod reported".into() },
                },
                None => Measured { cluster: cluster.clone(), utilization: None, source: "prometheus: no CPU samples for its pods yet".into() },
            },
            Err(e) => Measured { cluster: cluster.clone(), utilization: None, source: format!("prometheus: {e}") },
        };
        out.push(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_render_in_query_syntax() {
        let s: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "ok", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(selector_string(&s), "app=web,tier in (a,b),env notin (dev),ok,!canary");
    }

    #[test]
    fn pod_metrics_sum_every_container() {
        let item = |cpus: &[&str]| -> DynamicObject {
            let containers: Vec<_> = cpus.iter().map(|c| serde_json::json!({"name": "c", "usage": {"cpu": c, "memory": "10Mi"}})).collect();
            serde_json::from_value(serde_json::json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics", "metadata": {"name": "p"}, "timestamp": "2026-01-01T00:00:00Z", "window": "15s", "containers": containers})).unwrap()
        };
        let (cores, pods) = pod_metrics_cpu(&[item(&["250m", "50000000n"]), item(&["1"])]);
        assert_eq!(pods, 2);
        assert!((cores - 1.3).abs() < 1e-9, "{cores}");
    }

    #[test]
    fn utilisation_is_of_requests_over_reporting_pods() {
        assert_eq!(utilization(0.3, 2, 100), Some(150.0));
        assert_eq!(utilization(0.3, 0, 100), None, "no pod reported: missing, not 0 %");
        assert_eq!(utilization(0.3, 2, 0), None);
    }
}
