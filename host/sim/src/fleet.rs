//! Virtual clusters. Each has nodes and pods; inside a cluster pods are bound to nodes the
//! way kube-scheduler does it (filter the nodes the pod fits, score least-allocated, take
//! the best) and stay Pending when nothing fits, to be retried when capacity frees. A
//! cluster may autoscale its nodes (a cloud's cluster autoscaler), and a cloud cluster may
//! exist only on demand: absent until replicas are left unplaced, provisioned for a while,
//! then present until it has been idle long enough to be removed ([`Presence`]).
//!
//! [`Fleet::cluster_states`] is what the shared decision code sees: the same
//! [`ClusterState`] a controller builds from its watches (nodes with the requests of their
//! bound pods, each owner's bound pods per node).

use crate::SimError;
use crate::scenario::{ClusterSpec, InitialNodes, NodeAutoscaling, OnDemand};
use mck8s_capacity::{NodeCapacity, Resources, parse_bytes, parse_cpu_millis};
use mck8s_fleet::{ClusterState, Health, OwnedPods, OwnerKey, Role, StateCache};
use mck8s_policy::input::NodeDoc;
use mck8s_scheduler::FleetCycle;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Index of an owner registered with [`Fleet::owner`].
pub type OwnerId = u32;

#[derive(Clone, Debug)]
struct Pod {
    owner: OwnerId,
    request: Resources,
    /// `None`: Pending.
    node: Option<usize>,
}

#[derive(Clone, Debug)]
struct Node {
    allocatable: Resources,
    /// Requests of system pods and bound pods.
    requested: Resources,
    bound: u32,
    /// Added by the node autoscaler (may be removed again).
    elastic: bool,
    empty_since: Option<u64>,
}

impl Node {
    /// kube-scheduler's NodeResourcesFit: requested + the pod within allocatable (no
    /// allocation: this runs for every Pending pod and node).
    fn fits(&self, req: &Resources) -> bool {
        let (a, r) = (&self.allocatable, &self.requested);
        r.cpu_millis + req.cpu_millis <= a.cpu_millis
            && r.memory_bytes + req.memory_bytes <= a.memory_bytes
            && r.pods + req.pods.max(1) <= a.pods
            && req.extended.iter().all(|(k, v)| r.extended.get(k).copied().unwrap_or(0) + v <= a.extended.get(k).copied().unwrap_or(0))
    }

    fn capacity(&self) -> NodeCapacity {
        NodeCapacity { allocatable: self.allocatable.clone(), requested: self.requested.clone() }
    }
}

/// Per-cluster counters for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub requested_cpu_millis: u64,
    pub allocatable_cpu_millis: u64,
    pub running: u32,
    pub pending: u32,
    pub nodes: u32,
    /// Part of the fleet (an on-demand cluster is not while absent or being provisioned).
    pub present: bool,
}

/// Whether a cluster is part of the fleet the policies see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Present,
    /// An on-demand cluster before it is needed, or after it was removed.
    Absent,
    /// An on-demand cluster being created: it joins at `joins_at` with `nodes` workers.
    Provisioning {
        joins_at: u64,
        nodes: u32,
    },
}

#[derive(Clone, Debug)]
pub struct VirtualCluster {
    pub name: String,
    pub role: Option<Role>,
    pub cloud: bool,
    pub health: Health,
    pub labels: BTreeMap<String, String>,
    pub traffic: f64,
    pub cost: f64,
    nodes: Vec<Node>,
    /// In creation order: the Pending queue is served oldest first.
    pods: Vec<Pod>,
    autoscaling: Option<NodeAutoscaling>,
    /// The shape the autoscaler adds (the first node entry).
    template: Option<(Resources, Resources)>,
    /// Ready times of nodes being provisioned.
    provisioning: Vec<u64>,
    dirty: bool,
    /// Moves whenever what a controller observes may have changed (nodes, bound pods), so
    /// its `ClusterState` is rebuilt only then (health, traffic and cost are keyed apart).
    revision: u64,
    pub presence: Presence,
    /// Created on demand and removed when idle.
    on_demand: Option<OnDemand>,
    /// Since when an on-demand cluster has had no pod while nothing was unplaced.
    idle_since: Option<u64>,
}

