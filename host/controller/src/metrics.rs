//! Prometheus metrics served on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

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
pub struct ShadowLabel {
    pub policy: String,
    pub shadow: String,
    /// agreed, diverged, failed
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyError {
    pub policy: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabel {
    version: String,
    /// The `mck8s:policy` WIT version the host implements.
    wit: String,
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
    /// Time a policy call waited for a free thread ([`crate::policy_calls`]).
    pub policy_call_wait: Histogram,
    pub policy_errors: Family<PolicyError, Counter>,
    pub unplaced: Family<ObjectLabel, Gauge>,
    pub reconcile_seconds: Family<KindLabel, Histogram>,
    /// Per cluster, from its schedulable nodes: one metric per resource, its unit in its name.
    pub cluster: ClusterGauges,
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
    /// Shadow policies' view of real decisions, by result.
    pub shadow_decisions: Family<ShadowLabel, Counter>,
    /// Replicas a shadow would have placed elsewhere than the active policy did.
    pub shadow_replicas_moved: Family<ShadowLabel, Counter>,
    /// Guest log lines over a call's budget, dropped (kept by the policy crate; brought up
    /// to date at each scrape).
    guest_log_dropped: Counter,
    /// How policy instances got the fleet: whole (`set-fleet`), as an update, or an update
    /// that failed (kept by the policy crate; brought up to date at each scrape).
    fleets_sent: Family<HowLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HowLabel {
    pub how: String,
}

/// The per-cluster gauges. A cluster that leaves the registry leaves these too (see
/// [`ClusterGauges::retain`]), so a dashboard never shows a removed cluster's last values.
#[derive(Default)]
pub struct ClusterGauges {
    pub allocatable_cpu_cores: Family<ClusterLabel, Gauge<f64, AtomicU64>>,
    pub allocatable_memory_bytes: Family<ClusterLabel, Gauge<f64, AtomicU64>>,
    pub allocatable_pods: Family<ClusterLabel, Gauge<f64, AtomicU64>>,
    pub free_cpu_cores: Family<ClusterLabel, Gauge<f64, AtomicU64>>,
    pub free_memory_bytes: Family<ClusterLabel, Gauge<f64, AtomicU64>>,
    pub free_pods: Family<ClusterLabel, Gauge<f64, AtomicU64>>,
    pub ready: Family<ClusterLabel, Gauge>,
    reported: Mutex<BTreeSet<String>>,
}

impl ClusterGauges {
    fn register(&self, registry: &mut Registry) {
        let cores = || Unit::Other("cores".into());
        registry.register_with_unit("cluster_allocatable_cpu", "Allocatable CPU of the cluster's schedulable nodes", cores(), self.allocatable_cpu_cores.clone());
        registry.register_with_unit("cluster_allocatable_memory", "Allocatable memory of the cluster's schedulable nodes", Unit::Bytes, self.allocatable_memory_bytes.clone());
        registry.register("cluster_allocatable_pods", "Allocatable pods of the cluster's schedulable nodes", self.allocatable_pods.clone());
        registry.register_with_unit("cluster_free_cpu", "Free CPU (allocatable minus requests) on schedulable nodes", cores(), self.free_cpu_cores.clone());
        registry.register_with_unit("cluster_free_memory", "Free memory (allocatable minus requests) on schedulable nodes", Unit::Bytes, self.free_memory_bytes.clone());
        registry.register("cluster_free_pods", "Free pods (allocatable minus bound pods) on schedulable nodes", self.free_pods.clone());
        registry.register("cluster_ready", "1 when the cluster is Ready", self.ready.clone());
    }

    /// Drops the series of every cluster not in `current`; remembers `current` for next time.
    pub fn retain(&self, current: BTreeSet<String>) {
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        for gone in reported.difference(&current) {
            let l = ClusterLabel { cluster: gone.clone() };
            for family in [&self.allocatable_cpu_cores, &self.allocatable_memory_bytes, &self.allocatable_pods, &self.free_cpu_cores, &self.free_memory_bytes, &self.free_pods] {
                family.remove(&l);
            }
            self.ready.remove(&l);
        }
        *reported = current;
    }
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
        let policy_call_wait = Histogram::new(exponential_buckets(1e-5, 3.0, 14));
        registry.register_with_unit(
            "policy_call_wait",
            "Time a placement or scaling call waited for a free policy thread (one per core) before it ran",
            Unit::Seconds,
            policy_call_wait.clone(),
        );
        let unplaced = Family::<ObjectLabel, Gauge>::default();
        // 1 ms to about 2 min: a reconcile is a few API calls, or waits on a slow member.
        let reconcile_seconds = Family::<KindLabel, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(1e-3, 2.5, 14)));
        let cluster = ClusterGauges::default();
        cluster.register(&mut registry);
        let build_info = Family::<BuildLabel, Gauge>::default();
        build_info.get_or_create(&BuildLabel { version: env!("CARGO_PKG_VERSION").into(), wit: mck8s_policy::WIT_VERSION.into() }).set(1);
        registry.register("build_info", "1, labelled with the controller's version and the policy WIT version it implements", build_info);
        let moves = Family::<MoveLabel, Counter>::default();
        let moves_throttled = Counter::default();
        let child_applies = Family::<KindResult, Counter>::default();
        let scaling = Family::<ResultLabel, Counter>::default();
        let reschedules = Family::<ResultLabel, Counter>::default();
        let cloud = Family::<ResultLabel, Counter>::default();
        let shadow_decisions = Family::<ShadowLabel, Counter>::default();
        let shadow_replicas_moved = Family::<ShadowLabel, Counter>::default();
        registry.register(
            "shadow_decisions",
            "Real placement decisions also evaluated by the active policy's shadow, by result (agreed, diverged, failed); never applied",
            shadow_decisions.clone(),
        );
        registry.register("shadow_replicas_moved", "Replicas the shadow policy would have placed elsewhere than the active one", shadow_replicas_moved.clone());
        let guest_log_dropped = Counter::default();
        registry.register("policy_log_lines_dropped", "Policy log lines dropped: over 32 lines in one call", guest_log_dropped.clone());
        let fleets_sent = Family::<HowLabel, Counter>::default();
        registry.register(
            "policy_fleets_sent",
            "Fleets sent to placement policy instances: whole (a new instance, set-fleet), update (only the clusters that changed), update-failed (the instance refused or trapped on an update and was dropped; the next call sends it whole)",
            fleets_sent.clone(),
        );
        registry.register(
            "cloud_provisioner_events",
            "CloudProvisioner transitions and steps by reason (Provisioning, Joined, ScaledOut, ScaledIn, PartialCapacity, Deprovisioned, failures)",
            cloud.clone(),
        );
        registry.register("autoscaler_evaluations", "MultiClusterHorizontalPodAutoscaler evaluations by result (scaled_out, scaled_in, steady, held, error)", scaling.clone());
        registry.register("reschedules", "Rescheduler moves from cloud to fog by result (proposed, adopted, discarded, throttled)", reschedules.clone());
        registry.register("reconciles", "Reconciles by kind and result", reconciles.clone());
        registry.register("placement_decisions", "Placement decisions by policy", decisions.clone());
        registry.register_with_unit(
            "placement_decision",
            "Time to decide one placement (fleet snapshot, capacity, policy call, validation; not the wait for a policy thread)",
            Unit::Seconds,
            decision_seconds.clone(),
        );
        registry.register_with_unit("reconcile_duration", "Time of one reconcile by kind, errors included", Unit::Seconds, reconcile_seconds.clone());
        registry.register("policy_errors", "Policy failures by policy and error kind", policy_errors.clone());
        registry.register("unplaced_replicas", "Replicas no cluster could take (the bursting count), per object", unplaced.clone());
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
            policy_call_wait,
            policy_errors,
            unplaced,
            reconcile_seconds,
            cluster,
            moves,
            moves_throttled,
            child_applies,
            shadow_decisions,
            shadow_replicas_moved,
            scaling,
            reschedules,
            cloud,
            guest_log_dropped,
            fleets_sent,
        }
    }
}

