//! A CloudProvisioner's spec with every default applied and every value checked, so the plan
//! never has to think about absent fields. Pure.

use super::capi::ClusterShape;
use super::sizing::{Flavor, SizingMode, default_flavors};
use mck8s_api::CloudProvisioner;
use mck8s_capacity::quantity::{parse_bytes, parse_cpu_millis};
use serde_json::{Value, json};
use std::time::Duration;

pub const DEFAULT_CLASS: &str = "mck8s-openstack";
pub const DEFAULT_CLASS_NAMESPACE: &str = "mck8s-system";
pub const DEFAULT_VERSION: &str = "v1.34.2";
/// The cluster template used without the ClusterTopology gate (deploy/capi/).
pub const DEFAULT_TEMPLATE: &str = "mck8s-openstack-template";
pub const DEFAULT_TEMPLATE_KEY: &str = "cluster-template.yaml";

/// How the Cluster is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvisioningMode {
    /// `spec.topology`, falling back to the template when Cluster API refuses it.
    Auto,
    Topology,
    /// The provider's objects rendered from the cluster template.
    Templates,
}

/// Where the cluster template is: a key of a ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSource {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoscalingMode {
    Builtin,
    ClusterAutoscaler,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionPolicy {
    DeleteWhenIdle,
    Delete,
    Orphan,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub cluster: String,
    pub namespace: String,
    pub class_name: String,
    pub class_namespace: String,
    pub mode: ProvisioningMode,
    pub template: TemplateSource,
    pub version: String,
    pub control_plane_replicas: i32,
    pub control_plane_flavor: Option<String>,
    pub worker_class: String,
    pub worker_name: String,
    pub flavor_variable: String,
    pub min_workers: i32,
    pub max_workers: i32,
    pub flavors: Vec<Flavor>,
    pub sizing: SizingMode,
    pub node_overhead_cpu: u64,
    pub node_overhead_memory: u64,
    pub max_pods_per_node: u32,
    pub autoscaling: AutoscalingMode,
    pub scale_out_confirm: Duration,
    pub scale_down_unneeded: Duration,
    pub scale_down_threshold: f64,
    pub scale_down_delay_after_add: Duration,
    pub machine_startup_timeout: Duration,
    pub demand_confirm: Duration,
    pub provision_timeout: Duration,
    pub join_timeout: Duration,
    pub idle_window: Duration,
    pub drain_grace: Duration,
    pub deletion_timeout: Duration,
    pub max_attempts: i32,
    pub retry_backoff: Duration,
    pub delete_failed: bool,
    pub deletion_policy: DeletionPolicy,
    /// Variables mapped from the original's fields, then the spec's own (which win).
    pub variables: Vec<(String, Value)>,
    /// The inline `cloudsYaml`/`certText` (base64, as the original took them), to be moved
    /// into the credentials Secret.
    pub inline_credentials: Vec<(String, String)>,
    pub credentials_ref: Option<(String, String)>,
    /// Original fields the class may not use, for a warning condition.
    pub notes: Vec<String>,
}

impl Settings {
    /// The credentials Secret in the Cluster's namespace (the original's name).
    pub fn credentials_secret(&self) -> String {
        format!("{}-cloud-config", self.cluster)
    }

    /// The workers' MachineDeployment when the Cluster is rendered from the template (the
    /// original's `<cluster>-md-0`); a topology's is named by Cluster API instead.
    pub fn worker_machine_deployment(&self) -> String {
        format!("{}-{}", self.cluster, self.worker_name)
    }

    pub fn shape(&self, owner: &str, owner_uid: &str, flavor: &str) -> ClusterShape {
        let mut variables = self.variables.clone();
        set_default(&mut variables, &self.flavor_variable, json!(flavor));
        set_default(&mut variables, "controlPlaneFlavor", json!(self.control_plane_flavor.clone().unwrap_or_else(|| flavor.to_string())));
        ClusterShape {
            name: self.cluster.clone(),
            namespace: self.namespace.clone(),
            owner: owner.to_string(),
            owner_uid: owner_uid.to_string(),
            class_name: self.class_name.clone(),
            class_namespace: self.class_namespace.clone(),
            version: self.version.clone(),
            control_plane_replicas: self.control_plane_replicas,
            worker_class: self.worker_class.clone(),
            worker_name: self.worker_name.clone(),
            variables,
            autoscaler_bounds: (self.autoscaling == AutoscalingMode::ClusterAutoscaler).then_some((self.min_workers, self.max_workers)),
        }
    }
}

