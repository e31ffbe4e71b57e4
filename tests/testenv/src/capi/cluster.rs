//! One Cluster's lifecycle (core CAPI's Cluster and topology controllers, with KCP and the
//! infrastructure provider folded in): ClusterClass check, finalizer, MachineDeployments,
//! infrastructure (endpoint + a real API server), kubeconfig Secret, control plane, workers,
//! and the v1beta2 status (phase, initialization, conditions, replica counters). Each call
//! is one status-driven step; the caller calls again when told or when something changes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::api::{DynamicObject, ListParams, Patch};
use serde_json::{Value, json};

use super::faults::{self, Behaviour};
use super::machines::{self, Counts};
use super::templated;
use super::topology::{self, deleting};
use super::workload::{self, Workload};
use super::{Ctx, FINALIZER_CLUSTER, FINALIZER_MACHINE, Kind, LABEL_CLUSTER_NAME, LABEL_TOPOLOGY_OWNED, conditions, deletion, events, names, record, secret};
use crate::Result;

/// Longest sleep between steps: missed watch events never stall a Cluster for longer.
pub(super) const RESYNC: Duration = Duration::from_secs(1);

/// When a step wants to run again.
pub(super) enum Next {
    /// The Cluster no longer exists.
    Gone,
    After(Duration),
}

/// Per-phase timers: a delay counts from the first step that saw the phase.
#[derive(Default)]
pub(super) struct Timers {
    since: HashMap<String, Instant>,
    wake: Option<Duration>,
}

impl Timers {
    /// True once `delay` has passed since `key` was first asked about; else notes when to
    /// look again.
    pub fn due(&mut self, key: &str, delay: Duration) -> bool {
        let since = *self.since.entry(key.to_string()).or_insert_with(Instant::now);
        let left = delay.saturating_sub(since.elapsed());
        if left.is_zero() {
            return true;
        }
        self.wake(left);
        false
    }

    /// Asks for the next step within `after`.
    pub fn wake(&mut self, after: Duration) {
        self.wake = Some(self.wake.map_or(after, |w| w.min(after)));
    }

    pub fn take_wake(&mut self) -> Option<Duration> {
        self.wake.take()
    }
}

/// What the simulator keeps about one Cluster between steps (not persisted: everything else
/// is read back from the API and `capi-procs.json`).
pub(super) struct ClusterRt {
    pub ns: String,
    pub name: String,
    pub workload: Option<Workload>,
    pub timers: Timers,
}

impl ClusterRt {
    pub fn new(ns: &str, name: &str) -> ClusterRt {
        ClusterRt { ns: ns.into(), name: name.into(), workload: None, timers: Timers::default() }
    }

    fn key(&self) -> String {
        names::key(&self.ns, &self.name)
    }
}

/// The `status.initialization` flags.
fn initialized(status: &Value, flag: &str) -> bool {
    status["initialization"][flag].as_bool() == Some(true)
}

