//! Machines (the MachineSet/Machine controllers plus a simulated infrastructure provider):
//! one control-plane Machine per Cluster, one worker Machine per MachineDeployment replica.
//! Each goes Pending -> Provisioning -> Provisioned (`spec.providerID`) -> Running
//! (`status.nodeRef`), one step per `machine_delay_ms`; Running means its Node exists in the
//! workload cluster and is kept Ready by the in-process simulated kubelet.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PostParams};
use serde_json::{Value, json};

use super::cluster::ClusterRt;
use super::faults::{Behaviour, Faults};
use super::topology::{deleting, label, owner};
use super::{
    ANN_DELETE_MACHINE, API_VERSION, Ctx, FINALIZER_MACHINE, Kind, LABEL_CLUSTER_NAME, LABEL_CONTROL_PLANE, LABEL_DEPLOYMENT_NAME, LABEL_TOPOLOGY_DEPLOYMENT, conditions, deletion,
    events, names,
};
use crate::Result;
use crate::fleet::Capacity;
use crate::kubelet::NodeProfile;

/// Replica counters (CAPI v1beta2 names).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Counts {
    pub desired: i64,
    pub replicas: i64,
    pub ready: i64,
    pub available: i64,
    pub up_to_date: i64,
}

impl Counts {
    pub fn add(&mut self, o: Counts) {
        self.desired += o.desired;
        self.replicas += o.replicas;
        self.ready += o.ready;
        self.available += o.available;
        self.up_to_date += o.up_to_date;
    }

    pub fn json(&self) -> Value {
        json!({"desiredReplicas": self.desired, "replicas": self.replicas, "readyReplicas": self.ready,
            "availableReplicas": self.available, "upToDateReplicas": self.up_to_date})
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    ControlPlane,
    Worker,
}

/// Machines the quota still allows to get an instance, across the Cluster's workers.
struct Quota(Option<i64>);

fn is_ready(m: &DynamicObject) -> bool {
    !deleting(m) && conditions::is_true(&m.data["status"], "Ready")
}

fn has_instance(m: &DynamicObject) -> bool {
    m.data["spec"]["providerID"].is_string()
}

fn ns_name(o: &DynamicObject) -> (String, String) {
    (o.metadata.namespace.clone().unwrap_or_default(), o.metadata.name.clone().unwrap_or_default())
}

/// All Machines of a Cluster.
pub(super) async fn list(ctx: &Ctx, cluster: &DynamicObject) -> Result<Vec<DynamicObject>> {
    let (ns, name) = ns_name(cluster);
    let lp = ListParams::default().labels(&format!("{LABEL_CLUSTER_NAME}={name}"));
    Ok(ctx.api(Kind::Machine, &ns).list(&lp).await?.items)
}

pub(super) fn is_control_plane(m: &DynamicObject) -> bool {
    label(m, LABEL_CONTROL_PLANE).is_some()
}

/// The control-plane Machine: created once the infrastructure is provisioned, stepped
/// through its phases; its Node registers once the workload API server answers.
pub(super) async fn control_plane(ctx: &Ctx, rt: &mut ClusterRt, cluster: &DynamicObject, machines: &[DynamicObject], flavor: Option<&str>, f: &Faults) -> Result<Counts> {
    let cp: Vec<&DynamicObject> = machines.iter().filter(|m| is_control_plane(m)).collect();
    for m in cp.iter().filter(|m| deleting(m)) {
        deletion::machine(ctx, rt, cluster, m, f, false).await?;
    }
    let live: Vec<&DynamicObject> = cp.iter().copied().filter(|m| !deleting(m)).collect();
    if live.is_empty() {
        let (ns, cname) = ns_name(cluster);
        let name = names::control_plane_machine(&cname);
        let labels = BTreeMap::from([(LABEL_CLUSTER_NAME.to_string(), cname.clone()), (LABEL_CONTROL_PLANE.to_string(), String::new())]);
        create(ctx, cluster, &ns, &name, labels, owner(cluster, "Cluster")).await?;
    }
    let mut quota = Quota(None);
    for m in &live {
        step(ctx, rt, cluster, m, Role::ControlPlane, flavor, f, &mut quota).await?;
    }
    let ready = live.iter().filter(|m| is_ready(m)).count() as i64;
    Ok(Counts { desired: 1, replicas: live.len() as i64, ready, available: ready, up_to_date: live.len() as i64 })
}

async fn create(ctx: &Ctx, cluster: &DynamicObject, ns: &str, name: &str, labels: BTreeMap<String, String>, owner: Value) -> Result<()> {
    let cname = cluster.metadata.name.clone().unwrap_or_default();
    let body = json!({
        "apiVersion": API_VERSION, "kind": "Machine",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "finalizers": [FINALIZER_MACHINE], "ownerReferences": [owner]},
        "spec": {
            "clusterName": cname, "version": cluster.data["spec"]["topology"]["version"],
            "bootstrap": {"dataSecretName": format!("{name}-bootstrap")},
            "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "SimMachine", "name": name},
        },
    });
    let api = ctx.api(Kind::Machine, ns);
    api.create(&PostParams::default(), &serde_json::from_value(body).expect("machine shape")).await?;
    let mut status = json!({"phase": "Pending"});
    conditions::set(&mut status, "InfrastructureReady", false, "WaitingForInfrastructure", "", 1);
    conditions::set(&mut status, "Ready", false, "NotReady", "", 1);
    api.patch_status(name, &super::patch_params(), &Patch::Merge(json!({"status": status}))).await?;
    tracing::debug!(machine = name, "created");
    Ok(())
}

