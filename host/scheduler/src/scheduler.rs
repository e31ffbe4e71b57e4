//! One decision: lower the workload with the cycle's adjustments, call the policy, record
//! the result in the ledger.
//!
//! The lock covers the ledger only, never a policy call: decisions run in parallel, each in a
//! session of its own (a pool per policy), and a decision is recorded only if the ledger has
//! not changed, since its adjustments were read, on any cluster it places replicas on.
//! Otherwise it is decided again under the ledger lock, as are the next
//! [`LOCKED_AFTER_RACE`] decisions, so two concurrent decisions can never be promised the same
//! slots, a busy ledger cannot starve one, and a run of decisions that all want the same
//! clusters costs what deciding one at a time does.

use crate::cycle::FleetCycle;
use crate::explain::{ExplainInput, Explanation, PassedOver};
use crate::ledger::Ledger;
use crate::shadow::{ShadowOutcome, ShadowRun};
use mck8s_capacity::{Reservation, Resources};
use mck8s_fleet::OwnerKey;
use mck8s_policy::Adjustment;
use mck8s_policy::input::{InputError, WorkloadDoc, requests_of};
use mck8s_policy::registry::normalize;
use mck8s_policy::{Decision, LoadedPolicy, PlacementSession, PolicyError, PolicyRegistry};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Decisions made under the ledger lock after a race, before trying without it again.
pub const LOCKED_AFTER_RACE: u64 = 16;
/// Idle sessions kept per policy (each holds a live instance with the fleet in it).
const POOLED_PER_POLICY: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// What to place.
#[derive(Clone, Debug)]
pub struct PlacementRequest {
    pub owner: OwnerKey,
    pub policy: String,
    pub workload: WorkloadDoc,
}

/// A recorded decision, the clusters it passed over by reason (for its event), and what
/// the active policy's shadow made of the same input, if it has one.
#[derive(Clone, Debug)]
pub struct Placed {
    pub decision: Decision,
    pub passed_over: PassedOver,
    pub shadow: Option<ShadowRun>,
}

pub struct Scheduler {
    registry: Arc<PolicyRegistry>,
    ledger: Mutex<Ledger>,
    /// Idle sessions per policy. A session of an older cycle is moved to the current one
    /// when taken (sent only what changed, if the policy takes fleet updates).
    sessions: Mutex<HashMap<String, Vec<PlacementSession>>>,
    races: AtomicU64,
    /// Decisions still to make under the lock (see [`LOCKED_AFTER_RACE`]).
    locked_left: AtomicU64,
}

impl Scheduler {
    pub fn new(registry: Arc<PolicyRegistry>) -> Self {
        Scheduler { registry, ledger: Mutex::default(), sessions: Mutex::default(), races: AtomicU64::new(0), locked_left: AtomicU64::new(0) }
    }

    pub fn registry(&self) -> &Arc<PolicyRegistry> {
        &self.registry
    }

    /// Decides and records. The decision's `current` should be the owner's current placement
    /// (`workload.current`) so policies can prefer stability. Blocks while the policy runs:
    /// call it off the async runtime.
    pub fn place(&self, cycle: &Arc<FleetCycle>, req: &PlacementRequest) -> Result<Placed, ScheduleError> {
        let _span = tracing::debug_span!("schedule", owner = %req.owner, policy = %req.policy).entered();
        let request = requests_of(&req.workload)?;
        // After a race, the next few decisions go straight under the lock: while every decision
        // wants the same clusters, deciding twice costs more than waiting.
        let optimistic = self.locked_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err();
        if optimistic {
            let (reserved, seen) = {
                let mut ledger = self.ledger();
                (ledger.outstanding_all(cycle, &req.owner), ledger.version())
            };
            let workload = self.adjusted(cycle, req, reserved)?;
            let decision = self.call(cycle, &req.policy, &workload)?;
            let mut ledger = self.ledger();
            // Only the clusters it places on matter: elsewhere it merely saw less room.
            if !ledger.changed_since(seen, decision.placements.iter().filter(|p| p.replicas > 0).map(|p| p.cluster.as_str())) {
                ledger.record(&req.owner, &request, &desired(&decision));
                drop(ledger);
                return Ok(self.placed(cycle, &req.policy, &workload, decision));
            }
            self.races.fetch_add(1, Ordering::Relaxed);
            self.locked_left.store(LOCKED_AFTER_RACE, Ordering::Relaxed);
            tracing::debug!(owner = %req.owner, "another decision took room where this one placed: deciding again");
        }
        let mut ledger = self.ledger();
        let workload = self.adjusted(cycle, req, ledger.outstanding_all(cycle, &req.owner))?;
        let decision = self.call(cycle, &req.policy, &workload)?;
        ledger.record(&req.owner, &request, &desired(&decision));
        drop(ledger);
        Ok(self.placed(cycle, &req.policy, &workload, decision))
    }

