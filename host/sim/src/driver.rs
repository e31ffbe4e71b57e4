//! One run of a scenario under one placement policy, in virtual time.
//!
//! Every instant: handle its events (arrivals, departures, failures, nodes becoming ready,
//! the periodic tick), then decide every workload that needs it against **one** fleet cycle
//! through [`mck8s_scheduler::Scheduler`] (as a controller reconciling several objects
//! against the same watch state; the ledger keeps them from promising the same slots),
//! apply the decisions to the virtual clusters and let each cluster's kube-scheduler bind.
//!
//! The tick (every `periodSeconds`, mck8s's 30 s) runs the scaling policy of each
//! autoscaled workload on utilisation computed from its load curve, sets its replicas and
//! re-places it (scale the target, placement distributes), retries workloads with unplaced
//! replicas or Pending pods (mck8s's `TemporaryError(delay=30)`), runs the node autoscalers,
//! removes idle on-demand clusters and records a sample.
//!
//! On-demand clusters follow mck8s's CloudProvisioner: when decisions leave replicas
//! unplaced, every absent one starts provisioning, sized for those replicas; it joins the
//! fleet after its delay (the unplaced replicas are then retried at once), and is removed
//! after an idle window with no pod on it and nothing unplaced.

use crate::SimError;
use crate::baseline;
use crate::clock::{Clock, Event};
use crate::fleet::{Fleet, OwnerId, Presence};
use crate::report::{Lifecycle, RunResult, Sample};
use crate::scenario::{EVEN_SPLIT, Scenario, WorkloadSpec};
use mck8s_capacity::Resources;
use mck8s_fleet::OwnerKey;
use mck8s_policy::input::{SampleDoc, ScalingInput, WorkloadDoc, requests_of};
use mck8s_policy::registry::normalize;
use mck8s_policy::{Decision, PolicyRegistry};
use mck8s_scheduler::{PlacementRequest, Scheduler};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// A workload during a run.
struct Live {
    spec: WorkloadSpec,
    owner: OwnerKey,
    id: OwnerId,
    request: Resources,
    doc: WorkloadDoc,
    active: bool,
    placement: BTreeMap<String, u32>,
    unplaced: u32,
    scale_state: String,
}

impl Live {
    fn new(spec: WorkloadSpec, fleet: &mut Fleet) -> Result<Self, SimError> {
        let kind = match spec.kind {
            mck8s_policy::input::KindDoc::Deployment => "MultiClusterDeployment",
            mck8s_policy::input::KindDoc::Job => "MultiClusterJob",
        };
        let owner = OwnerKey { kind: kind.into(), namespace: spec.namespace.clone(), name: spec.name.clone() };
        let doc = WorkloadDoc {
            kind: spec.kind.clone(),
            name: spec.name.clone(),
            namespace: spec.namespace.clone(),
            replicas: spec.replicas,
            number_of_locations: spec.number_of_locations,
            requests: spec.requests.clone(),
            locations: spec.locations.clone(),
            replica_overrides: spec.replica_overrides.clone(),
            current: BTreeMap::new(),
            params: spec.params.clone(),
            app_traffic: BTreeMap::new(),
        };
        let request = requests_of(&doc)?;
        let id = fleet.owner(&owner);
        Ok(Live { spec, owner, id, request, doc, active: false, placement: BTreeMap::new(), unplaced: 0, scale_state: String::new() })
    }

    fn locations(&self) -> u32 {
        match &self.doc.locations {
            Some(l) => (l.items().len() as u32).max(1),
            None => self.doc.number_of_locations.unwrap_or(1).max(1),
        }
    }

    /// CPU demand in millicores at `now` (half the requests of its replicas without a curve).
    fn demand_millis(&self, now: u64, running: u32) -> f64 {
        match self.spec.demand_cores(now.saturating_sub(self.spec.at) as f64) {
            Some(cores) => cores.max(0.0) * 1000.0,
            None => f64::from(running) * self.request.cpu_millis as f64 * 0.5,
        }
    }
}

/// How decisions are made in this run.
enum Placer {
    Policy(String),
    EvenSplit,
}