fn set_default(vars: &mut Vec<(String, Value)>, name: &str, value: Value) {
    if !vars.iter().any(|(n, _)| n == name) {
        vars.push((name.to_string(), value));
    }
}

fn secs(v: Option<i64>, default: u64, field: &str) -> Result<Duration, String> {
    match v {
        None => Ok(Duration::from_secs(default)),
        Some(s) if s >= 0 => Ok(Duration::from_secs(s as u64)),
        Some(s) => Err(format!("{field} is {s}; it must not be negative")),
    }
}

/// A DNS-1123 label: the Cluster, its namespace and the registered cluster share the name.
fn dns_label(name: &str, field: &str) -> Result<(), String> {
    let ok =
        !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && !name.starts_with('-') && !name.ends_with('-');
    if ok { Ok(()) } else { Err(format!("{field} {name:?} is not a DNS label (lower-case letters, digits and '-', at most 63)")) }
}

pub fn resolve(cp: &CloudProvisioner) -> Result<Settings, String> {
    let spec = &cp.spec;
    let own = cp.metadata.name.clone().unwrap_or_default();
    let cluster = spec.cloud_cluster_name.clone().unwrap_or(own);
    dns_label(&cluster, "spec.cloudClusterName")?;
    let namespace = spec.namespace.clone().unwrap_or_else(|| cluster.clone());
    dns_label(&namespace, "spec.namespace")?;
    let class = spec.cluster_class.clone().unwrap_or_default();
    let cp_spec = spec.control_plane.clone().unwrap_or_default();
    let workers = spec.workers.clone().unwrap_or_default();
    let min_workers = workers.min_replicas.unwrap_or(1);
    let max_workers = workers.max_replicas.unwrap_or(10);
    if min_workers < 0 || max_workers < 1 || min_workers > max_workers {
        return Err(format!("spec.workers: minReplicas {min_workers} and maxReplicas {max_workers} do not make a range"));
    }
    let flavors = if spec.flavors.is_empty() {
        default_flavors()
    } else {
        spec.flavors
            .iter()
            .map(|f| {
                let bad = |e: String| format!("spec.flavors[{}]: {e}", f.name);
                Ok(Flavor {
                    name: f.name.clone(),
                    cpu_milli: parse_cpu_millis(&f.cpu).map_err(|e| bad(e.to_string()))?,
                    memory_bytes: parse_bytes(&f.memory).map_err(|e| bad(e.to_string()))?,
                    pods: f.pods.unwrap_or(110).max(1) as u32,
                })
            })
            .collect::<Result<Vec<_>, String>>()?
    };
    let sizing_spec = spec.sizing.clone().unwrap_or_default();
    let sizing = match sizing_spec.mode.as_deref() {
        None | Some("BinPack") => SizingMode::BinPack,
        Some("Legacy") => SizingMode::Legacy,
        Some(m) => return Err(format!("spec.sizing.mode {m:?}: expected BinPack or Legacy")),
    };
    let overhead = sizing_spec.node_overhead.unwrap_or_default();
    let node_overhead_cpu = parse_cpu_millis(overhead.cpu.as_deref().unwrap_or("200m")).map_err(|e| format!("spec.sizing.nodeOverhead.cpu: {e}"))?;
    let node_overhead_memory = parse_bytes(overhead.memory.as_deref().unwrap_or("1Gi")).map_err(|e| format!("spec.sizing.nodeOverhead.memory: {e}"))?;
    let auto = spec.autoscaling.clone().unwrap_or_default();
    let autoscaling = match auto.mode.as_deref() {
        None | Some("Builtin") => AutoscalingMode::Builtin,
        Some("ClusterAutoscaler") => AutoscalingMode::ClusterAutoscaler,
        Some("None") => AutoscalingMode::None,
        Some(m) => return Err(format!("spec.autoscaling.mode {m:?}: expected Builtin, ClusterAutoscaler or None")),
    };
    let threshold = auto.scale_down_utilization_threshold.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(format!("spec.autoscaling.scaleDownUtilizationThreshold {threshold}: expected 0 to 1"));
    }
    let life = spec.lifecycle.clone().unwrap_or_default();
    let delete_failed = match life.on_provision_failure.as_deref() {
        None | Some("Delete") => true,
        Some("Keep") => false,
        Some(m) => return Err(format!("spec.lifecycle.onProvisionFailure {m:?}: expected Delete or Keep")),
    };
    let mode = match spec.provisioning_mode.as_deref() {
        None | Some("Auto") => ProvisioningMode::Auto,
        Some("Topology") => ProvisioningMode::Topology,
        Some("Templates") => ProvisioningMode::Templates,
        Some(m) => return Err(format!("spec.provisioningMode {m:?}: expected Auto, Topology or Templates")),
    };
    let template_ref = spec.cluster_template.clone().unwrap_or_default();
    let template = TemplateSource {
        namespace: template_ref.namespace.unwrap_or_else(|| DEFAULT_CLASS_NAMESPACE.to_string()),
        name: if template_ref.name.is_empty() { DEFAULT_TEMPLATE.to_string() } else { template_ref.name },
        key: template_ref.key.unwrap_or_else(|| DEFAULT_TEMPLATE_KEY.to_string()),
    };
    let deletion_policy = match life.deletion_policy.as_deref() {
        None | Some("DeleteWhenIdle") => DeletionPolicy::DeleteWhenIdle,
        Some("Delete") => DeletionPolicy::Delete,
        Some("Orphan") => DeletionPolicy::Orphan,
        Some(m) => return Err(format!("spec.lifecycle.deletionPolicy {m:?}: expected DeleteWhenIdle, Delete or Orphan")),
    };

    // The original's OpenStack fields become the shipped class's variables.
    let mut variables: Vec<(String, Value)> = Vec::new();
    for (name, value) in [
        ("apiServerFloatingIP", &spec.floating_ip),
        ("gatewayIP", &spec.gateway_ip),
        ("externalNetworkID", &spec.ext_network_id),
        ("securityGroupID", &spec.security_group_id),
        ("remoteWriteHost", &spec.influx_db_ip),
    ] {
        if let Some(v) = value {
            variables.push((name.to_string(), json!(v)));
        }
    }
    let mut inline_credentials = Vec::new();
    if let Some(c) = &spec.clouds_yaml {
        inline_credentials.push(("clouds.yaml".to_string(), c.clone()));
    }
    if let Some(c) = &spec.cert_text {
        inline_credentials.push(("cloud.conf".to_string(), c.clone()));
    }
    let credentials_ref = spec.credentials_secret_ref.as_ref().map(|r| (r.namespace.clone().unwrap_or_else(|| DEFAULT_CLASS_NAMESPACE.to_string()), r.name.clone()));
    if !inline_credentials.is_empty() || credentials_ref.is_some() {
        variables.push(("identityRef".into(), json!({"name": format!("{cluster}-cloud-config"), "cloudName": "openstack"})));
    }
    for v in &spec.variables {
        variables.retain(|(n, _)| n != &v.name);
        variables.push((v.name.clone(), v.value.clone()));
    }
    let mut notes = Vec::new();
    if !cluster.contains("cloud") {
        notes.push(format!("{cluster:?} does not contain \"cloud\": it is registered with role cloud explicitly"));
    }
    Ok(Settings {
        cluster,
        namespace,
        class_name: if class.name.is_empty() { DEFAULT_CLASS.to_string() } else { class.name },
        class_namespace: class.namespace.unwrap_or_else(|| DEFAULT_CLASS_NAMESPACE.to_string()),
        mode,
        template,
        version: spec.kubernetes_version.clone().unwrap_or_else(|| DEFAULT_VERSION.to_string()),
        control_plane_replicas: cp_spec.replicas.unwrap_or(1).max(1),
        control_plane_flavor: cp_spec.flavor,
        worker_class: workers.class.unwrap_or_else(|| "default-worker".into()),
        worker_name: workers.name.unwrap_or_else(|| "md-0".into()),
        flavor_variable: workers.flavor_variable.unwrap_or_else(|| "workerFlavor".into()),
        min_workers,
        max_workers,
        flavors,
        sizing,
        node_overhead_cpu,
        node_overhead_memory,
        max_pods_per_node: sizing_spec.max_pods_per_node.unwrap_or(110).max(1) as u32,
        autoscaling,
        scale_out_confirm: secs(auto.scale_out_confirm_seconds, 30, "spec.autoscaling.scaleOutConfirmSeconds")?,
        scale_down_unneeded: secs(auto.scale_down_unneeded_seconds, 330, "spec.autoscaling.scaleDownUnneededSeconds")?,
        scale_down_threshold: threshold,
        scale_down_delay_after_add: secs(auto.scale_down_delay_after_add_seconds, 600, "spec.autoscaling.scaleDownDelayAfterAddSeconds")?,
        machine_startup_timeout: secs(auto.machine_startup_timeout_seconds, 600, "spec.autoscaling.machineStartupTimeoutSeconds")?,
        demand_confirm: secs(life.demand_confirm_seconds, 30, "spec.lifecycle.demandConfirmSeconds")?,
        provision_timeout: secs(life.provision_timeout_seconds, 1200, "spec.lifecycle.provisionTimeoutSeconds")?,
        join_timeout: secs(life.join_timeout_seconds, 300, "spec.lifecycle.joinTimeoutSeconds")?,
        idle_window: secs(life.deprovision_after_idle_seconds, 630, "spec.lifecycle.deprovisionAfterIdleSeconds")?,
        drain_grace: secs(life.drain_grace_seconds, 30, "spec.lifecycle.drainGraceSeconds")?,
        deletion_timeout: secs(life.deletion_timeout_seconds, 1200, "spec.lifecycle.deletionTimeoutSeconds")?,
        max_attempts: life.max_attempts.unwrap_or(3).max(1),
        retry_backoff: secs(life.retry_backoff_seconds, 30, "spec.lifecycle.retryBackoffSeconds")?,
        delete_failed,
        deletion_policy,
        variables,
        inline_credentials,
        credentials_ref,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../tests/cases/mck8s-examples/example_cloud_provisioner.yaml");

    #[test]
    fn the_original_example_resolves_to_the_openstack_class() {
        let cp: CloudProvisioner = serde_yaml_ng::from_str(EXAMPLE).unwrap();
        let s = resolve(&cp).unwrap();
        assert_eq!((s.cluster.as_str(), s.namespace.as_str(), s.class_name.as_str()), ("cloud1", "cloud1", DEFAULT_CLASS));
        let names: Vec<&str> = s.variables.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["apiServerFloatingIP", "gatewayIP", "externalNetworkID", "securityGroupID", "identityRef"]);
        assert_eq!(s.inline_credentials.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["clouds.yaml", "cloud.conf"]);
        let shape = s.shape("cp1", "uid", "k8s.large");
        assert!(shape.variables.iter().any(|(n, v)| n == "workerFlavor" && v == "k8s.large"));
        assert!(shape.variables.iter().any(|(n, v)| n == "controlPlaneFlavor" && v == "k8s.large"));
        // Credentials never reach the Cluster object.
        let body = shape.apply_body(Some(1)).to_string();
        assert!(!body.contains(cp.spec.clouds_yaml.as_deref().unwrap()));
    }

    #[test]
    fn user_variables_win_and_bad_values_are_named() {
        let mut cp: CloudProvisioner = serde_yaml_ng::from_str(EXAMPLE).unwrap();
        cp.spec.variables = vec![mck8s_api::ClusterVariable { name: "gatewayIP".into(), value: json!("10.0.0.1") }];
        let s = resolve(&cp).unwrap();
        assert_eq!(s.variables.iter().filter(|(n, _)| n == "gatewayIP").count(), 1);
        assert!(s.variables.iter().any(|(n, v)| n == "gatewayIP" && v == "10.0.0.1"));
        cp.spec.cloud_cluster_name = Some("Cloud_1".into());
        assert!(resolve(&cp).unwrap_err().contains("spec.cloudClusterName"));
        cp.spec.cloud_cluster_name = Some("cloud1".into());
        cp.spec.sizing = Some(mck8s_api::SizingSpec { mode: Some("Greedy".into()), ..Default::default() });
        assert!(resolve(&cp).unwrap_err().contains("spec.sizing.mode"));
    }
}