    /// The recorded decision with what it passed over and, when `policy` has a shadow, the
    /// shadow's view of the same input. Runs after the ledger lock is released: the shadow
    /// costs its own call time and nothing else.
    fn placed(&self, cycle: &Arc<FleetCycle>, policy: &str, workload: &mck8s_policy::bindings::wit::Workload, decision: Decision) -> Placed {
        let passed_over = PassedOver::of(&cycle.snapshot, workload, &decision);
        let shadow = self.registry.shadow_of(policy).filter(|s| s.name != normalize(policy)).map(|s| {
            let _span = tracing::debug_span!("shadow", policy = %s.name).entered();
            let outcome = match self.call(cycle, &s.name, workload) {
                Ok(d) => ShadowOutcome::compare(&decision, &d),
                Err(e) => ShadowOutcome::Failed(e.to_string()),
            };
            ShadowRun { policy: s.name.clone(), digest: s.digest.clone(), outcome }
        });
        Placed { decision, passed_over, shadow }
    }

    /// Decisions made again because another took room where they placed, since the start.
    pub fn races(&self) -> u64 {
        self.races.load(Ordering::Relaxed)
    }

    /// What the policy would decide now, without recording it: the rescheduler's question
    /// ("where would this go if it were new?"). The owner's own pods count as free, as in
    /// [`Scheduler::place`].
    pub fn preview(&self, cycle: &Arc<FleetCycle>, req: &PlacementRequest) -> Result<Decision, ScheduleError> {
        let _span = tracing::debug_span!("schedule", owner = %req.owner, policy = %req.policy, record = false).entered();
        requests_of(&req.workload)?;
        let workload = self.adjusted(cycle, req, self.reserved(cycle, &req.owner))?;
        Ok(self.call(cycle, &req.policy, &workload)?)
    }

    /// Records a placement decided earlier (a restart reads them back from status), so it
    /// is deducted until its pods are bound.
    pub fn remember(&self, owner: &OwnerKey, request: &Resources, desired: &BTreeMap<String, u32>) {
        self.ledger().record(owner, request, desired);
    }