fn lower_node(cluster: &str, n: &NodeDoc) -> Result<(Resources, Resources), SimError> {
    let bad = |what: String| SimError::Scenario(format!("cluster {cluster:?}: {what}"));
    let q = |v: Option<&str>, cpu: bool| -> Result<u64, SimError> {
        match v {
            None => Ok(0),
            Some(t) => if cpu { parse_cpu_millis(t) } else { parse_bytes(t) }.map_err(|e| bad(e.to_string())),
        }
    };
    Ok((
        Resources { cpu_millis: q(Some(&n.cpu), true)?, memory_bytes: q(Some(&n.memory), false)?, pods: n.pods, extended: n.extended.clone() },
        Resources { cpu_millis: q(n.used_cpu.as_deref(), true)?, memory_bytes: q(n.used_memory.as_deref(), false)?, pods: n.used_pods, extended: n.used_extended.clone() },
    ))
}

impl VirtualCluster {
    pub fn from_spec(spec: &ClusterSpec) -> Result<Self, SimError> {
        let mut nodes = Vec::new();
        let mut template = None;
        // An on-demand cluster starts with no node: its node entries only give the shape.
        let present = spec.provisioning.is_none();
        for n in &spec.nodes {
            let (alloc, base) = lower_node(&spec.name, n)?;
            template.get_or_insert_with(|| (alloc.clone(), base.clone()));
            for _ in 0..if present { n.count } else { 0 } {
                nodes.push(Node { allocatable: alloc.clone(), requested: base.clone(), bound: 0, elastic: false, empty_since: None });
            }
        }
        let cloud = spec.is_cloud();
        let mut c = VirtualCluster {
            name: spec.name.clone(),
            role: spec.role.clone(),
            cloud,
            health: Health::Ready,
            labels: spec.labels.clone(),
            traffic: spec.traffic,
            cost: spec.cost,
            nodes,
            pods: Vec::new(),
            autoscaling: spec.autoscaling.clone(),
            template,
            provisioning: Vec::new(),
            dirty: false,
            revision: 0,
            presence: if present { Presence::Present } else { Presence::Absent },
            on_demand: spec.provisioning.clone(),
            idle_since: None,
        };
        if let Some(a) = spec.autoscaling.as_ref().filter(|_| present) {
            while (c.nodes.len() as u32) < a.min_nodes {
                c.add_node(true);
            }
        }
        Ok(c)
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.health, Health::Ready)
    }

    pub fn is_present(&self) -> bool {
        self.presence == Presence::Present
    }

    /// Starts creating an absent on-demand cluster for `demand` (the requests of the
    /// unplaced replicas); returns when it joins. `None` when it is not on demand or not
    /// absent: a provision in flight is never started twice.
    fn provision(&mut self, demand: &Resources, now: u64) -> Option<u64> {
        let p = self.on_demand.as_ref()?;
        if self.presence != Presence::Absent {
            return None;
        }
        let joins_at = now + p.delay_seconds;
        let nodes = self.initial_nodes(p.initial_nodes, demand);
        self.presence = Presence::Provisioning { joins_at, nodes };
        Some(joins_at)
    }

    /// mck8s's sizing (`getFlavor`): ⌈demand / node⌉ in the tightest dimension, at least one
    /// node, within the node autoscaler's bounds.
    fn initial_nodes(&self, how: InitialNodes, demand: &Resources) -> u32 {
        let wanted = match how {
            InitialNodes::Count(n) => n,
            InitialNodes::FromDemand => {
                let (alloc, base) = self.template.clone().expect("validated: on-demand clusters have a node shape");
                nodes_for(demand, &alloc.saturating_sub(&base))
            }
        };
        let (lo, hi) = self.autoscaling.as_ref().map_or((1, u32::MAX), |a| (a.min_nodes.max(1), a.max_nodes.max(1)));
        wanted.clamp(lo, hi)
    }

    /// Provisioning is over: the cluster joins with its initial workers, which the node
    /// autoscaler may later remove like any node it added. Returns whether it joined.
    fn join(&mut self) -> bool {
        let Presence::Provisioning { nodes, .. } = self.presence else { return false };
        for _ in 0..nodes {
            self.add_node(true);
        }
        self.presence = Presence::Present;
        self.idle_since = None;
        self.dirty = true;
        self.revision += 1;
        true
    }

    /// Removes an on-demand cluster that has had no workload pod, while no replica was
    /// unplaced anywhere (`demand_waiting`), for `deprovisionAfterIdleSeconds`: mck8s's
    /// de-provisioning countdown, which any pod in the cluster resets. Returns whether it
    /// was removed.
    fn deprovision_if_idle(&mut self, now: u64, demand_waiting: bool) -> bool {
        let Some(window) = self.on_demand.as_ref().map(|p| p.deprovision_after_idle_seconds) else { return false };
        if !self.is_present() {
            return false;
        }
        if !self.pods.is_empty() || demand_waiting {
            self.idle_since = None;
            return false;
        }
        let since = *self.idle_since.get_or_insert(now);
        if now < since + window {
            return false;
        }
        self.nodes.clear();
        self.provisioning.clear();
        self.presence = Presence::Absent;
        self.idle_since = None;
        self.revision += 1;
        true
    }

    fn add_node(&mut self, elastic: bool) {
        let (alloc, base) = self.template.clone().expect("validated: autoscaled clusters have a node shape");
        self.nodes.push(Node { allocatable: alloc, requested: base, bound: 0, elastic, empty_since: None });
        self.revision += 1;
    }

    /// Pods of `owner` here: (bound, pending).
    pub fn pods_of(&self, owner: OwnerId) -> (u32, u32) {
        self.pods.iter().filter(|p| p.owner == owner).fold((0, 0), |(b, p), pod| if pod.node.is_some() { (b + 1, p) } else { (b, p + 1) })
    }

    /// Creates or deletes `owner`'s pods to have `n`. Deletes Pending pods first, then the
    /// newest bound ones (a ReplicaSet scaling down prefers unscheduled pods).
    fn set_replicas(&mut self, owner: OwnerId, request: &Resources, n: u32) {
        let have = self.pods.iter().filter(|p| p.owner == owner).count() as u32;
        if n > have {
            for _ in have..n {
                self.pods.push(Pod { owner, request: request.clone(), node: None });
            }
            self.dirty = true;
            return;
        }
        let mut drop = have - n;
        if drop == 0 {
            return;
        }
        for bound_pass in [false, true] {
            let mut i = self.pods.len();
            while drop > 0 && i > 0 {
                i -= 1;
                let p = &self.pods[i];
                if p.owner == owner && p.node.is_some() == bound_pass {
                    let pod = self.pods.remove(i);
                    if let Some(node) = pod.node {
                        let nd = &mut self.nodes[node];
                        nd.requested = nd.requested.saturating_sub(&pod.request);
                        nd.bound -= 1;
                        self.revision += 1;
                    }
                    drop -= 1;
                }
            }
        }
        // Freed capacity may fit Pending pods.
        self.dirty = true;
    }

    /// One kube-scheduler pass over the Pending queue, oldest first: filter the nodes the
    /// pod fits, score them least-allocated (mean free CPU and memory fraction after
    /// binding, kube-scheduler's default), bind to the best (lowest index on ties, where
    /// kube-scheduler picks at random).
    fn schedule(&mut self) {
        if !self.dirty || !self.is_ready() {
            return;
        }
        self.dirty = false;
        // A shape that fitted nowhere: every pod at least as large is skipped this pass.
        let mut unfit: Vec<Resources> = Vec::new();
        for i in 0..self.pods.len() {
            if self.pods[i].node.is_some() {
                continue;
            }
            let req = &self.pods[i].request;
            if unfit.iter().any(|u| covers(req, u)) {
                continue;
            }
            let mut best: Option<(usize, f64)> = None;
            for (k, n) in self.nodes.iter().enumerate() {
                if !n.fits(req) {
                    continue;
                }
                let score = least_allocated(n, req);
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((k, score));
                }
            }
            match best {
                Some((k, _)) => {
                    let n = &mut self.nodes[k];
                    n.requested.add(req);
                    n.bound += 1;
                    n.empty_since = None;
                    self.pods[i].node = Some(k);
                    self.revision += 1;
                }
                None => unfit.push(req.clone()),
            }
        }
    }

    /// Loses every pod (the cluster failed; its workloads are re-placed elsewhere).
    fn lose_pods(&mut self) -> Vec<OwnerId> {
        let mut owners: Vec<OwnerId> = self.pods.iter().map(|p| p.owner).collect();
        owners.sort_unstable();
        owners.dedup();
        for p in self.pods.drain(..) {
            if let Some(k) = p.node {
                let n = &mut self.nodes[k];
                n.requested = n.requested.saturating_sub(&p.request);
                n.bound -= 1;
            }
        }
        self.provisioning.clear();
        self.revision += 1;
        owners
    }

    /// The cluster autoscaler: enough new nodes for the Pending pods (packed first-fit on
    /// empty node shapes), within `maxNodes`; empty elastic nodes go after
    /// `scaleDownSeconds`. Returns the ready times of nodes it started.
    fn autoscale(&mut self, now: u64) -> Vec<u64> {
        let Some(a) = self.autoscaling.clone() else { return Vec::new() };
        if !self.is_ready() || !self.is_present() {
            return Vec::new();
        }
        for n in &mut self.nodes {
            if n.bound == 0 {
                n.empty_since.get_or_insert(now);
            } else {
                n.empty_since = None;
            }
        }
        let mut started = Vec::new();
        let (alloc, base) = self.template.clone().expect("validated");
        let mut fresh: Vec<Resources> = Vec::new();
        let empty = alloc.saturating_sub(&base);
        for p in self.pods.iter().filter(|p| p.node.is_none()) {
            if empty.fits_times(&p.request) == 0 {
                continue; // would not fit a new node either
            }
            match fresh.iter_mut().find(|f| f.fits_times(&p.request) > 0) {
                Some(f) => *f = f.saturating_sub(&p.request),
                None => fresh.push(empty.saturating_sub(&p.request)),
            }
        }
        let room = (a.max_nodes as usize).saturating_sub(self.nodes.len() + self.provisioning.len());
        let want = fresh.len().saturating_sub(self.provisioning.len()).min(room);
        for _ in 0..want {
            self.provisioning.push(now + a.provision_seconds);
            started.push(now + a.provision_seconds);
        }
        if fresh.is_empty() {
            // Scale down one idle elastic node at a time, newest first.
            if let Some(k) = (0..self.nodes.len()).rev().find(|&k| {
                let n = &self.nodes[k];
                n.elastic && n.bound == 0 && n.empty_since.is_some_and(|t| now >= t + a.scale_down_seconds)
            }) && self.nodes.len() as u32 > a.min_nodes
            {
                self.nodes.remove(k);
                self.revision += 1;
                for p in &mut self.pods {
                    if let Some(i) = p.node.as_mut()
                        && *i > k
                    {
                        *i -= 1;
                    }
                }
            }
        }
        started
    }

    /// Nodes whose provisioning finished by `now` join the cluster.
    fn nodes_ready(&mut self, now: u64) {
        let due = self.provisioning.iter().filter(|&&t| t <= now).count();
        self.provisioning.retain(|&t| t > now);
        for _ in 0..due {
            self.add_node(true);
        }
        if due > 0 {
            self.dirty = true;
        }
    }

    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for n in &self.nodes {
            u.requested_cpu_millis += n.requested.cpu_millis;
            u.allocatable_cpu_millis += n.allocatable.cpu_millis;
        }
        u.nodes = self.nodes.len() as u32;
        u.present = self.is_present();
        for p in &self.pods {
            if p.node.is_some() {
                u.running += 1;
            } else {
                u.pending += 1;
            }
        }
        u
    }

    /// What a controller observes of this cluster.
    pub fn state(&self, owners: &[OwnerKey]) -> ClusterState {
        // Sorted by (owner, node) and folded: this runs for every cluster of every cycle, so
        // no intermediate maps.
        let mut bound: Vec<(OwnerId, usize, &Resources)> = self.pods.iter().filter_map(|p| p.node.map(|k| (p.owner, k, &p.request))).collect();
        bound.sort_unstable_by_key(|&(o, k, _)| (o, k));
        let mut owned: HashMap<OwnerKey, OwnedPods> = HashMap::new();
        let mut i = 0;
        while i < bound.len() {
            let owner = bound[i].0;
            let mut pods = OwnedPods::default();
            while i < bound.len() && bound[i].0 == owner {
                let (_, k, req) = bound[i];
                match pods.per_node.last_mut() {
                    Some((last, sum)) if *last == k => sum.add(req),
                    _ => pods.per_node.push((k, req.clone())),
                }
                pods.bound += 1;
                i += 1;
            }
            owned.insert(owners[owner as usize].clone(), pods);
        }
        ClusterState {
            name: self.name.clone(),
            role: self.role.clone(),
            health: self.health,
            labels: self.labels.clone(),
            nodes: self.nodes.iter().map(Node::capacity).collect(),
            owned,
            traffic: self.traffic,
            cost: self.cost,
        }
    }
}

