//! Deletion, as CAPI's finalizers do it. A Machine: phase Deleting, cordon and drain its Node
//! (its pods' owners recreate them elsewhere), delete the Node, then, after the simulated
//! instance deletion, drop the finalizer. A Cluster: `Deleting` with the reasons
//! WaitingForWorkersDeletion -> WaitingForControlPlaneDeletion (the workload control plane
//! stops) -> WaitingForInfrastructureDeletion -> DeletionCompleted, `deletion_step_ms` apart,
//! then the kubeconfig Secret goes and the Cluster's finalizer is removed.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch};
use serde_json::json;

use super::cluster::{ClusterRt, Next};
use super::faults::{Deletion, Faults};
use super::topology::deleting;
use super::{Ctx, FINALIZER_CLUSTER, FINALIZER_MACHINE, Kind, LABEL_CLUSTER_NAME, conditions, events, machines, secret, workload};
use crate::Result;

const STAGES: [&str; 4] = ["WaitingForWorkersDeletion", "WaitingForControlPlaneDeletion", "WaitingForInfrastructureDeletion", "DeletionCompleted"];

fn ignore_404<T>(r: kube::Result<T>) -> kube::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes `finalizer` from `o`; the resourceVersion makes a concurrent change a conflict
/// (retried on the next step) instead of a lost finalizer.
pub(super) async fn remove_finalizer(api: &Api<DynamicObject>, o: &DynamicObject, finalizer: &str) -> Result<()> {
    let left: Vec<&String> = o.metadata.finalizers.iter().flatten().filter(|f| *f != finalizer).collect();
    let patch = json!({"metadata": {"finalizers": left, "resourceVersion": o.metadata.resource_version}});
    ignore_404(api.patch(o.metadata.name.as_deref().unwrap_or_default(), &super::patch_params(), &Patch::Merge(&patch)).await)?;
    Ok(())
}

/// Cordons the Node and deletes its pods; true once none is left.
async fn drain(client: &kube::Client, node: &str) -> Result<bool> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(node).await?.is_some_and(|n| n.spec.and_then(|s| s.unschedulable) != Some(true)) {
        ignore_404(nodes.patch(node, &super::patch_params(), &Patch::Merge(json!({"spec": {"unschedulable": true}}))).await)?;
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = pods.list(&ListParams::default().fields(&format!("spec.nodeName={node}"))).await?.items;
    for p in on_node.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let api: Api<Pod> = Api::namespaced(client.clone(), p.metadata.namespace.as_deref().unwrap_or_default());
        ignore_404(api.delete(p.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default()).await)?;
    }
    Ok(on_node.is_empty())
}

/// Drives one Machine that has a deletionTimestamp. `stuck`: it shows Deleting and stays.
pub(super) async fn machine(ctx: &Ctx, rt: &mut ClusterRt, cluster: &DynamicObject, m: &DynamicObject, f: &Faults, stuck: bool) -> Result<()> {
    if !m.metadata.finalizers.iter().flatten().any(|x| x == FINALIZER_MACHINE) {
        return Ok(());
    }
    let ns = m.metadata.namespace.clone().unwrap_or_default();
    let name = m.metadata.name.clone().unwrap_or_default();
    let api = ctx.api(Kind::Machine, &ns);
    let generation = m.metadata.generation.unwrap_or(1);
    let old = m.data["status"].clone();
    let mut status = if old.is_object() { old.clone() } else { json!({}) };
    status["phase"] = json!("Deleting");
    let msg = if stuck { "simulated fault: deletion stuck" } else { "draining the Node and deleting the instance" };
    conditions::set(&mut status, "Deleting", true, "Deleting", msg, generation);
    conditions::set(&mut status, "Ready", false, "Deleting", "", generation);
    if status != old {
        api.patch_status(&name, &super::patch_params(), &Patch::Merge(json!({"status": status}))).await?;
    }
    if stuck {
        return Ok(());
    }
    if let Some(node) = m.data["status"]["nodeRef"]["name"].as_str() {
        match rt.workload.as_ref() {
            Some(wl) if wl.reachable => {
                if !drain(&wl.client, node).await? {
                    rt.timers.wake(Duration::from_millis(200));
                    return Ok(());
                }
                let nodes: Api<Node> = Api::all(wl.client.clone());
                ignore_404(nodes.delete(node, &DeleteParams::default()).await)?;
                let leases: Api<Lease> = Api::namespaced(wl.client.clone(), "kube-node-lease");
                ignore_404(leases.delete(node, &DeleteParams::default()).await)?;
                wl.kubelet.remove_node(node);
            }
            // Unreachable for now (restarting): try again shortly.
            Some(_) => {
                rt.timers.wake(Duration::from_millis(500));
                return Ok(());
            }
            // No workload cluster any more: nothing to drain.
            None => {}
        }
    }
    if !rt.timers.due(&format!("machine/{name}/Deleting"), f.delay(ctx.cfg.machine_delay_ms)) {
        return Ok(());
    }
    remove_finalizer(&api, m, FINALIZER_MACHINE).await?;
    let node = m.data["status"]["nodeRef"]["name"].as_str().map(|n| format!(" (Node {n} drained and deleted)")).unwrap_or_default();
    events::emit(&ctx.mgmt, cluster, "MachineDeleted", &format!("Machine {name} deleted{node}")).await;
    Ok(())
}