pub(super) async fn reconcile(ctx: &Ctx, rt: &mut ClusterRt) -> Result<Next> {
    let api = ctx.api(Kind::Cluster, &rt.ns);
    let Some(cluster) = api.get_opt(&rt.name).await? else {
        forget(ctx, rt).await?;
        return Ok(Next::Gone);
    };
    // A managed topology, or the objects a cluster template rendered (the gate off); a bare
    // Cluster (neither) is left alone.
    let templated = cluster.data["spec"]["topology"].is_null();
    if templated && cluster.data["spec"]["infrastructureRef"].is_null() {
        return Ok(Next::After(RESYNC * 2));
    }
    let f = faults::read(&ctx.mgmt, &rt.ns, &rt.name).await;
    adopt(ctx, rt, &cluster).await?;
    if cluster.metadata.deletion_timestamp.is_some() {
        return deletion::cluster(ctx, rt, &cluster, &f).await;
    }
    if !cluster.metadata.finalizers.iter().flatten().any(|x| x == FINALIZER_CLUSTER) {
        let mut fins: Vec<String> = cluster.metadata.finalizers.clone().unwrap_or_default();
        fins.push(FINALIZER_CLUSTER.into());
        let patch = json!({"metadata": {"finalizers": fins, "resourceVersion": cluster.metadata.resource_version}});
        api.patch(&rt.name, &super::patch_params(), &Patch::Merge(&patch)).await?;
        return Ok(Next::After(Duration::ZERO));
    }
    let generation = cluster.metadata.generation.unwrap_or(1);
    let old = cluster.data["status"].clone();
    let mut status = if old.is_object() { old.clone() } else { json!({}) };
    status["observedGeneration"] = json!(generation);
    let mut pending_events: Vec<(&str, String)> = Vec::new();

    let infra = initialized(&old, "infrastructureProvisioned");
    let cp_init = initialized(&old, "controlPlaneInitialized");
    let made = if templated {
        templated::parts(ctx, &cluster).await?.map(|p| Made {
            machine_deployments: p.machine_deployments,
            flavors: p.flavors,
            control_plane_flavor: p.control_plane_flavor,
            from: "its infrastructureRef and controlPlaneRef".to_string(),
        })
    } else {
        from_topology(ctx, &cluster, &rt.ns, &mut status, generation).await?
    };
    let made = match made {
        Ok(m) => m,
        Err(msg) => {
            // Until the ClusterClass (or the referenced objects) exist nothing else happens.
            if status["phase"].is_null() {
                status["phase"] = json!("Pending");
            }
            if templated {
                conditions::set(&mut status, "InfrastructureReady", false, "WaitingForInfrastructure", &msg, generation);
            }
            conditions::set(&mut status, "Available", false, "NotAvailable", &msg, generation);
            write_status(ctx, &cluster, &old, &status, &pending_events).await?;
            return Ok(Next::After(RESYNC));
        }
    };
    let mds = made.machine_deployments;
    if !infra && status["phase"] != "Provisioning" {
        status["phase"] = json!("Provisioning");
        pending_events.push(("Provisioning", format!("provisioning Cluster {} from {}", rt.key(), made.from)));
    }

    // Infrastructure: endpoint, a real API server, the kubeconfig Secret (KCP publishes it as
    // soon as the endpoint exists).
    if !infra && !rt.timers.due("infrastructure", f.delay(ctx.cfg.infra_delay_ms)) {
        conditions::set(&mut status, "InfrastructureReady", false, "Provisioning", "creating the simulated infrastructure", generation);
    } else {
        ensure_infrastructure(ctx, rt, &cluster).await?;
        if !infra {
            status["initialization"]["infrastructureProvisioned"] = json!(true);
            status["phase"] = json!("Provisioned");
            let port = rt.workload.as_ref().map(|w| w.rec.port).unwrap_or_default();
            pending_events.push(("InfrastructureReady", format!("infrastructure provisioned, control plane endpoint https://127.0.0.1:{port}")));
        }
        conditions::set(&mut status, "InfrastructureReady", true, "Ready", "", generation);
    }

    // Control plane.
    let all_machines = machines::list(ctx, &cluster).await?;
    let mut cp_counts = Counts { desired: 1, ..Default::default() };
    let mut reachable = false;
    if let Some(wl) = rt.workload.as_mut().filter(|_| infra) {
        reachable = wl.probe().await;
        // The controller-manager and scheduler start once the API server has answered.
        wl.rec = workload::ensure_running(ctx, &wl.rec, wl.ready_since.is_some())?;
        cp_counts = machines::control_plane(ctx, rt, &cluster, &all_machines, made.control_plane_flavor.as_deref(), &f).await?;
    }
    let ready_since = rt.workload.as_ref().and_then(|w| w.ready_since);
    if cp_init {
        conditions::set(&mut status, "ControlPlaneInitialized", true, "Initialized", "", generation);
        let (r, m) = if reachable { ("Available", "") } else { ("NotAvailable", "the workload API server does not answer") };
        conditions::set(&mut status, "ControlPlaneAvailable", reachable, r, m, generation);
    } else {
        let msg = if f.control_plane == Behaviour::Never {
            "simulated fault: the control plane never initialises (control_plane: never)"
        } else {
            "waiting for the control plane API server"
        };
        let now_ready = f.control_plane != Behaviour::Never && ready_since.is_some() && rt.timers.due("control-plane", f.delay(ctx.cfg.control_plane_delay_ms));
        if now_ready {
            status["initialization"]["controlPlaneInitialized"] = json!(true);
            conditions::set(&mut status, "ControlPlaneInitialized", true, "Initialized", "", generation);
            conditions::set(&mut status, "ControlPlaneAvailable", true, "Available", "", generation);
            pending_events.push(("ControlPlaneInitialized", "the workload cluster's API server accepts requests".into()));
        } else {
            conditions::set(&mut status, "ControlPlaneInitialized", false, "NotInitialized", msg, generation);
            conditions::set(&mut status, "ControlPlaneAvailable", false, "NotAvailable", msg, generation);
        }
    }
    let probe_ok = reachable && initialized(&status, "controlPlaneInitialized");
    let (r, m) = if probe_ok { ("ProbeSucceeded", "") } else { ("ProbeFailed", "the workload API server is not reachable yet") };
    conditions::set(&mut status, "RemoteConnectionProbe", probe_ok, r, m, generation);
    status["controlPlane"] = cp_counts.json();

    // Workers, only once the (persisted) control plane is initialised, as CAPI does.
    let allow_workers = cp_init && f.control_plane != Behaviour::Never;
    let per_md = machines::workers(ctx, rt, &cluster, &mds, &made.flavors, &all_machines, &f, allow_workers).await?;
    let mut workers = Counts::default();
    per_md.values().for_each(|c| workers.add(*c));
    status["workers"] = workers.json();
    let short: Vec<String> = per_md.iter().filter(|(_, c)| c.available < c.desired).map(|(n, c)| format!("{n}: {}/{}", c.available, c.desired)).collect();
    let workers_ok = allow_workers && short.is_empty();
    let msg = if workers_ok { String::new() } else { format!("MachineDeployments not available: {}", short.join(", ")) };
    conditions::set(&mut status, "WorkersAvailable", workers_ok, if workers_ok { "Available" } else { "NotAvailable" }, &msg, generation);
    // TopologyReconciled counts only where there is a topology.
    let summary = ["InfrastructureReady", "ControlPlaneAvailable", "WorkersAvailable", "RemoteConnectionProbe", "TopologyReconciled"];
    let summary = &summary[..if templated { 4 } else { 5 }];
    let failing: Vec<&str> = summary.iter().copied().filter(|c| !conditions::is_true(&status, c)).collect();
    let msg = if failing.is_empty() { String::new() } else { format!("not true: {}", failing.join(", ")) };
    conditions::set(&mut status, "Available", failing.is_empty(), if failing.is_empty() { "Available" } else { "NotAvailable" }, &msg, generation);

    write_status(ctx, &cluster, &old, &status, &pending_events).await?;
    let wake = rt.timers.take_wake().unwrap_or(RESYNC);
    Ok(Next::After(wake.clamp(Duration::from_millis(20), RESYNC)))
}

