//! The policy registry: name → the version that serves decisions now.
//!
//! Readers take an `Arc` snapshot with one atomic load and never wait for a reload. A new
//! version is compiled, checked and self-checked off the decision path, then swapped in;
//! if any step fails it is refused, logged with its sha256, and the previous version keeps
//! serving. Sources (a directory, a ConfigMap) feed [`PolicyRegistry::upsert`] and
//! [`PolicyRegistry::remove`]; [`PolicyRegistry::subscribe`] tells controllers what changed,
//! so objects that name a policy are decided again at once (nobody polls).

use crate::canary;
use crate::engine::PolicyEngine;
use crate::error::{PolicyError, PolicyErrorKind, short};
use crate::limits::Limits;
use crate::loaded::{LoadedPolicy, sha256_hex};
use crate::session::PlacementSession;
use crate::snapshot::FleetSnapshot;
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Policy names are matched with `_` and `-` as the same character, case-insensitively, as
/// mck8s accepted `worst_fit` and `worst-fit`.
pub fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// A version that was refused, kept for status reporting.
#[derive(Clone, Debug, Serialize)]
pub struct Refusal {
    pub name: String,
    pub digest: String,
    pub origin: String,
    pub error: String,
}

pub struct PolicyRegistry {
    engine: PolicyEngine,
    current: ArcSwap<BTreeMap<String, Arc<LoadedPolicy>>>,
    /// Active policy → the policy that shadows it (its decisions evaluated beside the active
    /// one's, never applied). Declared by the source that provides the shadow.
    shadows: ArcSwap<BTreeMap<String, String>>,
    /// Serializes writers; readers never take it.
    writer: Mutex<Writer>,
}

/// A version of `name` started or stopped serving (`digest` is the new one, `None` when the
/// policy was removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyChange {
    pub name: String,
    pub digest: Option<String>,
}

/// Called on every change, in order, under the writer lock: it must only hand the change on
/// (a channel send), never call back into the registry.
pub type Subscriber = Box<dyn Fn(&PolicyChange) + Send + Sync>;

#[derive(Default)]
struct Writer {
    limits: HashMap<String, Limits>,
    refused: BTreeMap<String, Refusal>,
    subscribers: Vec<Subscriber>,
}

impl Writer {
    fn publish(&self, change: PolicyChange) {
        for s in &self.subscribers {
            s(&change);
        }
    }
}

impl PolicyRegistry {
    pub fn new(engine: PolicyEngine) -> Self {
        PolicyRegistry { engine, current: ArcSwap::from_pointee(BTreeMap::new()), shadows: ArcSwap::from_pointee(BTreeMap::new()), writer: Mutex::new(Writer::default()) }
    }

    pub fn engine(&self) -> &PolicyEngine {
        &self.engine
    }

    /// The version serving `name` now.
    pub fn get(&self, name: &str) -> Result<Arc<LoadedPolicy>, PolicyError> {
        let key = normalize(name);
        self.current.load().get(&key).cloned().ok_or_else(|| PolicyError::new(&key, "", PolicyErrorKind::NotFound(key.clone())))
    }

    /// A placement session on the current version of `name` for one cycle's fleet.
    pub fn placement_session(&self, name: &str, fleet: Arc<FleetSnapshot>) -> Result<PlacementSession, PolicyError> {
        PlacementSession::new(self.get(name)?, fleet)
    }

    /// Declares `shadow` the shadow of `of`, or no shadow of anything (`None`). A policy
    /// shadows at most one other, and has at most one shadow: a second claim on the same
    /// active policy replaces the first.
    pub fn set_shadow(&self, shadow: &str, of: Option<&str>) {
        let (shadow, of) = (normalize(shadow), of.map(normalize));
        let _writer = self.writer.lock().expect("registry lock");
        let now = self.shadows.load();
        let unchanged = match &of {
            Some(active) => now.get(active) == Some(&shadow) && now.iter().filter(|(_, s)| **s == shadow).count() == 1,
            None => !now.values().any(|s| *s == shadow),
        };
        if unchanged {
            return;
        }
        if of.as_deref() == Some(shadow.as_str()) {
            tracing::warn!(policy = %shadow, "a policy cannot shadow itself; ignored");
            return;
        }
        self.shadows.rcu(|map| {
            let mut map = BTreeMap::clone(map);
            map.retain(|_, s| *s != shadow);
            if let Some(active) = &of
                && let Some(before) = map.insert(active.clone(), shadow.clone())
            {
                tracing::warn!(active = %active, replaced = %before, by = %shadow, "two shadows for one policy: the last declared wins");
            }
            map
        });
        match &of {
            Some(active) => tracing::info!(policy = %shadow, shadows = %active, "shadow policy declared"),
            None => tracing::info!(policy = %shadow, "no longer a shadow"),
        }
    }