/// How the driver builds each decision cycle's view of the fleet. All three decide the same;
/// the older ways are kept for the side-by-side bench and the equality test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cycles {
    /// Every cluster's state and the whole snapshot built anew (and policies sent the whole
    /// fleet), as at first.
    Rebuilt,
    /// Unchanged clusters' states reused; the snapshot still built anew.
    StatesReused,
    /// States reused and the snapshot an update of the last one: policies that take fleet
    /// updates are sent only the clusters that changed.
    Incremental,
}

pub struct Driver<'a> {
    scenario: &'a Scenario,
    placer: Placer,
    label: String,
    registry: Arc<PolicyRegistry>,
    scheduler: Scheduler,
    fleet: Fleet,
    clock: Clock,
    live: Vec<Live>,
    version: u64,
    cycles: Cycles,
    previous: Option<Arc<mck8s_scheduler::FleetCycle>>,
    result: RunResult,
}

impl<'a> Driver<'a> {
    /// `policy`: a placement policy in `registry`, or [`EVEN_SPLIT`].
    pub fn new(scenario: &'a Scenario, registry: Arc<PolicyRegistry>, policy: &str) -> Result<Self, SimError> {
        let placer = if normalize(policy) == EVEN_SPLIT {
            Placer::EvenSplit
        } else {
            let p = registry.get(policy)?;
            if p.kind != mck8s_policy::PolicyKind::Placement {
                return Err(SimError::Scenario(format!("{policy:?} is a scaling policy, not a placement policy")));
            }
            Placer::Policy(p.name.clone())
        };
        let mut fleet = Fleet::new(&scenario.clusters, &scenario.rtt)?;
        let live = scenario.expanded_workloads().into_iter().map(|w| Live::new(w, &mut fleet)).collect::<Result<Vec<_>, _>>()?;
        // Scaling policies named by workloads must exist before the run starts.
        for w in &live {
            if let Some(a) = &w.spec.autoscale {
                registry.get(&a.policy)?;
            }
        }
        let mut clock = Clock::default();
        for (i, w) in live.iter().enumerate() {
            clock.at(w.spec.at, Event::Arrive(i));
            if let Some(l) = w.spec.lifetime {
                clock.at(w.spec.at + l, Event::Depart(i));
            }
        }
        for (i, f) in scenario.failures.iter().enumerate() {
            clock.at(f.at, Event::Fail(i));
            if let Some(u) = f.until {
                clock.at(u, Event::Recover(i));
            }
        }
        clock.at(0, Event::Tick);
        let label = match &placer {
            Placer::Policy(p) => p.clone(),
            Placer::EvenSplit => EVEN_SPLIT.to_string(),
        };
        let result = RunResult::new(&label, scenario, &fleet);
        Ok(Driver {
            scenario,
            placer,
            label,
            scheduler: Scheduler::new(registry.clone()),
            registry,
            fleet,
            clock,
            live,
            version: 0,
            cycles: Cycles::Incremental,
            previous: None,
            result,
        })
    }

    /// How fleet cycles are built (default [`Cycles::Incremental`]).
    pub fn cycles(mut self, cycles: Cycles) -> Self {
        self.cycles = cycles;
        self
    }

