//! The CloudProvisioner's algorithm, as a pure function of the object, what was observed and
//! the clock: it returns the steps to take and the new status. Everything it needs to
//! resume (phase, when it was entered, attempts, windows) lives in status, so a controller
//! restarted mid-step carries on where the last one stopped, and deterministic names make
//! a repeated step a no-op rather than a second cluster.
//!
//! ```text
//! Idle ──demand held for demandConfirm──▶ Provisioning ──CP up, ≥1 worker Ready──▶ Joining
//! Joining ──own probe ok, registered──▶ Ready ──idle for the window──▶ Draining (no new placements)
//! Draining ──still idle after the grace──▶ Deprovisioning (unjoin, delete the Cluster) ──gone──▶ Idle
//! Provisioning/Joining ──timeout──▶ delete ─▶ backoff ─▶ Idle … after maxAttempts ─▶ Failed
//! ```

use super::capi::{ClusterView, MachineView};
use super::node_scaling::{self, NodeGroup, NodeView, ScaleIn, ScaleInPolicy, ScaleOut};
use super::settings::{AutoscalingMode, DeletionPolicy, Settings};
use super::sizing::{self, Flavor, Resources, SizingRequest};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use mck8s_api::conditions;
use mck8s_api::{CloudProvisionerStatus, DemandStatus, ScaleStep, WorkersStatus};
use std::collections::BTreeMap;
use std::time::Duration;

pub const IDLE: &str = "Idle";
pub const PROVISIONING: &str = "Provisioning";
pub const JOINING: &str = "Joining";
pub const READY: &str = "Ready";
pub const DRAINING: &str = "Draining";
pub const DEPROVISIONING: &str = "Deprovisioning";
pub const FAILED: &str = "Failed";

/// Unplaced replicas that no cloud cluster could take (`status.message: to_cloud`).
#[derive(Clone, Debug, Default)]
pub struct Demand {
    /// One entry per unplaced pod: its requests.
    pub pods: Vec<Resources>,
    pub sources: Vec<String>,
}

/// The cloud cluster seen from inside.
#[derive(Clone, Debug, Default)]
pub struct Workload {
    pub nodes: Vec<NodeView>,
    /// Pods the scheduler found no room for, in any namespace.
    pub unschedulable: Vec<Resources>,
    /// Deployments and Jobs mck8s placed there.
    pub children: usize,
}

/// Who else wants this cluster name.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    Ours,
    /// The Cluster exists and carries no (or another) CloudProvisioner's uid.
    ForeignCluster,
    /// An older CloudProvisioner names the same cluster.
    OlderProvisioner(String),
}

#[derive(Clone, Debug)]
pub struct Observed {
    pub now: Timestamp,
    pub generation: Option<i64>,
    pub deleting: bool,
    pub retry_annotation: Option<String>,
    pub claim: Claim,
    pub demand: Demand,
    pub cluster: Option<ClusterView>,
    pub machines: Vec<MachineView>,
    /// The `<cluster>-kubeconfig` Secret's resourceVersion.
    pub kubeconfig_version: Option<String>,
    /// Our registry Secret: present, and whether it says "no new placements".
    pub registered: Option<bool>,
    /// The registry's member for the cluster is Ready.
    pub member_ready: bool,
    /// Present in Joining, Ready and Draining: the workload cluster, or why it did not answer.
    pub workload: Option<Result<Workload, String>>,
    /// Another provision may start (the process-wide bound on concurrent provisions).
    pub provision_slot_free: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Namespace, credentials Secret, then the Cluster with `workers` replicas (SSA): with a
    /// topology, or rendered from the cluster template (Cluster first, then what it refers
    /// to, owned by it), as the settings and Cluster API allow.
    Provision {
        flavor: String,
        workers: i32,
    },
    /// Copy the kubeconfig into the registry; `cordoned`: no new placements.
    Register {
        cordoned: bool,
    },
    Unregister,
    SetWorkers(i32),
    /// Mark the Machine for deletion, then one worker fewer.
    RemoveNode {
        machine: String,
        workers: i32,
    },
    DeleteCluster,
    /// The credentials Secret and the namespace, once the Cluster is gone.
    CleanUp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub status: CloudProvisionerStatus,
    pub events: Vec<Event>,
    /// The object is being deleted and nothing of ours is left: drop the finalizer.
    pub release: bool,
}

