//! Fault injection, per Cluster: ConfigMap `capi-sim-faults` in `capi-sim-system` of the
//! management cluster, key `<namespace>.<cluster>` (ConfigMap keys cannot hold `/`), value
//! YAML such as `{worker_quota: 1, control_plane: never, machines: never, deletion: stuck,
//! slow_factor: 3}`. Read on every reconcile step, so changing it takes effect at once; an
//! absent ConfigMap or key means no faults.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde::{Deserialize, Serialize};

use super::{FAULTS_CONFIGMAP, SIM_NAMESPACE};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// At most this many worker Machines get an instance (reach Provisioned/Running); the
    /// others stay `Provisioning` with `InfrastructureReady=False/InstanceCreateFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_quota: Option<u32>,
    /// `never`: the API server starts but the control plane never initialises (no workers).
    #[serde(default, skip_serializing_if = "Behaviour::is_normal")]
    pub control_plane: Behaviour,
    /// `never`: worker Machines stay `Provisioning`.
    #[serde(default, skip_serializing_if = "Behaviour::is_normal")]
    pub machines: Behaviour,
    /// `stuck`: a deleted Cluster stays at `WaitingForWorkersDeletion` (its worker Machines
    /// never lose their finalizer), so the Cluster's finalizer is never removed.
    #[serde(default, skip_serializing_if = "Deletion::is_normal")]
    pub deletion: Deletion,
    /// Multiplies every delay of this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_factor: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    #[default]
    Normal,
    Never,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deletion {
    #[default]
    Normal,
    Stuck,
}

impl Behaviour {
    fn is_normal(&self) -> bool {
        *self == Behaviour::Normal
    }
}

impl Deletion {
    fn is_normal(&self) -> bool {
        *self == Deletion::Normal
    }
}

impl Faults {
    pub fn parse(text: &str) -> Result<Faults, String> {
        if text.trim().is_empty() {
            return Ok(Faults::default());
        }
        let f: Faults = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        match f.slow_factor {
            Some(s) if !(s.is_finite() && s > 0.0) => Err(format!("slow_factor must be positive, not {s}")),
            _ => Ok(f),
        }
    }

    pub fn slow(&self) -> f64 {
        self.slow_factor.unwrap_or(1.0)
    }

    /// A configured delay stretched by `slow_factor`.
    pub fn delay(&self, ms: u64) -> std::time::Duration {
        std::time::Duration::from_secs_f64(ms as f64 * self.slow() / 1000.0)
    }
}

/// The ConfigMap key for a Cluster.
pub fn key(ns: &str, cluster: &str) -> String {
    format!("{ns}.{cluster}")
}

/// The faults of one Cluster. A malformed value is logged and ignored (no faults), so one
/// typo cannot stop the simulator.
pub(super) async fn read(mgmt: &kube::Client, ns: &str, cluster: &str) -> Faults {
    let api: Api<ConfigMap> = Api::namespaced(mgmt.clone(), SIM_NAMESPACE);
    let text = match api.get_opt(FAULTS_CONFIGMAP).await {
        Ok(Some(cm)) => cm.data.and_then(|mut d| d.remove(&key(ns, cluster))),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(error = %e, "reading the fault ConfigMap");
            None
        }
    };
    match text.as_deref().map(Faults::parse) {
        None => Faults::default(),
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            tracing::warn!(cluster = %super::names::key(ns, cluster), error = %e, "ignoring malformed faults");
            Faults::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault() {
        let f = Faults::parse("{worker_quota: 1, control_plane: never, machines: never, deletion: stuck, slow_factor: 3}").unwrap();
        assert_eq!(f.worker_quota, Some(1));
        assert_eq!((f.control_plane, f.machines, f.deletion), (Behaviour::Never, Behaviour::Never, Deletion::Stuck));
        assert_eq!(f.delay(100), std::time::Duration::from_millis(300));
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
        assert_eq!(Faults::parse("{}").unwrap().delay(100), std::time::Duration::from_millis(100));
    }

    #[test]
    fn rejects_typos_and_bad_values() {
        assert!(Faults::parse("{worker_qouta: 1}").is_err());
        assert!(Faults::parse("{control_plane: sometimes}").is_err());
        assert!(Faults::parse("{slow_factor: 0}").is_err());
    }

    #[test]
    fn round_trips_and_keys() {
        let f = Faults { worker_quota: Some(2), deletion: Deletion::Stuck, ..Default::default() };
        let text = serde_yaml_ng::to_string(&f).unwrap();
        assert!(!text.contains("control_plane"), "defaults are omitted: {text}");
        assert_eq!(Faults::parse(&text).unwrap(), f);
        assert_eq!(key("team-a", "cloud1"), "team-a.cloud1");
    }
}
