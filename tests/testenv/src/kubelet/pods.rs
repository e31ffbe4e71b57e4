//! Pod lifecycle on simulated nodes, driven by a watch on all pods: bound pods become Running
//! and Ready with a pod IP; Job pods (or pods with a duration annotation) succeed after a
//! while; graceful deletions are finished the way a kubelet does, by deleting with grace 0.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use super::{ANN_CPU, ANN_DURATION, ANN_RX, Kubelet, PodSim, now};

pub(super) async fn run(k: Kubelet) {
    let api: Api<Pod> = Api::all(k.client.clone());
    // Backoff keeps the watch alive across an apiserver stop; the cap keeps recovery quick.
    let backoff = kube::runtime::watcher::DefaultBackoff::default();
    let mut events = watcher(api, watcher::Config::default()).backoff(backoff).boxed();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                if let Err(e) = on_pod(&k, pod).await {
                    tracing::debug!(error = %e, "pod update failed");
                }
            }
            Ok(watcher::Event::Delete(pod)) => forget(&k, &pod),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "pod watch error (retrying)"),
        }
    }
}

fn key(pod: &Pod) -> (String, String) {
    (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default())
}

fn forget(k: &Kubelet, pod: &Pod) {
    k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pods.remove(&key(pod));
}

fn annotation_f64(pod: &Pod, name: &str) -> Option<f64> {
    pod.metadata.annotations.as_ref()?.get(name)?.trim().parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0)
}

async fn on_pod(k: &Kubelet, pod: Pod) -> kube::Result<()> {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else { return Ok(()) };
    let lost = match k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).nodes.get(&node) {
        None => return Ok(()), // not one of ours
        Some(n) => n.lost,
    };
    if lost {
        return Ok(()); // a lost node's kubelet does nothing
    }
    let (ns, name) = key(&pod);
    let api: Api<Pod> = Api::namespaced(k.client.clone(), &ns);
    if pod.metadata.deletion_timestamp.is_some() {
        forget(k, &pod);
        // Containers are imaginary, so they stop at once; a kubelet then removes the object.
        let dp = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
        return match api.delete(&name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        };
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    let containers: Vec<String> = pod.spec.as_ref().map(|s| s.containers.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
    let cpu = annotation_f64(&pod, ANN_CPU).unwrap_or(k.load.cpu);
    let rx = annotation_f64(&pod, ANN_RX).unwrap_or(k.load.rx_bytes_per_second);
    match phase.as_str() {
        // Already started by us; this event predates our status patch.
        "" | "Pending" if k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pods.contains_key(&(ns.clone(), name.clone())) => {}
        "" | "Pending" => {
            let ip = allocate_ip(k, &node);
            start_pod(k, &api, &pod, &node, &ip).await?;
            track(k, &pod, &node, ip, cpu, rx, containers);
            let owned_by_job = pod.metadata.owner_references.iter().flatten().any(|o| o.kind == "Job");
            let duration = annotation_f64(&pod, ANN_DURATION).map(Duration::from_secs_f64).or(owned_by_job.then_some(k.job_duration));
            if let Some(d) = duration {
                tokio::spawn(complete_later(k.clone(), ns, name, pod.metadata.uid.clone(), d));
            }
        }
        "Running" => {
            // Already running (we started it, or before a kubelet restart): track its load.
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_else(|| allocate_ip(k, &node));
            track(k, &pod, &node, ip, cpu, rx, containers);
        }
        _ => forget(k, &pod),
    }
    Ok(())
}

fn track(k: &Kubelet, pod: &Pod, node: &str, ip: String, cpu: f64, rx: f64, containers: Vec<String>) {
    let mut sim = k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let entry = sim.pods.entry(key(pod)).or_insert_with(|| PodSim {
        node: node.into(),
        ip,
        cpu_cores: cpu,
        rx_bytes_per_second: rx,
        cpu_seconds: 0.0,
        rx_bytes: 0.0,
        containers,
        labels: Default::default(),
    });
    // Annotations and labels may change while the pod runs; the counters keep their
    // accumulated values.
    entry.labels = pod.metadata.labels.clone().unwrap_or_default();
    entry.cpu_cores = cpu;
    entry.rx_bytes_per_second = rx;
}

/// Next free address in the node's /24 (10.CLUSTER.NODE.2-254), avoiding IPs of running pods.
fn allocate_ip(k: &Kubelet, node: &str) -> String {
    let sim = k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let index = sim.nodes.get(node).map(|n| n.index).unwrap_or(0);
    let prefix = format!("10.{}.{}.", k.cluster_index % 256, index % 250);
    let used: std::collections::HashSet<&str> = sim.pods.values().map(|p| p.ip.as_str()).collect();
    (2..255).map(|h| format!("{prefix}{h}")).find(|ip| !used.contains(ip.as_str())).unwrap_or_else(|| format!("{prefix}254"))
}

fn ready_conditions(ready: bool, now: &str) -> serde_json::Value {
    let s = if ready { "True" } else { "False" };
    json!([
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": s, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": s, "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
    ])
}

async fn start_pod(k: &Kubelet, api: &Api<Pod>, pod: &Pod, node: &str, ip: &str) -> kube::Result<()> {
    let now = now();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let statuses: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            json!({
                "name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": format!("sim://{}", c.image.clone().unwrap_or_default()),
                "containerID": format!("sim://{uid}/{}", c.name), "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let status = json!({"status": {
        "phase": "Running", "hostIP": k.node_ip(node), "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
        "conditions": ready_conditions(true, &now), "containerStatuses": statuses,
    }});
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await?;
    tracing::debug!(pod = name, node, ip, "running");
    Ok(())
}

