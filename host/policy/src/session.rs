//! Calling policies. A [`PlacementSession`] holds one instance with one cycle's fleet loaded,
//! so each `place` carries only the workload. A trap poisons the instance; the session
//! rebuilds it (and re-sends the fleet) on the next call.

use crate::bindings::{wit, wit_scaling};
use crate::error::PolicyErrorKind;
use crate::loaded::{LoadedPolicy, PlacementInstance, Pre};
use crate::snapshot::FleetSnapshot;
use crate::state::GuestState;
use crate::{PolicyError, validate};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Store;

/// A validated placement, with cluster names resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub policy: String,
    pub digest: String,
    pub placements: Vec<ClusterReplicas>,
    /// Replicas no cluster could take: the bursting signal.
    pub unplaced: u32,
    pub summary: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterReplicas {
    pub cluster: String,
    pub replicas: u32,
    pub reason: String,
}

impl Decision {
    pub fn replicas_on(&self, cluster: &str) -> u32 {
        self.placements.iter().filter(|p| p.cluster == cluster).map(|p| p.replicas).sum()
    }

    /// A policy's raw output (cluster indices, free text of any size) as the host keeps it:
    /// validated against `fleet` and `workload`, names resolved, text cut. Pure, so it can be
    /// fuzzed with arbitrary field values.
    pub fn from_raw(policy: &str, digest: &str, fleet: &FleetSnapshot, workload: &wit::Workload, raw: wit::Decision) -> Result<Self, String> {
        validate::placement(fleet, workload, &raw)?;
        Ok(Decision::from_valid(policy, digest, fleet, raw))
    }

    /// The conversion alone, for a result `validate::placement` has already passed.
    fn from_valid(policy: &str, digest: &str, fleet: &FleetSnapshot, raw: wit::Decision) -> Self {
        Decision {
            policy: policy.to_string(),
            digest: digest.to_string(),
            placements: raw
                .choices
                .into_iter()
                .filter(|c| c.replicas > 0)
                .map(|c| ClusterReplicas { cluster: fleet.name_of(c.cluster).to_string(), replicas: c.replicas, reason: validate::clip_text(c.reason, validate::REASON_MAX) })
                .collect(),
            unplaced: raw.unplaced,
            summary: validate::clip_text(raw.summary, validate::SUMMARY_MAX),
        }
    }
}

/// A policy's account of one cluster (its `explanations` export), names resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyVerdict {
    pub cluster: String,
    pub rank: Option<u32>,
    pub score: Option<f64>,
    pub reason: String,
}

pub struct PlacementSession {
    policy: Arc<LoadedPolicy>,
    fleet: Arc<FleetSnapshot>,
    live: Option<(Store<GuestState>, PlacementInstance)>,
    sent: FleetSends,
}

static FULL_SENT: AtomicU64 = AtomicU64::new(0);
static UPDATES_SENT: AtomicU64 = AtomicU64::new(0);
static UPDATES_FAILED: AtomicU64 = AtomicU64::new(0);

/// How every session in this process got its fleets, since it started (exported as a metric).
pub fn fleet_sends_total() -> FleetSends {
    FleetSends { full: FULL_SENT.load(Ordering::Relaxed), updates: UPDATES_SENT.load(Ordering::Relaxed), failed_updates: UPDATES_FAILED.load(Ordering::Relaxed) }
}

/// How a session's instances got their fleets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetSends {
    /// Whole fleets (`set-fleet`), one per new instance.
    pub full: u64,
    /// Updates (`update-fleet`) that were applied.
    pub updates: u64,
    /// Updates the instance refused or trapped on (or ran out of time or memory in): each
    /// dropped its instance, and the next call sent the whole fleet to a new one.
    pub failed_updates: u64,
}

impl PlacementSession {
    pub fn new(policy: Arc<LoadedPolicy>, fleet: Arc<FleetSnapshot>) -> Result<Self, PolicyError> {
        if !matches!(policy.pre, Pre::Placement(_)) {
            return Err(policy.error(PolicyErrorKind::Incompatible("is a scaling policy; a placement policy was asked for".into())));
        }
        Ok(PlacementSession { policy, fleet, live: None, sent: FleetSends::default() })
    }