/// Scale-in order: Machines annotated `cluster.x-k8s.io/delete-machine` first, then the
/// newest. Input: (name, annotated, creationTimestamp); returns the `n` names to delete.
pub(super) fn scale_in_victims(mut machines: Vec<(String, bool, String)>, n: usize) -> Vec<String> {
    machines.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(b.0.cmp(&a.0)));
    machines.into_iter().take(n).map(|m| m.0).collect()
}

/// Worker Machines of every MachineDeployment (and of none: orphans are deleted); writes the
/// MachineDeployments' status; returns the counters per MachineDeployment name.
#[allow(clippy::too_many_arguments)]
pub(super) async fn workers(
    ctx: &Ctx,
    rt: &mut ClusterRt,
    cluster: &DynamicObject,
    mds: &[DynamicObject],
    flavors: &BTreeMap<String, String>,
    machines: &[DynamicObject],
    f: &Faults,
    allow_create: bool,
) -> Result<BTreeMap<String, Counts>> {
    let (ns, _) = ns_name(cluster);
    let api = ctx.api(Kind::Machine, &ns);
    let workers: Vec<&DynamicObject> = machines.iter().filter(|m| !is_control_plane(m)).collect();
    let with_instance = workers.iter().filter(|m| !deleting(m) && has_instance(m)).count() as i64;
    let mut quota = Quota(f.worker_quota.map(|q| q as i64 - with_instance));
    let mut out = BTreeMap::new();
    for md in mds {
        let md_name = md.metadata.name.clone().unwrap_or_default();
        let mine: Vec<&DynamicObject> = workers.iter().copied().filter(|m| label(m, LABEL_DEPLOYMENT_NAME) == Some(md_name.as_str())).collect();
        let desired = md.data["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
        let mut live: Vec<&DynamicObject> = mine.iter().copied().filter(|m| !deleting(m)).collect();
        if allow_create && (live.len() as i64) < desired {
            for _ in live.len() as i64..desired {
                let name = names::worker_machine(&md_name);
                let mut labels: BTreeMap<String, String> = md.data["spec"]["template"]["metadata"]["labels"]
                    .as_object()
                    .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                    .unwrap_or_default();
                labels.insert(LABEL_CLUSTER_NAME.into(), cluster.metadata.name.clone().unwrap_or_default());
                labels.insert(LABEL_DEPLOYMENT_NAME.into(), md_name.clone());
                if let Some(t) = label(md, LABEL_TOPOLOGY_DEPLOYMENT) {
                    labels.insert(LABEL_TOPOLOGY_DEPLOYMENT.into(), t.to_string());
                }
                create(ctx, cluster, &ns, &name, labels, owner(md, "MachineDeployment")).await?;
            }
            rt.timers.wake(std::time::Duration::ZERO);
        } else if live.len() as i64 > desired {
            let candidates = live
                .iter()
                .map(|m| {
                    let annotated = m.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(ANN_DELETE_MACHINE));
                    let created = m.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
                    (m.metadata.name.clone().unwrap_or_default(), annotated, created)
                })
                .collect();
            let victims = scale_in_victims(candidates, live.len() - desired as usize);
            for v in &victims {
                tracing::info!(machine = %v, md = %md_name, "scaling in");
                api.delete(v, &DeleteParams::default()).await?;
            }
            live.retain(|m| !victims.contains(m.metadata.name.as_ref().expect("named")));
            rt.timers.wake(std::time::Duration::ZERO);
        }
        let flavor = flavors.get(&md_name).cloned();
        for m in &live {
            step(ctx, rt, cluster, m, Role::Worker, flavor.as_deref(), f, &mut quota).await?;
        }
        for m in mine.iter().filter(|m| deleting(m)) {
            deletion::machine(ctx, rt, cluster, m, f, false).await?;
        }
        let ready = live.iter().filter(|m| is_ready(m)).count() as i64;
        let counts = Counts { desired, replicas: mine.len() as i64, ready, available: ready, up_to_date: mine.len() as i64 };
        write_md_status(ctx, md, &counts).await?;
        out.insert(md_name, counts);
    }
    // Workers whose MachineDeployment is gone (topology entry removed).
    for m in workers.iter().filter(|m| !mds.iter().any(|md| md.metadata.name.as_deref() == label(m, LABEL_DEPLOYMENT_NAME))) {
        if deleting(m) {
            deletion::machine(ctx, rt, cluster, m, f, false).await?;
        } else {
            api.delete(m.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default()).await?;
        }
    }
    Ok(out)
}

