//! Prometheus instant queries for the traffic- and load-aware decisions (§3.3, §4): cluster
//! and per-app network ingress and per-app CPU, keyed by the `cluster_name` label that the
//! management Prometheus attaches per workload cluster (§8).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;
use tracing::Instrument;

use crate::promql::{deployment_pod_regex, quote};

/// The label that names a sample's cluster.
pub const CLUSTER_LABEL: &str = "cluster_name";
const RX_METRIC: &str = "container_network_receive_bytes_total";
const CPU_METRIC: &str = "container_cpu_usage_seconds_total";

#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("prometheus URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("prometheus: {0}")]
    InvalidArgument(String),
    #[error("prometheus: building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("prometheus {url}: no answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("prometheus {url}: request failed: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("prometheus {url}: HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("prometheus {url}: query {query:?} rejected ({error_type}): {error}")]
    Api { url: String, query: String, error_type: String, error: String },
    #[error("prometheus {url}: unreadable answer: {detail}")]
    Decode { url: String, detail: String },
    #[error("prometheus: query {query:?} returned a {got}, expected an instant vector")]
    NotAVector { query: String, got: String },
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// CPU use of one application in one cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AppCpu {
    /// Cores used, summed over its pods.
    pub cores: f64,
    /// Pods that reported.
    pub pods: u32,
}

/// A Prometheus HTTP API endpoint. Cheap to clone (the HTTP client is shared).
#[derive(Debug, Clone)]
pub struct Prometheus {
    http: reqwest::Client,
    /// `<base>/api/v1/query`.
    query_url: Url,
    /// The base URL without user info, for logs and errors.
    shown: String,
    timeout: Duration,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    data: Option<ApiData>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// `[unix seconds, "value"]`; absent for native-histogram samples.
    value: Option<(f64, String)>,
}

/// A URL with any user info removed, safe to log.
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// Prometheus writes special values the Go way.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

