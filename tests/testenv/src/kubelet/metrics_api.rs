//! A metrics-server stand-in: `metrics.k8s.io/v1beta1` PodMetrics from the simulated load,
//! over HTTPS, registered with the cluster's real API server as an APIService. The API
//! server's aggregator proxies to it through an ExternalName Service (`localhost`), so
//! clients reach it exactly as they reach a real metrics-server: `kubectl top pods`,
//! `GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods?labelSelector=...`.
//!
//! Usage is the pod's current CPU rate (its `sim.mck8s.io/cpu`), split evenly over its
//! containers as the Prometheus counters are. Only equality label selectors are understood
//! (what `matchLabels` renders to); anything else is a 400.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{Kubelet, PodSim};
use crate::{Error, Result};

/// The ExternalName Service in `kube-system` the APIService points at.
pub const SERVICE: &str = "mck8s-sim-metrics";
const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

pub(super) async fn run(k: Kubelet, pki: std::path::PathBuf, port: u16) -> Result<()> {
    let acceptor = acceptor(&pki)?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| Error::io(Path::new("metrics API listener"), e))?;
    // The API server may still be starting (or restarting): register until it takes.
    let reg = k.clone();
    tokio::spawn(async move {
        while let Err(e) = register(&reg, port).await {
            tracing::warn!(error = %e, "registering the metrics APIService; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::info!(port, "metrics.k8s.io registered");
    });
    loop {
        let (tcp, _) = listener.accept().await.map_err(|e| Error::io(Path::new("metrics API accept"), e))?;
        let (k, acceptor) = (k.clone(), acceptor.clone());
        tokio::spawn(async move {
            match acceptor.accept(tcp).await {
                Ok(tls) => {
                    if let Err(e) = handle(&k, tls).await {
                        tracing::debug!(error = %e, "metrics API connection");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "metrics API TLS handshake"),
            }
        });
    }
}

fn acceptor(pki: &Path) -> Result<TlsAcceptor> {
    let bad = |what: &str, e: String| Error::State(format!("metrics API {what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pki.join("serving.crt"))
        .map_err(|e| bad("certificate", e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad("certificate", e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(pki.join("serving.key")).map_err(|e| bad("key", e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("TLS", e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The ExternalName Service and the APIService: created, or merge-patched when they exist
/// (idempotent). Not server-side apply: the 1.20 API server panics on an applied APIService,
/// and refuses an applied Service port without `protocol`.
async fn register(k: &Kubelet, port: u16) -> std::result::Result<(), kube::Error> {
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(k.client.clone(), "kube-system");
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": "kube-system"},
        "spec": {"type": "ExternalName", "externalName": "localhost", "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    });
    create_or_patch(&services, SERVICE, svc).await?;
    let ar = ApiResource {
        group: "apiregistration.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiregistration.k8s.io/v1".into(),
        kind: "APIService".into(),
        plural: "apiservices".into(),
    };
    let apiservices: Api<DynamicObject> = Api::all_with(k.client.clone(), &ar);
    let name = "v1beta1.metrics.k8s.io";
    let api = json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": name},
        "spec": {
            "group": "metrics.k8s.io", "version": "v1beta1",
            "service": {"namespace": "kube-system", "name": SERVICE, "port": port},
            // The aggregator checks the name <service>.<namespace>.svc; a test server on
            // loopback has no such certificate.
            "insecureSkipTLSVerify": true,
            "groupPriorityMinimum": 100, "versionPriority": 100
        }
    });
    create_or_patch(&apiservices, name, api).await
}

async fn create_or_patch<K>(api: &Api<K>, name: &str, body: serde_json::Value) -> std::result::Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(body.clone()).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => api.patch(name, &PatchParams::default(), &Patch::Merge(&body)).await.map(|_| ()),
        Err(e) => Err(e),
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(k: &Kubelet, mut stream: S) -> std::io::Result<()> {
    let (method, target) = super::http::request_line(&mut stream).await?;
    let (code, body) = if method == "GET" { respond(k, &target) } else { (405, status(405, "MethodNotAllowed", "only GET")) };
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let body = body.to_string();
    let resp = format!("HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

/// (HTTP status, JSON body) for one GET.
fn respond(k: &Kubelet, target: &str) -> (u16, serde_json::Value) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let selector = query.split('&').filter_map(|kv| kv.split_once('=')).find(|(key, _)| *key == "labelSelector").map(|(_, v)| percent_decode(v)).unwrap_or_default();
    let wanted = match parse_selector(&selector) {
        Ok(w) => w,
        Err(e) => return (400, status(400, "BadRequest", &e)),
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["apis", "metrics.k8s.io", "v1beta1"] => (200, resources()),
        ["apis", "metrics.k8s.io", "v1beta1", "pods"] => (200, list(k, None, &wanted)),
        ["apis", "metrics.k8s.io", "v1beta1", "namespaces", ns, "pods"] => (200, list(k, Some(ns), &wanted)),
        ["apis", "metrics.k8s.io", "v1beta1", "namespaces", ns, "pods", name] => {
            let sim = k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match sim.pods.get(&(ns.to_string(), name.to_string())).filter(|p| !lost(&sim, p)) {
                Some(p) => (200, pod_metrics(ns, name, p)),
                None => (404, status(404, "NotFound", &format!("podmetrics {name:?} not found"))),
            }
        }
        _ => (404, status(404, "NotFound", "not served here")),
    }
}

fn lost(sim: &super::Sim, p: &PodSim) -> bool {
    sim.nodes.get(&p.node).is_some_and(|n| n.lost)
}

fn resources() -> serde_json::Value {
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
        "resources": [
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]}
        ]
    })
}

fn list(k: &Kubelet, namespace: Option<&str>, wanted: &[(String, String)]) -> serde_json::Value {
    let sim = k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut items: Vec<(&(String, String), &PodSim)> = sim
        .pods
        .iter()
        .filter(|((ns, _), p)| namespace.is_none_or(|n| n == ns) && !lost(&sim, p))
        .filter(|(_, p)| wanted.iter().all(|(key, v)| p.labels.get(key) == Some(v)))
        .collect();
    items.sort_by(|a, b| a.0.cmp(b.0));
    let items: Vec<serde_json::Value> = items.into_iter().map(|((ns, name), p)| pod_metrics(ns, name, p)).collect();
    json!({"kind": "PodMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})
}

fn pod_metrics(ns: &str, name: &str, p: &PodSim) -> serde_json::Value {
    let n = p.containers.len().max(1) as f64;
    let nanocores = (p.cpu_cores * 1e9 / n).round() as u64;
    let containers: Vec<serde_json::Value> = p.containers.iter().map(|c| json!({"name": c, "usage": {"cpu": format!("{nanocores}n"), "memory": "16Mi"}})).collect();
    json!({
        "metadata": {"name": name, "namespace": ns, "labels": p.labels},
        "timestamp": super::now(), "window": "1s",
        "containers": containers
    })
}

fn status(code: u16, reason: &str, message: &str) -> serde_json::Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code})
}

/// `a=b,c==d` → pairs; any other operator is refused (the stand-in is not a full selector engine).
pub fn parse_selector(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (key, value) = term.split_once("==").or_else(|| term.split_once('=')).ok_or_else(|| format!("unsupported selector term {term:?}: only key=value"))?;
        if key.ends_with('!') || key.contains(' ') {
            return Err(format!("unsupported selector term {term:?}: only key=value"));
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%').then(|| s.get(i + 1..i + 3)).flatten().and_then(|h| u8::from_str_radix(h, 16).ok());
        match (hex, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_and_escapes() {
        assert_eq!(percent_decode("app%3Dweb%2Ctier%3D%3Dfront"), "app=web,tier==front");
        assert_eq!(parse_selector("app=web,tier==front").unwrap(), vec![("app".into(), "web".into()), ("tier".into(), "front".into())]);
        assert!(parse_selector("app!=web").is_err());
        assert!(parse_selector("tier in (a,b)").is_err());
        assert!(parse_selector("").unwrap().is_empty());
        assert_eq!(percent_decode("100%"), "100%", "a lone % is kept");
    }
}