    /// Drops an owner's entries (it was deleted or is invalid).
    pub fn forget(&self, owner: &OwnerKey) {
        self.ledger().forget(owner);
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The other owners' outstanding decisions, by cluster index: all that is read under the
    /// ledger lock.
    fn reserved(&self, cycle: &FleetCycle, owner: &OwnerKey) -> Vec<(u32, Vec<Reservation>)> {
        self.ledger().outstanding_all(cycle, owner)
    }

    /// The workload as the policy sees it: each cluster with the owner's own pods counted as
    /// free and the other owners' outstanding decisions (`reserved`) deducted.
    fn adjusted(&self, cycle: &FleetCycle, req: &PlacementRequest, reserved: Vec<(u32, Vec<Reservation>)>) -> Result<mck8s_policy::bindings::wit::Workload, InputError> {
        let a = Adjustments::new(cycle, &req.owner, reserved);
        a.lower(cycle, &req.workload)
    }

    /// What the policy would decide now, as [`Self::preview`], with why each cluster got what
    /// it got: the host's facts, and the policy's own reasons if it gives them.
    pub fn explain(&self, cycle: &Arc<FleetCycle>, req: &PlacementRequest) -> Result<Explanation, ScheduleError> {
        let _span = tracing::debug_span!("explain", owner = %req.owner, policy = %req.policy).entered();
        let request = requests_of(&req.workload)?;
        let a = Adjustments::new(cycle, &req.owner, self.reserved(cycle, &req.owner));
        let workload = a.lower(cycle, &req.workload)?;
        let key = normalize(&req.policy);
        let current = self.registry.get(&key)?;
        let mut session = self.take_session(&key, &current, cycle)?;
        let decision = session.place(&workload);
        let verdicts = decision.as_ref().ok().map(|_| session.explain(&workload));
        self.return_session(key, session);
        let decision = decision?;
        let (verdicts, error) = match verdicts {
            Some(Ok(v)) => (v, None),
            Some(Err(e)) => (Vec::new(), Some(e.to_string())),
            None => (Vec::new(), None),
        };
        let input =
            ExplainInput { snapshot: &cycle.snapshot, workload: &workload, request: &request, freed: &a.freed, reserved: &a.reserved, decision: &decision, verdicts: &verdicts };
        let clusters = crate::explain::explain(&input);
        Ok(Explanation {
            policy: decision.policy.clone(),
            digest: decision.digest.clone(),
            wit_version: current.wit_version.clone(),
            policy_explains: current.explains && error.is_none(),
            policy_explain_error: error,
            request,
            total: workload.total,
            unplaced: decision.unplaced,
            summary: decision.summary.clone(),
            clusters,
        })
    }

    /// One policy call in a session of its own, returned to the pool afterwards.
    fn call(&self, cycle: &Arc<FleetCycle>, policy: &str, workload: &mck8s_policy::bindings::wit::Workload) -> Result<Decision, PolicyError> {
        let key = normalize(policy);
        let current = self.registry.get(&key)?;
        let mut session = self.take_session(&key, &current, cycle)?;
        let decision = session.place(workload);
        self.return_session(key, session);
        decision
    }

    /// An idle session of the serving version, moved to this cycle's fleet, or a new one.
    fn take_session(&self, key: &str, current: &Arc<LoadedPolicy>, cycle: &Arc<FleetCycle>) -> Result<PlacementSession, PolicyError> {
        let taken = {
            let mut pool = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            let idle = pool.entry(key.to_string()).or_default();
            // Sessions of an older version of the policy are dropped here.
            idle.retain(|s| s.policy().digest == current.digest);
            // The most recently returned session holds the newest fleet.
            idle.pop()
        };
        match taken {
            Some(mut s) => {
                s.advance(&cycle.snapshot);
                Ok(s)
            }
            None => PlacementSession::new(current.clone(), cycle.snapshot.clone()),
        }
    }

    fn return_session(&self, key: String, session: PlacementSession) {
        let mut pool = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let idle = pool.entry(key).or_default();
        if idle.len() < POOLED_PER_POLICY {
            idle.push(session);
        }
    }
}

/// Per cluster index, what a decision corrects in the observed state.
struct Adjustments {
    /// The owner's own bound pods, counted as free: `(node index, requests)`.
    freed: Vec<Vec<(usize, Resources)>>,
    /// Other owners' outstanding decisions, deducted.
    reserved: Vec<Vec<Reservation>>,
}

impl Adjustments {
    fn new(cycle: &FleetCycle, own: &OwnerKey, outstanding: Vec<(u32, Vec<Reservation>)>) -> Self {
        let n = cycle.snapshot.len();
        let mut reserved: Vec<Vec<Reservation>> = vec![Vec::new(); n];
        for (c, r) in outstanding {
            reserved[c as usize] = r;
        }
        let freed = (0..n as u32).map(|c| cycle.owned_pods(c, own).map(|o| o.per_node.clone()).unwrap_or_default()).collect();
        Adjustments { freed, reserved }
    }

    fn lower(&self, cycle: &FleetCycle, w: &WorkloadDoc) -> Result<mck8s_policy::bindings::wit::Workload, InputError> {
        cycle.snapshot.workload_adjusted(w, |c| {
            let (f, r) = (&self.freed[c as usize], &self.reserved[c as usize]);
            (!f.is_empty() || !r.is_empty()).then_some(Adjustment { freed: f, reserved: r })
        })
    }
}

fn desired(decision: &Decision) -> BTreeMap<String, u32> {
    decision.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect()
}