    pub fn policy(&self) -> &Arc<LoadedPolicy> {
        &self.policy
    }

    pub fn fleet(&self) -> &Arc<FleetSnapshot> {
        &self.fleet
    }

    pub fn fleet_sends(&self) -> FleetSends {
        self.sent
    }

    /// Moves the session to `fleet`. A live instance of a policy that takes updates, holding
    /// an ancestor of `fleet`, is sent what changed (`update-fleet`); any other is dropped and
    /// the next call starts one with the whole fleet. A failed update costs only that.
    pub fn advance(&mut self, fleet: &Arc<FleetSnapshot>) {
        if Arc::ptr_eq(&self.fleet, fleet) {
            return;
        }
        let old = std::mem::replace(&mut self.fleet, fleet.clone());
        let Some((store, instance)) = self.live.as_mut() else { return };
        let (Some(updates), Some(update)) = (instance.updates.as_ref(), fleet.update_since(&old)) else {
            self.live = None;
            return;
        };
        let _span = tracing::debug_span!("policy.update_fleet", policy = %self.policy.name, clusters = update.clusters.len()).entered();
        self.policy.arm(store);
        match updates.call_update_fleet(&mut *store, &update) {
            Ok(Ok(())) => {
                self.sent.updates += 1;
                UPDATES_SENT.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(msg)) => {
                tracing::debug!(policy = %self.policy.name, error = %validate::clip_text(msg, validate::REASON_MAX), "update-fleet refused: sending the whole fleet");
                self.update_failed();
            }
            Err(e) => {
                tracing::debug!(policy = %self.policy.name, error = %self.policy.classify(e, store, "update-fleet"), "update-fleet failed: sending the whole fleet");
                self.update_failed();
            }
        }
    }

    fn update_failed(&mut self) {
        self.live = None;
        self.sent.failed_updates += 1;
        UPDATES_FAILED.fetch_add(1, Ordering::Relaxed);
    }

    /// Instantiates and sends the fleet, unless an instance is already live.
    pub fn prepare(&mut self) -> Result<(), PolicyError> {
        if self.live.is_some() {
            return Ok(());
        }
        let Pre::Placement(pre) = &self.policy.pre else { unreachable!("checked in new") };
        let p = &self.policy;
        let mut store = p.new_store();
        p.arm_instantiate(&mut store);
        let instance = pre.instantiate(&mut store).map_err(|e| p.classify(e, &store, "instantiate"))?;
        p.arm(&mut store);
        match instance.placer.mck8s_policy_placer().call_set_fleet(&mut store, self.fleet.wit()) {
            Ok(Ok(())) => {
                self.sent.full += 1;
                FULL_SENT.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(msg)) => return Err(p.error(PolicyErrorKind::Refused(format!("set-fleet: {}", validate::clip_text(msg, validate::REASON_MAX))))),
            Err(e) => return Err(p.classify(e, &store, "set-fleet")),
        }
        self.live = Some((store, instance));
        Ok(())
    }

    /// One decision, validated. Raw output (indices) is returned by [`Self::place_raw`].
    pub fn place(&mut self, workload: &wit::Workload) -> Result<Decision, PolicyError> {
        // `place_raw` has validated it.
        let raw = self.place_raw(workload)?;
        Ok(Decision::from_valid(&self.policy.name, &self.policy.digest, &self.fleet, raw))
    }

    pub fn place_raw(&mut self, workload: &wit::Workload) -> Result<wit::Decision, PolicyError> {
        let _span = tracing::debug_span!("policy.place", policy = %self.policy.name, workload = %workload.name).entered();
        self.prepare()?;
        let (store, instance) = self.live.as_mut().expect("prepared");
        self.policy.arm(store);
        let result = instance.placer.mck8s_policy_placer().call_place(&mut *store, workload);
        match result {
            Ok(Ok(decision)) => {
                validate::placement(&self.fleet, workload, &decision).map_err(|e| self.policy.error(PolicyErrorKind::InvalidOutput(e)))?;
                Ok(decision)
            }
            Ok(Err(msg)) => Err(self.policy.error(PolicyErrorKind::Refused(validate::clip_text(msg, validate::REASON_MAX)))),
            Err(e) => {
                let err = self.policy.classify(e, store, "place");
                // wasmtime will not re-enter an instance that trapped: rebuild next time.
                self.live = None;
                Err(err)
            }
        }
    }
}

