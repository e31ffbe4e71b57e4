//! Prometheus metrics served on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindResult {
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyError {
    pub policy: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterResource {
    pub cluster: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabel {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MoveLabel {
    pub kind: String,
    /// `failover`, `failback` or `drained`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabel {
    pub cluster: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<KindResult, Counter>,
    pub decisions: Family<PolicyLabel, Counter>,
    pub decision_seconds: Family<PolicyLabel, Histogram>,
    pub policy_errors: Family<PolicyError, Counter>,
    pub unplaced: Family<ObjectLabel, Gauge>,
    pub cluster_allocatable: Family<ClusterResource, Gauge<f64, AtomicU64>>,
    pub cluster_free: Family<ClusterResource, Gauge<f64, AtomicU64>>,
    pub cluster_ready: Family<ClusterLabel, Gauge>,
    pub moves: Family<MoveLabel, Counter>,
    pub moves_throttled: Counter,
    pub child_applies: Family<KindResult, Counter>,
    /// Autoscaler evaluations by result (scaled_out, scaled_in, steady, held, error).
    pub scaling: Family<ResultLabel, Counter>,
    /// Rescheduler proposals by result (proposed, adopted, discarded, throttled).
    pub reschedules: Family<ResultLabel, Counter>,
    /// CloudProvisioner transitions and steps by event reason (Provisioning, Joined,
    /// ScaledOut, ScaledIn, PartialCapacity, Deprovisioned, ProvisioningTimeout, Failed, ...).
    pub cloud: Family<ResultLabel, Counter>,
    /// Guest log lines over a call's budget, dropped (kept by the policy crate; brought up
    /// to date at each scrape).
    guest_log_dropped: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mck8s");
        let reconciles = Family::<KindResult, Counter>::default();
        let decisions = Family::<PolicyLabel, Counter>::default();
        let decision_seconds = Family::<PolicyLabel, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(1e-5, 3.0, 12)));
        let policy_errors = Family::<PolicyError, Counter>::default();
        let unplaced = Family::<ObjectLabel, Gauge>::default();
        let cluster_allocatable = Family::<ClusterResource, Gauge<f64, AtomicU64>>::default();
        let cluster_free = Family::<ClusterResource, Gauge<f64, AtomicU64>>::default();
        let cluster_ready = Family::<ClusterLabel, Gauge>::default();
        let moves = Family::<MoveLabel, Counter>::default();
        let moves_throttled = Counter::default();
        let child_applies = Family::<KindResult, Counter>::default();
        let scaling = Family::<ResultLabel, Counter>::default();
        let reschedules = Family::<ResultLabel, Counter>::default();
        let cloud = Family::<ResultLabel, Counter>::default();
        let guest_log_dropped = Counter::default();
        registry.register("policy_log_lines_dropped", "Policy log lines dropped: over 32 lines in one call", guest_log_dropped.clone());
        registry.register(
            "cloud_provisioner_events",
            "CloudProvisioner transitions and steps by reason (Provisioning, Joined, ScaledOut, ScaledIn, PartialCapacity, Deprovisioned, failures)",
            cloud.clone(),
        );
        registry.register("autoscaler_evaluations", "MultiClusterHorizontalPodAutoscaler evaluations by result (scaled_out, scaled_in, steady, held, error)", scaling.clone());
        registry.register("reschedules", "Rescheduler moves from cloud to fog by result (proposed, adopted, discarded, throttled)", reschedules.clone());
        registry.register("reconciles", "Reconciles by kind and result", reconciles.clone());
        registry.register("placement_decisions", "Placement decisions by policy", decisions.clone());
        registry.register("placement_decision_seconds", "Time to decide one placement (capacity, policy call, validation)", decision_seconds.clone());
        registry.register("policy_errors", "Policy failures by policy and error kind", policy_errors.clone());
        registry.register("unplaced_replicas", "Replicas no cluster could take (the bursting count), per object", unplaced.clone());
        registry.register("cluster_allocatable", "Allocatable of schedulable nodes (cpu in cores, memory in bytes, pods)", cluster_allocatable.clone());
        registry.register("cluster_free", "Free (allocatable minus requests) on schedulable nodes", cluster_free.clone());
        registry.register("cluster_ready", "1 when the cluster is Ready", cluster_ready.clone());
        registry.register("moves", "Placements moved between clusters, by kind and reason (failover, failback, drained)", moves.clone());
        registry.register("moves_throttled", "Failover or failback moves postponed by the fleet-wide rate limit", moves_throttled.clone());
        registry.register(
            "child_applies",
            "Server-side applies of children by kind and result (unchanged: skipped, the cached child is what the last apply produced)",
            child_applies.clone(),
        );
        Metrics {
            registry,
            reconciles,
            decisions,
            decision_seconds,
            policy_errors,
            unplaced,
            cluster_allocatable,
            cluster_free,
            cluster_ready,
            moves,
            moves_throttled,
            child_applies,
            scaling,
            reschedules,
            cloud,
            guest_log_dropped,
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let dropped = mck8s_policy::guest_log_lines_dropped();
        self.guest_log_dropped.inc_by(dropped.saturating_sub(self.guest_log_dropped.get()));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encoding to a String cannot fail");
        out
    }
}
