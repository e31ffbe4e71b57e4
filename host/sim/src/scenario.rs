//! The scenario file: a fleet (clusters of nodes, RTTs), workloads that arrive and depart
//! with optional load curves for the autoscaler, and cluster failures. YAML; times in
//! virtual seconds from the start.

use crate::SimError;
use mck8s_fleet::{Health, Role};
use mck8s_policy::input::{KindDoc, ListOrCsv, NodeDoc, RequestsDoc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The embedded default: a fleet and workload like the mck8s paper's evaluation.
pub const DEFAULT_SCENARIO: &str = include_str!("default-scenario.yaml");

/// The name the native KubeFed-like baseline is compared under.
pub const EVEN_SPLIT: &str = "kubefed-even";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub duration_seconds: u64,
    /// Autoscaler, retry, cloud node autoscaler and sampling period (mck8s: 30 s).
    #[serde(default = "thirty")]
    pub period_seconds: u64,
    /// Placement policies to compare (registry names, or [`EVEN_SPLIT`]). Empty: every
    /// loaded placement policy plus the baseline.
    #[serde(default)]
    pub policies: Vec<String>,
    pub clusters: Vec<ClusterSpec>,
    /// `[a, b, milliseconds]`.
    #[serde(default)]
    pub rtt: Vec<(String, String, f32)>,
    pub workloads: Vec<WorkloadSpec>,
    #[serde(default)]
    pub failures: Vec<FailureSpec>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSpec {
    pub name: String,
    /// Default: `cloud` when the name contains "cloud", else `fog` (as mck8s).
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Node shapes; `usedCpu`/`usedMemory` are requests of system pods that never move.
    pub nodes: Vec<NodeDoc>,
    #[serde(default)]
    pub traffic: f64,
    #[serde(default)]
    pub cost: f64,
    /// Node autoscaling (a cloud cluster's cluster autoscaler).
    #[serde(default)]
    pub autoscaling: Option<NodeAutoscaling>,
    /// Created on demand and removed when idle (a cloud cluster provisioned through Cluster
    /// API, as mck8s's CloudProvisioner does); absent: the cluster exists from the start.
    #[serde(default)]
    pub provisioning: Option<OnDemand>,
}

/// A cluster that exists only while there is demand for it. It is absent from the fleet the
/// policies see until a decision leaves replicas unplaced (mck8s's `to_cloud`), joins
/// `delaySeconds` later (VM boot, kubeadm, CNI, federation join), and is removed once it has
/// run no workload pod, with no replica unplaced anywhere, for `deprovisionAfterIdleSeconds`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OnDemand {
    /// From the demand being seen to the cluster joining the fleet.
    #[serde(default = "default_join_delay")]
    pub delay_seconds: u64,
    /// How long it must be idle before it is removed (mck8s: 21 cycles of its 30-s loop,
    /// about 10.5 minutes).
    #[serde(default = "default_deprovision")]
    pub deprovision_after_idle_seconds: u64,
    /// Worker nodes it joins with (its first node entry's shape; counts there are ignored).
    #[serde(default)]
    pub initial_nodes: InitialNodes,
}

/// `fromDemand` (mck8s's sizing: enough nodes for the unplaced replicas' requests) or a
/// fixed count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "InitialNodesDoc", into = "InitialNodesDoc")]
pub enum InitialNodes {
    #[default]
    FromDemand,
    Count(u32),
}

/// How [`InitialNodes`] is written: a number or the word `fromDemand`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum InitialNodesDoc {
    Count(u32),
    Word(String),
}

impl TryFrom<InitialNodesDoc> for InitialNodes {
    type Error = String;

    fn try_from(doc: InitialNodesDoc) -> Result<Self, String> {
        match doc {
            InitialNodesDoc::Count(0) => Err("initialNodes must be at least 1".into()),
            InitialNodesDoc::Count(n) => Ok(InitialNodes::Count(n)),
            InitialNodesDoc::Word(w) if w == "fromDemand" => Ok(InitialNodes::FromDemand),
            InitialNodesDoc::Word(w) => Err(format!("initialNodes is a node count or fromDemand, not {w:?}")),
        }
    }
}

