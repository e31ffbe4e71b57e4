//! One checked, compiled version of one policy, ready to instantiate cheaply.

use crate::bindings::{placement, scaling, wit_explain, wit_updates};
use crate::engine::PolicyEngine;
use crate::error::{PolicyError, PolicyErrorKind};
pub use crate::inspect::PolicyKind;
use crate::inspect::{self, Surface};
use crate::limits::Limits;
use crate::state::{CallClock, GuestState};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::Instant;
use wasmtime::Trap;
use wasmtime::{Store, UpdateDeadline};

/// What the policy says about itself (`info`).
#[derive(Clone, Debug, Serialize)]
pub struct PolicyInfo {
    pub name: String,
    pub description: String,
    pub parameters: Vec<String>,
}

pub(crate) enum Pre {
    Placement(PlacementPre),
    Scaling(scaling::ScalingPre<GuestState>),
}

/// A placement component, linked. `updates` is there when it exports `fleet-updates` (0.1.1),
/// `explains` when it exports `explanations` (0.1.2).
pub(crate) struct PlacementPre {
    pub pre: wasmtime::component::InstancePre<GuestState>,
    pub placer: placement::PlacementIndices,
    pub updates: Option<wit_updates::GuestIndices>,
    pub explains: Option<wit_explain::GuestIndices>,
}

/// A live placement instance.
pub(crate) struct PlacementInstance {
    pub placer: placement::Placement,
    pub updates: Option<wit_updates::Guest>,
    pub explains: Option<wit_explain::Guest>,
}

impl PlacementPre {
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self> {
        let placer = placement::PlacementIndices::new(&pre)?;
        let updates = wit_updates::GuestIndices::new(&pre).ok();
        let explains = wit_explain::GuestIndices::new(&pre).ok();
        Ok(PlacementPre { pre, placer, updates, explains })
    }

    pub fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<PlacementInstance> {
        let instance = self.pre.instantiate(&mut *store)?;
        let placer = self.placer.load(&mut *store, &instance)?;
        let updates = self.updates.as_ref().map(|u| u.load(&mut *store, &instance)).transpose()?;
        let explains = self.explains.as_ref().map(|u| u.load(&mut *store, &instance)).transpose()?;
        Ok(PlacementInstance { placer, updates, explains })
    }
}

pub struct LoadedPolicy {
    /// The registry name (file stem or ConfigMap key).
    pub name: String,
    /// Hex sha256 of the component bytes.
    pub digest: String,
    pub kind: PolicyKind,
    /// The mck8s:policy version the component was built for.
    pub wit_version: String,
    /// Where it came from, e.g. `dir:/etc/mck8s/policies/worst-fit.wasm`.
    pub origin: String,
    pub limits: Limits,
    pub info: PolicyInfo,
    pub surface: Surface,
    pub size_bytes: usize,
    /// Whether it takes fleet updates between cycles (exports `fleet-updates`, WIT 0.1.1).
    pub incremental: bool,
    /// Whether it gives reasons for the clusters it passes over (exports `explanations`, WIT
    /// 0.1.2).
    pub explains: bool,
    pub(crate) pre: Pre,
    pub(crate) engine: PolicyEngine,
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy").field("name", &self.name).field("digest", &self.digest).field("kind", &self.kind).field("origin", &self.origin).finish()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl LoadedPolicy {
    /// Compiles (or loads from cache), checks the world, version and imports, links, and
    /// asks the policy for its `info`. It does not run the self-check: see
    /// [`crate::canary`].
    pub fn load(engine: &PolicyEngine, name: &str, bytes: &[u8], origin: &str, limits: Limits) -> Result<LoadedPolicy, PolicyError> {
        let digest = sha256_hex(bytes);
        let err = |kind| PolicyError::new(name, &digest, kind);
        let limits = Limits { memory_bytes: limits.memory_bytes.min(engine.config().max_memory_bytes), ..limits };
        let started = Instant::now();
        let component = engine.compile(bytes, &digest).map_err(err)?;
        let surface = inspect::surface(engine.engine(), &component);
        let (kind, wit_version) = inspect::check(&surface).map_err(err)?;
        let pre = match kind {
            PolicyKind::Placement => engine.placement_linker().instantiate_pre(&component).and_then(PlacementPre::new).map(Pre::Placement),
            PolicyKind::Scaling => engine.scaling_linker().instantiate_pre(&component).and_then(scaling::ScalingPre::new).map(Pre::Scaling),
        }
        .map_err(|e| err(PolicyErrorKind::Instantiate(format!("{e:#}"))))?;
        let mut policy = LoadedPolicy {
            name: name.to_string(),
            digest: digest.clone(),
            kind,
            wit_version,
            origin: origin.to_string(),
            limits,
            info: PolicyInfo { name: String::new(), description: String::new(), parameters: Vec::new() },
            surface,
            size_bytes: bytes.len(),
            incremental: matches!(&pre, Pre::Placement(p) if p.updates.is_some()),
            explains: matches!(&pre, Pre::Placement(p) if p.explains.is_some()),
            pre,
            engine: engine.clone(),
        };
        policy.info = policy.call_info()?;
        tracing::debug!(policy = name, digest = crate::error::short(&digest), elapsed_ms = started.elapsed().as_millis() as u64, "compiled and linked");
        Ok(policy)
    }