    /// Runs to the scenario's end; `progress` gets the fraction of virtual time done.
    pub fn run(mut self, progress: &mut dyn FnMut(f64)) -> Result<RunResult, SimError> {
        let _span = tracing::info_span!("simulate", scenario = %self.scenario.name, policy = %self.label).entered();
        let started = Instant::now();
        let scenario = self.scenario;
        let end = scenario.duration_seconds;
        while let Some(t) = self.clock.peek_time() {
            if t > end {
                break;
            }
            let (now, events) = self.clock.pop_instant().expect("peeked");
            let mut dirty: Vec<usize> = Vec::new();
            let mut tick = false;
            for e in events {
                match e {
                    Event::Arrive(i) => {
                        self.live[i].active = true;
                        dirty.push(i);
                    }
                    Event::Depart(i) => self.depart(i)?,
                    Event::Fail(f) => {
                        let spec = &scenario.failures[f];
                        let c = self.fleet.index_of(&spec.cluster).expect("validated");
                        for owner in self.fleet.fail(c, spec.health) {
                            dirty.push(owner as usize);
                        }
                        // Workloads placed there with no pod left still need a new home.
                        dirty.extend(self.live.iter().enumerate().filter(|(_, w)| w.placement.contains_key(&spec.cluster)).map(|(i, _)| i));
                    }
                    Event::Recover(f) => {
                        let c = self.fleet.index_of(&scenario.failures[f].cluster).expect("validated");
                        self.fleet.recover(c);
                        dirty.extend(self.unplaced_workloads());
                    }
                    Event::NodeReady(c) => self.fleet.nodes_ready(c, now),
                    Event::ClusterJoins(c) => {
                        if self.join(c, now) {
                            dirty.extend(self.unplaced_workloads());
                        }
                    }
                    Event::Tick => {
                        tick = true;
                        self.autoscale(now, &mut dirty);
                        self.retries(&mut dirty);
                    }
                }
            }
            dirty.sort_unstable();
            dirty.dedup();
            dirty.retain(|&i| self.live[i].active);
            if !dirty.is_empty() {
                self.decide(&dirty)?;
                // Only decisions change what is unplaced, so only they can call for a cluster.
                self.provision_on_demand(now);
            }
            self.fleet.schedule();
            if tick {
                for (c, ready) in self.fleet.autoscale_nodes(now) {
                    self.clock.at(ready, Event::NodeReady(c));
                }
                self.deprovision_idle(now);
                self.sample(now);
                if now + self.scenario.period_seconds <= end {
                    self.clock.at(now + self.scenario.period_seconds, Event::Tick);
                }
            }
            progress(now as f64 / end.max(1) as f64);
        }
        self.result.wall_seconds = started.elapsed().as_secs_f64();
        self.result.finish(self.scenario.period_seconds);
        Ok(self.result)
    }

    /// Active workloads with replicas no cluster took.
    fn unplaced_workloads(&self) -> Vec<usize> {
        self.live.iter().enumerate().filter(|(_, w)| w.active && w.unplaced > 0).map(|(i, _)| i).collect()
    }

    /// The requests of every unplaced replica (mck8s's Σ of `to_cloud` replicas × requests):
    /// what an on-demand cluster is sized for.
    fn unplaced_demand(&self) -> Resources {
        let mut demand = Resources::default();
        for w in self.live.iter().filter(|w| w.active && w.unplaced > 0) {
            let n = u64::from(w.unplaced);
            demand.cpu_millis += w.request.cpu_millis * n;
            demand.memory_bytes += w.request.memory_bytes * n;
            demand.pods += w.request.pods.max(1) * n;
        }
        demand
    }

    /// Unplaced replicas start every absent on-demand cluster; one being provisioned is
    /// left alone (the fleet never starts it twice).
    fn provision_on_demand(&mut self, now: u64) {
        // Most scenarios have no on-demand cluster: spare large fleets the workload scan.
        if !self.fleet.clusters.iter().any(|c| c.presence == Presence::Absent) {
            return;
        }
        let demand = self.unplaced_demand();
        if demand.pods == 0 {
            return;
        }
        for (c, joins_at) in self.fleet.provision_on_demand(&demand, now) {
            self.clock.at(joins_at, Event::ClusterJoins(c));
            let cluster = &self.fleet.clusters[c];
            let nodes = match cluster.presence {
                Presence::Provisioning { nodes, .. } => nodes,
                _ => 0,
            };
            self.result.lifecycle(now, &cluster.name, Lifecycle::Provisioning, nodes);
        }
    }

    /// A provisioned cluster joins; returns whether it did.
    fn join(&mut self, c: usize, now: u64) -> bool {
        if !self.fleet.join(c) {
            return false;
        }
        let cluster = &self.fleet.clusters[c];
        self.result.lifecycle(now, &cluster.name, Lifecycle::Joined, cluster.usage().nodes);
        true
    }

