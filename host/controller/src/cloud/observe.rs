//! What one reconcile reads: the demand in the management cluster, the Cluster API objects,
//! the registry, and, once the cluster answers, the cloud cluster itself. Reads only.

use super::capi::{self, ClusterView, MachineView};
use super::node_scaling::{MACHINE_ANNOTATION, NodeView};
use super::plan::{Claim, Demand, Workload};
use super::settings::{Settings, resolve};
use super::sizing::Resources;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use mck8s_api::{CloudProvisioner, MultiClusterDeployment, MultiClusterJob, labels};
use mck8s_capacity::quantity::{parse_bytes, parse_cpu_millis};
use std::time::Duration;

/// Every call to a workload cluster is bounded: a hung cloud API server must not hold the
/// provisioner (or the rest of the controller) hostage.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// `status.message: to_cloud` of every MultiClusterDeployment and MultiClusterJob, expanded
/// to one entry per unplaced pod with its requests.
pub async fn demand(client: &Client, watch_namespace: &Option<String>) -> Result<Demand, kube::Error> {
    let mut d = Demand::default();
    let mcds: Api<MultiClusterDeployment> = crate::shared::scoped_api(client, watch_namespace);
    for m in mcds.list(&ListParams::default()).await? {
        let Some(n) = to_cloud(m.status.as_ref().and_then(|s| s.message.as_ref())) else { continue };
        if let Ok(parsed) = crate::spec::parse(&m.name_any(), &m.namespace().unwrap_or_default(), &m.spec) {
            push(&mut d, &m, n, &parsed.request);
        }
    }
    let mcjs: Api<MultiClusterJob> = crate::shared::scoped_api(client, watch_namespace);
    for j in mcjs.list(&ListParams::default()).await? {
        let Some(n) = to_cloud(j.status.as_ref().and_then(|s| s.message.as_ref())) else { continue };
        if let Ok(parsed) = crate::spec::parse_job(&j.name_any(), &j.namespace().unwrap_or_default(), &j.spec) {
            push(&mut d, &j, n, &parsed.spec.request);
        }
    }
    Ok(d)
}

fn to_cloud(m: Option<&mck8s_api::mcd::LegacyMessage>) -> Option<u32> {
    let m = m.filter(|m| m.message == "to_cloud")?;
    m.replicas.as_u64().filter(|&n| n > 0).map(|n| n.min(10_000) as u32)
}

fn push<K: ResourceExt>(d: &mut Demand, obj: &K, n: u32, request: &mck8s_capacity::Resources) {
    let pod = Resources { cpu_milli: request.cpu_millis, memory_bytes: request.memory_bytes };
    d.pods.extend(std::iter::repeat_n(pod, n as usize));
    d.sources.push(format!("{}/{} ×{n}", obj.namespace().unwrap_or_default(), obj.name_any()));
}

/// Whether an older CloudProvisioner claims the same Cluster (the younger one yields).
pub fn older_claim(me: &CloudProvisioner, all: &[CloudProvisioner], mine: &Settings) -> Option<String> {
    let key = |cp: &CloudProvisioner| (cp.metadata.creation_timestamp.as_ref().map(|t| t.0), cp.name_any());
    all.iter()
        .filter(|o| o.uid() != me.uid() && o.metadata.deletion_timestamp.is_none())
        .filter(|o| resolve(o).is_ok_and(|s| s.cluster == mine.cluster || s.namespace == mine.namespace))
        .filter(|o| key(o) < key(me))
        .map(|o| o.name_any())
        .next()
}

/// The Cluster (if any) and whose it is.
pub async fn cluster(client: &Client, s: &Settings, uid: &str) -> Result<(Option<ClusterView>, Claim), kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &s.namespace, &capi::resource("Cluster"));
    let Some(obj) = api.get_opt(&s.cluster).await? else { return Ok((None, Claim::Ours)) };
    let mut view = ClusterView::parse(&obj, &s.worker_name);
    if view.owner_uid.as_deref() != Some(uid) {
        return Ok((None, Claim::ForeignCluster));
    }
    if view.templated {
        // Rendered from the template: the workers are the MachineDeployment it named.
        let mds: Api<DynamicObject> = Api::namespaced_with(client.clone(), &s.namespace, &capi::resource("MachineDeployment"));
        let md = mds.get_opt(&s.worker_machine_deployment()).await?;
        view = view.with_machine_deployment(md.as_ref());
    }
    Ok((Some(view), Claim::Ours))
}

pub async fn machines(client: &Client, s: &Settings) -> Result<Vec<MachineView>, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &s.namespace, &capi::resource("Machine"));
    let lp = ListParams::default().labels(&format!("{}={}", capi::CLUSTER_NAME_LABEL, s.cluster));
    Ok(api.list(&lp).await?.items.iter().map(MachineView::parse).filter(|m| !m.control_plane).collect())
}

/// The `<cluster>-kubeconfig` Secret Cluster API publishes.
pub async fn kubeconfig_secret(client: &Client, s: &Settings) -> Result<Option<Secret>, kube::Error> {
    Api::<Secret>::namespaced(client.clone(), &s.namespace).get_opt(&format!("{}-kubeconfig", s.cluster)).await
}

