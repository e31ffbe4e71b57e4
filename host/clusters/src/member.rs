//! One connected workload cluster: its client, health, capacity inventory and the children
//! mck8s put there, each kept current by a watch. Dropping it stops its tasks.

use crate::client::{Clients, watch_config};
use crate::notifier::Notifier;
use crate::source::ClusterSpec;
use crate::watch::{self, Change};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use mck8s_api::labels;
use mck8s_fleet::{ClusterInventory, ClusterState, Health, OwnerKey, Role};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::AbortHandle;

/// How often the API server is probed, and how long a probe may take.
const PROBE_EVERY: Duration = Duration::from_secs(3);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct State {
    inventory: ClusterInventory,
    reachable: bool,
    /// At least one probe finished.
    probed: bool,
    nodes_synced: bool,
    pods_synced: bool,
    /// The health last reported, and since when the cluster has not been Ready (None while
    /// Ready). A cluster starts unhealthy: until it answers, nothing is known to run there.
    health: Health,
    unhealthy_since: Option<Instant>,
}

impl Default for State {
    fn default() -> Self {
        State {
            inventory: ClusterInventory::default(),
            reachable: false,
            probed: false,
            nodes_synced: false,
            pods_synced: false,
            health: Health::Unreachable,
            unhealthy_since: Some(Instant::now()),
        }
    }
}

impl State {
    fn current_health(&self) -> Health {
        if !self.reachable {
            Health::Unreachable
        } else if self.inventory.ready_nodes() == 0 {
            Health::NotReady
        } else {
            Health::Ready
        }
    }

    /// Records a health transition; true when the health changed.
    fn refresh_health(&mut self) -> bool {
        let now = self.current_health();
        if now == self.health {
            return false;
        }
        match (&self.health, &now) {
            (Health::Ready, _) => self.unhealthy_since = Some(Instant::now()),
            (_, Health::Ready) => self.unhealthy_since = None,
            _ => {}
        }
        self.health = now;
        true
    }
}

pub struct Member {
    pub name: String,
    pub role: Option<Role>,
    pub labels: BTreeMap<String, String>,
    pub source: String,
    pub fingerprint: u64,
    /// Unique per connection, so a cluster connected again never reuses the old one's
    /// cached state (see [`Member::revision`]).
    instance: u64,
    pub client: Client,
    /// What mck8s put in this cluster (labelled `app.kubernetes.io/managed-by: mck8s`),
    /// kept current by watches.
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub jobs: Store<Job>,
    state: Arc<Mutex<State>>,
    tasks: Vec<AbortHandle>,
}

static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for Member {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cluster {cluster}: kubeconfig context {context:?}: {message}")]
    Config { cluster: String, context: String, message: String },
}

impl Member {
    pub async fn connect(spec: &ClusterSpec, notifier: Arc<Notifier>) -> Result<Arc<Self>, ConnectError> {
        let opts = kube::config::KubeConfigOptions { context: Some(spec.context.clone()), ..Default::default() };
        let bad = |message: String| ConnectError::Config { cluster: spec.name.clone(), context: spec.context.clone(), message };
        let config = kube::Config::from_custom_kubeconfig(spec.kubeconfig.clone(), &opts).await.map_err(|e| bad(e.to_string()))?;
        let Clients { requests: client, watches } = Clients::new(config).map_err(|e| bad(e.to_string()))?;
        let state = Arc::new(Mutex::new(State::default()));
        let (deployments, d_writer) = reflector::store();
        let (services, s_writer) = reflector::store();
        let (jobs, j_writer) = reflector::store();
        let tasks = vec![
            tokio::spawn(watch_nodes(spec.name.clone(), watches.clone(), state.clone(), notifier.clone())).abort_handle(),
            tokio::spawn(watch_pods(spec.name.clone(), watches.clone(), state.clone(), notifier.clone())).abort_handle(),
            tokio::spawn(probe(spec.name.clone(), client.clone(), state.clone(), notifier.clone())).abort_handle(),
            tokio::spawn(watch_children(spec.name.clone(), watches.clone(), d_writer, notifier.clone(), watch::lean_deployment)).abort_handle(),
            tokio::spawn(watch_children(spec.name.clone(), watches.clone(), s_writer, notifier.clone(), watch::lean)).abort_handle(),
            tokio::spawn(watch_children(spec.name.clone(), watches, j_writer, notifier, watch::lean_job)).abort_handle(),
        ];
        tracing::info!(cluster = %spec.name, source = %spec.source, "workload cluster added");
        Ok(Arc::new(Member {
            name: spec.name.clone(),
            role: spec.role.clone(),
            labels: spec.labels.clone(),
            source: spec.source.clone(),
            fingerprint: spec.fingerprint,
            instance: NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            client,
            deployments,
            services,
            jobs,
            state,
            tasks,
        }))
    }

