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
    use crate::metrics::ClusterLabel;
    let gauges = &metrics.cluster;
    let members = clusters.members();
    gauges.retain(members.iter().map(|m| m.name.clone()).collect());
    for m in members {
        let state = m.state(0.0);
        let mut alloc = mck8s_capacity::Resources::default();
        let mut free = mck8s_capacity::Resources::default();
        for n in &state.nodes {
            alloc.add(&n.allocatable);
            free.add(&n.free());
        }
        let l = ClusterLabel { cluster: m.name.clone() };
        gauges.allocatable_cpu_cores.get_or_create(&l).set(alloc.cpu_millis as f64 / 1000.0);
        gauges.allocatable_memory_bytes.get_or_create(&l).set(alloc.memory_bytes as f64);
        gauges.allocatable_pods.get_or_create(&l).set(alloc.pods as f64);
        gauges.free_cpu_cores.get_or_create(&l).set(free.cpu_millis as f64 / 1000.0);
        gauges.free_memory_bytes.get_or_create(&l).set(free.memory_bytes as f64);
        gauges.free_pods.get_or_create(&l).set(free.pods as f64);
        let ready = matches!(state.health, mck8s_fleet::Health::Ready);
        gauges.ready.get_or_create(&l).set(i64::from(ready));
    }
}