/// The kubeconfig text (`value`, as Cluster API names the key).
pub fn kubeconfig_text(secret: &Secret) -> Result<String, String> {
    let bytes = secret.data.as_ref().and_then(|d| d.get("value")).ok_or("the kubeconfig Secret has no `value` key")?;
    String::from_utf8(bytes.0.clone()).map_err(|_| "the kubeconfig is not UTF-8".to_string())
}

/// A client for the cloud cluster, with connect and read deadlines. Errors never quote the
/// kubeconfig (it holds credentials).
pub async fn workload_client(text: &str) -> Result<Client, String> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(text).map_err(|_| "the kubeconfig does not parse".to_string())?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.map_err(|e| format!("the kubeconfig is not usable: {}", first_line(&e.to_string())))?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(WORKLOAD_TIMEOUT);
    Client::try_from(config).map_err(|e| format!("no client: {}", first_line(&e.to_string())))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().chars().take(200).collect()
}

/// Nodes, pods and mck8s's children in the cloud cluster.
pub async fn workload(client: &Client) -> Result<Workload, String> {
    let read = async {
        let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await?;
        let pods = Api::<Pod>::all(client.clone()).list(&ListParams::default()).await?;
        let managed = ListParams::default().labels(&format!("{}={}", labels::MANAGED_BY_KEY, labels::MANAGED_BY));
        let deployments = Api::<Deployment>::all(client.clone()).list_metadata(&managed).await?;
        let jobs = Api::<Job>::all(client.clone()).list_metadata(&managed).await?;
        Ok::<_, kube::Error>((nodes.items, pods.items, deployments.items.len() + jobs.items.len()))
    };
    let (nodes, pods, children) = tokio::time::timeout(WORKLOAD_TIMEOUT, read)
        .await
        .map_err(|_| format!("the cloud cluster did not answer within {WORKLOAD_TIMEOUT:?}"))?
        .map_err(|e| format!("the cloud cluster: {}", first_line(&e.to_string())))?;
    Ok(workload_from(&nodes, &pods, children))
}

/// Pure: the autoscaler's view of nodes and pods.
pub fn workload_from(nodes: &[Node], pods: &[Pod], children: usize) -> Workload {
    let mut views: Vec<NodeView> = nodes.iter().map(node_view).collect();
    let mut unschedulable = Vec::new();
    for p in pods {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        if phase == "Succeeded" || phase == "Failed" || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let req = pod_requests(p);
        match p.spec.as_ref().and_then(|s| s.node_name.as_ref()) {
            Some(node) => {
                let daemon = p.owner_references().iter().any(|o| o.kind == "DaemonSet");
                if let Some(v) = views.iter_mut().find(|v| &v.name == node) {
                    v.pod_count += 1;
                    // DaemonSet pods come with every node: they shrink what a node offers
                    // rather than count as load that could move.
                    if daemon {
                        v.allocatable = v.allocatable.saturating_sub(req);
                    } else {
                        v.pods.push(req);
                    }
                }
            }
            None if is_unschedulable(p) => unschedulable.push(req),
            None => {}
        }
    }
    Workload { nodes: std::mem::take(&mut views), unschedulable, children }
}

fn is_unschedulable(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")))
}

fn pod_requests(p: &Pod) -> Resources {
    let mut r = Resources::default();
    for c in p.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default() {
        let reqs = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        if let Some(q) = reqs.and_then(|m| m.get("cpu")) {
            r.cpu_milli += parse_cpu_millis(&q.0).unwrap_or(0);
        }
        if let Some(q) = reqs.and_then(|m| m.get("memory")) {
            r.memory_bytes += parse_bytes(&q.0).unwrap_or(0);
        }
    }
    r
}

fn node_view(n: &Node) -> NodeView {
    let spec = n.spec.clone().unwrap_or_default();
    let taints = spec.taints.unwrap_or_default();
    let control_plane = taints.iter().any(|t| t.key == "node-role.kubernetes.io/master" || t.key == "node-role.kubernetes.io/control-plane")
        || n.labels().contains_key("node-role.kubernetes.io/control-plane")
        || n.labels().contains_key("node-role.kubernetes.io/master");
    let schedulable = spec.unschedulable != Some(true) && !taints.iter().any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute");
    let status = n.status.clone().unwrap_or_default();
    let ready = status.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True");
    let alloc = status.allocatable.unwrap_or_default();
    NodeView {
        name: n.name_any(),
        machine: n.annotations().get(MACHINE_ANNOTATION).cloned(),
        ready,
        schedulable,
        control_plane,
        allocatable: Resources {
            cpu_milli: alloc.get("cpu").and_then(|q| parse_cpu_millis(&q.0).ok()).unwrap_or(0),
            memory_bytes: alloc.get("memory").and_then(|q| parse_bytes(&q.0).ok()).unwrap_or(0),
        },
        pods: Vec::new(),
        pod_count: 0,
    }
}