    /// Ready: the API server answers and at least one node is Ready. NotReady: it answers
    /// but no node is. Unreachable: it does not answer.
    pub fn health(&self) -> Health {
        if self.cordoned() {
            return Health::NotReady;
        }
        self.state.lock().unwrap_or_else(|p| p.into_inner()).current_health()
    }

    /// Its Secret says it takes no new placements (a cloud cluster about to be removed).
    pub fn cordoned(&self) -> bool {
        self.labels.get(labels::CLUSTER_CORDONED).is_some_and(|v| v == "true")
    }

    /// How long the cluster has not been Ready (None when it is Ready): failover waits for
    /// this to pass a grace period.
    pub fn unhealthy_for(&self) -> Option<Duration> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.current_health() == Health::Ready && !self.cordoned() {
            return None;
        }
        Some(s.unhealthy_since.map(|t| t.elapsed()).unwrap_or_default())
    }

    /// A cloud cluster: its role says so or, without a role, its name contains `cloud` (the
    /// mck8s convention). The rescheduler moves replicas from these back to the fog.
    pub fn is_cloud(&self) -> bool {
        match &self.role {
            Some(r) => matches!(r, Role::Cloud),
            None => self.name.contains("cloud"),
        }
    }

    /// Both watches have listed once: capacity is known.
    pub fn synced(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.nodes_synced && s.pods_synced
    }

    /// Whether a decision may use this cluster's state now: it was probed, and it is either
    /// synced or unreachable (waiting longer for an unreachable cluster would not help).
    pub fn settled(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.probed && ((s.nodes_synced && s.pods_synced) || !s.reachable)
    }

    /// Moves whenever [`Member::state`] may give something new, apart from health and
    /// traffic: (this connection, its node and pod events).
    pub fn revision(&self) -> (u64, u64) {
        (self.instance, self.state.lock().unwrap_or_else(|p| p.into_inner()).inventory.revision())
    }

    /// The cluster as the scheduler sees it now.
    pub fn state(&self, traffic: f64) -> ClusterState {
        let health = self.health();
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (nodes, owned) = s.inventory.snapshot();
        ClusterState { name: self.name.clone(), role: self.role.clone(), health, labels: self.labels.clone(), nodes, owned, traffic, cost: 0.0 }
    }

    /// Child Deployments of `owner` in this cluster, from the watch cache.
    pub fn children_of(&self, owner: &OwnerKey) -> Vec<Arc<Deployment>> {
        owned_by(&self.deployments, owner)
    }

    /// Child Services of `owner` in this cluster, from the watch cache.
    pub fn services_of(&self, owner: &OwnerKey) -> Vec<Arc<Service>> {
        owned_by(&self.services, owner)
    }

    /// Child Jobs of `owner` in this cluster, from the watch cache.
    pub fn jobs_of(&self, owner: &OwnerKey) -> Vec<Arc<Job>> {
        owned_by(&self.jobs, owner)
    }
}

/// The objects in `store` labelled as children of `owner`.
pub fn owned_by<K: Resource + Clone>(store: &Store<K>, owner: &OwnerKey) -> Vec<Arc<K>>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let value = labels::owner_value(&owner.name);
    store
        .state()
        .into_iter()
        .filter(|d| d.meta().namespace.as_deref() == Some(owner.namespace.as_str()) && labels::labelled_owner(d.meta().labels.as_ref(), &owner.kind, &value))
        .collect()
}

