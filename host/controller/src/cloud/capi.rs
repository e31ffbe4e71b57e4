//! The Cluster API objects the provisioner writes and reads (`cluster.x-k8s.io/v1beta2`).
//! No published crate works with this kube version, so these are small hand-written views of
//! the fields mck8s touches, and the server-side-apply bodies it sends. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

pub const GROUP: &str = "cluster.x-k8s.io";
pub const VERSION: &str = "v1beta2";
/// Set by Cluster API on everything of one cluster.
pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
/// Cluster API removes Machines carrying this annotation first on scale-in.
pub const DELETE_MACHINE: &str = "cluster.x-k8s.io/delete-machine";
pub const AUTOSCALER_MIN: &str = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size";
pub const AUTOSCALER_MAX: &str = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size";
/// Our marks on the Cluster: which CloudProvisioner (name and uid) owns it. A Cluster
/// without our uid is never updated or deleted.
pub const OWNER_LABEL: &str = mck8s_api::labels::MADE_BY_PROVISIONER;
pub const OWNER_UID_LABEL: &str = "fogguru.eu/cloud-provisioner-uid";
/// Field managers: the provisioner owns the Cluster's shape, the node autoscaler only the
/// workers' `replicas` (so re-applying the shape never resets a scale step).
pub const PROVISIONER_MANAGER: &str = "mck8s-cloudprovisioner";
pub const AUTOSCALER_MANAGER: &str = "mck8s-node-autoscaler";

pub fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, VERSION, kind))
}

/// What the Cluster should look like (everything mck8s decides), sent by server-side apply.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterShape {
    pub name: String,
    pub namespace: String,
    pub owner: String,
    pub owner_uid: String,
    pub class_name: String,
    pub class_namespace: String,
    pub version: String,
    pub control_plane_replicas: i32,
    pub worker_class: String,
    pub worker_name: String,
    pub variables: Vec<(String, Value)>,
    /// The cluster-autoscaler's node-group bounds instead of replicas (the CAPI webhook
    /// refuses both).
    pub autoscaler_bounds: Option<(i32, i32)>,
}

impl ClusterShape {
    /// The provisioner's apply body. `replicas` is only sent when the Cluster is created:
    /// afterwards the node autoscaler owns it.
    pub fn apply_body(&self, initial_replicas: Option<i32>) -> Value {
        let mut md = json!({"class": self.worker_class, "name": self.worker_name});
        match self.autoscaler_bounds {
            Some((min, max)) => {
                md["metadata"] = json!({"annotations": {AUTOSCALER_MIN: min.to_string(), AUTOSCALER_MAX: max.to_string()}});
            }
            None => {
                if let Some(r) = initial_replicas {
                    md["replicas"] = json!(r);
                }
            }
        }
        let variables: Vec<Value> = self.variables.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
        json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "Cluster",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {OWNER_LABEL: self.owner, OWNER_UID_LABEL: self.owner_uid, "fogguru.eu/managed-by": "mck8s"},
            },
            "spec": {
                // The original's pod CIDR and service domain.
                "clusterNetwork": {"pods": {"cidrBlocks": ["106.96.0.0/11"]}, "serviceDomain": "cluster.local"},
                "topology": {
                    "classRef": {"name": self.class_name, "namespace": self.class_namespace},
                    "version": self.version,
                    "controlPlane": {"replicas": self.control_plane_replicas},
                    "workers": {"machineDeployments": [md]},
                    "variables": variables,
                }
            }
        })
    }

    /// The node autoscaler's apply body: the workers' replicas and nothing else it could
    /// take from the provisioner.
    pub fn replicas_body(&self, replicas: i32) -> Value {
        json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "Cluster",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"topology": {"workers": {"machineDeployments": [
                {"class": self.worker_class, "name": self.worker_name, "replicas": replicas}
            ]}}}
        })
    }
}

/// The node autoscaler's apply body for a rendered MachineDeployment: its replicas only.
pub fn machine_deployment_replicas_body(name: &str, namespace: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "MachineDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas}
    })
}

/// Cluster API's message when it refused `spec.topology` itself: the ClusterTopology feature gate is
/// off. Its webhook says `spec.topology: Forbidden: can be set only if the ClusterTopology
/// feature flag is enabled`; any schema that forbids the field names it the same way. An
/// error inside the topology (`spec.topology.variables[...]`) is not this.
pub fn topology_refusal(e: &kube::Error) -> Option<&str> {
    let kube::Error::Api(s) = e else { return None };
    let on_topology = s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.field == "spec.topology"));
    (s.code == 422 && (on_topology || s.message.contains("spec.topology: "))).then_some(s.message.as_str())
}