/// What a Cluster is made of, whichever way it was asked for.
struct Made {
    machine_deployments: Vec<DynamicObject>,
    /// Worker flavor by MachineDeployment name.
    flavors: std::collections::BTreeMap<String, String>,
    control_plane_flavor: Option<String>,
    /// For the Provisioning Event.
    from: String,
}

/// The topology controller's share: the ClusterClass must exist (`Err` until it does), then
/// MachineDeployments follow the topology (unless CAPI's webhook would reject it).
async fn from_topology(ctx: &Ctx, cluster: &DynamicObject, ns: &str, status: &mut Value, generation: i64) -> Result<std::result::Result<Made, String>> {
    let topo = &cluster.data["spec"]["topology"];
    let class_name = topo["classRef"]["name"].as_str().unwrap_or_default();
    let class_ns = topo["classRef"]["namespace"].as_str().filter(|s| !s.is_empty()).unwrap_or(ns);
    if class_name.is_empty() || ctx.api(Kind::ClusterClass, class_ns).get_opt(class_name).await?.is_none() {
        let msg = format!("ClusterClass {class_ns}/{class_name} not found");
        conditions::set(status, "TopologyReconciled", false, "ClusterClassNotFound", &msg, generation);
        return Ok(Err(msg));
    }
    let entries = topology::entries(topo);
    let mds = match topology::validate(&entries) {
        Ok(()) => {
            let mds = topology::sync(ctx, cluster, &entries).await?;
            conditions::set(status, "TopologyReconciled", true, "ReconcileSucceeded", "", generation);
            mds
        }
        Err(msg) => {
            conditions::set(status, "TopologyReconciled", false, "ReconcileFailed", &msg, generation);
            let name = cluster.metadata.name.clone().unwrap_or_default();
            let lp = ListParams::default().labels(&format!("{LABEL_CLUSTER_NAME}={name},{LABEL_TOPOLOGY_OWNED}"));
            ctx.api(Kind::MachineDeployment, ns).list(&lp).await?.items.into_iter().filter(|m| !deleting(m)).collect()
        }
    };
    let flavors = mds
        .iter()
        .filter_map(|md| {
            let entry = entries.iter().find(|e| Some(e.name.as_str()) == topology::label(md, super::LABEL_TOPOLOGY_DEPLOYMENT))?;
            Some((md.metadata.name.clone()?, entry.flavor.clone()?))
        })
        .collect();
    Ok(Ok(Made { machine_deployments: mds, flavors, control_plane_flavor: None, from: format!("ClusterClass {class_ns}/{class_name}") }))
}

