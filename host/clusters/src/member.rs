//! One connected workload cluster: its client, health, capacity inventory and the children
//! mck8s put there, each kept current by a watch. Dropping it stops its tasks.

use crate::child::{Child, ChildCache};
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
use kube::runtime::watcher;
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
            tokio::spawn(watch_children(spec.name.clone(), watches.clone(), d_writer, notifier.clone())).abort_handle(),
            tokio::spawn(watch_children(spec.name.clone(), watches.clone(), s_writer, notifier.clone())).abort_handle(),
            tokio::spawn(watch_children(spec.name.clone(), watches, j_writer, notifier)).abort_handle(),
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

    /// `owner`'s child Deployment in this cluster (named like its owner), from the watch cache.
    pub fn child_of(&self, owner: &OwnerKey) -> Option<Arc<Deployment>> {
        named_child(&self.deployments, owner)
    }

    /// `owner`'s child Service in this cluster, from the watch cache.
    pub fn service_of(&self, owner: &OwnerKey) -> Option<Arc<Service>> {
        named_child(&self.services, owner)
    }

    /// `owner`'s child Job in this cluster, from the watch cache.
    pub fn job_of(&self, owner: &OwnerKey) -> Option<Arc<Job>> {
        named_child(&self.jobs, owner)
    }

    /// Every Deployment in this cluster labelled as `owner`'s, whatever its name: for clean-up.
    pub fn children_of(&self, owner: &OwnerKey) -> Vec<Arc<Deployment>> {
        owned_by(&self.deployments, owner)
    }

    /// Every Service labelled as `owner`'s: for clean-up.
    pub fn services_of(&self, owner: &OwnerKey) -> Vec<Arc<Service>> {
        owned_by(&self.services, owner)
    }

    /// Every Job labelled as `owner`'s: for clean-up.
    pub fn jobs_of(&self, owner: &OwnerKey) -> Vec<Arc<Job>> {
        owned_by(&self.jobs, owner)
    }
}

/// `owner`'s child in `store`: the object under the owner's own name (every child is named
/// like its owner), if its labels name this owner. One lookup: this runs for every cluster in
/// every reconcile, where a scan of the store cost O(children in the cluster).
pub fn named_child<K: Resource + Clone>(store: &Store<K>, owner: &OwnerKey) -> Option<Arc<K>>
where
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let key = reflector::ObjectRef::new(&owner.name).within(&owner.namespace);
    store.get(&key).filter(|o| labels::labelled_owner(o.meta().labels.as_ref(), &owner.kind, &labels::owner_value(&owner.name)))
}

/// Every object in `store` labelled as a child of `owner`, whatever its name. A scan of the
/// whole store: for deleting an owner's children, where a stray one must not be missed.
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
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let counted = match change {
            Change::Reset(pods) => {
                s.inventory.reset_pods(&pods);
                s.pods_synced = true;
                true
            }
            // Only a pod bound, moved or gone changes capacity; its status updates (started,
            // ready) change nothing counted.
            Change::Applied(p) => s.inventory.apply_pod(&p),
            Change::Deleted(p) => s.inventory.delete_pod(&p),
        };
        drop(s);
        // A pod wakes no owner: an owner's reconcile reads its children (their ready
        // replicas), never its pods. What it owns bound is read at the next decision, from
        // the cycle this bump rebuilds (the ledger's outstanding replicas).
        if counted {
            notifier.changed();
        }
    }
}

fn health_of(state: &Mutex<State>) -> Health {
    state.lock().unwrap_or_else(|p| p.into_inner()).current_health()
}

/// Keeps `writer`'s store of mck8s's children of one kind current, waking the owners
/// [`ChildCache`] names.
async fn watch_children<K>(cluster: String, client: Client, writer: reflector::store::Writer<K>, notifier: Arc<Notifier>)
where
    K: Child + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
    K: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
{
    let api: Api<K> = Api::all(client);
    let config = watch_config().labels(&format!("{}={}", labels::MANAGED_BY_KEY, labels::MANAGED_BY));
    let mut cache = ChildCache::new(writer);
    let mut stream = watcher::watcher(api, config).default_backoff().modify(Child::lean).boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => cache.apply(&ev).into_iter().for_each(|o| notifier.trigger(o)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deployment(name: &str, owner: Option<(&str, &str)>) -> Deployment {
        let labels = owner
            .map(|(kind, owner)| BTreeMap::from([(labels::OWNER_KIND.to_string(), kind.to_string()), (labels::OWNER_NAME.to_string(), labels::owner_value(owner).into_owned())]));
        Deployment { metadata: ObjectMeta { name: Some(name.into()), namespace: Some("apps".into()), labels, ..Default::default() }, ..Default::default() }
    }

    fn store_of(objects: Vec<Deployment>) -> Store<Deployment> {
        let (reader, mut writer) = reflector::store();
        for o in objects {
            writer.apply_watcher_event(&watcher::Event::Apply(o));
        }
        reader
    }

    fn key(name: &str) -> OwnerKey {
        OwnerKey { kind: "MultiClusterDeployment".into(), namespace: "apps".into(), name: name.into() }
    }

    #[test]
    fn the_named_child_is_found_by_name_and_only_if_its_labels_name_the_owner() {
        let long = "x".repeat(80);
        let store = store_of(vec![
            deployment("web", Some(("MultiClusterDeployment", "web"))),
            deployment("users-own", None),
            deployment("job-like", Some(("MultiClusterJob", "job-like"))),
            deployment("stray", Some(("MultiClusterDeployment", "web"))),
            deployment(&long, Some(("MultiClusterDeployment", &long))),
        ]);
        assert_eq!(named_child(&store, &key("web")).and_then(|d| d.metadata.name.clone()).as_deref(), Some("web"));
        assert!(named_child(&store, &key("users-own")).is_none(), "a user's object of the owner's name is not a child");
        assert!(named_child(&store, &key("job-like")).is_none(), "a child of another kind is not this owner's");
        assert!(named_child(&store, &key("absent")).is_none());
        assert!(named_child(&store, &key(&long)).is_some(), "a long owner name is compared through its hashed label");
        let mut other_namespace = key("web");
        other_namespace.namespace = "other".into();
        assert!(named_child(&store, &other_namespace).is_none());
        // The clean-up scan still finds a labelled child under another name.
        let mut all: Vec<_> = owned_by(&store, &key("web")).iter().filter_map(|d| d.metadata.name.clone()).collect();
        all.sort();
        assert_eq!(all, ["stray", "web"]);
    }
}