impl PlacementSession {
    /// The policy's reasons for `workload` on this session's fleet: call it right after
    /// [`Self::place`] for the same workload. Empty for a policy without `explanations`
    /// (WIT 0.1.2). Verdicts naming no cluster of the fleet, or one twice, are refused.
    pub fn explain(&mut self, workload: &wit::Workload) -> Result<Vec<PolicyVerdict>, PolicyError> {
        let _span = tracing::debug_span!("policy.explain", policy = %self.policy.name, workload = %workload.name).entered();
        self.prepare()?;
        let (store, instance) = self.live.as_mut().expect("prepared");
        let Some(explains) = instance.explains.as_ref() else { return Ok(Vec::new()) };
        self.policy.arm(store);
        let raw = match explains.call_explain(&mut *store, workload) {
            Ok(Ok(v)) => v,
            Ok(Err(msg)) => return Err(self.policy.error(PolicyErrorKind::Refused(validate::clip_text(msg, validate::REASON_MAX)))),
            Err(e) => {
                let err = self.policy.classify(e, store, "explain");
                self.live = None;
                return Err(err);
            }
        };
        let mut seen = vec![false; self.fleet.len()];
        let mut out = Vec::with_capacity(raw.len());
        for v in raw {
            let Some(first) = seen.get_mut(v.cluster as usize) else {
                return Err(self.policy.error(PolicyErrorKind::InvalidOutput(format!("explain: cluster index {} out of range", v.cluster))));
            };
            if std::mem::replace(first, true) {
                return Err(self.policy.error(PolicyErrorKind::InvalidOutput(format!("explain: cluster {} twice", self.fleet.name_of(v.cluster)))));
            }
            out.push(PolicyVerdict {
                cluster: self.fleet.name_of(v.cluster).to_string(),
                rank: v.rank,
                score: v.score.filter(|s| s.is_finite()),
                reason: validate::clip_text(v.reason, validate::REASON_MAX),
            });
        }
        Ok(out)
    }
}

/// A validated scaling decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScalingOutcome {
    pub policy: String,
    pub digest: String,
    pub desired: Vec<(String, u32)>,
    pub total: u32,
    pub reason: String,
    /// Opaque; persist it and pass it back next call.
    #[serde(with = "state_text")]
    pub state: Vec<u8>,
}

mod state_text {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(v))
    }
}

impl LoadedPolicy {
    /// One scaling decision in a fresh instance (scaling calls are rare; state travels in
    /// the request, so nothing is lost between instances).
    pub fn scale(&self, request: &wit_scaling::ScalingRequest) -> Result<ScalingOutcome, PolicyError> {
        let _span = tracing::debug_span!("policy.scale", policy = %self.name, target = %request.name).entered();
        let Pre::Scaling(pre) = &self.pre else {
            return Err(self.error(PolicyErrorKind::Incompatible("is a placement policy; a scaling policy was asked for".into())));
        };
        let mut store = self.new_store();
        self.arm_instantiate(&mut store);
        let instance = pre.instantiate(&mut store).map_err(|e| self.classify(e, &store, "instantiate"))?;
        self.arm(&mut store);
        match instance.mck8s_policy_scaler().call_scale(&mut store, request) {
            Ok(Ok(d)) => {
                validate::scaling(request, &d).map_err(|e| self.error(PolicyErrorKind::InvalidOutput(e)))?;
                Ok(ScalingOutcome {
                    policy: self.name.clone(),
                    digest: self.digest.clone(),
                    desired: d.desired,
                    total: d.total,
                    reason: validate::clip_text(d.reason, validate::SUMMARY_MAX),
                    state: d.state,
                })
            }
            Ok(Err(msg)) => Err(self.error(PolicyErrorKind::Refused(validate::clip_text(msg, validate::REASON_MAX)))),
            Err(e) => Err(self.classify(e, &store, "scale")),
        }
    }
}
