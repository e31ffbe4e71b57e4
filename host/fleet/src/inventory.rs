//! A cluster's capacity, kept up to date from its Node and Pod watches (no LIST per
//! decision). Per node: allocatable, whether pods can land there, and the summed requests of
//! non-terminated bound pods; per owner (the labels mck8s puts on children): its bound pods.

use crate::owner_labels as labels;
use crate::{OwnedPods, OwnerKey};
use k8s_openapi::api::core::v1::{Node, Pod, ResourceRequirements};
use mck8s_capacity::{NodeCapacity, Resources, parse_bytes, parse_cpu_millis, parse_quantity};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default, PartialEq)]
struct NodeEntry {
    allocatable: Resources,
    schedulable: bool,
    ready: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct PodEntry {
    node: Option<String>,
    requests: Resources,
    owner: Option<OwnerKey>,
}

#[derive(Debug, Default)]
pub struct ClusterInventory {
    nodes: BTreeMap<String, NodeEntry>,
    pods: HashMap<String, PodEntry>,
    /// Σ requests of bound pods per node name (a node may be seen after its pods).
    requested: HashMap<String, Resources>,
    owned: HashMap<OwnerKey, HashMap<String, (Resources, u32)>>,
    /// Moves with every event that changed what is counted (a relist always moves it).
    revision: u64,
}

impl ClusterInventory {
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Whether the node's allocatable, schedulability or readiness changed (a heartbeat or
    /// an image list changes none of these).
    pub fn apply_node(&mut self, node: &Node) -> bool {
        let Some(name) = node.metadata.name.clone() else { return false };
        let entry = NodeEntry { allocatable: node_allocatable(node), schedulable: node_schedulable(node), ready: node_ready(node) };
        if self.nodes.get(&name) == Some(&entry) {
            return false;
        }
        self.revision += 1;
        self.nodes.insert(name, entry);
        true
    }

    /// Whether the node was counted.
    pub fn delete_node(&mut self, name: &str) -> bool {
        let known = self.nodes.remove(name).is_some();
        self.revision += u64::from(known);
        known
    }

    pub fn reset_nodes(&mut self, nodes: &[Node]) {
        self.revision += 1;
        self.nodes.clear();
        for n in nodes {
            self.apply_node(n);
        }
    }

    /// Whether the pod changed what is counted: capacity and owners count bound pods only,
    /// by node, requests and owner. A pending pod, or a bound one whose status moves
    /// (started, ready, restarted), changes nothing, and its event costs its driver nothing:
    /// a burst of pod events moves the revision once per pod bound or gone, not per event.
    pub fn apply_pod(&mut self, pod: &Pod) -> bool {
        let key = pod_key(pod);
        let terminated = matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
        if terminated {
            return self.delete_pod_key(&key);
        }
        let entry = PodEntry { node: pod.spec.as_ref().and_then(|s| s.node_name.clone()), requests: pod_requests(pod), owner: pod_owner(pod) };
        let counted = |e: Option<&PodEntry>| e.filter(|e| e.node.is_some()).cloned();
        let changed = counted(self.pods.get(&key)) != counted(Some(&entry));
        if changed {
            self.revision += 1;
            self.forget(&key);
            self.add(&entry);
        }
        self.pods.insert(key, entry);
        changed
    }

    /// Whether the pod was counted (bound).
    pub fn delete_pod(&mut self, pod: &Pod) -> bool {
        self.delete_pod_key(&pod_key(pod))
    }

    pub fn reset_pods(&mut self, pods: &[Pod]) {
        self.revision += 1;
        self.pods.clear();
        self.requested.clear();
        self.owned.clear();
        for p in pods {
            self.apply_pod(p);
        }
    }

    /// Forgets the pod; whether it was counted (bound), which moves the revision.
    fn delete_pod_key(&mut self, key: &str) -> bool {
        let counted = self.forget(key).is_some_and(|old| old.node.is_some());
        self.revision += u64::from(counted);
        counted
    }

    fn forget(&mut self, key: &str) -> Option<PodEntry> {
        let old = self.pods.remove(key)?;
        self.remove(&old);
        Some(old)
    }

    fn add(&mut self, e: &PodEntry) {
        let Some(node) = &e.node else { return };
        self.requested.entry(node.clone()).or_default().add(&e.requests);
        if let Some(o) = &e.owner {
            let slot = self.owned.entry(o.clone()).or_default().entry(node.clone()).or_default();
            slot.0.add(&e.requests);
            slot.1 += 1;
        }
    }