fn elapsed(now: Timestamp, since: &Option<Time>) -> Option<Duration> {
    since.as_ref().map(|t| Duration::try_from(now.duration_since(t.0)).unwrap_or_default())
}

fn held(now: Timestamp, since: &Option<Time>, window: Duration) -> bool {
    elapsed(now, since).is_some_and(|e| e >= window)
}

/// 30 s, 60 s, … up to 10 minutes (from `retryBackoffSeconds`).
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let factor = 1u32 << attempts.clamp(1, 16).saturating_sub(1).min(10) as u32;
    (base * factor).min(Duration::from_secs(600))
}

struct Planner<'a> {
    s: &'a Settings,
    o: &'a Observed,
    st: CloudProvisionerStatus,
    steps: Vec<Step>,
    events: Vec<Event>,
    now: Time,
}

impl Planner<'_> {
    fn enter(&mut self, phase: &str) {
        self.st.phase = Some(phase.to_string());
        self.st.phase_since = Some(self.now.clone());
    }

    fn event(&mut self, warning: bool, reason: &'static str, note: impl Into<String>) {
        self.events.push(Event { warning, reason, note: note.into() });
    }

    fn condition(&mut self, type_: &str, status: bool, reason: &str, message: impl Into<String>) {
        conditions::set(&mut self.st.conditions, type_, status, reason, message, self.o.generation, &self.now);
    }

    fn phase(&self) -> &str {
        self.st.phase.as_deref().unwrap_or(IDLE)
    }

    fn in_phase_for(&self) -> Duration {
        elapsed(self.o.now, &self.st.phase_since).unwrap_or_default()
    }

    fn idle(&self, w: &Workload) -> bool {
        w.children == 0 && w.unschedulable.is_empty() && self.o.demand.pods.is_empty()
    }

    /// A provisioning attempt failed: delete what it made (unless told to keep it), then
    /// back off, or stop for good after `maxAttempts`.
    fn fail(&mut self, reason: &'static str, message: String) {
        let message = format!("attempt {}/{}: {message}", self.st.attempts, self.s.max_attempts);
        self.event(true, reason, message.clone());
        self.condition(conditions::FAILED, true, reason, message.clone());
        self.st.last_failure = Some(message);
        if self.s.delete_failed {
            self.steps.extend([Step::Unregister, Step::DeleteCluster]);
            self.enter(DEPROVISIONING);
        } else {
            self.enter(FAILED);
        }
    }

    fn idle_phase(&mut self) {
        if let Some(c) = &self.o.cluster
            && !c.deleting
        {
            // Ours but status says Idle: a status write was lost after the Cluster was made.
            self.event(false, "Adopted", "resuming with the existing Cluster (no second one is made)");
            self.enter(PROVISIONING);
            return;
        }
        if self.o.demand.pods.is_empty() {
            self.st.demand_since = None;
            self.condition("Provisioning", false, "NoDemand", "no unplaced replicas");
            return;
        }
        if let Some(t) = &self.st.next_attempt_at
            && t.0 > self.o.now
        {
            self.condition("Provisioning", false, "Backoff", format!("next attempt at {}", t.0));
            return;
        }
        if self.st.demand_since.is_none() {
            self.st.demand_since = Some(self.now.clone());
        }
        if !held(self.o.now, &self.st.demand_since, self.s.demand_confirm) {
            self.condition("Provisioning", false, "ConfirmingDemand", "waiting for the demand to persist");
            return;
        }
        if !self.o.provision_slot_free {
            self.condition("Provisioning", false, "WaitingForSlot", "other provisions run (--max-concurrent-provisions)");
            return;
        }
        let request = SizingRequest {
            flavors: self.s.flavors.clone(),
            mode: self.s.sizing,
            node_overhead: Resources { cpu_milli: self.s.node_overhead_cpu, memory_bytes: self.s.node_overhead_memory },
            max_pods_per_node: self.s.max_pods_per_node,
            pods: self.o.demand.pods.clone(),
            in_flight: Vec::new(),
            fixed_flavor: None,
        };
        match sizing::size(&request) {
            Err(e) => {
                self.condition("Provisioning", false, "Unfittable", e.to_string());
                self.event(true, "Unfittable", e.to_string());
            }
            Ok(sized) => {
                let workers = (sized.nodes as i32).clamp(self.s.min_workers.max(1), self.s.max_workers);
                self.st.attempts += 1;
                self.st.flavor = Some(sized.flavor.name.clone());
                self.st.demand_since = None;
                self.st.idle_since = None;
                self.st.unneeded_since.clear();
                self.st.scale_step = None;
                self.st.cluster = Some(format!("{}/{}", self.s.namespace, self.s.cluster));
                let note = format!(
                    "{} pods unplaced ({}): Cluster {}/{} with {workers} × {} (attempt {}/{})",
                    self.o.demand.pods.len(),
                    self.o.demand.sources.join(", "),
                    self.s.namespace,
                    self.s.cluster,
                    sized.flavor.name,
                    self.st.attempts,
                    self.s.max_attempts
                );
                self.event(false, "Provisioning", note.clone());
                self.condition("Provisioning", true, "ClusterRequested", note);
                self.steps.push(Step::Provision { flavor: sized.flavor.name, workers });
                self.enter(PROVISIONING);
            }
        }
    }

    fn provisioning_phase(&mut self) {
        let Some(c) = self.o.cluster.clone() else {
            // Not made yet (or the status write outlived the apply): apply again, same name.
            let flavor = self.st.flavor.clone().unwrap_or_else(|| "k8s.large".into());
            let workers = self.s.min_workers.max(1);
            self.steps.push(Step::Provision { flavor, workers });
            return;
        };
        if c.deleting {
            return;
        }
        if c.templated && c.template_incomplete {
            // Cut short between the Cluster and its last object (a crash): the same objects
            // again, by server-side apply, so nothing is made twice.
            let flavor = self.st.flavor.clone().unwrap_or_else(|| "k8s.large".into());
            self.steps.push(Step::Provision { flavor, workers: self.s.min_workers.max(1) });
        }
        let gate = c.control_plane_initialized && (c.remote_probe || c.control_plane_available) && c.workers_ready >= 1;
        if gate {
            self.condition("ClusterProvisioned", true, "ControlPlaneAndWorkersReady", format!("{} workers ready", c.workers_ready));
            self.event(false, "ClusterProvisioned", format!("control plane available, {} workers ready", c.workers_ready));
            self.enter(JOINING);
        } else if self.in_phase_for() > self.s.provision_timeout {
            let mut why = c.problems();
            why.extend(self.o.machines.iter().filter_map(|m| m.infrastructure_problem.as_ref().map(|p| format!("Machine {}: {p}", m.name))));
            let reason = if !c.control_plane_initialized { "ControlPlaneNotInitialized" } else { "ProvisioningTimeout" };
            self.fail(reason, format!("not usable after {:?}: {}", self.s.provision_timeout, why.join("; ")));
        } else {
            let waiting = if !c.infrastructure_provisioned {
                "infrastructure"
            } else if !c.control_plane_initialized {
                "control plane"
            } else {
                "a ready worker"
            };
            self.condition("ClusterProvisioned", false, "Waiting", format!("waiting for {waiting}"));
        }
    }

    fn joining_phase(&mut self) {
        if self.o.cluster.is_none() {
            self.fail("ClusterLost", "the Cluster disappeared while joining".into());
            return;
        }
        let probe = match &self.o.workload {
            Some(Ok(w)) if w.nodes.iter().any(|n| n.ready && n.schedulable && !n.control_plane) => Ok(()),
            Some(Ok(_)) => Err("no Ready schedulable worker node yet".to_string()),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not probed".to_string()),
        };
        match (probe, self.o.registered) {
            (Ok(()), None) | (Ok(()), Some(true)) => {
                self.steps.push(Step::Register { cordoned: false });
                self.st.kubeconfig_version = self.o.kubeconfig_version.clone();
            }
            (Ok(()), Some(false)) if self.o.member_ready => {
                self.condition("Registered", true, "Joined", "placements may use it");
                self.condition(conditions::FAILED, false, "Joined", "joined");
                self.st.attempts = 0;
                self.st.last_failure = None;
                self.st.next_attempt_at = None;
                self.event(false, "Joined", format!("{} is registered and Ready", self.s.cluster));
                // It joins with one ready worker; the rest of what was asked for is still an
                // open step, so machines that never come (quota) end it as partial capacity
                // instead of being counted as in flight forever.
                if let Some(c) = &self.o.cluster
                    && let Some(desired) = c.worker_replicas
                    && desired > c.workers_ready
                {
                    self.st.scale_step = Some(ScaleStep { kind: "Provision".into(), desired, started: self.now.clone(), node: None });
                }
                self.enter(READY);
            }
            (result, _) => {
                let why = result.err().unwrap_or_else(|| "waiting for the registry to see it Ready".into());
                if self.in_phase_for() > self.s.join_timeout {
                    self.fail("JoinTimeout", format!("not joined after {:?}: {why}", self.s.join_timeout));
                } else {
                    self.condition("Registered", false, "Probing", why);
                }
            }
        }
    }

    fn ready_phase(&mut self) {
        let Some(c) = self.o.cluster.clone() else {
            self.event(true, "ClusterLost", "the Cluster was deleted outside mck8s; unjoined");
            self.steps.push(Step::Unregister);
            self.enter(IDLE);
            return;
        };
        if c.deleting {
            self.steps.push(Step::Unregister);
            self.enter(DEPROVISIONING);
            return;
        }
        if self.o.kubeconfig_version.is_some() && self.o.kubeconfig_version != self.st.kubeconfig_version {
            // Cluster API rotates the client certificate: copy the new kubeconfig.
            self.st.kubeconfig_version = self.o.kubeconfig_version.clone();
            self.steps.push(Step::Register { cordoned: false });
            self.event(false, "KubeconfigRotated", "copied the new kubeconfig into the registry");
            return;
        }
        let w = match &self.o.workload {
            Some(Ok(w)) => w.clone(),
            Some(Err(e)) => {
                self.condition(conditions::DEGRADED, true, "Unreachable", e.clone());
                return;
            }
            None => return,
        };
        // Answering again clears only what not answering set: partial capacity stays reported
        // until a scale step completes.
        if conditions::get(&self.st.conditions, conditions::DEGRADED).is_none_or(|c| c.status == "False" || c.reason == "Unreachable") {
            self.condition(conditions::DEGRADED, false, "Reachable", "the cloud cluster answers");
        }
        if self.s.autoscaling == AutoscalingMode::Builtin && self.scale(&c, &w) {
            self.st.idle_since = None;
            return;
        }
        if self.idle(&w) {
            if self.st.idle_since.is_none() {
                self.st.idle_since = Some(self.now.clone());
            }
            if held(self.o.now, &self.st.idle_since, self.s.idle_window) || self.o.deleting {
                self.steps.push(Step::Register { cordoned: true });
                self.event(false, "Draining", format!("no mck8s workload and no demand for {:?}: no new placements", self.s.idle_window));
                self.enter(DRAINING);
            }
        } else {
            self.st.idle_since = None;
        }
    }

    /// The cluster's worker flavor (fixed for its life).
    fn flavor(&self) -> Flavor {
        let by_name = self.s.flavors.iter().find(|f| Some(&f.name) == self.st.flavor.as_ref());
        by_name.or(self.s.flavors.first()).cloned().unwrap_or_else(|| Flavor::new("k8s.large", 8000, 32 << 30, 110))
    }

    fn allocatable(&self, f: &Flavor) -> Resources {
        Resources { cpu_milli: f.cpu_milli.saturating_sub(self.s.node_overhead_cpu), memory_bytes: f.memory_bytes.saturating_sub(self.s.node_overhead_memory) }
    }

    fn group(&self, desired: i32, node_allocatable: Resources) -> NodeGroup {
        NodeGroup {
            desired: desired.max(0) as u32,
            min: self.s.min_workers.max(0) as u32,
            max: self.s.max_workers.max(1) as u32,
            node_allocatable,
            max_pods: self.s.max_pods_per_node,
        }
    }

    /// The builtin node autoscaler; true when a step is in flight or was just taken.
    fn scale(&mut self, c: &ClusterView, w: &Workload) -> bool {
        let workers = w.nodes.iter().filter(|n| !n.control_plane).count() as i32;
        let ready = w.nodes.iter().filter(|n| !n.control_plane && n.ready).count() as i32;
        let desired = c.worker_replicas.unwrap_or(workers);
        self.st.workers = Some(WorkersStatus { desired, ready, min: self.s.min_workers, max: self.s.max_workers });
        if let Some(step) = self.st.scale_step.clone() {
            let done = match step.kind.as_str() {
                "ScaleIn" => step.node.as_ref().is_none_or(|n| !w.nodes.iter().any(|x| &x.name == n)),
                _ => ready >= step.desired,
            };
            let quota = self.o.machines.iter().find_map(|m| m.infrastructure_problem.clone());
            if done {
                self.st.scale_step = None;
                self.st.partial_steps = 0;
                self.condition("Scaling", false, "Done", format!("{ready} workers ready"));
                if conditions::get(&self.st.conditions, conditions::DEGRADED).is_some_and(|c| c.reason == "PartialCapacity") {
                    self.condition(conditions::DEGRADED, false, "FullCapacity", format!("{ready} workers ready"));
                }
            } else if quota.is_some() || held(self.o.now, &Some(step.started.clone()), self.s.machine_startup_timeout) {
                // Capacity that cannot be had: keep what is there, stop asking, back off.
                let why = quota.unwrap_or_else(|| format!("machines not ready after {:?}", self.s.machine_startup_timeout));
                self.st.scale_step = None;
                self.st.partial_steps += 1;
                let wait = backoff(self.s.retry_backoff, self.st.partial_steps + 2);
                self.st.next_attempt_at = Some(Time(self.o.now + SignedDuration::try_from(wait).unwrap_or_default()));
                self.condition(conditions::DEGRADED, true, "PartialCapacity", format!("{ready} of {} workers: {why}", step.desired));
                self.event(true, "PartialCapacity", format!("{ready} of {} workers: {why}", step.desired));
                self.steps.push(Step::SetWorkers(ready.max(self.s.min_workers)));
                return true;
            } else {
                self.condition("Scaling", true, &step.kind, format!("{ready} of {} workers ready", step.desired));
                return true;
            }
        }
        if w.unschedulable.is_empty() {
            self.st.pending_since = None;
        } else {
            if self.st.pending_since.is_none() {
                self.st.pending_since = Some(self.now.clone());
            }
            let backing_off = self.st.next_attempt_at.as_ref().is_some_and(|t| t.0 > self.o.now);
            if held(self.o.now, &self.st.pending_since, self.s.scale_out_confirm) && !backing_off {
                let flavor = self.flavor();
                let allocatable = self.allocatable(&flavor);
                let in_flight = (desired - ready).max(0) as u32;
                let group = self.group(desired, allocatable);
                match node_scaling::scale_out(&w.nodes, &w.unschedulable, in_flight, &group) {
                    ScaleOut::Add { desired: to, reason } => {
                        let to = to as i32;
                        self.steps.push(Step::SetWorkers(to));
                        self.st.scale_step = Some(ScaleStep { kind: "ScaleOut".into(), desired: to, started: self.now.clone(), node: None });
                        self.st.last_scale_out = Some(self.now.clone());
                        self.st.pending_since = None;
                        self.event(false, "ScaledOut", format!("{desired} → {to} workers: {reason}"));
                        self.condition("Scaling", true, "ScaleOut", format!("{desired} → {to} workers"));
                        return true;
                    }
                    ScaleOut::AtMax { reason, .. } => self.condition("Scaling", false, "AtMax", reason),
                    ScaleOut::Unfittable { .. } => self.condition("Scaling", false, "Unfittable", "a pending pod fits no node of the flavor"),
                    ScaleOut::Hold { reason } => self.condition("Scaling", false, "Hold", reason),
                }
            }
            return false;
        }
        if !held(self.o.now, &self.st.last_scale_out, self.s.scale_down_delay_after_add) && self.st.last_scale_out.is_some() {
            return false;
        }
        let flavor = self.flavor();
        let group = self.group(desired, self.allocatable(&flavor));
        let policy = ScaleInPolicy { threshold: self.s.scale_down_threshold, unneeded_time: self.s.scale_down_unneeded };
        let since: BTreeMap<String, u64> = self.st.unneeded_since.iter().map(|(n, t)| (n.clone(), t.0.as_second().max(0) as u64)).collect();
        let now = self.o.now.as_second().max(0) as u64;
        let (decision, unneeded) = node_scaling::scale_in(&w.nodes, &since, now, &policy, &group);
        self.st.unneeded_since = unneeded.into_iter().filter_map(|(n, secs)| Timestamp::from_second(secs as i64).ok().map(|t| (n, Time(t)))).collect();
        if let ScaleIn::Remove { node, machine, desired: to } = decision {
            let to = to as i32;
            self.steps.push(Step::RemoveNode { machine: machine.clone(), workers: to });
            self.st.unneeded_since.remove(&node);
            self.event(false, "ScaledIn", format!("node {node} (Machine {machine}) underused for {:?}: {desired} → {to} workers", self.s.scale_down_unneeded));
            self.condition("Scaling", true, "ScaleIn", format!("removing {node}"));
            self.st.scale_step = Some(ScaleStep { kind: "ScaleIn".into(), desired: to, started: self.now.clone(), node: Some(node) });
            return true;
        }
        false
    }

    fn draining_phase(&mut self) {
        let busy = match &self.o.workload {
            Some(Ok(w)) => !self.idle(w),
            _ => !self.o.demand.pods.is_empty(),
        };
        if busy && !(self.o.deleting && self.s.deletion_policy == DeletionPolicy::Delete) {
            self.steps.push(Step::Register { cordoned: false });
            self.st.idle_since = None;
            self.event(false, "DrainCancelled", "workload or demand came back: placements resume");
            self.enter(READY);
        } else if self.in_phase_for() >= self.s.drain_grace {
            self.steps.extend([Step::Unregister, Step::DeleteCluster]);
            self.event(false, "Deprovisioning", format!("unjoined; deleting Cluster {}/{}", self.s.namespace, self.s.cluster));
            self.enter(DEPROVISIONING);
        }
    }

    fn deprovisioning_phase(&mut self) {
        match &self.o.cluster {
            Some(c) if !c.deleting => self.steps.push(Step::DeleteCluster),
            Some(_) => {
                if self.in_phase_for() > self.s.deletion_timeout {
                    // Never strip Cluster API's finalizers (that leaks machines); keep the
                    // credentials it needs to finish.
                    self.condition(conditions::DEGRADED, true, "DeletionStuck", format!("Cluster still deleting after {:?}", self.s.deletion_timeout));
                }
            }
            None => {
                // The namespace and credentials stay for a retry; they go when no attempt
                // follows (idle, failed for good, or deleted).
                let retrying = self.st.last_failure.is_some() && self.st.attempts < self.s.max_attempts && !self.o.deleting;
                if !retrying {
                    self.steps.push(Step::CleanUp);
                }
                self.st.cluster = None;
                self.st.provisioning_mode = None;
                self.st.workers = None;
                self.st.kubeconfig_version = None;
                self.st.unneeded_since = BTreeMap::new();
                self.st.scale_step = None;
                self.st.idle_since = None;
                self.condition(conditions::DEGRADED, false, "Deprovisioned", "no cloud cluster");
                self.condition("Registered", false, "Deprovisioned", "no cloud cluster");
                self.condition("ClusterProvisioned", false, "Deprovisioned", "no cloud cluster");
                if self.st.last_failure.is_some() && self.st.attempts >= self.s.max_attempts {
                    self.event(true, "Failed", format!("{} attempts failed; set annotation fogguru.eu/retry to try again", self.st.attempts));
                    self.enter(FAILED);
                } else {
                    if self.st.last_failure.is_some() {
                        let wait = backoff(self.s.retry_backoff, self.st.attempts);
                        self.st.next_attempt_at = Some(Time(self.o.now + SignedDuration::try_from(wait).unwrap_or_default()));
                    }
                    self.event(false, "Deprovisioned", format!("Cluster {}/{} is gone", self.s.namespace, self.s.cluster));
                    self.enter(IDLE);
                }
            }
        }
    }

    /// The CloudProvisioner is being deleted: de-provision as its deletion policy says.
    fn deleting(&mut self) -> bool {
        let phase = self.phase().to_string();
        if self.s.deletion_policy == DeletionPolicy::Orphan {
            // Leave the cluster and its registration; only our hold on them ends.
            return true;
        }
        match phase.as_str() {
            IDLE | FAILED if self.o.cluster.is_none() => {
                // A backoff between attempts kept the namespace and credentials.
                self.steps.push(Step::CleanUp);
                return true;
            }
            IDLE | FAILED => {
                if self.o.cluster.as_ref().is_some_and(|c| !c.deleting) && self.s.delete_failed {
                    self.steps.extend([Step::Unregister, Step::DeleteCluster]);
                }
                self.enter(DEPROVISIONING);
            }
            PROVISIONING | JOINING => {
                self.steps.extend([Step::Unregister, Step::DeleteCluster]);
                self.event(false, "Deprovisioning", "deleted while provisioning: the Cluster is deleted");
                self.enter(DEPROVISIONING);
            }
            READY => {
                let busy = !matches!(&self.o.workload, Some(Ok(w)) if w.children == 0);
                if busy && self.s.deletion_policy == DeletionPolicy::DeleteWhenIdle {
                    self.condition("DeletionBlocked", true, "WorkloadsPresent", "mck8s workloads run in the cloud cluster; it is removed once they are gone");
                    self.ready_phase();
                } else {
                    self.steps.push(Step::Register { cordoned: true });
                    self.enter(DRAINING);
                }
            }
            DRAINING => self.draining_phase(),
            _ => self.deprovisioning_phase(),
        }
        false
    }
}