/// A Cluster as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterView {
    pub uid: String,
    pub owner_uid: Option<String>,
    pub deleting: bool,
    pub infrastructure_provisioned: bool,
    pub control_plane_initialized: bool,
    pub control_plane_available: bool,
    pub remote_probe: bool,
    pub workers_ready: i32,
    /// The workers' replicas as asked for: the topology entry's, or the rendered
    /// MachineDeployment's ([`ClusterView::with_machine_deployment`]).
    pub worker_replicas: Option<i32>,
    /// Rendered from the cluster template (no `spec.topology`).
    pub templated: bool,
    /// Templated, and the workers' MachineDeployment (applied last) is not there: the
    /// rendering was cut short and is applied again.
    pub template_incomplete: bool,
    pub conditions: Vec<Condition>,
}

impl ClusterView {
    pub fn parse(obj: &DynamicObject, worker_name: &str) -> ClusterView {
        let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
        let conditions: Vec<Condition> = status.get("conditions").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default();
        let cond = |t: &str| conditions.iter().any(|c| c.type_ == t && c.status == "True");
        let init = |f: &str| status.pointer(&format!("/initialization/{f}")).and_then(Value::as_bool).unwrap_or(false);
        let worker_replicas = obj
            .data
            .pointer("/spec/topology/workers/machineDeployments")
            .and_then(Value::as_array)
            .and_then(|mds| mds.iter().find(|m| m.get("name").and_then(Value::as_str) == Some(worker_name)))
            .and_then(|m| m.get("replicas"))
            .and_then(Value::as_i64)
            .map(|r| r as i32);
        ClusterView {
            uid: obj.metadata.uid.clone().unwrap_or_default(),
            owner_uid: obj.metadata.labels.as_ref().and_then(|l| l.get(OWNER_UID_LABEL).cloned()),
            deleting: obj.metadata.deletion_timestamp.is_some(),
            infrastructure_provisioned: init("infrastructureProvisioned") || cond("InfrastructureReady"),
            control_plane_initialized: init("controlPlaneInitialized") || cond("ControlPlaneInitialized"),
            control_plane_available: cond("ControlPlaneAvailable"),
            remote_probe: cond("RemoteConnectionProbe"),
            workers_ready: status.pointer("/workers/readyReplicas").and_then(Value::as_i64).unwrap_or(0) as i32,
            worker_replicas,
            templated: obj.data.pointer("/spec/topology").is_none_or(Value::is_null),
            template_incomplete: false,
            conditions,
        }
    }

    /// A templated Cluster's workers, from its MachineDeployment (`None`: not there yet).
    pub fn with_machine_deployment(mut self, md: Option<&DynamicObject>) -> ClusterView {
        self.template_incomplete = md.is_none_or(|m| m.metadata.deletion_timestamp.is_some());
        self.worker_replicas = md.and_then(|m| m.data.pointer("/spec/replicas")).and_then(Value::as_i64).map(|r| r as i32);
        self
    }

    pub fn mode(&self) -> &'static str {
        if self.templated { "Templates" } else { "Topology" }
    }

    /// The conditions that are not True, for diagnostics (`Type: reason: message`).
    pub fn problems(&self) -> Vec<String> {
        self.conditions
            .iter()
            .filter(|c| c.status != "True" && c.type_ != "Deleting" && !c.type_.starts_with("Scaling") && c.type_ != "RollingOut")
            .map(|c| format!("{}: {}: {}", c.type_, c.reason, c.message))
            .collect()
    }
}

/// A worker Machine as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MachineView {
    pub name: String,
    pub phase: String,
    pub node: Option<String>,
    pub deleting: bool,
    pub control_plane: bool,
    /// `InfrastructureReady=False`: reason and message (quota, stockout, auth).
    pub infrastructure_problem: Option<String>,
}

impl MachineView {
    pub fn parse(obj: &DynamicObject) -> MachineView {
        let conditions: Vec<Condition> = obj.data.pointer("/status/conditions").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default();
        MachineView {
            name: obj.metadata.name.clone().unwrap_or_default(),
            phase: obj.data.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending").to_string(),
            node: obj.data.pointer("/status/nodeRef/name").and_then(Value::as_str).map(str::to_string),
            deleting: obj.metadata.deletion_timestamp.is_some(),
            control_plane: obj.metadata.labels.as_ref().is_some_and(|l| l.contains_key("cluster.x-k8s.io/control-plane")),
            infrastructure_problem: conditions
                .iter()
                .find(|c| c.type_ == "InfrastructureReady" && c.status == "False" && is_failure(&c.reason))
                .map(|c| format!("{}: {}", c.reason, c.message)),
        }
    }
}