    fn remove(&mut self, e: &PodEntry) {
        let Some(node) = &e.node else { return };
        if let Some(r) = self.requested.get_mut(node) {
            *r = r.saturating_sub(&e.requests);
        }
        if let Some(o) = &e.owner
            && let Some(per_node) = self.owned.get_mut(o)
        {
            if let Some(slot) = per_node.get_mut(node) {
                slot.0 = slot.0.saturating_sub(&e.requests);
                slot.1 = slot.1.saturating_sub(1);
                if slot.1 == 0 {
                    per_node.remove(node);
                }
            }
            if per_node.is_empty() {
                self.owned.remove(o);
            }
        }
    }

    /// Schedulable nodes (in name order) and, per owner, its bound pods by node index.
    pub fn snapshot(&self) -> (Vec<NodeCapacity>, HashMap<OwnerKey, OwnedPods>) {
        let mut index = HashMap::new();
        let mut nodes = Vec::new();
        for (name, n) in &self.nodes {
            if !(n.schedulable && n.ready) {
                continue;
            }
            index.insert(name.as_str(), nodes.len());
            nodes.push(NodeCapacity { allocatable: n.allocatable.clone(), requested: self.requested.get(name).cloned().unwrap_or_default() });
        }
        let owned = self
            .owned
            .iter()
            .map(|(o, per_node)| {
                let mut pods = OwnedPods::default();
                for (node, (req, count)) in per_node {
                    pods.bound += count;
                    if let Some(&i) = index.get(node.as_str()) {
                        pods.per_node.push((i, req.clone()));
                    }
                }
                (o.clone(), pods)
            })
            .collect();
        (nodes, owned)
    }