async fn write_status(ctx: &Ctx, cluster: &DynamicObject, old: &Value, status: &Value, pending: &[(&str, String)]) -> Result<()> {
    if status != old {
        let ns = cluster.metadata.namespace.as_deref().unwrap_or_default();
        let name = cluster.metadata.name.as_deref().unwrap_or_default();
        ctx.api(Kind::Cluster, ns).patch_status(name, &super::patch_params(), &Patch::Merge(json!({"status": status}))).await?;
    }
    // After the write: whoever sees the Event can also see the status it announces.
    for (reason, msg) in pending {
        events::emit(&ctx.mgmt, cluster, reason, msg).await;
    }
    Ok(())
}

/// Re-adopts a recorded workload cluster (a restarted simulator, or a new task).
async fn adopt(ctx: &Ctx, rt: &mut ClusterRt, cluster: &DynamicObject) -> Result<()> {
    if rt.workload.is_some() {
        return Ok(());
    }
    let uid = cluster.metadata.uid.clone().unwrap_or_default();
    if let Some(rec) = record::read(&ctx.sd.dir)?.clusters.remove(&rt.key()).filter(|r| r.uid == uid) {
        tracing::info!(cluster = %rt.key(), port = rec.port, "adopting the recorded workload cluster");
        let rec = workload::ensure_running(ctx, &rec, false)?;
        rt.workload = Some(Workload::attach(ctx, rec).await?);
    }
    Ok(())
}

/// The workload cluster exists and runs, the endpoint points at it, the Secret is current.
async fn ensure_infrastructure(ctx: &Ctx, rt: &mut ClusterRt, cluster: &DynamicObject) -> Result<()> {
    if rt.workload.is_none() {
        let uid = cluster.metadata.uid.clone().unwrap_or_default();
        let rec = workload::provision(ctx, &rt.ns, &rt.name, &uid)?;
        rt.workload = Some(Workload::attach(ctx, rec).await?);
    }
    let wl = rt.workload.as_mut().expect("just ensured");
    let endpoint = &cluster.data["spec"]["controlPlaneEndpoint"];
    if endpoint["port"].as_u64() != Some(wl.rec.port as u64) || endpoint["host"] != "127.0.0.1" {
        let patch = json!({"spec": {"controlPlaneEndpoint": {"host": "127.0.0.1", "port": wl.rec.port}}});
        ctx.api(Kind::Cluster, &rt.ns).patch(&rt.name, &super::patch_params(), &Patch::Merge(&patch)).await?;
    }
    secret::publish(ctx, cluster, wl).await
}

/// The Cluster vanished without our finalizer running (someone removed it): stop its
/// processes and release its Machines, so nothing leaks or hangs.
async fn forget(ctx: &Ctx, rt: &mut ClusterRt) -> Result<()> {
    rt.workload = None;
    workload::teardown(ctx, &rt.ns, &rt.name).await?;
    let api = ctx.api(Kind::Machine, &rt.ns);
    let lp = ListParams::default().labels(&format!("{LABEL_CLUSTER_NAME}={}", rt.name));
    for m in api.list(&lp).await?.items {
        deletion::remove_finalizer(&api, &m, FINALIZER_MACHINE).await?;
        if !deleting(&m) {
            let _ = api.delete(m.metadata.name.as_deref().unwrap_or_default(), &Default::default()).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_are_due_after_their_delay_and_ask_to_wake() {
        let mut t = Timers::default();
        assert!(t.due("zero", Duration::ZERO));
        assert!(!t.due("later", Duration::from_secs(60)));
        assert!(t.take_wake().is_some_and(|w| w <= Duration::from_secs(60)));
        assert!(t.take_wake().is_none());
        t.wake(Duration::from_millis(5));
        t.wake(Duration::from_millis(50));
        assert_eq!(t.take_wake(), Some(Duration::from_millis(5)));
    }
}
