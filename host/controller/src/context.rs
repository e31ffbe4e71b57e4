//! What every reconcile shares.

use crate::metrics::Metrics;
use kube::Client;
use kube::runtime::events::Recorder;
use mck8s_clusters::Registry;
use mck8s_scheduler::Scheduler;
use mck8s_signals::prometheus::Prometheus;
use std::sync::Arc;
use std::time::Duration;

pub struct Context {
    /// The management cluster, where the multi-cluster objects live.
    pub client: Client,
    pub clusters: Arc<Registry>,
    pub scheduler: Arc<Scheduler>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub prometheus: Option<Prometheus>,
    pub timing: Timing,
}

#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Retry of a placement with unplaced replicas (mck8s: 30 s).
    pub burst_retry: Duration,
    /// Retry after an error reaching a cluster or a failed policy.
    pub error_retry: Duration,
    /// Periodic re-check of a settled object.
    pub resync: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { burst_retry: Duration::from_secs(30), error_retry: Duration::from_secs(10), resync: Duration::from_secs(300) }
    }
}
