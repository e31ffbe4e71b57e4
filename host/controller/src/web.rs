//! `/metrics`, `/healthz` (the process runs), `/readyz` (every workload cluster has
//! listed its nodes and pods once, so decisions see real capacity),
//! `/explain/{kind}/{namespace}/{name}` ([`crate::explain`]) and `/snapshot`
//! ([`crate::snapshot`]).

use crate::context::Context;
use crate::explain::ExplainError;
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mck8s_clusters::Registry;
use mck8s_scheduler::ScheduleError;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;
use tracing::Instrument;

/// The controllers' context, once they start: until then `/explain` answers 503.
pub type LateContext = Arc<OnceLock<Arc<Context>>>;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    clusters: Arc<Registry>,
    ctx: LateContext,
    /// Explanations run policies: one at a time, so a flood of them cannot take the policy
    /// threads from real decisions.
    explaining: Arc<Semaphore>,
}

pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, clusters: Arc<Registry>, ctx: LateContext) -> anyhow::Result<()> {
    let state = AppState { metrics, clusters, ctx, explaining: Arc::new(Semaphore::new(1)) };
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/explain/{kind}/{namespace}/{name}", get(explain))
        .route("/snapshot", get(snapshot))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz, /explain, /snapshot");
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

async fn explain(State(s): State<AppState>, Path((kind, namespace, name)): Path<(String, String, String)>) -> Response {
    let Some(ctx) = s.ctx.get() else { return (StatusCode::SERVICE_UNAVAILABLE, "the controllers are starting".to_string()).into_response() };
    let Ok(_permit) = s.explaining.try_acquire() else { return (StatusCode::TOO_MANY_REQUESTS, "another explanation is running; try again".to_string()).into_response() };
    let span = tracing::info_span!("explain", %kind, %namespace, %name);
    match crate::explain::explain(ctx, &kind, &namespace, &name).instrument(span).await {
        Ok(e) => json(&e),
        Err(e) => {
            let code = match &e {
                ExplainError::Kind(_) | ExplainError::Name { .. } => StatusCode::BAD_REQUEST,
                ExplainError::NotFound { .. } => StatusCode::NOT_FOUND,
                ExplainError::Invalid(_) | ExplainError::Schedule(ScheduleError::Input(_)) => StatusCode::UNPROCESSABLE_ENTITY,
                ExplainError::Schedule(ScheduleError::Policy(_)) | ExplainError::Kube(_) => StatusCode::BAD_GATEWAY,
            };
            (code, e.to_string()).into_response()
        }
    }
}

async fn snapshot(State(s): State<AppState>) -> Response {
    let Some(ctx) = s.ctx.get() else { return (StatusCode::SERVICE_UNAVAILABLE, "the controllers are starting".to_string()).into_response() };
    let taken = crate::snapshot::take(ctx).instrument(tracing::info_span!("snapshot")).await;
    match taken {
        Ok(s) => json(&s),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("listing the multi-cluster objects: {e}")).into_response(),
    }
}

fn json(v: &impl serde::Serialize) -> Response {
    match serde_json::to_string(v) {
        Ok(body) => (StatusCode::OK, [("content-type", "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
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
