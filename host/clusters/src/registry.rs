//! The set of workload clusters, changed at runtime by its sources, and the signals the
//! controllers react to: a fleet version that moves on every observed change, and owner
//! triggers when a child changes what its owner reads back.

use crate::member::Member;
use crate::notifier::Notifier;
use crate::source::{self, ClusterSpec};
use crate::watch::{self, Change, Provided};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client};
use mck8s_api::labels;
use mck8s_fleet::{ClusterState, FleetSource, Health, Observed, OwnerKey, StateCache};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Default)]
pub struct Registry {
    members: RwLock<BTreeMap<String, Arc<Member>>>,
    notifier: Arc<Notifier>,
    rtt: RwLock<mck8s_fleet::Rtts>,
    traffic: RwLock<HashMap<String, f64>>,
    /// Each member's last state, by (revision, health, traffic): a cycle rebuilds only the
    /// clusters that changed since the last one.
    states: Mutex<StateCache<StateKey>>,
}

/// What a member's cached state was built from: its revision, its health, its traffic's bits.
type StateKey = ((u64, u64), Health, u64);

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Registry::default())
    }

    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    /// Owners whose children or pods changed in some cluster.
    pub fn subscribe_owners(&self) -> mpsc::UnboundedReceiver<OwnerKey> {
        self.notifier.subscribe_owners()
    }

    /// Clusters whose reachability changed, and clusters added or removed.
    pub fn subscribe_health(&self) -> mpsc::UnboundedReceiver<String> {
        self.notifier.subscribe_health()
    }

    /// Adds or replaces a cluster; a spec identical to the connected one is a no-op.
    pub async fn upsert(&self, spec: ClusterSpec) -> Result<(), crate::member::ConnectError> {
        if let Some(m) = self.get(&spec.name)
            && m.fingerprint == spec.fingerprint
        {
            return Ok(());
        }
        let member = Member::connect(&spec, self.notifier.clone()).await?;
        self.members.write().unwrap_or_else(|p| p.into_inner()).insert(spec.name.clone(), member);
        self.notifier.changed();
        self.notifier.health_changed(&spec.name);
        Ok(())
    }

    /// Removes `name` if `source` registered it.
    pub fn remove(&self, name: &str, source: &str) -> bool {
        let mut members = self.members.write().unwrap_or_else(|p| p.into_inner());
        if members.get(name).is_some_and(|m| m.source == source) {
            members.remove(name);
            drop(members);
            tracing::info!(cluster = name, source, "workload cluster removed");
            self.notifier.changed();
            self.notifier.health_changed(name);
            return true;
        }
        false
    }

    /// Makes `source`'s clusters exactly `specs`.
    pub async fn sync_source(&self, source: &str, specs: Vec<ClusterSpec>) {
        let keep: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        for spec in specs {
            let name = spec.name.clone();
            if let Err(e) = self.upsert(spec).await {
                tracing::error!(cluster = %name, error = %e, "cannot connect to workload cluster");
            }
        }
        let stale: Vec<String> = self.members().iter().filter(|m| m.source == source && !keep.contains(&m.name)).map(|m| m.name.clone()).collect();
        for name in stale {
            self.remove(&name, source);
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Member>> {
        self.members.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    pub fn members(&self) -> Vec<Arc<Member>> {
        self.members.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    pub fn set_rtt(&self, rtt: Vec<(String, String, f32)>) {
        let mut cur = self.rtt.write().unwrap_or_else(|p| p.into_inner());
        if **cur != rtt {
            *cur = Arc::new(rtt);
            self.notifier.changed();
        }
    }

    pub fn set_traffic(&self, traffic: HashMap<String, f64>) {
        let mut cur = self.traffic.write().unwrap_or_else(|p| p.into_inner());
        if *cur != traffic {
            *cur = traffic;
            self.notifier.changed();
        }
    }

    /// Waits until every registered cluster has listed its nodes and pods, or `timeout`.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let members = self.members();
            if !members.is_empty() && members.iter().all(|m| m.settled()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The fleet for a decision cycle (`mck8s_scheduler::Cycles` keeps the last one).
impl FleetSource for Registry {
    fn version(&self) -> u64 {
        self.notifier.version()
    }

    fn observe(&self) -> Observed {
        // The version is read first, so a cycle is never newer than the version it carries.
        let version = self.notifier.version();
        let traffic = self.traffic.read().unwrap_or_else(|p| p.into_inner()).clone();
        let members = self.members();
        let states: Vec<Arc<ClusterState>> = {
            let mut cache = self.states.lock().unwrap_or_else(|p| p.into_inner());
            let states = members
                .iter()
                .map(|m| {
                    let t = traffic.get(&m.name).copied().unwrap_or(0.0);
                    // The key is read before the state, so a state is never older than its key.
                    cache.get(&m.name, (m.revision(), m.health(), t.to_bits()), || m.state(t))
                })
                .collect();
            if cache.len() > members.len() {
                let present: std::collections::HashSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
                cache.retain(|name| present.contains(name));
            }
            states
        };
        let rtt = self.rtt.read().unwrap_or_else(|p| p.into_inner()).clone();
        Observed { states, rtt, version }
    }
}

/// Keeps the clusters of a kubeconfig file or directory registered, re-reading it when it
/// changes (a mounted Secret updates by swapping a symlink, so the directory is watched).
pub async fn watch_path(registry: Arc<Registry>, path: PathBuf, exclude: Vec<String>, trust: crate::Trust) {
    use notify::Watcher;
    let source = format!("file:{}", path.display());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watch_dir = if path.is_dir() { path.clone() } else { path.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")) };
    let _watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .and_then(|mut w| w.watch(&watch_dir, notify::RecursiveMode::NonRecursive).map(|_| w));
    if let Err(e) = &_watcher {
        tracing::warn!(path = %path.display(), error = %e, "cannot watch kubeconfig path; it is read once");
    }
    loop {
        match source::from_path(&path, &exclude, trust) {
            Ok((specs, refused)) => {
                // A refused context never gets a client.
                for e in &refused {
                    tracing::error!(error = %e, "workload cluster kubeconfig refused");
                }
                registry.sync_source(&source, specs).await
            }
            // Keep what is connected: a half-written file must not drop every cluster.
            Err(e) => tracing::error!(error = %e, "workload cluster kubeconfig"),
        }
        if rx.recv().await.is_none() {
            return;
        }
        // Debounce bursts of events from one write.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while rx.try_recv().is_ok() {}
    }
}

/// Keeps the clusters of labelled kubeconfig Secrets in `namespace` registered.
pub async fn watch_secrets(registry: Arc<Registry>, client: Client, namespace: String) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let stream = watcher::watcher(api, crate::client::watch_config().labels(labels::CLUSTER_SECRET)).default_backoff();
    let mut changes = std::pin::pin!(watch::changes(stream, "cluster secret".into(), true));
    // Secret name → the cluster it registered (one each).
    let mut provided: Provided<String> = Provided::default();
    let remove = |secret: &str, clusters: Vec<String>| {
        for cluster in clusters {
            registry.remove(&cluster, &format!("secret:{namespace}/{secret}"));
        }
    };
    while let Some(change) = changes.next().await {
        match change {
            Change::Reset(secrets) => {
                for s in &secrets {
                    apply_secret(&registry, &mut provided, s).await;
                }
                let names = secrets.iter().filter_map(|s| s.metadata.name.clone()).collect();
                for (secret, clusters) in provided.retain(&names) {
                    remove(&secret, clusters);
                }
            }
            Change::Applied(s) => apply_secret(&registry, &mut provided, &s).await,
            Change::Deleted(s) => {
                let secret = s.metadata.name.clone().unwrap_or_default();
                remove(&secret, provided.remove(&secret));
            }
        }
    }
}

/// Registers a Secret's cluster. A Secret that cannot be read keeps its previous cluster
/// (a bad edit must not disconnect it); one that now names another cluster drops the old one.
async fn apply_secret(registry: &Registry, provided: &mut Provided<String>, secret: &Secret) {
    let key = secret.metadata.name.clone().unwrap_or_default();
    match source::from_secret(secret) {
        Ok(spec) => {
            let (name, src) = (spec.name.clone(), spec.source.clone());
            for old in provided.set(&key, [name.clone()].into()) {
                registry.remove(&old, &src);
            }
            if let Err(e) = registry.upsert(spec).await {
                tracing::error!(cluster = %name, error = %e, "cannot connect to workload cluster");
            }
        }
        Err(e) => tracing::error!(error = %e, "invalid cluster secret"),
    }
}
