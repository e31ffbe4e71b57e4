//! One decision: lower the workload with the cycle's adjustments, call the policy, record
//! the result in the ledger. Decisions are serialised (they take microseconds) so two
//! concurrent reconciles can never be promised the same slots.

use crate::cycle::{FleetCycle, OwnerKey};
use crate::ledger::Ledger;
use mck8s_capacity::{Reservation, Resources};
use mck8s_policy::input::{Adjustment, InputError, WorkloadDoc, requests_of};
use mck8s_policy::registry::normalize;
use mck8s_policy::{Decision, PlacementSession, PolicyError, PolicyRegistry};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

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

pub struct Scheduler {
    registry: Arc<PolicyRegistry>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    ledger: Ledger,
    /// One live instance per policy, re-sent the fleet when the cycle or the policy changes.
    sessions: HashMap<String, (u64, PlacementSession)>,
}

impl Scheduler {
    pub fn new(registry: Arc<PolicyRegistry>) -> Self {
        Scheduler { registry, inner: Mutex::new(Inner::default()) }
    }

    pub fn registry(&self) -> &Arc<PolicyRegistry> {
        &self.registry
    }

    /// Decides and records. The decision's `current` should be the owner's current placement
    /// (`workload.current`) so policies can prefer stability.
    pub fn place(&self, cycle: &Arc<FleetCycle>, req: &PlacementRequest) -> Result<Decision, ScheduleError> {
        self.decide(cycle, req, true)
    }

    /// What the policy would decide now, without recording it: the rescheduler's question
    /// ("where would this go if it were new?"). The owner's own pods count as free, as in
    /// [`Scheduler::place`].
    pub fn preview(&self, cycle: &Arc<FleetCycle>, req: &PlacementRequest) -> Result<Decision, ScheduleError> {
        self.decide(cycle, req, false)
    }

    fn decide(&self, cycle: &Arc<FleetCycle>, req: &PlacementRequest, record: bool) -> Result<Decision, ScheduleError> {
        let _span = tracing::debug_span!("schedule", owner = %req.owner, policy = %req.policy, record).entered();
        let request = requests_of(&req.workload)?;
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let own = &req.owner;
        // Per-cluster adjustments, computed up front so the lowering borrows plain slices.
        let n = cycle.snapshot.len();
        let mut freed: Vec<Vec<(usize, Resources)>> = Vec::with_capacity(n);
        let mut reserved: Vec<Vec<Reservation>> = Vec::with_capacity(n);
        for c in 0..n as u32 {
            freed.push(cycle.owned_pods(c, own).map(|o| o.per_node.clone()).unwrap_or_default());
            reserved.push(inner.ledger.outstanding(cycle, c, own));
        }
        let workload = cycle.snapshot.workload_adjusted(&req.workload, |c| {
            let (f, r) = (&freed[c as usize], &reserved[c as usize]);
            (!f.is_empty() || !r.is_empty()).then_some(Adjustment { freed: f, reserved: r })
        })?;
        let decision = {
            let session = self.session(&mut inner, &req.policy, cycle)?;
            session.place(&workload)?
        };
        let desired: BTreeMap<String, u32> = decision.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect();
        if record {
            inner.ledger.record(own, &request, &desired);
        }
        Ok(decision)
    }

    /// Records a placement decided earlier (a restart reads them back from status), so it
    /// is deducted until its pods are bound.
    pub fn remember(&self, owner: &OwnerKey, request: &Resources, desired: &BTreeMap<String, u32>) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).ledger.record(owner, request, desired);
    }

    /// Drops an owner's entries (it was deleted or is invalid).
    pub fn forget(&self, owner: &OwnerKey) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).ledger.forget(owner);
    }

    fn session<'a>(&self, inner: &'a mut Inner, policy: &str, cycle: &Arc<FleetCycle>) -> Result<&'a mut PlacementSession, PolicyError> {
        let key = normalize(policy);
        let current = self.registry.get(&key)?;
        let fresh = match inner.sessions.get(&key) {
            Some((version, s)) => *version != cycle.version || s.policy().digest != current.digest,
            None => true,
        };
        if fresh {
            let session = PlacementSession::new(current, cycle.snapshot.clone())?;
            inner.sessions.insert(key.clone(), (cycle.version, session));
        }
        Ok(&mut inner.sessions.get_mut(&key).expect("inserted").1)
    }
}