impl Metrics {
    /// Counts one reconcile of `kind` (`mck8s_reconciles_total{kind,result}`) and its time
    /// (`mck8s_reconcile_duration_seconds{kind}`).
    pub fn reconciled(&self, kind: &str, ok: bool, started: Instant) {
        self.reconciles.get_or_create(&KindResult { kind: kind.into(), result: if ok { "ok" } else { "error" }.into() }).inc();
        self.reconcile_seconds.get_or_create(&KindLabel { kind: kind.into() }).observe(started.elapsed().as_secs_f64());
    }

    pub fn encode(&self) -> String {
        let dropped = mck8s_policy::guest_log_lines_dropped();
        self.guest_log_dropped.inc_by(dropped.saturating_sub(self.guest_log_dropped.get()));
        let sent = mck8s_policy::fleet_sends_total();
        for (how, total) in [("whole", sent.full), ("update", sent.updates), ("update-failed", sent.failed_updates)] {
            let c = self.fleets_sent.get_or_create(&HowLabel { how: how.into() });
            c.inc_by(total.saturating_sub(c.get()));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encoding to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(m: &Metrics, prefix: &str) -> Vec<String> {
        m.encode().lines().filter(|l| l.starts_with(prefix)).map(str::to_string).collect()
    }

    #[test]
    fn names_carry_their_units_and_build_info_is_one() {
        let m = Metrics::default();
        let l = ClusterLabel { cluster: "fog1".into() };
        m.cluster.allocatable_cpu_cores.get_or_create(&l).set(4.0);
        m.cluster.free_memory_bytes.get_or_create(&l).set(1024.0);
        m.reconciled("MultiClusterDeployment", true, Instant::now());
        m.decision_seconds.get_or_create(&PolicyLabel { policy: "worst-fit".into() }).observe(0.001);
        let text = m.encode();
        for want in [
            "mck8s_cluster_allocatable_cpu_cores{cluster=\"fog1\"} 4.0",
            "mck8s_cluster_free_memory_bytes{cluster=\"fog1\"} 1024.0",
            "# UNIT mck8s_reconcile_duration_seconds seconds",
            "mck8s_reconcile_duration_seconds_count{kind=\"MultiClusterDeployment\"} 1",
            "mck8s_reconciles_total{kind=\"MultiClusterDeployment\",result=\"ok\"} 1",
            "# UNIT mck8s_placement_decision_seconds seconds",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        let build = series(&m, "mck8s_build_info{");
        assert_eq!(build.len(), 1, "{build:?}");
        assert!(build[0].contains(&format!("wit=\"{}\"", mck8s_policy::WIT_VERSION)) && build[0].ends_with(" 1"), "{build:?}");
    }

    #[test]
    fn a_cluster_that_leaves_takes_its_gauges_along() {
        let m = Metrics::default();
        for name in ["fog1", "fog2"] {
            let l = ClusterLabel { cluster: name.into() };
            m.cluster.allocatable_pods.get_or_create(&l).set(110.0);
            m.cluster.ready.get_or_create(&l).set(1);
        }
        m.cluster.retain(["fog1".to_string(), "fog2".to_string()].into());
        assert_eq!(series(&m, "mck8s_cluster_ready{").len(), 2);
        m.cluster.retain(["fog1".to_string()].into());
        assert_eq!(series(&m, "mck8s_cluster_ready{"), ["mck8s_cluster_ready{cluster=\"fog1\"} 1"]);
        assert_eq!(series(&m, "mck8s_cluster_allocatable_pods{"), ["mck8s_cluster_allocatable_pods{cluster=\"fog1\"} 110.0"]);
    }
}