/// One step of a Cluster's deletion.
pub(super) async fn cluster(ctx: &Ctx, rt: &mut ClusterRt, cluster: &DynamicObject, f: &Faults) -> Result<Next> {
    let ns = cluster.metadata.namespace.clone().unwrap_or_default();
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let api = ctx.api(Kind::Cluster, &ns);
    if !cluster.metadata.finalizers.iter().flatten().any(|x| x == FINALIZER_CLUSTER) {
        return Ok(Next::After(Duration::from_millis(200)));
    }
    let generation = cluster.metadata.generation.unwrap_or(1);
    let old = cluster.data["status"].clone();
    let mut status = if old.is_object() { old.clone() } else { json!({}) };
    status["phase"] = json!("Deleting");
    let current = conditions::reason(&status, "Deleting").filter(|r| STAGES.contains(r)).map(String::from);
    let step = f.delay(ctx.cfg.deletion_step_ms);
    let stuck = f.deletion == Deletion::Stuck;
    let mut next_stage: Option<&str> = None;
    let mut finished = false;
    match current.as_deref() {
        None => next_stage = Some(STAGES[0]),
        Some("WaitingForWorkersDeletion") => {
            let mds = ctx.api(Kind::MachineDeployment, &ns);
            let lp = ListParams::default().labels(&format!("{LABEL_CLUSTER_NAME}={name}"));
            let md_list = mds.list(&lp).await?.items;
            for md in md_list.iter().filter(|m| !deleting(m)) {
                ignore_404(mds.delete(md.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default()).await)?;
            }
            let all = machines::list(ctx, cluster).await?;
            let workers: Vec<&DynamicObject> = all.iter().filter(|m| !machines::is_control_plane(m)).collect();
            let mapi = ctx.api(Kind::Machine, &ns);
            for m in &workers {
                if deleting(m) {
                    machine(ctx, rt, cluster, m, f, stuck).await?;
                } else {
                    ignore_404(mapi.delete(m.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default()).await)?;
                }
            }
            if !stuck && workers.is_empty() && md_list.is_empty() && rt.timers.due("deleting/workers", step) {
                next_stage = Some(STAGES[1]);
            }
            rt.timers.wake(Duration::from_millis(200));
        }
        Some("WaitingForControlPlaneDeletion") => {
            let all = machines::list(ctx, cluster).await?;
            let mapi = ctx.api(Kind::Machine, &ns);
            for m in all.iter().filter(|m| machines::is_control_plane(m)) {
                if deleting(m) {
                    machine(ctx, rt, cluster, m, f, false).await?;
                } else {
                    ignore_404(mapi.delete(m.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default()).await)?;
                }
            }
            if all.is_empty() {
                // The control plane's "machines" are our processes: stop them, drop the data.
                rt.workload = None;
                workload::teardown(ctx, &ns, &name).await?;
                if rt.timers.due("deleting/control-plane", step) {
                    next_stage = Some(STAGES[2]);
                }
            }
            rt.timers.wake(Duration::from_millis(200));
        }
        Some("WaitingForInfrastructureDeletion") => {
            rt.workload = None;
            workload::teardown(ctx, &ns, &name).await?;
            if rt.timers.due("deleting/infrastructure", step) {
                next_stage = Some(STAGES[3]);
            }
        }
        Some(_) => {
            if rt.timers.due("deleting/completed", step) {
                finished = true;
            }
        }
    }
    if let Some(s) = next_stage {
        conditions::set(&mut status, "Deleting", true, s, &stage_message(s), generation);
        rt.timers.wake(Duration::ZERO);
    }
    if status != old {
        api.patch_status(&name, &super::patch_params(), &Patch::Merge(json!({"status": status}))).await?;
    }
    if let Some(s) = next_stage {
        events::emit(&ctx.mgmt, cluster, s, &stage_message(s)).await;
    }
    if finished {
        secret::delete(ctx, &ns, &name).await?;
        remove_finalizer(&api, cluster, FINALIZER_CLUSTER).await?;
        tracing::info!(cluster = %super::names::key(&ns, &name), "deleted");
        return Ok(Next::After(Duration::from_millis(100)));
    }
    let wake = rt.timers.take_wake().unwrap_or(Duration::from_secs(1));
    Ok(Next::After(wake.clamp(Duration::from_millis(20), Duration::from_secs(1))))
}

fn stage_message(stage: &str) -> String {
    match stage {
        "WaitingForWorkersDeletion" => "deleting MachineDeployments and worker Machines",
        "WaitingForControlPlaneDeletion" => "deleting the control plane",
        "WaitingForInfrastructureDeletion" => "deleting the simulated infrastructure",
        _ => "deletion completed",
    }
    .to_string()
}