    pub(crate) fn error(&self, kind: PolicyErrorKind) -> PolicyError {
        PolicyError::new(&self.name, &self.digest, kind)
    }

    pub(crate) fn new_store(&self) -> Store<GuestState> {
        let mut store = Store::new(self.engine.engine(), GuestState::new(&self.name, &self.digest, self.limits.memory_bytes));
        store.limiter(|s| &mut s.limits);
        // When the epoch deadline passes, check the call's CPU budget: trap if it is spent,
        // else wait for what is left (time lost to the host is not the policy's).
        let engine = self.engine.clone();
        store.epoch_deadline_callback(move |ctx| {
            Ok(match ctx.data().clock.remaining() {
                None => UpdateDeadline::Interrupt,
                Some(left) => UpdateDeadline::Continue(engine.deadline_ticks(left)),
            })
        });
        store
    }

    /// Arms the deadline for one call.
    pub(crate) fn arm(&self, store: &mut Store<GuestState>) {
        self.arm_for(store, self.limits.deadline);
    }

    /// Arms the budget for instantiation. It includes host work (the first instance of a
    /// version builds its memory image), so it gets ten deadlines; guest start-up code is
    /// still bounded.
    pub(crate) fn arm_instantiate(&self, store: &mut Store<GuestState>) {
        self.arm_for(store, self.limits.deadline * 10);
    }

    fn arm_for(&self, store: &mut Store<GuestState>, budget: std::time::Duration) {
        store.data_mut().clock = CallClock::start(budget);
        store.data_mut().log_lines = 0;
        store.set_epoch_deadline(self.engine.deadline_ticks(budget));
    }

    /// Turns a wasmtime error from `call` into a typed policy error.
    pub(crate) fn classify(&self, e: wasmtime::Error, store: &Store<GuestState>, call: &'static str) -> PolicyError {
        let text = format!("{e:?}");
        let kind = if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            let deadline = if call == "instantiate" { self.limits.deadline * 10 } else { self.limits.deadline };
            PolicyErrorKind::Timeout { limit_ms: deadline.as_millis(), call }
        } else if text.contains("forcing trap when growing memory") {
            let detail = e.root_cause().to_string();
            PolicyErrorKind::OutOfMemory { limit_mib: self.limits.memory_bytes >> 20, detail, call }
        } else {
            let trap = match e.downcast_ref::<Trap>() {
                Some(t) => t.to_string(),
                None => format!("{e:#}"),
            };
            PolicyErrorKind::Trap { trap, stderr: store.data().stderr_text(), call }
        };
        self.error(kind)
    }

    fn call_info(&self) -> Result<PolicyInfo, PolicyError> {
        let mut store = self.new_store();
        self.arm_instantiate(&mut store);
        let info = match &self.pre {
            Pre::Placement(pre) => {
                let i = pre.instantiate(&mut store).map_err(|e| self.classify(e, &store, "instantiate"))?;
                self.arm(&mut store);
                i.placer.mck8s_policy_placer().call_info(&mut store).map(|i| PolicyInfo { name: i.name, description: i.description, parameters: i.parameters })
            }
            Pre::Scaling(pre) => {
                let i = pre.instantiate(&mut store).map_err(|e| self.classify(e, &store, "instantiate"))?;
                self.arm(&mut store);
                i.mck8s_policy_scaler().call_info(&mut store).map(|i| PolicyInfo { name: i.name, description: i.description, parameters: i.parameters })
            }
        };
        info.map_err(|e| self.classify(e, &store, "info"))
    }
}