async fn complete_later(k: Kubelet, ns: String, name: String, uid: Option<String>, after: Duration) {
    tokio::time::sleep(after).await;
    let api: Api<Pod> = Api::namespaced(k.client.clone(), &ns);
    // Retry through an apiserver outage; give up if the pod is gone or replaced.
    for _ in 0..120 {
        match api.get_opt(&name).await {
            Ok(Some(p)) if p.metadata.uid == uid && p.metadata.deletion_timestamp.is_none() => {
                let now = now();
                let statuses: Vec<_> = p
                    .spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .map(|c| {
                        json!({
                            "name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "sim://", "ready": false, "started": false,
                            "restartCount": 0, "containerID": format!("sim://{}/{}", uid.clone().unwrap_or_default(), c.name),
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}},
                        })
                    })
                    .collect();
                let status = json!({"status": {"phase": "Succeeded", "conditions": ready_conditions(false, &now), "containerStatuses": statuses}});
                match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await {
                    Ok(_) => {
                        k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pods.remove(&(ns.clone(), name.clone()));
                        return;
                    }
                    Err(e) => tracing::debug!(pod = %name, error = %e, "completing pod failed; retrying"),
                }
            }
            Ok(_) => return,
            Err(e) => tracing::debug!(pod = %name, error = %e, "completing pod: get failed; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// On node loss, the lifecycle controller marks the node's pods not Ready; on return, the
/// kubelet reports them Ready again.
pub(super) async fn set_node_pods_ready(k: &Kubelet, node: &str, ready: bool) -> kube::Result<()> {
    let api: Api<Pod> = Api::all(k.client.clone());
    let lp = kube::api::ListParams::default().fields(&format!("spec.nodeName={node}"));
    let now = now();
    for pod in api.list(&lp).await? {
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        if ready && (pod.metadata.deletion_timestamp.is_some() || phase.as_deref() != Some("Running")) {
            // Deleted or bound while the node was lost: finish the deletion or start it now.
            on_pod(k, pod).await?;
            continue;
        }
        if phase.as_deref() != Some("Running") {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let napi: Api<Pod> = Api::namespaced(k.client.clone(), &ns);
        let status = json!({"status": {"conditions": ready_conditions(ready, &now)}});
        napi.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await?;
    }
    Ok(())
}