    /// Removes on-demand clusters idle for their window.
    fn deprovision_idle(&mut self, now: u64) {
        let waiting = self.live.iter().any(|w| w.active && w.unplaced > 0);
        for c in self.fleet.deprovision_idle(now, waiting) {
            let name = self.fleet.clusters[c].name.clone();
            // It held no pod, but placements may still name it with 0 replicas, and a
            // decision must not name a cluster the fleet no longer has.
            for w in &mut self.live {
                w.placement.remove(&name);
            }
            self.result.lifecycle(now, &name, Lifecycle::Removed, 0);
        }
    }

    fn depart(&mut self, i: usize) -> Result<(), SimError> {
        let w = &mut self.live[i];
        w.active = false;
        let previous: Vec<String> = w.placement.keys().cloned().collect();
        self.fleet.apply_on(w.id, &w.request, &previous, &BTreeMap::new())?;
        w.placement.clear();
        w.unplaced = 0;
        self.scheduler.forget(&w.owner);
        Ok(())
    }

    /// Bound and Pending pods of workload `i`, per cluster it is placed on.
    fn pods(&self, i: usize) -> Vec<(String, u32, u32)> {
        let w = &self.live[i];
        w.placement
            .keys()
            .filter_map(|name| {
                let c = self.fleet.index_of(name)?;
                let (bound, pending) = self.fleet.clusters[c].pods_of(w.id);
                Some((name.clone(), bound, pending))
            })
            .collect()
    }

    /// The scaling policy per autoscaled workload, on utilisation of requests from its load
    /// curve. Load is balanced over its running pods (a global service), so utilisation is
    /// the same in every cluster; each cluster's traffic is the load times its users' share.
    fn autoscale(&mut self, now: u64, dirty: &mut Vec<usize>) {
        for i in 0..self.live.len() {
            let (active, Some(a)) = (self.live[i].active, self.live[i].spec.autoscale.clone()) else { continue };
            if !active || self.live[i].request.cpu_millis == 0 {
                continue;
            }
            let pods = self.pods(i);
            let running: u32 = pods.iter().map(|p| p.1).sum();
            if running == 0 {
                continue; // nothing to measure: hold, as the real autoscaler has no metric
            }
            let w = &self.live[i];
            let demand = w.demand_millis(now, running);
            // Requests equal limits, as in mck8s's examples: a pod cannot use more than 100 %.
            let util = (100.0 * demand / (f64::from(running) * w.request.cpu_millis as f64)).min(100.0);
            let weights: f64 = w.spec.traffic.values().sum();
            let input = ScalingInput {
                name: w.spec.name.clone(),
                namespace: w.spec.namespace.clone(),
                samples: pods
                    .iter()
                    .filter(|p| p.1 > 0)
                    .map(|(c, bound, _)| SampleDoc {
                        cluster: c.clone(),
                        replicas: *bound,
                        utilization: Some(util),
                        traffic: (weights > 0.0).then(|| demand * w.spec.traffic.get(c).copied().unwrap_or(0.0) / weights),
                    })
                    .collect(),
                target_utilization: a.target_utilization,
                min_replicas: a.min_replicas,
                max_replicas: a.max_replicas,
                elapsed_seconds: self.scenario.period_seconds as u32,
                params: a.params.clone(),
                state: w.scale_state.clone(),
            };
            let outcome = self.registry.get(&a.policy).and_then(|p| p.scale(&input.to_wit()));
            match outcome {
                Ok(o) => {
                    self.result.scaling_calls += 1;
                    let w = &mut self.live[i];
                    w.scale_state = String::from_utf8_lossy(&o.state).into_owned();
                    let per_location = o.total.div_ceil(w.locations());
                    if per_location != w.doc.replicas {
                        tracing::debug!(workload = %w.spec.name, from = w.doc.replicas, to = per_location, reason = %o.reason, "scaled");
                        w.doc.replicas = per_location;
                        w.doc.replica_overrides = None;
                        dirty.push(i);
                    }
                }
                Err(e) => self.result.error(format!("t={now}s scaling {}: {e}", self.live[i].spec.name)),
            }
        }
    }