impl From<InitialNodes> for InitialNodesDoc {
    fn from(n: InitialNodes) -> Self {
        match n {
            InitialNodes::FromDemand => InitialNodesDoc::Word("fromDemand".into()),
            InitialNodes::Count(n) => InitialNodesDoc::Count(n),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeAutoscaling {
    #[serde(default)]
    pub min_nodes: u32,
    pub max_nodes: u32,
    /// From the decision to add a node to the node being Ready.
    #[serde(default = "default_provision")]
    pub provision_seconds: u64,
    /// An empty node is removed after this long (down to `minNodes`).
    #[serde(default = "default_idle")]
    pub scale_down_seconds: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSpec {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub kind: KindDoc,
    /// Arrival time.
    #[serde(default)]
    pub at: u64,
    /// Seconds after arrival at which it is deleted; absent: it stays.
    #[serde(default)]
    pub lifetime: Option<u64>,
    pub replicas: u32,
    #[serde(default)]
    pub number_of_locations: Option<u32>,
    #[serde(default)]
    pub requests: RequestsDoc,
    #[serde(default)]
    pub locations: Option<ListOrCsv>,
    #[serde(default)]
    pub replica_overrides: Option<ListOrCsv>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub autoscale: Option<AutoscaleSpec>,
    /// CPU demand in cores, `[seconds since arrival, cores]` points, linear in between.
    /// Without it a workload uses half its requests.
    #[serde(default)]
    pub load: Vec<(f64, f64)>,
    /// Where its users are: relative ingress per cluster (the app's traffic for
    /// `most-traffic` and `mchpa-traffic`). Absent: none.
    #[serde(default)]
    pub traffic: BTreeMap<String, f64>,
    /// Stamp this workload out `count` times, `every` seconds apart (`name-1`, `name-2`, …).
    #[serde(default)]
    pub repeat: Option<Repeat>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Repeat {
    pub count: u32,
    pub every: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AutoscaleSpec {
    /// A scaling policy in the registry (`mchpa`, `mchpa-traffic`).
    #[serde(default = "default_scaler")]
    pub policy: String,
    #[serde(default = "fifty")]
    pub target_utilization: u32,
    #[serde(default = "one")]
    pub min_replicas: u32,
    #[serde(default = "hundred")]
    pub max_replicas: u32,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FailureSpec {
    pub cluster: String,
    pub at: u64,
    /// Recovery time; absent: never.
    #[serde(default)]
    pub until: Option<u64>,
    #[serde(default = "unreachable")]
    pub health: Health,
}

fn thirty() -> u64 {
    30
}
fn default_provision() -> u64 {
    180
}
fn default_idle() -> u64 {
    600
}
fn default_join_delay() -> u64 {
    300
}
fn default_deprovision() -> u64 {
    630
}
fn default_namespace() -> String {
    "default".into()
}
fn default_scaler() -> String {
    "mchpa".into()
}
fn fifty() -> u32 {
    50
}
fn one() -> u32 {
    1
}
fn hundred() -> u32 {
    100
}
fn unreachable() -> Health {
    Health::Unreachable
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Scenario, SimError> {
        let s: Scenario = serde_yaml_ng::from_str(text).map_err(|e| SimError::Scenario(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    pub fn default_scenario() -> Scenario {
        Scenario::parse(DEFAULT_SCENARIO).expect("the embedded default scenario is valid")
    }

    /// Workloads with `repeat` expanded, in arrival order (stable).
    pub fn expanded_workloads(&self) -> Vec<WorkloadSpec> {
        let mut out = Vec::new();
        for w in &self.workloads {
            match &w.repeat {
                None => out.push(w.clone()),
                Some(r) => {
                    for i in 0..r.count {
                        let mut c = w.clone();
                        c.repeat = None;
                        c.name = format!("{}-{}", w.name, i + 1);
                        c.at = w.at + u64::from(i) * r.every;
                        out.push(c);
                    }
                }
            }
        }
        out.sort_by_key(|w| w.at);
        out
    }

    fn validate(&self) -> Result<(), SimError> {
        let bad = |what: String| Err(SimError::Scenario(what));
        if self.period_seconds == 0 {
            return bad("periodSeconds must be above 0".into());
        }
        let mut names = BTreeSet::new();
        for c in &self.clusters {
            if !names.insert(c.name.as_str()) {
                return bad(format!("cluster {:?} is defined twice", c.name));
            }
            if let Some(a) = &c.autoscaling {
                if a.min_nodes > a.max_nodes {
                    return bad(format!("cluster {:?}: minNodes exceeds maxNodes", c.name));
                }
                if c.nodes.is_empty() {
                    return bad(format!("cluster {:?}: autoscaling needs a node shape in nodes", c.name));
                }
            }
            if let Some(p) = &c.provisioning {
                validate_on_demand(c, p)?;
            }
        }
        let known = |n: &str, what: &str| {
            if names.contains(n) { Ok(()) } else { Err(SimError::Scenario(format!("{what} names unknown cluster {n:?}"))) }
        };
        for (a, b, _) in &self.rtt {
            known(a, "rtt")?;
            known(b, "rtt")?;
        }
        // An on-demand cluster is absent at times: nothing may depend on it being there.
        let on_demand: BTreeSet<&str> = self.clusters.iter().filter(|c| c.provisioning.is_some()).map(|c| c.name.as_str()).collect();
        let always_there = |n: &str, what: &str| {
            if on_demand.contains(n) { Err(SimError::Scenario(format!("{what} names {n:?}, which is provisioned on demand"))) } else { Ok(()) }
        };
        for f in &self.failures {
            known(&f.cluster, "a failure")?;
            always_there(&f.cluster, "a failure")?;
            if f.until.is_some_and(|u| u <= f.at) {
                return bad(format!("failure of {:?}: until must be after at", f.cluster));
            }
        }
        let mut workloads = BTreeSet::new();
        for w in self.expanded_workloads() {
            if !workloads.insert((w.namespace.clone(), w.name.clone())) {
                return bad(format!("workload {}/{} is defined twice", w.namespace, w.name));
            }
            for c in w.traffic.keys() {
                known(c, &format!("workload {:?} traffic", w.name))?;
                always_there(c, &format!("workload {:?} traffic", w.name))?;
            }
            for c in w.locations.as_ref().map(|l| l.items()).unwrap_or_default() {
                always_there(&c, &format!("workload {:?} locations", w.name))?;
            }
            if w.load.windows(2).any(|p| p[1].0 < p[0].0) {
                return bad(format!("workload {:?}: load points must be in time order", w.name));
            }
            if let Some(a) = &w.autoscale
                && a.min_replicas > a.max_replicas
            {
                return bad(format!("workload {:?}: minReplicas exceeds maxReplicas", w.name));
            }
        }
        Ok(())
    }
}

impl ClusterSpec {
    /// Its role: as given, else cloud when the name contains "cloud" (as mck8s).
    pub fn is_cloud(&self) -> bool {
        match self.role {
            Some(Role::Cloud) => true,
            Some(Role::Fog) => false,
            None => self.name.contains("cloud"),
        }
    }
}

/// Cluster API provisions cloud clusters, from a node shape, within the node autoscaler's
/// bounds.
fn validate_on_demand(c: &ClusterSpec, p: &OnDemand) -> Result<(), SimError> {
    let bad = |what: &str| Err(SimError::Scenario(format!("cluster {:?}: provisioning {what}", c.name)));
    if !c.is_cloud() {
        return bad("is for cloud clusters (role: cloud, or a name containing \"cloud\")");
    }
    if c.nodes.is_empty() {
        return bad("needs a node shape in nodes");
    }
    if p.deprovision_after_idle_seconds == 0 {
        return bad("needs deprovisionAfterIdleSeconds above 0");
    }
    if let (InitialNodes::Count(n), Some(a)) = (p.initial_nodes, &c.autoscaling)
        && n > a.max_nodes
    {
        return bad("asks for more initialNodes than autoscaling.maxNodes");
    }
    Ok(())
}

impl WorkloadSpec {
    /// CPU demand in cores `since` seconds after arrival (piecewise linear, flat outside).
    pub fn demand_cores(&self, since: f64) -> Option<f64> {
        let first = self.load.first()?;
        if since <= first.0 {
            return Some(first.1);
        }
        for p in self.load.windows(2) {
            let ((t0, v0), (t1, v1)) = (p[0], p[1]);
            if since <= t1 {
                let f = if t1 > t0 { (since - t0) / (t1 - t0) } else { 1.0 };
                return Some(v0 + f * (v1 - v0));
            }
        }
        self.load.last().map(|p| p.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scenario_parses_and_expands() {
        let s = Scenario::default_scenario();
        let w = s.expanded_workloads();
        assert!(w.len() > s.workloads.len(), "repeat expands");
        assert!(w.windows(2).all(|p| p[0].at <= p[1].at));
    }

    #[test]
    fn rejects_unknown_clusters_and_duplicates() {
        let base = "name: t\ndurationSeconds: 60\nclusters: [{name: a, nodes: [{cpu: 1, memory: 1Gi}]}]\n";
        assert!(Scenario::parse(&format!("{base}workloads: []\nrtt: [[a, b, 1]]")).is_err());
        assert!(Scenario::parse(&format!("{base}workloads: []\nfailures: [{{cluster: z, at: 1}}]")).is_err());
        let dup = format!("{base}workloads: [{{name: w, replicas: 1}}, {{name: w, replicas: 2}}]");
        assert!(matches!(Scenario::parse(&dup), Err(SimError::Scenario(m)) if m.contains("twice")));
        assert!(Scenario::parse(&format!("{base}workloads: [{{name: w, replicas: 1}}]")).is_ok());
    }

    #[test]
    fn on_demand_clusters_are_validated() {
        let parse = |cloud: &str, rest: &str| {
            Scenario::parse(&format!("name: t\ndurationSeconds: 60\nclusters: [{{name: fog, nodes: [{{cpu: 1, memory: 1Gi}}]}}, {cloud}]\nworkloads: [{rest}]\n"))
        };
        let ok = "{name: cloud1, nodes: [{cpu: 8, memory: 32Gi}], provisioning: {delaySeconds: 300, initialNodes: fromDemand}}";
        let s = parse(ok, "").unwrap();
        let p = s.clusters[1].provisioning.as_ref().unwrap();
        assert_eq!((p.delay_seconds, p.deprovision_after_idle_seconds, p.initial_nodes), (300, 630, InitialNodes::FromDemand));
        let n = parse("{name: cloud1, nodes: [{cpu: 8, memory: 32Gi}], provisioning: {initialNodes: 3}}", "").unwrap();
        assert_eq!(n.clusters[1].provisioning.as_ref().unwrap().initial_nodes, InitialNodes::Count(3));
        let rejected = [
            ("{name: edge, nodes: [{cpu: 8, memory: 32Gi}], provisioning: {}}", "", "for cloud clusters"),
            ("{name: cloud1, nodes: [], provisioning: {}}", "", "node shape"),
            ("{name: cloud1, nodes: [{cpu: 8, memory: 32Gi}], provisioning: {deprovisionAfterIdleSeconds: 0}}", "", "above 0"),
            ("{name: cloud1, nodes: [{cpu: 8, memory: 32Gi}], provisioning: {initialNodes: 0}}", "", "at least 1"),
            ("{name: cloud1, nodes: [{cpu: 8, memory: 32Gi}], provisioning: {initialNodes: some}}", "", "fromDemand"),
            ("{name: cloud1, nodes: [{cpu: 8, memory: 32Gi}], autoscaling: {maxNodes: 2}, provisioning: {initialNodes: 3}}", "", "maxNodes"),
            (ok, "{name: w, replicas: 1, locations: [fog, cloud1]}", "on demand"),
            (ok, "{name: w, replicas: 1, traffic: {cloud1: 1}}", "on demand"),
        ];
        for (cloud, workloads, why) in rejected {
            let err = parse(cloud, workloads).unwrap_err().to_string();
            assert!(err.contains(why), "{cloud} {workloads}: {err}");
        }
        let failing = Scenario::parse(&format!("name: t\ndurationSeconds: 60\nclusters: [{ok}]\nworkloads: []\nfailures: [{{cluster: cloud1, at: 1}}]\n"));
        assert!(failing.unwrap_err().to_string().contains("on demand"));
    }

    #[test]
    fn load_curves_are_piecewise_linear() {
        let w: WorkloadSpec = serde_yaml_ng::from_str("{name: w, replicas: 1, load: [[0, 1], [100, 3], [200, 3]]}").unwrap();
        assert_eq!(w.demand_cores(-5.0), Some(1.0));
        assert_eq!(w.demand_cores(50.0), Some(2.0));
        assert_eq!(w.demand_cores(150.0), Some(3.0));
        assert_eq!(w.demand_cores(1e9), Some(3.0));
        let none: WorkloadSpec = serde_yaml_ng::from_str("{name: w, replicas: 1}").unwrap();
        assert_eq!(none.demand_cores(0.0), None);
    }
}