fn owner_of<K: Resource>(obj: &K) -> Option<OwnerKey> {
    let meta = obj.meta();
    let (kind, name) = labels::owner_of(meta.labels.as_ref(), meta.annotations.as_ref())?;
    Some(OwnerKey { kind, namespace: meta.namespace.clone().unwrap_or_default(), name })
}

async fn watch_nodes(cluster: String, client: Client, state: Arc<Mutex<State>>, notifier: Arc<Notifier>) {
    let api: Api<Node> = Api::all(client);
    let stream = watcher::watcher(api, watch_config()).default_backoff();
    let mut changes = std::pin::pin!(watch::changes(stream, format!("{cluster}: node"), false));
    while let Some(change) = changes.next().await {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        match change {
            Change::Reset(nodes) => {
                s.inventory.reset_nodes(&nodes);
                s.nodes_synced = true;
            }
            Change::Applied(n) => {
                if !s.inventory.apply_node(&n) {
                    continue;
                }
            }
            Change::Deleted(n) => {
                if !s.inventory.delete_node(n.metadata.name.as_deref().unwrap_or("")) {
                    continue;
                }
            }
        }
        let health_changed = s.refresh_health();
        drop(s);
        notifier.changed();
        if health_changed {
            tracing::info!(%cluster, health = ?health_of(&state), "cluster health changed (nodes)");
            notifier.health_changed(&cluster);
        }
    }
}

async fn watch_pods(cluster: String, client: Client, state: Arc<Mutex<State>>, notifier: Arc<Notifier>) {
    let api: Api<Pod> = Api::all(client);
    // Terminated pods hold nothing; the server filters them (and reports them deleted).
    let config = watch_config().fields("status.phase!=Succeeded,status.phase!=Failed");
    let stream = watcher::watcher(api, config).default_backoff();
    let mut changes = std::pin::pin!(watch::changes(stream, format!("{cluster}: pod"), false));
    while let Some(change) = changes.next().await {
        let mut owner = None;
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        match change {
            Change::Reset(pods) => {
                s.inventory.reset_pods(&pods);
                s.pods_synced = true;
            }
            // Only a pod bound, moved or gone changes capacity or its owner's placement; its
            // status updates (started, ready) wake nobody (the owner follows its children).
            Change::Applied(p) => {
                if !s.inventory.apply_pod(&p) {
                    continue;
                }
                owner = owner_of(&p);
            }
            Change::Deleted(p) => {
                if !s.inventory.delete_pod(&p) {
                    continue;
                }
                owner = owner_of(&p);
            }
        }
        drop(s);
        notifier.changed();
        if let Some(o) = owner {
            notifier.trigger(o);
        }
    }
}

fn health_of(state: &Mutex<State>) -> Health {
    state.lock().unwrap_or_else(|p| p.into_inner()).current_health()
}

/// Keeps `writer`'s store of mck8s's children of one kind current and triggers their owners.
async fn watch_children<K>(cluster: String, client: Client, writer: reflector::store::Writer<K>, notifier: Arc<Notifier>, lean: fn(&mut K))
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
    K: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
{
    let api: Api<K> = Api::all(client);
    let config = watch_config().labels(&format!("{}={}", labels::MANAGED_BY_KEY, labels::MANAGED_BY));
    let mut stream = watcher::watcher(api, config).default_backoff().modify(lean).reflect(writer).boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Apply(d) | Event::Delete(d) | Event::InitApply(d)) => {
                if let Some(o) = owner_of(&d) {
                    notifier.trigger(o);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(%cluster, kind = %K::kind(&Default::default()), error = %e, "child watch"),
        }
    }
}

async fn probe(cluster: String, client: Client, state: Arc<Mutex<State>>, notifier: Arc<Notifier>) {
    loop {
        let ok = matches!(tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await, Ok(Ok(_)));
        let (changed, health_changed) = {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            let changed = s.reachable != ok || !s.probed;
            s.reachable = ok;
            s.probed = true;
            (changed, s.refresh_health())
        };
        if changed {
            if ok {
                tracing::info!(%cluster, "cluster reachable");
            } else {
                tracing::warn!(%cluster, "cluster unreachable");
            }
            notifier.changed();
        }
        if changed || health_changed {
            notifier.health_changed(&cluster);
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}