/// Nodes with `room` each that `demand` needs, by its tightest dimension (dimensions a node
/// does not offer are left out: no number of such nodes would do), at least one.
fn nodes_for(demand: &Resources, room: &Resources) -> u32 {
    let per = |need: u64, have: u64| if have == 0 { 0 } else { need.div_ceil(have) };
    let n = per(demand.cpu_millis, room.cpu_millis).max(per(demand.memory_bytes, room.memory_bytes)).max(per(demand.pods, room.pods));
    n.clamp(1, u64::from(u32::MAX)) as u32
}

/// Whether `req` needs at least `small` in every dimension (so it cannot fit where `small`
/// did not).
fn covers(req: &Resources, small: &Resources) -> bool {
    req.cpu_millis >= small.cpu_millis
        && req.memory_bytes >= small.memory_bytes
        && req.pods >= small.pods
        && small.extended.iter().all(|(k, v)| req.extended.get(k).copied().unwrap_or(0) >= *v)
}

fn least_allocated(n: &Node, req: &Resources) -> f64 {
    let frac = |alloc: u64, used: u64| if alloc == 0 { 0.0 } else { alloc.saturating_sub(used) as f64 / alloc as f64 };
    (frac(n.allocatable.cpu_millis, n.requested.cpu_millis + req.cpu_millis) + frac(n.allocatable.memory_bytes, n.requested.memory_bytes + req.memory_bytes)) / 2.0
}

