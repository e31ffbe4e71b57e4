//! Node registration, heartbeats (Ready condition and Lease) and simulated node loss.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{Kubelet, now, now_micro};

const HEARTBEAT: Duration = Duration::from_secs(10);
const LEASE_NS: &str = "kube-node-lease";

/// Registers every node, then refreshes their status and Lease every `HEARTBEAT`. Errors (an
/// apiserver that was stopped, say) are logged and retried on the next beat.
pub(super) async fn heartbeat_loop(k: Kubelet) {
    let mut registered = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_beat = None::<std::time::Instant>;
    loop {
        tick.tick().await;
        if !registered {
            match register_all(&k).await {
                Ok(()) => registered = true,
                Err(e) => {
                    tracing::debug!(error = %e, "node registration failed; retrying");
                    continue;
                }
            }
        }
        if last_beat.is_some_and(|t| t.elapsed() < HEARTBEAT) {
            continue;
        }
        let names: Vec<String> = k.sim.lock().unwrap().nodes.keys().cloned().collect();
        let mut ok = true;
        for name in names {
            if let Err(e) = beat(&k, &name).await {
                tracing::debug!(node = %name, error = %e, "heartbeat failed");
                ok = false;
                // A restarted apiserver keeps the Node, but registration is cheap and idempotent.
                registered = false;
            }
        }
        if ok {
            last_beat = Some(std::time::Instant::now());
        }
    }
}

fn labels(k: &Kubelet, name: &str) -> Value {
    let mut l = serde_json::Map::new();
    for (key, v) in [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("mck8s.io/cluster", k.spec.name.as_str()),
        ("mck8s.io/role", k.spec.role.as_str()),
        ("mck8s.io/simulated", "true"),
    ] {
        l.insert(key.into(), v.into());
    }
    if let Some(region) = &k.spec.region {
        l.insert("topology.kubernetes.io/region".into(), region.as_str().into());
    }
    for (key, v) in &k.spec.labels {
        l.insert(key.clone(), v.as_str().into());
    }
    Value::Object(l)
}

async fn register_all(k: &Kubelet) -> kube::Result<()> {
    let names: Vec<String> = k.sim.lock().unwrap().nodes.keys().cloned().collect();
    for name in names {
        register(k, &name).await?;
        beat(k, &name).await?;
    }
    Ok(())
}

async fn register(k: &Kubelet, name: &str) -> kube::Result<()> {
    let api: Api<Node> = Api::all(k.client.clone());
    if api.get_opt(name).await?.is_none() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels(k, name)},
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
    let (lost, since) = match k.sim.lock().unwrap().nodes.get(name) {
        Some(n) => (n.lost, n.since.clone()),
        None => return Ok(()),
    };
    let api: Api<Node> = Api::all(k.client.clone());
    let now = now();
    // Creation adds `node.kubernetes.io/not-ready` (TaintNodesByCondition); a real kubelet's
    // readiness makes the node lifecycle controller remove it. That controller is off, so we do.
    let taints = if lost {
        json!([
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": since},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": since},
        ])
    } else {
        Value::Null
    };
    let pp = PatchParams::default();
    api.patch(name, &pp, &Patch::Merge(json!({"metadata": {"labels": labels(k, name)}, "spec": {"taints": taints}}))).await?;
    if lost {
        // A lost kubelet posts nothing; the condition is what the lifecycle controller would set.
        let cond = |t: &str| json!({"type": t, "status": "Unknown", "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status (simulated node loss).",
            "lastHeartbeatTime": since, "lastTransitionTime": since});
        let status = json!({"status": {"conditions": [cond("Ready"), cond("MemoryPressure"), cond("DiskPressure"), cond("PIDPressure")]}});
        api.patch_status(name, &pp, &Patch::Strategic(status)).await?;
        return Ok(());
    }
    let c = &k.spec.capacity;
    let resources = json!({"cpu": c.cpu, "memory": c.memory, "pods": c.pods, "ephemeral-storage": "100Gi"});
    let cond = |t: &str, s: &str, reason: &str| json!({"type": t, "status": s, "reason": reason,
        "lastHeartbeatTime": now, "lastTransitionTime": since});
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
        let mut sim = k.sim.lock().unwrap();
        let node = sim.nodes.get_mut(name).ok_or_else(|| format!("no node {name} in {}", k.spec.name))?;
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