/// One reconcile's decision.
pub fn plan(s: &Settings, status: Option<&CloudProvisionerStatus>, o: &Observed) -> Plan {
    let now = Time(o.now);
    let mut p = Planner { s, o, st: status.cloned().unwrap_or_default(), steps: Vec::new(), events: Vec::new(), now };
    p.st.observed_generation = o.generation;
    if p.st.phase.is_none() {
        p.enter(IDLE);
    }
    p.st.demand = (!o.demand.pods.is_empty()).then(|| demand_status(&o.demand));
    if let Some(c) = &o.cluster {
        p.st.cluster = Some(format!("{}/{}", s.namespace, s.cluster));
        if c.templated && p.st.provisioning_mode.as_deref() != Some(c.mode()) {
            let t = &s.template;
            p.event(
                false,
                "RenderedFromTemplate",
                format!(
                    "no managed topology: Cluster {}/{} and the provider's objects come from cluster template {}/{} (key {})",
                    s.namespace, s.cluster, t.namespace, t.name, t.key
                ),
            );
        }
        p.st.provisioning_mode = Some(c.mode().to_string());
    }
    for note in &s.notes {
        p.condition("Warning", true, "Spec", note.clone());
    }
    if !s.inline_credentials.is_empty() {
        p.condition(
            "InlineCredentials",
            true,
            "MovedToSecret",
            format!("cloudsYaml/certText are kept in Secret {}/{}; prefer spec.credentialsSecretRef", s.namespace, s.credentials_secret()),
        );
    }
    match &o.claim {
        Claim::Ours => p.condition("Conflict", false, "Owned", "the cluster name is ours"),
        Claim::ForeignCluster => {
            p.condition("Conflict", true, "ForeignCluster", format!("Cluster {}/{} exists and was not made by this CloudProvisioner; it is left alone", s.namespace, s.cluster));
            let release = o.deleting && p.phase() == IDLE;
            return p.finish(release);
        }
        Claim::OlderProvisioner(other) => {
            p.condition("Conflict", true, "NameClaimed", format!("CloudProvisioner {other} already manages {}", s.cluster));
            return p.finish(o.deleting);
        }
    }
    if p.phase() == FAILED
        && let Some(retry) = &o.retry_annotation
        && p.st.retry_seen.as_ref() != Some(retry)
    {
        p.st.retry_seen = Some(retry.clone());
        p.st.attempts = 0;
        p.st.next_attempt_at = None;
        p.st.last_failure = None;
        p.condition(conditions::FAILED, false, "RetryRequested", "fogguru.eu/retry");
        p.event(false, "RetryRequested", "attempts reset");
        p.enter(IDLE);
    }
    if o.deleting {
        let release = p.deleting();
        return p.finish(release);
    }
    match p.phase().to_string().as_str() {
        IDLE => p.idle_phase(),
        PROVISIONING => p.provisioning_phase(),
        JOINING => p.joining_phase(),
        READY => p.ready_phase(),
        DRAINING => p.draining_phase(),
        DEPROVISIONING => p.deprovisioning_phase(),
        _ => {}
    }
    let ready = p.phase() == READY;
    p.condition(conditions::READY, ready, p.phase().to_string().as_str(), format!("phase {}", p.phase()));
    p.finish(false)
}

impl Planner<'_> {
    fn finish(self, release: bool) -> Plan {
        Plan { steps: self.steps, status: self.st, events: self.events, release }
    }
}

fn demand_status(d: &Demand) -> DemandStatus {
    let cpu: u64 = d.pods.iter().map(|p| p.cpu_milli).sum();
    let mem: u64 = d.pods.iter().map(|p| p.memory_bytes).sum();
    DemandStatus { replicas: d.pods.len() as i32, cpu: format!("{cpu}m"), memory: format!("{}Mi", mem.div_ceil(1 << 20)), sources: d.sources.iter().take(5).cloned().collect() }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