/// The virtual fleet.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub clusters: Vec<VirtualCluster>,
    pub rtt: mck8s_fleet::Rtts,
    index: HashMap<String, usize>,
    owners: Vec<OwnerKey>,
    owner_ids: HashMap<OwnerKey, OwnerId>,
    /// Each present cluster's last `ClusterState`, by (revision, health, traffic, cost).
    states: StateCache<(u64, Health, u64, u64)>,
}

impl Fleet {
    pub fn new(clusters: &[ClusterSpec], rtt: &[(String, String, f32)]) -> Result<Self, SimError> {
        let clusters = clusters.iter().map(VirtualCluster::from_spec).collect::<Result<Vec<_>, _>>()?;
        let index = clusters.iter().enumerate().map(|(i, c)| (c.name.clone(), i)).collect();
        Ok(Fleet { clusters, rtt: Arc::new(rtt.to_vec()), index, owners: Vec::new(), owner_ids: HashMap::new(), states: StateCache::default() })
    }

    pub fn index_of(&self, cluster: &str) -> Option<usize> {
        self.index.get(cluster).copied()
    }

    /// Registers (or finds) an owner.
    pub fn owner(&mut self, key: &OwnerKey) -> OwnerId {
        if let Some(&id) = self.owner_ids.get(key) {
            return id;
        }
        let id = self.owners.len() as OwnerId;
        self.owners.push(key.clone());
        self.owner_ids.insert(key.clone(), id);
        id
    }