async fn write_md_status(ctx: &Ctx, md: &DynamicObject, c: &Counts) -> Result<()> {
    let (ns, name) = ns_name(md);
    let cluster = md.data["spec"]["clusterName"].as_str().unwrap_or_default();
    let generation = md.metadata.generation.unwrap_or(1);
    let old = md.data["status"].clone();
    let mut status = if old.is_object() { old.clone() } else { json!({}) };
    let phase = if c.replicas < c.desired {
        "ScalingUp"
    } else if c.replicas > c.desired {
        "ScalingDown"
    } else if c.ready >= c.desired {
        "Running"
    } else {
        "ScalingUp"
    };
    status["replicas"] = json!(c.replicas);
    status["readyReplicas"] = json!(c.ready);
    status["availableReplicas"] = json!(c.available);
    status["upToDateReplicas"] = json!(c.up_to_date);
    status["phase"] = json!(phase);
    status["selector"] = json!(format!("{LABEL_CLUSTER_NAME}={cluster},{LABEL_DEPLOYMENT_NAME}={name}"));
    status["observedGeneration"] = json!(generation);
    let available = c.available >= c.desired;
    let msg = if available { String::new() } else { format!("{} available replicas, at least {} required", c.available, c.desired) };
    conditions::set(&mut status, "Available", available, if available { "Available" } else { "NotAvailable" }, &msg, generation);
    let ready = c.ready >= c.replicas;
    conditions::set(&mut status, "MachinesReady", ready, if ready { "Ready" } else { "NotReady" }, "", generation);
    let (up, down) = (c.replicas < c.desired, c.replicas > c.desired);
    conditions::set(&mut status, "ScalingUp", up, if up { "ScalingUp" } else { "NotScalingUp" }, "", generation);
    conditions::set(&mut status, "ScalingDown", down, if down { "ScalingDown" } else { "NotScalingDown" }, "", generation);
    if status != old {
        ctx.api(Kind::MachineDeployment, &ns).patch_status(&name, &super::patch_params(), &Patch::Merge(json!({"status": status}))).await?;
    }
    Ok(())
}

