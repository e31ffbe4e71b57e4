//! Background refresh of the fleet's external signals: RTTs (serf's coordinates, or a static
//! map) and per-cluster ingress (Prometheus). A failed refresh keeps the last values.

use mck8s_clusters::Registry;
use mck8s_signals::prometheus::Prometheus;
use std::sync::Arc;
use std::time::Duration;

pub async fn rtt_from_serf(registry: Arc<Registry>, addr: String, every: Duration) {
    loop {
        match mck8s_signals::rtt_matrix(&addr, None).await {
            Ok(rtt) => registry.set_rtt(rtt),
            Err(e) => tracing::warn!(serf = %addr, error = %e, "RTT refresh failed; keeping the last RTTs"),
        }
        tokio::time::sleep(every).await;
    }
}

pub async fn traffic_from_prometheus(registry: Arc<Registry>, prometheus: Prometheus, every: Duration) {
    loop {
        match prometheus.cluster_traffic().await {
            Ok(t) => registry.set_traffic(t),
            Err(e) => tracing::warn!(error = %e, "traffic refresh failed; keeping the last values"),
        }
        tokio::time::sleep(every).await;
    }
}