    /// The loaded shadow of `active`, if one is declared and serving.
    pub fn shadow_of(&self, active: &str) -> Option<Arc<LoadedPolicy>> {
        let shadows = self.shadows.load();
        if shadows.is_empty() {
            return None;
        }
        let name = shadows.get(&normalize(active))?;
        self.current.load().get(name).cloned()
    }

    /// Active policy → its shadow, as declared.
    pub fn shadows(&self) -> BTreeMap<String, String> {
        BTreeMap::clone(&self.shadows.load())
    }

    pub fn list(&self) -> Vec<Arc<LoadedPolicy>> {
        self.current.load().values().cloned().collect()
    }

    pub fn refusals(&self) -> Vec<Refusal> {
        self.writer.lock().expect("registry lock").refused.values().cloned().collect()
    }

    /// `subscriber` is told of every version that starts or stops serving from now on. A
    /// subscriber whose receiver is gone stays registered and costs one failed send.
    pub fn subscribe(&self, subscriber: Subscriber) {
        self.writer.lock().expect("registry lock").subscribers.push(subscriber);
    }

    /// Limits for `name` from its next load on (the engine's defaults otherwise).
    pub fn set_limits(&self, name: &str, limits: Limits) {
        self.writer.lock().expect("registry lock").limits.insert(normalize(name), limits);
    }

    /// Loads `bytes` as the new version of `name`. Returns the serving version: the new one,
    /// or the unchanged one when the bytes are the version already serving. On error the
    /// previous version (if any) keeps serving.
    pub fn upsert(&self, name: &str, bytes: &[u8], origin: &str) -> Result<Arc<LoadedPolicy>, PolicyError> {
        let key = normalize(name);
        let digest = sha256_hex(bytes);
        let mut writer = self.writer.lock().expect("registry lock");
        if let Some(cur) = self.current.load().get(&key)
            && cur.digest == digest
        {
            return Ok(cur.clone());
        }
        if let Some(r) = writer.refused.get(&key)
            && r.digest == digest
        {
            return Err(PolicyError::new(&key, &digest, PolicyErrorKind::Incompatible(format!("was refused before: {}", r.error))));
        }
        let limits = writer.limits.get(&key).copied().unwrap_or(self.engine.config().default_limits);
        let span = tracing::info_span!("policy.load", policy = %key, digest = short(&digest), origin);
        let _guard = span.enter();
        let serving_kind = self.current.load().get(&key).map(|p| p.kind);
        let loaded = LoadedPolicy::load(&self.engine, &key, bytes, origin, limits).map(Arc::new).and_then(|p| {
            if let Some(kind) = serving_kind.filter(|k| *k != p.kind) {
                return Err(p.error(PolicyErrorKind::Incompatible(format!("is a {:?} policy but {key:?} serves {:?} decisions; use another name", p.kind, kind))));
            }
            canary::self_check(&p)?;
            Ok(p)
        });
        match loaded {
            Ok(policy) => {
                let previous = self.current.load().get(&key).map(|p| p.digest.clone());
                self.current.rcu(|map| {
                    let mut map = BTreeMap::clone(map);
                    map.insert(key.clone(), policy.clone());
                    map
                });
                writer.refused.remove(&key);
                tracing::info!(
                    kind = ?policy.kind,
                    wit = %policy.wit_version,
                    previous = previous.as_deref().map(short).unwrap_or("none"),
                    "policy loaded"
                );
                writer.publish(PolicyChange { name: key.clone(), digest: Some(policy.digest.clone()) });
                Ok(policy)
            }
            Err(e) => {
                let serving = self.current.load().get(&key).map(|p| short(&p.digest).to_string());
                tracing::warn!(error = %e, still_serving = serving.as_deref().unwrap_or("none"), "policy refused");
                writer.refused.insert(key.clone(), Refusal { name: key.clone(), digest: digest.clone(), origin: origin.to_string(), error: e.to_string() });
                Err(e)
            }
        }
    }

    /// Removes `name` if the serving version came from `origin` (a source cannot remove
    /// what another source provided).
    pub fn remove(&self, name: &str, origin: &str) -> bool {
        let key = normalize(name);
        let mut writer = self.writer.lock().expect("registry lock");
        writer.refused.remove(&key);
        let owned = self.current.load().get(&key).is_some_and(|p| p.origin == origin);
        if owned {
            self.current.rcu(|map| {
                let mut map = BTreeMap::clone(map);
                map.remove(&key);
                map
            });
            // A removed shadow shadows nothing.
            if self.shadows.load().values().any(|s| *s == key) {
                self.shadows.rcu(|map| {
                    let mut map = BTreeMap::clone(map);
                    map.retain(|_, s| *s != key);
                    map
                });
            }
            tracing::info!(policy = %key, origin, "policy removed");
            writer.publish(PolicyChange { name: key.clone(), digest: None });
        }
        owned
    }
}