/// Whether an `InfrastructureReady=False` reason says the instance cannot be had (quota,
/// stockout, a refused create) rather than that it is on its way
/// (`WaitingForInfrastructure`, `Provisioning`, ...): a machine on its way is in flight, and
/// treating it as a failure ends every scale step the moment it starts.
fn is_failure(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    ["failed", "failure", "error", "quota", "insufficient", "stockout", "unavailable", "denied"].iter().any(|w| r.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failure_reasons_are_infrastructure_problems() {
        for progress in ["WaitingForInfrastructure", "Provisioning", "InfrastructureNotReady", "WaitingForBootstrapData", ""] {
            assert!(!is_failure(progress), "{progress}");
        }
        for failure in ["InstanceCreateFailed", "QuotaExceeded", "InsufficientCapacity", "ZonalResourceStockout", "InstanceProvisionFailed"] {
            assert!(is_failure(failure), "{failure}");
        }
    }

    fn shape() -> ClusterShape {
        ClusterShape {
            name: "cloud1".into(),
            namespace: "cloud1".into(),
            owner: "cp1".into(),
            owner_uid: "u1".into(),
            class_name: "mck8s-openstack".into(),
            class_namespace: "mck8s-system".into(),
            version: "v1.34.2".into(),
            control_plane_replicas: 1,
            worker_class: "default-worker".into(),
            worker_name: "md-0".into(),
            variables: vec![("workerFlavor".into(), json!("k8s.large"))],
            autoscaler_bounds: None,
        }
    }

    #[test]
    fn replicas_only_at_creation_and_never_with_autoscaler_bounds() {
        let s = shape();
        let md = |b: &Value| b.pointer("/spec/topology/workers/machineDeployments/0").cloned().unwrap();
        assert_eq!(md(&s.apply_body(Some(3)))["replicas"], 3);
        assert!(md(&s.apply_body(None)).get("replicas").is_none());
        let ca = ClusterShape { autoscaler_bounds: Some((1, 5)), ..shape() };
        let m = md(&ca.apply_body(Some(3)));
        assert!(m.get("replicas").is_none(), "the webhook refuses replicas with autoscaler annotations");
        assert_eq!(m["metadata"]["annotations"][AUTOSCALER_MIN], "1");
        assert_eq!(m["metadata"]["annotations"][AUTOSCALER_MAX], "5");
    }

    #[test]
    fn the_autoscaler_body_carries_only_replicas() {
        let b = shape().replicas_body(4);
        assert_eq!(b["spec"]["topology"]["workers"]["machineDeployments"][0]["replicas"], 4);
        assert!(b["spec"]["topology"].get("classRef").is_none());
        assert!(b["metadata"].get("labels").is_none());
    }

    fn invalid(message: &str, field: &str) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 422, "reason": "Invalid", "message": message,
            "details": {"name": "cloud1", "group": GROUP, "kind": "Cluster", "causes": [{"reason": "FieldValueForbidden", "message": "x", "field": field}]}
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn only_a_refusal_of_the_topology_itself_means_the_gate_is_off() {
        let webhook = r#"admission webhook "validation.cluster.cluster.x-k8s.io" denied the request: Cluster.cluster.x-k8s.io "cloud1" is invalid: spec.topology: Forbidden: can be set only if the ClusterTopology feature flag is enabled"#;
        assert!(topology_refusal(&invalid(webhook, "spec.topology")).is_some());
        let schema = r#"Cluster.cluster.x-k8s.io "cloud1" is invalid: spec.topology: Too many: 4: must have at most 0 items"#;
        assert!(topology_refusal(&invalid(schema, "spec.topology")).is_some());
        let variable = r#"Cluster.cluster.x-k8s.io "cloud1" is invalid: spec.topology.variables[workerFlavor].value: Invalid value: 3"#;
        assert!(topology_refusal(&invalid(variable, "spec.topology.variables[workerFlavor].value")).is_none());
    }

    #[test]
    fn cluster_view_reads_v1beta2_status() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": "cloud1", "namespace": "cloud1", "uid": "c1", "labels": {OWNER_UID_LABEL: "u1"}},
            "spec": {"topology": {"workers": {"machineDeployments": [{"name": "md-0", "class": "w", "replicas": 2}]}}},
            "status": {"initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true},
                       "workers": {"readyReplicas": 1},
                       "conditions": [{"type": "ControlPlaneAvailable", "status": "True", "reason": "A", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                                      {"type": "RemoteConnectionProbe", "status": "True", "reason": "A", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                                      {"type": "WorkersAvailable", "status": "False", "reason": "Scaling", "message": "1 of 2", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap();
        let v = ClusterView::parse(&obj, "md-0");
        assert!(v.control_plane_initialized && v.control_plane_available && v.remote_probe && v.infrastructure_provisioned);
        assert_eq!((v.workers_ready, v.worker_replicas, v.owner_uid.as_deref(), v.templated), (1, Some(2), Some("u1"), false));
        assert_eq!(v.problems(), vec!["WorkersAvailable: Scaling: 1 of 2".to_string()]);
    }
}
