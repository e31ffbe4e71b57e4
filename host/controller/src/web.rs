//! `/metrics`, `/healthz` (the process runs) and `/readyz` (every workload cluster has
//! listed its nodes and pods once, so decisions see real capacity).

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use mck8s_clusters::Registry;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    clusters: Arc<Registry>,
}

pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, clusters: Arc<Registry>) -> anyhow::Result<()> {
    let app = Router::new().route("/metrics", get(metrics_text)).route("/healthz", get(|| async { "ok" })).route("/readyz", get(ready)).with_state(AppState { metrics, clusters });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn metrics_text(State(s): State<AppState>) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    refresh_cluster_gauges(&s.metrics, &s.clusters);
    (StatusCode::OK, [("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.encode())
}

async fn ready(State(s): State<AppState>) -> (StatusCode, String) {
    let waiting: Vec<String> = s.clusters.members().iter().filter(|m| !m.synced()).map(|m| m.name.clone()).collect();
    if waiting.is_empty() { (StatusCode::OK, "ok".into()) } else { (StatusCode::SERVICE_UNAVAILABLE, format!("waiting for the first sync of: {}", waiting.join(", "))) }
}

fn refresh_cluster_gauges(metrics: &Metrics, clusters: &Registry) {
    use crate::metrics::{ClusterLabel, ClusterResource};
    for m in clusters.members() {
        let state = m.state(0.0);
        let mut alloc = mck8s_capacity::Resources::default();
        let mut free = mck8s_capacity::Resources::default();
        for n in &state.nodes {
            alloc.add(&n.allocatable);
            free.add(&n.free());
        }
        for (res, a, f) in [
            ("cpu", alloc.cpu_millis as f64 / 1000.0, free.cpu_millis as f64 / 1000.0),
            ("memory", alloc.memory_bytes as f64, free.memory_bytes as f64),
            ("pods", alloc.pods as f64, free.pods as f64),
        ] {
            let l = ClusterResource { cluster: m.name.clone(), resource: res.into() };
            metrics.cluster_allocatable.get_or_create(&l).set(a);
            metrics.cluster_free.get_or_create(&l).set(f);
        }
        let ready = matches!(state.health, mck8s_policy::input::HealthDoc::Ready);
        metrics.cluster_ready.get_or_create(&ClusterLabel { cluster: m.name.clone() }).set(i64::from(ready));
    }
}