impl Prometheus {
    /// `base_url` is where Prometheus serves `/api/v1/…`, e.g. `http://10.0.0.1:30090` or a
    /// path prefix behind a proxy. `timeout` bounds each query (connect + answer).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, PromError> {
        let mut base = Url::parse(base_url).map_err(|e| PromError::InvalidUrl { url: base_url_for_error(base_url), reason: e.to_string() })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() || base.host().is_none() {
            return Err(PromError::InvalidUrl { url: redact(&base), reason: "not an http(s) URL with a host".into() });
        }
        base.set_query(None);
        base.set_fragment(None);
        // Url::join replaces the last path segment unless the path ends in '/'.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let query_url = base.join("api/v1/query").map_err(|e| PromError::InvalidUrl { url: redact(&base), reason: e.to_string() })?;
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build().map_err(PromError::Client)?;
        Ok(Prometheus { http, query_url, shown: redact(&base).trim_end_matches('/').to_string(), timeout })
    }

    /// The base URL without user info.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Runs an instant query; the result must be an instant vector (a scalar, string or range
    /// result is [`PromError::NotAVector`]).
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, PromError> {
        let span = tracing::debug_span!("prometheus.query", url = %self.shown, query = promql);
        async {
            let started = Instant::now();
            let resp = self.http.get(self.query_url.clone()).query(&[("query", promql)]).send().await.map_err(|e| self.transport(e))?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| self.transport(e))?;
            let api = match (serde_json::from_str::<ApiResponse>(&body), status.is_success()) {
                // Prometheus explains rejected queries (400, 422, 503) in the same JSON shape.
                (Ok(api), _) if api.status != "success" => {
                    return Err(PromError::Api {
                        url: self.shown.clone(),
                        query: promql.into(),
                        error_type: api.error_type.unwrap_or_default(),
                        error: api.error.unwrap_or_default(),
                    });
                }
                (Ok(api), true) => api,
                (_, false) => return Err(PromError::Status { url: self.shown.clone(), status: status.as_u16(), body: snippet(&body) }),
                (Err(e), true) => return Err(PromError::Decode { url: self.shown.clone(), detail: format!("{e}; body: {}", snippet(&body)) }),
            };
            for w in &api.warnings {
                tracing::warn!(warning = %w, "prometheus query warning");
            }
            let data = api.data.ok_or_else(|| PromError::Decode { url: self.shown.clone(), detail: "success without data".into() })?;
            if data.result_type != "vector" {
                return Err(PromError::NotAVector { query: promql.into(), got: data.result_type });
            }
            let raw: Vec<VectorSample> = serde_json::from_value(data.result).map_err(|e| PromError::Decode { url: self.shown.clone(), detail: format!("vector result: {e}") })?;
            let mut out = Vec::with_capacity(raw.len());
            for s in raw {
                let Some((_, v)) = s.value else {
                    return Err(PromError::Decode { url: self.shown.clone(), detail: format!("series {:?} has no float value (native histogram?)", s.metric) });
                };
                let value = parse_value(&v).ok_or_else(|| PromError::Decode { url: self.shown.clone(), detail: format!("sample value {v:?}") })?;
                out.push(Sample { labels: s.metric, value });
            }
            tracing::debug!(series = out.len(), elapsed_us = started.elapsed().as_micros() as u64, "prometheus answered");
            Ok(out)
        }
        .instrument(span)
        .await
    }

    /// Whole-cluster ingress in bytes/s per cluster: every container's receive rate, summed by
    /// `cluster_name`. (mck8s ranked by node-exporter's `instance:node_network_receive_bytes_
    /// excluding_lo:rate1m` on create; the kubelet's per-pod counter is what every cluster has.)
    /// A cluster without any series is absent.
    pub async fn cluster_traffic(&self) -> Result<HashMap<String, f64>, PromError> {
        self.by_cluster(&format!("sum by ({CLUSTER_LABEL}) (rate({RX_METRIC}[1m]))")).await
    }

    /// Ingress in bytes/s of the pods of Deployment `app` in `namespace`, per cluster. Pods are
    /// matched by name (`<app>-<hash>-<suffix>`), not by label, as the per-pod cAdvisor series
    /// carry no pod labels. A cluster running none of them is absent.
    pub async fn app_traffic(&self, namespace: &str, app: &str) -> Result<HashMap<String, f64>, PromError> {
        let selector = app_selector(namespace, app)?;
        self.by_cluster(&format!("sum by ({CLUSTER_LABEL}) (rate({RX_METRIC}{{{selector}}}[1m]))")).await
    }

    /// CPU cores used by the pods of Deployment `app` in `namespace`, per cluster. Only
    /// per-container series count: real cAdvisor also exports the pod's cgroup total
    /// (`container=""`) and the pause container (`POD`), which would double the sum.
    pub async fn app_cpu_cores(&self, namespace: &str, app: &str) -> Result<HashMap<String, f64>, PromError> {
        let selector = app_selector(namespace, app)?;
        self.by_cluster(&format!("sum by ({CLUSTER_LABEL}) (rate({CPU_METRIC}{{{selector},container!=\"\",container!=\"POD\"}}[1m]))")).await
    }

    /// CPU use of the pods of Deployment `app` in `namespace`, per cluster: cores summed over
    /// its pods and how many pods reported, each pod's rate taken over `window` (at least
    /// two scrape intervals). One query, per pod, so an autoscaler divides by the pods that
    /// were measured rather than by a replica count the metrics may not have caught up with.
    pub async fn app_cpu(&self, namespace: &str, app: &str, window: Duration) -> Result<HashMap<String, AppCpu>, PromError> {
        let selector = app_selector(namespace, app)?;
        let secs = window.as_secs().max(1);
        let samples = self.query(&format!("sum by ({CLUSTER_LABEL}, pod) (rate({CPU_METRIC}{{{selector},container!=\"\",container!=\"POD\"}}[{secs}s]))")).await?;
        let mut out: HashMap<String, AppCpu> = HashMap::new();
        for s in samples {
            match s.labels.get(CLUSTER_LABEL) {
                Some(c) if !c.is_empty() && s.value.is_finite() => {
                    let e = out.entry(c.clone()).or_default();
                    e.cores += s.value;
                    e.pods += 1;
                }
                _ => tracing::debug!(labels = ?s.labels, "series without {CLUSTER_LABEL} ignored"),
            }
        }
        Ok(out)
    }

    /// Runs `promql` and keys the values by `cluster_name`; series without it are dropped (they
    /// cannot be attributed to a cluster).
    async fn by_cluster(&self, promql: &str) -> Result<HashMap<String, f64>, PromError> {
        let samples = self.query(promql).await?;
        let mut out = HashMap::with_capacity(samples.len());
        for mut s in samples {
            match s.labels.remove(CLUSTER_LABEL) {
                Some(c) if !c.is_empty() => {
                    out.insert(c, s.value);
                }
                _ => tracing::debug!(labels = ?s.labels, "series without {CLUSTER_LABEL} ignored"),
            }
        }
        Ok(out)
    }

    fn transport(&self, e: reqwest::Error) -> PromError {
        if e.is_timeout() {
            PromError::Timeout { url: self.shown.clone(), after: self.timeout }
        } else {
            // reqwest puts the full URL (user info included) into its errors; ours is redacted.
            PromError::Request { url: self.shown.clone(), source: e.without_url() }
        }
    }
}