    /// Makes `owner`'s pods per cluster match `desired` (clusters not named get none).
    /// Pods are created Pending; [`Self::schedule`] binds them.
    pub fn apply(&mut self, owner: OwnerId, request: &Resources, desired: &BTreeMap<String, u32>) -> Result<(), SimError> {
        for (name, _) in desired.iter().filter(|(_, n)| **n > 0) {
            if !self.index.contains_key(name) {
                return Err(SimError::Scenario(format!("placement names unknown cluster {name:?}")));
            }
        }
        for c in &mut self.clusters {
            let want = desired.get(&c.name).copied().unwrap_or(0);
            c.set_replicas(owner, request, want);
        }
        Ok(())
    }

    /// [`Self::apply`] on the named clusters only (cheaper on large fleets): `previous` are
    /// the clusters the owner may have pods on.
    pub fn apply_on(&mut self, owner: OwnerId, request: &Resources, previous: &[String], desired: &BTreeMap<String, u32>) -> Result<(), SimError> {
        let mut touched: Vec<usize> = Vec::with_capacity(previous.len() + desired.len());
        for name in previous.iter().chain(desired.keys()) {
            let i = self.index_of(name).ok_or_else(|| SimError::Scenario(format!("placement names unknown cluster {name:?}")))?;
            touched.push(i);
        }
        touched.sort_unstable();
        touched.dedup();
        for i in touched {
            let c = &mut self.clusters[i];
            let want = desired.get(&c.name).copied().unwrap_or(0);
            c.set_replicas(owner, request, want);
        }
        Ok(())
    }