    /// Nodes that are Ready, whether or not pods may land there.
    pub fn ready_nodes(&self) -> usize {
        self.nodes.values().filter(|n| n.ready).count()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

fn pod_key(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_else(|| format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or(""), pod.metadata.name.as_deref().unwrap_or("")))
}

/// Pods are counted under the label form of their owner's name (see
/// [`OwnerKey::labelled`]): a pod carries only its template's labels.
fn pod_owner(pod: &Pod) -> Option<OwnerKey> {
    let (kind, name) = labels::owner_of(pod.metadata.labels.as_ref(), pod.metadata.annotations.as_ref())?;
    Some(OwnerKey { kind, namespace: pod.metadata.namespace.clone().unwrap_or_default(), name }.labelled().into_owned())
}

/// Allocatable of a node as the slot model counts it.
pub fn node_allocatable(node: &Node) -> Resources {
    let alloc = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let mut r = Resources::default();
    if let Some(a) = alloc {
        for (k, q) in a {
            match k.as_str() {
                "cpu" => r.cpu_millis = parse_cpu_millis(&q.0).unwrap_or(0),
                "memory" => r.memory_bytes = parse_bytes(&q.0).unwrap_or(0),
                "pods" => r.pods = parse_quantity(&q.0, 1).unwrap_or(0),
                "ephemeral-storage" => {}
                k if k.starts_with("hugepages-") => {}
                k if k.contains('/') => {
                    r.extended.insert(k.to_string(), parse_quantity(&q.0, 1).unwrap_or(0));
                }
                _ => {}
            }
        }
    }
    r
}

/// Whether pods without tolerations can land on the node: not cordoned and no
/// NoSchedule/NoExecute taint. Control-plane nodes are excluded by their taint, not by
/// their position in a list (mck8s skipped the first node).
pub fn node_schedulable(node: &Node) -> bool {
    let Some(spec) = &node.spec else { return true };
    if spec.unschedulable == Some(true) {
        return false;
    }
    !spec.taints.as_ref().is_some_and(|ts| ts.iter().any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute"))
}

pub fn node_ready(node: &Node) -> bool {
    node.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn requests_of(r: Option<&ResourceRequirements>) -> Resources {
    let mut out = Resources::default();
    let Some(req) = r.and_then(|r| r.requests.as_ref()) else { return out };
    for (k, q) in req {
        match k.as_str() {
            "cpu" => out.cpu_millis = parse_cpu_millis(&q.0).unwrap_or(0),
            "memory" => out.memory_bytes = parse_bytes(&q.0).unwrap_or(0),
            k if k.contains('/') => {
                out.extended.insert(k.to_string(), parse_quantity(&q.0, 1).unwrap_or(0));
            }
            _ => {}
        }
    }
    out
}

fn max_each(a: &Resources, b: &Resources) -> Resources {
    let mut ext = a.extended.clone();
    for (k, v) in &b.extended {
        let e = ext.entry(k.clone()).or_default();
        *e = (*e).max(*v);
    }
    Resources { cpu_millis: a.cpu_millis.max(b.cpu_millis), memory_bytes: a.memory_bytes.max(b.memory_bytes), pods: a.pods.max(b.pods), extended: ext }
}

/// A pod's effective requests as the Kubernetes scheduler computes them: the larger of the
/// app containers' sum (plus sidecars, i.e. restartable init containers) and the largest
/// init container (plus the sidecars started before it), plus the pod overhead. One pod.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = &pod.spec else { return Resources { pods: 1, ..Default::default() } };
    let mut containers = Resources::default();
    for c in &spec.containers {
        containers.add(&requests_of(c.resources.as_ref()));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = requests_of(c.resources.as_ref());
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            init_peak = max_each(&init_peak, &sidecars);
        } else {
            let mut during = sidecars.clone();
            during.add(&r);
            init_peak = max_each(&init_peak, &during);
        }
    }
    containers.add(&sidecars);
    let mut total = max_each(&containers, &init_peak);
    if let Some(overhead) = &spec.overhead {
        let mut o = Resources::default();
        for (k, q) in overhead {
            match k.as_str() {
                "cpu" => o.cpu_millis = parse_cpu_millis(&q.0).unwrap_or(0),
                "memory" => o.memory_bytes = parse_bytes(&q.0).unwrap_or(0),
                _ => {}
            }
        }
        total.add(&o);
    }
    total.pods = 1;
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn only_events_that_change_what_is_counted_move_the_revision() {
        let mut inv = ClusterInventory::default();
        let owner = "labels: {fogguru.eu/owner: web, fogguru.eu/owner-kind: MultiClusterDeployment}";
        let spec = "containers: [{name: a, resources: {requests: {cpu: 100m}}}]";
        let at = |node: &str, status: &str| pod(&format!("{{metadata: {{name: p, namespace: ns, uid: u1, {owner}}}, spec: {{{node} {spec}}}, status: {status}}}"));
        let pending = at("", "{phase: Pending}");
        let bound = at("nodeName: n1,", "{phase: Pending}");
        let running = at("nodeName: n1,", "{phase: Running, conditions: [{type: Ready, status: 'False'}]}");
        let ready = at("nodeName: n1,", "{phase: Running, conditions: [{type: Ready, status: 'True'}]}");
        let done = at("nodeName: n1,", "{phase: Succeeded}");

        let r0 = inv.revision();
        assert!(!inv.apply_pod(&pending), "a pending pod counts nowhere");
        assert!(!inv.apply_pod(&pending));
        assert_eq!(inv.revision(), r0);
        assert!(inv.apply_pod(&bound), "bound: its node's requests and its owner's pods move");
        let r1 = inv.revision();
        assert!(r1 > r0);
        assert!(!inv.apply_pod(&running) && !inv.apply_pod(&ready) && !inv.apply_pod(&ready), "status only");
        assert_eq!(inv.revision(), r1);
        let owned = |inv: &ClusterInventory| inv.snapshot().1.values().map(|o| o.bound).sum::<u32>();
        assert_eq!(owned(&inv), 1);
        assert!(inv.apply_pod(&done), "terminated: no longer counted");
        assert!(inv.revision() > r1);
        assert_eq!(owned(&inv), 0);
        assert!(!inv.delete_pod(&done), "already forgotten");
        assert!(!inv.apply_pod(&done));

        assert!(inv.apply_pod(&bound));
        assert!(inv.delete_pod(&bound));
        assert!(!inv.apply_pod(&pending) && !inv.delete_pod(&pending), "never bound");

        let node = |ready: &str, image: &str| {
            serde_yaml_ng::from_str::<Node>(&format!(
                "{{metadata: {{name: n1}}, status: {{allocatable: {{cpu: '2', pods: '10'}}, images: [{{names: [{image}]}}], conditions: [{{type: Ready, status: '{ready}'}}]}}}}"
            ))
            .unwrap()
        };
        assert!(inv.apply_node(&node("True", "a")));
        let r2 = inv.revision();
        assert!(!inv.apply_node(&node("True", "b")), "an image list or heartbeat changes nothing counted");
        assert_eq!(inv.revision(), r2);
        assert!(inv.apply_node(&node("False", "b")));
        assert!(inv.delete_node("n1") && !inv.delete_node("n1"));
    }

    #[test]
    fn init_containers_sidecars_and_overhead_count_as_kubernetes_counts_them() {
        let p = pod(r#"
metadata: {name: p, namespace: ns, uid: u1}
spec:
  overhead: {cpu: 100m, memory: 10Mi}
  initContainers:
  - {name: big-init, resources: {requests: {cpu: "2", memory: 1Gi}}}
  - {name: sidecar, restartPolicy: Always, resources: {requests: {cpu: 200m, memory: 64Mi}}}
  containers:
  - {name: a, resources: {requests: {cpu: 500m, memory: 256Mi}}}
  - {name: b, resources: {requests: {cpu: 0.25, memory: "268435456"}}}
"#);
        let r = pod_requests(&p);
        // init peak: 2 CPU (the sidecar starts after it); app: 0.75 + 0.2 sidecar = 0.95 CPU.
        assert_eq!(r.cpu_millis, 2000 + 100);
        assert_eq!(r.memory_bytes, (1 << 30) + (10 << 20));
        assert_eq!(r.pods, 1);
        let small_init =
            pod("{metadata: {name: q}, spec: {initContainers: [{name: i, resources: {requests: {cpu: 100m}}}], containers: [{name: a, resources: {requests: {cpu: 1500m}}}]}}");
        assert_eq!(pod_requests(&small_init).cpu_millis, 1500);
    }

    #[test]
    fn tainted_cordoned_and_unready_nodes_hold_no_slots() {
        let node = |spec: &str, ready: &str| -> Node {
            serde_yaml_ng::from_str(&format!(
                "{{metadata: {{name: n}}, spec: {spec}, status: {{allocatable: {{cpu: '2', memory: 4Gi, pods: '10'}}, conditions: [{{type: Ready, status: '{ready}'}}]}}}}"
            ))
            .unwrap()
        };
        let mut inv = ClusterInventory::default();
        for (i, (spec, ready)) in [
            ("{}", "True"),
            ("{taints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]}", "True"),
            ("{unschedulable: true}", "True"),
            ("{}", "Unknown"),
            ("{taints: [{key: x, effect: PreferNoSchedule}]}", "True"),
        ]
        .iter()
        .enumerate()
        {
            let mut n = node(spec, ready);
            n.metadata.name = Some(format!("n{i}"));
            inv.apply_node(&n);
        }
        let (nodes, _) = inv.snapshot();
        assert_eq!(nodes.len(), 2, "only the plain node and the PreferNoSchedule one");
        assert_eq!(nodes[0].allocatable.cpu_millis, 2000);
        assert_eq!(nodes[0].allocatable.pods, 10);
    }

    #[test]
    fn pods_move_requests_and_ownership_incrementally() {
        let mut inv = ClusterInventory::default();
        inv.apply_node(
            &serde_yaml_ng::from_str("{metadata: {name: n0}, status: {allocatable: {cpu: '4', memory: 8Gi, pods: '10'}, conditions: [{type: Ready, status: 'True'}]}}").unwrap(),
        );
        let mk = |uid: &str, node: Option<&str>, phase: &str| -> Pod {
            let node = node.map(|n| format!("nodeName: {n},")).unwrap_or_default();
            pod(&format!(
                "{{metadata: {{name: {uid}, namespace: ns, uid: {uid}, labels: {{fogguru.eu/owner: web, fogguru.eu/owner-kind: MultiClusterDeployment}}}}, spec: {{{node} containers: [{{name: c, resources: {{requests: {{cpu: 1, memory: 1Gi}}}}}}]}}, status: {{phase: {phase}}}}}"
            ))
        };
        inv.apply_pod(&mk("a", None, "Pending"));
        assert_eq!(inv.snapshot().0[0].requested.cpu_millis, 0, "unbound pods take nothing");
        inv.apply_pod(&mk("a", Some("n0"), "Running"));
        inv.apply_pod(&mk("b", Some("n0"), "Running"));
        let (nodes, owned) = inv.snapshot();
        assert_eq!(nodes[0].requested.cpu_millis, 2000);
        let web = OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "ns".into(), name: "web".into() };
        assert_eq!(owned[&web].bound, 2);
        inv.apply_pod(&mk("b", Some("n0"), "Succeeded"));
        inv.delete_pod(&mk("a", Some("n0"), "Running"));
        let (nodes, owned) = inv.snapshot();
        assert_eq!(nodes[0].requested.cpu_millis, 0);
        assert!(owned.is_empty());
    }
}
