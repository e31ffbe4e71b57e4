//! Node registration, heartbeats (Ready condition and Lease) and simulated node loss.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{Kubelet, NodeProfile, now, now_micro};

const HEARTBEAT: Duration = Duration::from_secs(10);
const LEASE_NS: &str = "kube-node-lease";

/// Registers every node (and any added later), then refreshes their status and Lease every
/// `HEARTBEAT`. Errors (an apiserver that was stopped, say) are logged and retried.
pub(super) async fn heartbeat_loop(k: Kubelet) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_beat = None::<std::time::Instant>;
    loop {
        tick.tick().await;
        let pending: Vec<String> =
            k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).nodes.iter().filter(|(_, n)| !n.registered).map(|(name, _)| name.clone()).collect();
        for name in pending {
            if let Err(e) = register_now(&k, &name).await {
                tracing::debug!(node = %name, error = %e, "node registration failed; retrying");
            }
        }
        if last_beat.is_some_and(|t| t.elapsed() < HEARTBEAT) {
            continue;
        }
        let names: Vec<String> = k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).nodes.iter().filter(|(_, n)| n.registered).map(|(name, _)| name.clone()).collect();
        let mut ok = true;
        for name in names {
            if let Err(e) = beat(&k, &name).await {
                tracing::debug!(node = %name, error = %e, "heartbeat failed");
                ok = false;
                // A restarted apiserver keeps the Node, but registration is cheap and idempotent.
                set_registered(&k, &name, false);
            }
        }
        if ok {
            last_beat = Some(std::time::Instant::now());
        }
    }
}

fn set_registered(k: &Kubelet, name: &str, registered: bool) {
    if let Some(n) = k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).nodes.get_mut(name) {
        n.registered = registered;
    }
}

fn profile(k: &Kubelet, name: &str) -> Option<std::sync::Arc<NodeProfile>> {
    k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).nodes.get(name).map(|n| n.profile.clone())
}

/// Creates the Node unless it exists, then writes its status and Lease at once.
pub(super) async fn register_now(k: &Kubelet, name: &str) -> kube::Result<()> {
    register(k, name).await?;
    beat(k, name).await?;
    set_registered(k, name, true);
    Ok(())
}

async fn register(k: &Kubelet, name: &str) -> kube::Result<()> {
    let Some(p) = profile(k, name) else { return Ok(()) };
    let api: Api<Node> = Api::all(k.client.clone());
    if api.get_opt(name).await?.is_none() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": p.labels, "annotations": p.annotations},
            "spec": {"providerID": p.provider_id, "taints": p.taints},
        }))
        .expect("static node");
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => tracing::info!(node = name, "registered"),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes the node's spec taints and status: Ready (or, if lost, Unknown with the taints the
/// node lifecycle controller would add).
async fn beat(k: &Kubelet, name: &str) -> kube::Result<()> {
    let (lost, since, p) = match k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).nodes.get(name) {
        Some(n) => (n.lost, n.since.clone(), n.profile.clone()),
        None => return Ok(()),
    };
    let api: Api<Node> = Api::all(k.client.clone());
    let now = now();
    // Creation adds `node.kubernetes.io/not-ready` (TaintNodesByCondition); a real kubelet's
    // readiness makes the node lifecycle controller remove it. That controller is off, so we do.
    let mut taints: Vec<Value> = p.taints.iter().map(|t| serde_json::to_value(t).expect("taint")).collect();
    if lost {
        taints.push(json!({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": since}));
        taints.push(json!({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": since}));
    }
    let taints = if taints.is_empty() { Value::Null } else { Value::Array(taints) };
    let pp = PatchParams::default();
    let meta = json!({"labels": p.labels, "annotations": p.annotations});
    api.patch(name, &pp, &Patch::Merge(json!({"metadata": meta, "spec": {"taints": taints}}))).await?;
    if lost {
        // A lost kubelet posts nothing; the condition is what the lifecycle controller would set.
        let cond = |t: &str| {
            json!({"type": t, "status": "Unknown", "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status (simulated node loss).",
            "lastHeartbeatTime": since, "lastTransitionTime": since})
        };
        let status = json!({"status": {"conditions": [cond("Ready"), cond("MemoryPressure"), cond("DiskPressure"), cond("PIDPressure")]}});
        api.patch_status(name, &pp, &Patch::Strategic(status)).await?;
        return Ok(());
    }
    let c = &p.capacity;
    let resources = json!({"cpu": c.cpu, "memory": c.memory, "pods": c.pods, "ephemeral-storage": "100Gi"});
    let cond = |t: &str, s: &str, reason: &str| {
        json!({"type": t, "status": s, "reason": reason,
        "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    let status = json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID"),
            cond("Ready", "True", "KubeletReady"),
        ],
        "addresses": [{"type": "InternalIP", "address": k.node_ip(name)}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": k.port}},
        "nodeInfo": {"kubeletVersion": "v1.20.2-mck8s-sim", "kubeProxyVersion": "v1.20.2-mck8s-sim",
            "operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion": "sim://1",
            "osImage": "mck8s simulated node", "kernelVersion": "sim", "machineID": name, "systemUUID": name, "bootID": name},
    }});
    api.patch_status(name, &pp, &Patch::Strategic(status)).await?;
    renew_lease(k, name).await
}

async fn renew_lease(k: &Kubelet, name: &str) -> kube::Result<()> {
    let api: Api<Lease> = Api::namespaced(k.client.clone(), LEASE_NS);
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": LEASE_NS},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()},
    });
    api.patch(name, &PatchParams::apply("mck8s-sim-kubelet").force(), &Patch::Apply(body)).await?;
    Ok(())
}

/// Marks a node lost or back; the next beat writes it and pods follow (see `pods`).
pub(super) async fn set_lost(k: &Kubelet, name: &str, lost: bool) -> Result<(), String> {
    {
        let mut sim = k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let node = sim.nodes.get_mut(name).ok_or_else(|| format!("no node {name} in {}", k.cluster))?;
        if node.lost != lost {
            node.lost = lost;
            node.since = super::now();
        }
    }
    beat(k, name).await.map_err(|e| e.to_string())?;
    super::pods::set_node_pods_ready(k, name, !lost).await.map_err(|e| e.to_string())?;
    tracing::info!(node = name, lost, "node loss simulated");
    Ok(())
}