    /// Runs kube-scheduler in every cluster that changed.
    pub fn schedule(&mut self) {
        for c in &mut self.clusters {
            c.schedule();
        }
    }

    /// The cluster fails: it reports `health` and its pods are lost. Returns the owners
    /// that had pods there.
    pub fn fail(&mut self, cluster: usize, health: Health) -> Vec<OwnerId> {
        let c = &mut self.clusters[cluster];
        c.health = health;
        c.lose_pods()
    }

    pub fn recover(&mut self, cluster: usize) {
        let c = &mut self.clusters[cluster];
        c.health = Health::Ready;
        c.dirty = true;
    }

    /// Node autoscaling in every cluster; returns `(cluster, ready time)` of started nodes.
    pub fn autoscale_nodes(&mut self, now: u64) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        for (i, c) in self.clusters.iter_mut().enumerate() {
            out.extend(c.autoscale(now).into_iter().map(|t| (i, t)));
        }
        out
    }

    pub fn nodes_ready(&mut self, cluster: usize, now: u64) {
        self.clusters[cluster].nodes_ready(now);
    }

    /// Starts provisioning every absent on-demand cluster for `demand` (each is its own
    /// CloudProvisioner, as in mck8s); returns `(cluster, join time)` of those started.
    pub fn provision_on_demand(&mut self, demand: &Resources, now: u64) -> Vec<(usize, u64)> {
        self.clusters.iter_mut().enumerate().filter_map(|(i, c)| c.provision(demand, now).map(|t| (i, t))).collect()
    }

    /// An on-demand cluster being provisioned joins the fleet; false if it was not.
    pub fn join(&mut self, cluster: usize) -> bool {
        self.clusters[cluster].join()
    }

    /// Removes the on-demand clusters idle for long enough; returns them.
    pub fn deprovision_idle(&mut self, now: u64, demand_waiting: bool) -> Vec<usize> {
        self.clusters.iter_mut().enumerate().filter_map(|(i, c)| c.deprovision_if_idle(now, demand_waiting).then_some(i)).collect()
    }

    /// The fleet as the controllers observe it: on-demand clusters only once they joined.
    pub fn cluster_states(&self) -> Vec<ClusterState> {
        self.clusters.iter().filter(|c| c.is_present()).map(|c| c.state(&self.owners)).collect()
    }

    /// [`Self::cluster_states`], reusing the state of every cluster that did not change since
    /// the last call (as the controller's registry does).
    pub fn shared_states(&mut self) -> Vec<Arc<ClusterState>> {
        let (states, owners) = (&mut self.states, &self.owners);
        let out: Vec<Arc<ClusterState>> = self
            .clusters
            .iter()
            .filter(|c| c.is_present())
            .map(|c| states.get(&c.name, (c.revision, c.health, c.traffic.to_bits(), c.cost.to_bits()), || c.state(owners)))
            .collect();
        if states.len() > out.len() {
            let present: std::collections::HashSet<&str> = out.iter().map(|s| s.name.as_str()).collect();
            states.retain(|n| present.contains(n));
        }
        out
    }

    /// One decision cycle's view, as the controller would build it.
    pub fn cycle(&self, version: u64) -> Result<FleetCycle, SimError> {
        Ok(FleetCycle::build(self.cluster_states(), &self.rtt, version)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ClusterSpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn cpu(m: u64) -> Resources {
        Resources { cpu_millis: m, memory_bytes: m << 20, pods: 1, ..Default::default() }
    }

    fn fleet(yaml: &str) -> (Fleet, OwnerId, OwnerId) {
        let mut f = Fleet::new(&[spec(yaml)], &[]).unwrap();
        let a = f.owner(&OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "default".into(), name: "a".into() });
        let b = f.owner(&OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "default".into(), name: "b".into() });
        (f, a, b)
    }

    fn want(c: &str, n: u32) -> BTreeMap<String, u32> {
        [(c.to_string(), n)].into_iter().collect()
    }

    #[test]
    fn pods_spread_least_allocated_and_stay_pending_when_nothing_fits() {
        let (mut f, a, b) = fleet("{name: c, nodes: [{count: 2, cpu: 2, memory: 2000Mi}]}");
        f.apply(a, &cpu(1000), &want("c", 3)).unwrap();
        f.schedule();
        // Spread: node 0, node 1, then node 0 again (tie, lowest index).
        let st = f.cluster_states().remove(0);
        let owned = &st.owned[&f.owners[a as usize]];
        assert_eq!(owned.bound, 3);
        let two = Resources { pods: 2, ..cpu(2000) };
        assert_eq!(owned.per_node, vec![(0, two), (1, cpu(1000))]);
        f.apply(b, &cpu(1000), &want("c", 3)).unwrap();
        f.schedule();
        assert_eq!(f.clusters[0].pods_of(b), (1, 2));
        assert_eq!(f.clusters[0].usage().pending, 2);
        // a shrinks: b's Pending pods bind in the freed space.
        f.apply(a, &cpu(1000), &want("c", 1)).unwrap();
        f.schedule();
        assert_eq!(f.clusters[0].pods_of(b), (3, 0));
        assert_eq!(f.clusters[0].usage(), Usage { requested_cpu_millis: 4000, allocatable_cpu_millis: 4000, running: 4, pending: 0, nodes: 2, present: true });
    }

    #[test]
    fn scaling_down_deletes_pending_pods_first() {
        let (mut f, a, _) = fleet("{name: c, nodes: [{count: 1, cpu: 2, memory: 2000Mi}]}");
        f.apply(a, &cpu(1000), &want("c", 4)).unwrap();
        f.schedule();
        assert_eq!(f.clusters[0].pods_of(a), (2, 2));
        f.apply(a, &cpu(1000), &want("c", 2)).unwrap();
        assert_eq!(f.clusters[0].pods_of(a), (2, 0));
        f.apply(a, &cpu(1000), &BTreeMap::new()).unwrap();
        assert_eq!(f.clusters[0].usage().requested_cpu_millis, 0);
    }

    #[test]
    fn the_node_autoscaler_adds_nodes_for_pending_pods_and_removes_idle_ones() {
        let (mut f, a, _) = fleet("{name: cloud1, nodes: [{cpu: 4, memory: 4000Mi}], autoscaling: {minNodes: 1, maxNodes: 3, provisionSeconds: 100, scaleDownSeconds: 50}}");
        f.apply(a, &cpu(2000), &want("cloud1", 7)).unwrap();
        f.schedule();
        assert_eq!(f.clusters[0].pods_of(a), (2, 5));
        // 5 pending pods of 2 CPU need 3 nodes of 4; room for 2 more.
        let started = f.autoscale_nodes(0);
        assert_eq!(started, vec![(0, 100), (0, 100)]);
        assert!(f.autoscale_nodes(30).is_empty(), "already provisioning");
        f.nodes_ready(0, 100);
        f.schedule();
        assert_eq!(f.clusters[0].pods_of(a), (6, 1));
        f.apply(a, &cpu(2000), &want("cloud1", 1)).unwrap();
        f.schedule();
        f.autoscale_nodes(200);
        f.autoscale_nodes(260);
        f.autoscale_nodes(300);
        assert_eq!(f.clusters[0].usage().nodes, 1, "idle elastic nodes removed, one by one");
        assert_eq!(f.clusters[0].pods_of(a), (1, 0));
    }

    #[test]
    fn an_on_demand_cluster_is_absent_until_provisioned_and_sized_from_demand() {
        let (mut f, a, _) = fleet("{name: cloud1, nodes: [{cpu: 4, memory: 4000Mi, usedCpu: 1000m}], provisioning: {delaySeconds: 100, deprovisionAfterIdleSeconds: 50}}");
        assert!(f.cluster_states().is_empty(), "absent: the policies do not see it");
        assert_eq!(f.clusters[0].usage(), Usage::default());
        // 7 CPU over nodes with 3 CPU of room: 3 nodes.
        let demand = Resources { cpu_millis: 7000, memory_bytes: 1 << 30, pods: 7, ..Default::default() };
        assert_eq!(f.provision_on_demand(&demand, 10), vec![(0, 110)]);
        assert_eq!(f.clusters[0].presence, Presence::Provisioning { joins_at: 110, nodes: 3 });
        assert!(f.provision_on_demand(&demand, 40).is_empty(), "in flight: not started twice");
        assert!(f.cluster_states().is_empty(), "still provisioning");
        assert!(f.join(0));
        assert!(!f.join(0), "joins once");
        assert_eq!(f.cluster_states().len(), 1);
        assert_eq!(f.clusters[0].usage().nodes, 3);
        f.apply(a, &cpu(1000), &want("cloud1", 2)).unwrap();
        f.schedule();
        assert_eq!(f.clusters[0].pods_of(a), (2, 0));
    }

    #[test]
    fn an_idle_on_demand_cluster_is_removed_after_its_window_and_can_come_back() {
        let (mut f, a, _) = fleet("{name: cloud1, nodes: [{cpu: 4, memory: 4000Mi}], provisioning: {delaySeconds: 100, deprovisionAfterIdleSeconds: 60, initialNodes: 2}}");
        let demand = cpu(500);
        f.provision_on_demand(&demand, 0);
        f.join(0);
        assert_eq!(f.clusters[0].usage().nodes, 2, "a fixed initial count");
        f.apply(a, &cpu(1000), &want("cloud1", 1)).unwrap();
        f.schedule();
        assert!(f.deprovision_idle(100, false).is_empty());
        assert!(f.deprovision_idle(200, false).is_empty(), "a pod: not idle");
        f.apply(a, &cpu(1000), &BTreeMap::new()).unwrap();
        assert!(f.deprovision_idle(230, false).is_empty(), "idle from now");
        assert!(f.deprovision_idle(260, true).is_empty(), "demand waiting resets the countdown");
        assert!(f.deprovision_idle(290, false).is_empty());
        assert!(f.deprovision_idle(320, false).is_empty());
        assert_eq!(f.deprovision_idle(350, false), vec![0], "60 s idle");
        assert_eq!(f.clusters[0].presence, Presence::Absent);
        assert!(f.cluster_states().is_empty());
        assert_eq!(f.clusters[0].usage().nodes, 0);
        assert_eq!(f.provision_on_demand(&demand, 400), vec![(0, 500)], "new demand provisions it again");
    }

    #[test]
    fn a_failed_cluster_loses_its_pods() {
        let (mut f, a, _) = fleet("{name: c, nodes: [{count: 1, cpu: 2, memory: 2000Mi}]}");
        f.apply(a, &cpu(1000), &want("c", 2)).unwrap();
        f.schedule();
        assert_eq!(f.fail(0, Health::Unreachable), vec![a]);
        assert_eq!(f.clusters[0].usage().running, 0);
        assert!(!f.clusters[0].is_ready());
        f.recover(0);
        assert!(f.clusters[0].is_ready());
    }
}