    /// Unplaced replicas are retried; so are Pending pods, so a policy can move them — but
    /// not under the baseline: KubeFed without rebalancing leaves them where they are.
    fn retries(&mut self, dirty: &mut Vec<usize>) {
        let move_pending = matches!(self.placer, Placer::Policy(_));
        for i in 0..self.live.len() {
            if !self.live[i].active {
                continue;
            }
            if self.live[i].unplaced > 0 || (move_pending && self.pods(i).iter().any(|p| p.2 > 0)) {
                dirty.push(i);
            }
        }
    }

    /// Decides `dirty` workloads against one cycle and applies the decisions.
    fn decide(&mut self, dirty: &[usize]) -> Result<(), SimError> {
        let t = Instant::now();
        self.version += 1;
        let states = match self.cycles {
            Cycles::Rebuilt => self.fleet.cluster_states().into_iter().map(Arc::new).collect(),
            Cycles::StatesReused | Cycles::Incremental => self.fleet.shared_states(),
        };
        self.result.state_seconds += t.elapsed().as_secs_f64();
        let cycle = Arc::new(match (&self.previous, self.cycles) {
            (Some(previous), Cycles::Incremental) => previous.next(states, &self.fleet.rtt, self.version)?,
            _ => mck8s_scheduler::FleetCycle::build_shared(states, &self.fleet.rtt, self.version)?,
        });
        self.previous = Some(cycle.clone());
        self.result.cycles += 1;
        self.result.cycle_seconds += t.elapsed().as_secs_f64();
        for &i in dirty {
            let w = &mut self.live[i];
            w.doc.current = w.placement.clone();
            w.doc.app_traffic = app_traffic(w, self.clock.now());
            let decision: Result<Decision, SimError> = match &self.placer {
                Placer::Policy(p) => self
                    .scheduler
                    .place(&cycle, &PlacementRequest { owner: w.owner.clone(), policy: p.clone(), workload: w.doc.clone() })
                    .map(|p| p.decision)
                    .map_err(SimError::from),
                Placer::EvenSplit => baseline::even_split(&cycle, &w.doc),
            };
            self.result.decisions += 1;
            let d = match decision {
                Ok(d) => d,
                Err(e) => {
                    self.result.error(format!("t={}s placing {}: {e}", self.clock.now(), w.spec.name));
                    continue;
                }
            };
            let desired: BTreeMap<String, u32> = d.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect();
            let on_cloud = |m: &BTreeMap<String, u32>| m.iter().any(|(c, n)| *n > 0 && self.fleet.index_of(c).is_some_and(|i| self.fleet.clusters[i].cloud));
            if on_cloud(&desired) && !on_cloud(&w.placement) {
                self.result.bursts += 1;
            }
            if d.unplaced > 0 {
                self.result.unplaced_decisions += 1;
            }
            let previous: Vec<String> = w.placement.keys().cloned().collect();
            self.fleet.apply_on(w.id, &w.request, &previous, &desired)?;
            w.placement = desired;
            w.unplaced = d.unplaced;
        }
        self.result.decision_seconds += t.elapsed().as_secs_f64();
        Ok(())
    }

    fn sample(&mut self, now: u64) {
        let unplaced = self.live.iter().filter(|w| w.active).map(|w| w.unplaced).sum();
        let usage = self.fleet.clusters.iter().map(|c| c.usage()).collect();
        self.result.push(Sample { t: now, unplaced, clusters: usage });
    }
}

/// The workload's own ingress per cluster (where its users are, times its load).
fn app_traffic(w: &Live, now: u64) -> BTreeMap<String, f64> {
    if w.spec.traffic.is_empty() {
        return BTreeMap::new();
    }
    let load = w.spec.demand_cores(now.saturating_sub(w.spec.at) as f64).unwrap_or(1.0);
    w.spec.traffic.iter().map(|(c, share)| (c.clone(), share * load)).collect()
}

/// Runs `scenario` under `policy` (a registry name or [`EVEN_SPLIT`]).
pub fn run(scenario: &Scenario, registry: Arc<PolicyRegistry>, policy: &str, progress: &mut dyn FnMut(f64)) -> Result<RunResult, SimError> {
    Driver::new(scenario, registry, policy)?.run(progress)
}