fn node_profile(ctx: &Ctx, cluster: &DynamicObject, m: &DynamicObject, role: Role, flavor: Option<&str>) -> (NodeProfile, String) {
    let (ns, name) = ns_name(m);
    let cname = cluster.metadata.name.clone().unwrap_or_default();
    let wanted = match role {
        Role::Worker => flavor.map(String::from),
        Role::ControlPlane if flavor.is_some() => flavor.map(String::from),
        Role::ControlPlane => {
            let vars = &cluster.data["spec"]["topology"]["variables"];
            let v = vars.as_array().and_then(|l| l.iter().find(|v| v["name"] == "controlPlaneFlavor")).and_then(|v| v["value"].as_str());
            Some(v.unwrap_or("k8s.medium").to_string())
        }
    };
    let (flavor_name, fl) = ctx.cfg.flavor(wanted.as_deref());
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("node.kubernetes.io/instance-type", flavor_name.as_str()),
        ("mck8s.io/cluster", cname.as_str()),
        ("mck8s.io/role", "cloud"),
        ("mck8s.io/simulated", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut annotations: BTreeMap<String, String> =
        [("cluster.x-k8s.io/machine", name.as_str()), ("cluster.x-k8s.io/cluster-name", cname.as_str()), ("cluster.x-k8s.io/cluster-namespace", ns.as_str())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let mut taints = Vec::new();
    match role {
        Role::ControlPlane => {
            labels.insert("node-role.kubernetes.io/master".into(), String::new());
            labels.insert("node-role.kubernetes.io/control-plane".into(), String::new());
            taints.push(Taint { key: "node-role.kubernetes.io/master".into(), effect: "NoSchedule".into(), ..Default::default() });
        }
        Role::Worker => {
            if let Some(md) = label(m, LABEL_DEPLOYMENT_NAME) {
                annotations.insert("cluster.x-k8s.io/owner-kind".into(), "MachineDeployment".into());
                annotations.insert("cluster.x-k8s.io/owner-name".into(), md.to_string());
            }
        }
    }
    let profile =
        NodeProfile { capacity: Capacity { cpu: fl.cpu, memory: fl.memory, pods: fl.pods }, labels, annotations, provider_id: Some(names::provider_id(&ns, &name)), taints };
    (profile, flavor_name)
}

/// One phase step of one Machine, when its delay has passed.
#[allow(clippy::too_many_arguments)]
async fn step(ctx: &Ctx, rt: &mut ClusterRt, cluster: &DynamicObject, m: &DynamicObject, role: Role, flavor: Option<&str>, f: &Faults, quota: &mut Quota) -> Result<()> {
    let (ns, name) = ns_name(m);
    let api = ctx.api(Kind::Machine, &ns);
    let generation = m.metadata.generation.unwrap_or(1);
    let old = m.data["status"].clone();
    let mut status = if old.is_object() { old.clone() } else { json!({}) };
    let phase = status["phase"].as_str().unwrap_or("").to_string();
    let delay = f.delay(ctx.cfg.machine_delay_ms);
    let due = |rt: &mut ClusterRt| rt.timers.due(&format!("machine/{name}/{phase}"), delay);
    let mut running_event = None;
    match phase.as_str() {
        "" => {
            status["phase"] = json!("Pending");
            conditions::set(&mut status, "InfrastructureReady", false, "WaitingForInfrastructure", "", generation);
            conditions::set(&mut status, "Ready", false, "NotReady", "", generation);
        }
        "Pending" if due(rt) => {
            status["phase"] = json!("Provisioning");
            status["initialization"]["bootstrapDataSecretCreated"] = json!(true);
            conditions::set(&mut status, "BootstrapConfigReady", true, "Ready", "", generation);
            conditions::set(&mut status, "InfrastructureReady", false, "Provisioning", "creating the simulated instance", generation);
        }
        "Provisioning" if due(rt) => {
            if role == Role::Worker && f.machines == Behaviour::Never {
                let msg = "simulated fault: the instance never becomes ready (machines: never)";
                conditions::set(&mut status, "InfrastructureReady", false, "Provisioning", msg, generation);
            } else if role == Role::Worker && quota.0.is_some_and(|left| left <= 0) {
                conditions::set(&mut status, "InfrastructureReady", false, "InstanceCreateFailed", "Quota exceeded for instances", generation);
            } else {
                if let Some(left) = quota.0.as_mut() {
                    *left -= 1;
                }
                let patch = json!({"spec": {"providerID": names::provider_id(&ns, &name)}});
                api.patch(&name, &super::patch_params(), &Patch::Merge(&patch)).await?;
                status["phase"] = json!("Provisioned");
                status["initialization"]["infrastructureProvisioned"] = json!(true);
                status["addresses"] = json!([{"type": "Hostname", "address": name}, {"type": "InternalDNS", "address": name}]);
                conditions::set(&mut status, "InfrastructureReady", true, "Ready", "", generation);
                conditions::set(&mut status, "NodeReady", false, "NodeDoesNotExist", "waiting for the Node to register", generation);
            }
        }
        "Provisioned" if due(rt) => {
            let cp_blocked = role == Role::ControlPlane && f.control_plane == Behaviour::Never;
            let wl = rt.workload.as_ref().filter(|w| w.reachable);
            if let (false, Some(wl)) = (cp_blocked, wl) {
                let (profile, flavor_name) = node_profile(ctx, cluster, m, role, flavor);
                wl.kubelet.add_node(&name, profile).await?;
                let ip = wl.kubelet.node_ip(&name).unwrap_or_default();
                status["phase"] = json!("Running");
                status["nodeRef"] = json!({"apiVersion": "v1", "kind": "Node", "name": name});
                status["addresses"] = json!([{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}, {"type": "InternalDNS", "address": name}]);
                for c in ["NodeReady", "NodeHealthy", "Ready", "Available"] {
                    conditions::set(&mut status, c, true, c, "", generation);
                }
                running_event = Some(format!("Machine {name} is Running: Node {name} is Ready ({flavor_name})"));
            } else {
                rt.timers.wake(std::time::Duration::from_millis(300));
            }
        }
        "Running" => {
            // A restarted simulator re-adopts the Node (no new event).
            if let Some(wl) = rt.workload.as_ref().filter(|w| w.reachable && !w.kubelet.has_node(&name)) {
                let (profile, _) = node_profile(ctx, cluster, m, role, flavor);
                wl.kubelet.add_node(&name, profile).await?;
            }
        }
        _ => {}
    }
    if status != old {
        api.patch_status(&name, &super::patch_params(), &Patch::Merge(json!({"status": status}))).await?;
        rt.timers.wake(std::time::Duration::ZERO);
    }
    if let Some(msg) = running_event {
        events::emit(&ctx.mgmt, cluster, "MachineRunning", &msg).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_in_takes_annotated_machines_first_then_the_newest() {
        let m = |n: &str, a: bool, t: &str| (n.to_string(), a, t.to_string());
        let machines = vec![m("old", false, "2026-01-01T00:00:00Z"), m("marked", true, "2025-01-01T00:00:00Z"), m("new", false, "2026-06-01T00:00:00Z")];
        assert_eq!(scale_in_victims(machines.clone(), 1), ["marked"]);
        assert_eq!(scale_in_victims(machines.clone(), 2), ["marked", "new"]);
        assert_eq!(scale_in_victims(machines, 0), Vec::<String>::new());
    }

    #[test]
    fn counts_add_up() {
        let mut c = Counts::default();
        c.add(Counts { desired: 2, replicas: 2, ready: 1, available: 1, up_to_date: 2 });
        c.add(Counts { desired: 1, replicas: 0, ready: 0, available: 0, up_to_date: 0 });
        assert_eq!(c.json()["desiredReplicas"], 3);
        assert_eq!(c.json()["readyReplicas"], 1);
    }
}