fn app_selector(namespace: &str, app: &str) -> Result<String, PromError> {
    if namespace.is_empty() || app.is_empty() {
        return Err(PromError::InvalidArgument(format!("namespace {namespace:?} and app {app:?} must not be empty")));
    }
    Ok(format!("namespace={},pod=~{}", quote(namespace), quote(&deployment_pod_regex(app))))
}

/// An unparsable URL may still hold a password; show only its scheme and what follows '@'.
fn base_url_for_error(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// The first 300 characters of a body, for error messages.
fn snippet(body: &str) -> String {
    let mut s: String = body.chars().take(300).collect();
    if s.len() < body.len() {
        s.push('…');
    }
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_never_shows() {
        let p = Prometheus::new("http://admin:s3cret@prom.example:9090/prefix", Duration::from_secs(1)).unwrap();
        assert_eq!(p.url(), "http://prom.example:9090/prefix");
        assert_eq!(p.query_url.as_str(), "http://admin:s3cret@prom.example:9090/prefix/api/v1/query");
        let e = Prometheus::new("http://admin:s3cret@[bad/", Duration::from_secs(1)).unwrap_err().to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn base_url_forms() {
        for (given, query) in [
            ("http://127.0.0.1:26090", "http://127.0.0.1:26090/api/v1/query"),
            ("http://127.0.0.1:26090/", "http://127.0.0.1:26090/api/v1/query"),
            ("https://h/prom/?x=1", "https://h/prom/api/v1/query"),
        ] {
            assert_eq!(Prometheus::new(given, Duration::from_secs(1)).unwrap().query_url.as_str(), query);
        }
        for bad in ["127.0.0.1:26090", "ftp://h/", "not a url", "mailto:a@b"] {
            assert!(matches!(Prometheus::new(bad, Duration::from_secs(1)), Err(PromError::InvalidUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn app_selector_is_escaped_and_anchored_to_the_deployment() {
        assert_eq!(app_selector("ns-1", "web.v1").unwrap(), r#"namespace="ns-1",pod=~"web\\.v1-[a-z0-9]+-[a-z0-9]+""#);
        assert_eq!(app_selector(r#"x"}"#, "a").unwrap(), r#"namespace="x\"}",pod=~"a-[a-z0-9]+-[a-z0-9]+""#);
        assert!(matches!(app_selector("", "a"), Err(PromError::InvalidArgument(_))));
    }

    #[test]
    fn special_values() {
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("1.5e3"), Some(1500.0));
        assert_eq!(parse_value("x"), None);
    }
}
