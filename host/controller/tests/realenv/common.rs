//! A controller run in-process against the test environment, scoped to one namespace of the
//! management cluster (cluster0), with the workload clusters from the merged kubeconfig.
#![allow(dead_code)]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::DeleteParams;
use kube::{Api, Client};
use mck8s_api::{MultiClusterDeployment, MultiClusterJob, MultiClusterService};
use mck8s_controller::Config;
use mck8s_controller::context::Timing;
use mck8s_testenv::{TestEnv, TestNamespace};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

pub const FOG: [&str; 3] = ["cluster1", "cluster2", "cluster3"];
pub const ALL: [&str; 4] = ["cluster1", "cluster2", "cluster3", "cloud1"];

/// Placement tests assert exact capacity: one at a time in this binary. An async lock, held
/// across the test's awaits; a test that panics releases it as it unwinds.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    let _ = tracing_subscriber_init();
    SERIAL.lock().await
}

/// Controller logs in test output when RUST_LOG is set (e.g. RUST_LOG=mck8s_controller=debug).
fn tracing_subscriber_init() -> Option<()> {
    std::env::var_os("RUST_LOG")?;
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init().ok()
}

pub fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

pub fn builtin_dir() -> PathBuf {
    mck8s_policy::built::ensure().unwrap_or_else(|e| panic!("{e}")).join("builtin")
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// The CRDs, installed with real kubectl as a user would.
pub async fn install_crds(env: &TestEnv) {
    CRDS.get_or_init(|| async {
        let out = env.kubectl("cluster0").args(["apply", "-f"]).arg(repo().join("deploy/crds")).output().expect("kubectl");
        assert!(out.status.success(), "kubectl apply deploy/crds: {}", String::from_utf8_lossy(&out.stderr));
        // Watched until Established: `kubectl wait` fails outright on a CRD whose status
        // the API server has not written yet ("status.conditions accessor error").
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::runtime::wait::{await_condition, conditions};
        let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(env.client("cluster0").await.expect("management client"));
        for crd in mck8s_api::crds::all() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
            tokio::time::timeout(std::time::Duration::from_secs(60), established).await.unwrap_or_else(|_| panic!("CRD {name} not Established in 60 s")).expect("watching the CRD");
        }
    })
    .await;
}

pub struct Harness {
    pub env: Arc<TestEnv>,
    pub ns: TestNamespace,
    pub mgmt: Client,
    config: Config,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Why the controller stopped, if it did: a wait that times out says so.
    exited: Arc<Mutex<Option<String>>>,
}

/// The controller as a task that records how it ended.
fn spawn_controller(mgmt: Client, config: Config, exited: Arc<Mutex<Option<String>>>) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        let r = mck8s_controller::run(mgmt, config).await;
        let why = match &r {
            Ok(()) => "returned Ok".to_string(),
            Err(e) => format!("failed: {e:#}"),
        };
        *exited.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        r
    })
}

impl Harness {
    /// A controller for a fresh namespace. `clusters`: the workload clusters it sees.
    pub async fn start(prefix: &str, clusters: &[&str]) -> Harness {
        let env = TestEnv::shared().await.expect("test environment");
        let ns = env.namespace("cluster0", prefix).await.expect("namespace");
        Self::start_in(env, ns, clusters).await
    }

    /// In a namespace made by the caller (e.g. on an exclusively held management cluster).
    pub async fn start_in(env: Arc<TestEnv>, ns: TestNamespace, clusters: &[&str]) -> Harness {
        Self::start_with(env, ns, clusters, None).await
    }

    /// With a static RTT map (YAML, as `--rtt-file`) instead of serf's loopback RTTs, for
    /// assertions about proximity.
    pub async fn start_with(env: Arc<TestEnv>, ns: TestNamespace, clusters: &[&str], rtt: Option<&str>) -> Harness {
        Self::start_tuned(env, ns, clusters, rtt, |_| {}).await
    }

    /// With the controller's configuration adjusted by `tune` (timings, metrics address).
    pub async fn start_tuned(env: Arc<TestEnv>, ns: TestNamespace, clusters: &[&str], rtt: Option<&str>, tune: impl FnOnce(&mut Config)) -> Harness {
        install_crds(&env).await;
        let rtt_file = rtt.map(|text| {
            let path = std::env::temp_dir().join(format!("mck8s-rtt-{}.yaml", ns.name));
            std::fs::write(&path, text).unwrap();
            path
        });
        let mgmt = env.client("cluster0").await.unwrap();
        let exclude: Vec<String> = env.cluster_names().into_iter().filter(|c| !clusters.contains(&c.as_str())).collect();
        let config = Config {
            namespace: ns.name.clone(),
            watch_namespace: Some(ns.name.clone()),
            // No clusters named: they come from kubeconfig Secrets in the namespace instead.
            cluster_paths: if clusters.is_empty() { vec![] } else { vec![env.merged_kubeconfig()] },
            exclude_clusters: exclude,
            kubeconfig_local_files: false,
            cluster_secrets: clusters.is_empty(),
            policy_dirs: vec![builtin_dir()],
            policy_configmaps: true,
            policy_limits: Default::default(),
            policy_cache_max_bytes: mck8s_policy::DEFAULT_CACHE_MAX_BYTES,
            prometheus_url: env.prometheus_url(),
            serf_rpc: env.has_serf().then(|| format!("127.0.0.1:{}", env.fleet().ports().serf_rpc(0))),
            rtt_file,
            metrics_addr: None,
            instance: format!("test-{}", ns.name),
            timing: Timing { burst_retry: Duration::from_secs(2), error_retry: Duration::from_secs(2), resync: Duration::from_secs(60), ..Timing::default() },
            move_limit: Default::default(),
            leader_election: false,
            cloud_provisioning: false,
            max_concurrent_provisions: 1,
            cloud_poll: Duration::from_secs(1),
            cloud_access: None,
            max_concurrent_reconciles: mck8s_controller::DEFAULT_MAX_CONCURRENT_RECONCILES,
        };
        let mut config = config;
        tune(&mut config);
        let exited = Arc::new(Mutex::new(None));
        let task = spawn_controller(mgmt.clone(), config.clone(), exited.clone());
        Harness { env, ns, mgmt, config, task, exited }
    }

    /// Stops the controller (as a crash would: no shutdown) and starts a fresh one with the
    /// same configuration: nothing survives but what is in the API servers.
    pub async fn restart_controller(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        *self.exited.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.task = spawn_controller(self.mgmt.clone(), self.config.clone(), self.exited.clone());
    }

    pub fn mcds(&self) -> Api<MultiClusterDeployment> {
        Api::namespaced(self.mgmt.clone(), &self.ns.name)
    }

    pub fn mcss(&self) -> Api<MultiClusterService> {
        Api::namespaced(self.mgmt.clone(), &self.ns.name)
    }

    pub fn mcjs(&self) -> Api<MultiClusterJob> {
        Api::namespaced(self.mgmt.clone(), &self.ns.name)
    }

    /// A client for `kind` objects in the test namespace of a workload cluster.
    pub async fn api_in<K>(&self, cluster: &str) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.env.client(cluster).await.unwrap(), &self.ns.name)
    }

    /// The clusters (of `among`) holding a live `name` of kind `K`.
    pub async fn present<K>(&self, name: &str, among: &[&str]) -> BTreeSet<String>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let mut out = BTreeSet::new();
        for c in among {
            let api: Api<K> = self.api_in(c).await;
            if let Some(o) = api.get_opt(name).await.unwrap() {
                if o.meta().deletion_timestamp.is_none() {
                    out.insert(c.to_string());
                }
            }
        }
        out
    }

    pub async fn wait_present<K>(&self, name: &str, among: &[&str], want: &[&str])
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let want: BTreeSet<String> = want.iter().map(|c| c.to_string()).collect();
        self.eventually(&format!("{} {name} in {want:?}", K::kind(&())), || async {
            let got = self.present::<K>(name, among).await;
            if got == want { Ok(()) } else { Err(format!("got {got:?}")) }
        })
        .await;
    }

    pub fn kubectl(&self) -> std::process::Command {
        let mut c = self.env.kubectl("cluster0");
        c.args(["-n", &self.ns.name]);
        c
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl().args(args).output().expect("kubectl");
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Applies a manifest unchanged (stdin), like `kubectl apply -f`.
    pub fn apply_yaml(&self, yaml: &str) {
        use std::io::Write;
        let mut child = self
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Child Deployment replicas per cluster for `name` (absent clusters omitted).
    pub async fn children(&self, name: &str) -> BTreeMap<String, i32> {
        self.children_in(name, &ALL).await
    }

    /// The same, looking only at `among` (a stopped cluster cannot be asked).
    pub async fn children_in(&self, name: &str, among: &[&str]) -> BTreeMap<String, i32> {
        let mut out = BTreeMap::new();
        for c in among.iter().copied() {
            let client = self.env.client(c).await.unwrap();
            let api: Api<Deployment> = Api::namespaced(client, &self.ns.name);
            if let Some(d) = api.get_opt(name).await.unwrap() {
                if d.metadata.deletion_timestamp.is_none() {
                    out.insert(c.to_string(), d.spec.and_then(|s| s.replicas).unwrap_or(1));
                }
            }
        }
        out
    }

    /// Waits (liveness bound, not a timing assertion) until `check` holds.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let r = check().await;
            match r {
                Ok(()) => return,
                Err(e) if tokio::time::Instant::now() > deadline => panic!("{what}: still not true after 120 s: {e}{}", self.controller_exit()),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// "; the controller ..." when the controller task has stopped, else nothing.
    pub fn controller_exit(&self) -> String {
        self.exited.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|w| format!("; the controller {w}")).unwrap_or_default()
    }

    pub async fn wait_children(&self, name: &str, want: &[(&str, i32)]) {
        self.wait_children_in(name, &ALL, want).await
    }

    pub async fn wait_children_in(&self, name: &str, among: &[&str], want: &[(&str, i32)]) {
        let want: BTreeMap<String, i32> = want.iter().map(|(c, r)| (c.to_string(), *r)).collect();
        self.eventually(&format!("children of {name}"), || async {
            let got = self.children_in(name, among).await;
            if got == want { Ok(()) } else { Err(format!("got {got:?}, want {want:?}")) }
        })
        .await;
    }

    /// Until `name` has `want` children replicas in the fog, however they are spread.
    pub async fn wait_fog_total(&self, name: &str, want: i32) {
        self.eventually(&format!("{want} replicas of {name} in the fog"), || async {
            let got = self.children_in(name, &FOG).await;
            if got.values().sum::<i32>() == want { Ok(()) } else { Err(format!("got {got:?}")) }
        })
        .await;
    }

    pub async fn status(&self, name: &str) -> mck8s_api::MultiClusterDeploymentStatus {
        self.mcds().get(name).await.unwrap().status.unwrap_or_default()
    }

    /// The MCD's status once `holds` is true of it. A reconcile applies the children before it
    /// writes its owner's status, so right after `wait_children` the status may lag them.
    pub async fn status_when(&self, name: &str, what: &str, holds: impl Fn(&mck8s_api::MultiClusterDeploymentStatus) -> bool) -> mck8s_api::MultiClusterDeploymentStatus {
        self.eventually(&format!("{name}: {what}"), || async {
            let s = self.status(name).await;
            if holds(&s) { Ok(()) } else { Err(format!("placement {:?}, policy {:?}, digest {:?}", s.placement, s.policy, s.policy_digest)) }
        })
        .await;
        self.status(name).await
    }

    pub async fn wait_condition(&self, name: &str, type_: &str, status: &str) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        self.eventually(&format!("{name} condition {type_}={status}"), || async {
            let s = self.status(name).await;
            match mck8s_api::conditions::get(&s.conditions, type_) {
                Some(c) if c.status == status => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        let s = self.status(name).await;
        mck8s_api::conditions::get(&s.conditions, type_).cloned().expect("seen above")
    }

    /// Waits until the object's condition `type_` has `status` (any kind with status.conditions).
    pub async fn wait_condition_of<K>(&self, api: &Api<K>, name: &str, type_: &str, status: &str) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        let get = || async {
            let o = api.get(name).await.map_err(|e| e.to_string())?;
            let v = serde_json::to_value(&o).map_err(|e| e.to_string())?;
            let conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> = serde_json::from_value(v["status"]["conditions"].clone()).unwrap_or_default();
            mck8s_api::conditions::get(&conditions, type_).cloned().ok_or_else(|| format!("no {type_} condition yet"))
        };
        self.eventually(&format!("{name} condition {type_}={status}"), || async {
            match get().await {
                Ok(c) if c.status == status => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        get().await.expect("seen above")
    }

    /// Deletes the MCDs (the finalizer removes the children), stops the controller and
    /// removes the namespaces it made in the workload clusters.
    pub async fn finish(self) {
        // Services and Jobs first (their finalizers need the controller), then the MCDs.
        for s in self.mcss().list(&Default::default()).await.unwrap().items {
            let n = s.metadata.name.clone().unwrap();
            deleted_or_gone(self.mcss().delete(&n, &DeleteParams::default()).await);
            self.eventually(&format!("MCS {n} deleted"), || async { if self.mcss().get_opt(&n).await.unwrap().is_none() { Ok(()) } else { Err("still there".into()) } }).await;
        }
        for j in self.mcjs().list(&Default::default()).await.unwrap().items {
            let n = j.metadata.name.clone().unwrap();
            deleted_or_gone(self.mcjs().delete(&n, &DeleteParams::default()).await);
            self.eventually(&format!("MCJ {n} deleted"), || async { if self.mcjs().get_opt(&n).await.unwrap().is_none() { Ok(()) } else { Err("still there".into()) } }).await;
        }
        let names: Vec<String> = self.mcds().list(&Default::default()).await.unwrap().items.iter().map(|m| m.metadata.name.clone().unwrap()).collect();
        for n in &names {
            deleted_or_gone(self.mcds().delete(n, &DeleteParams::default()).await);
        }
        for n in &names {
            self.eventually(&format!("{n} deleted with its children"), || async {
                let gone = self.mcds().get_opt(n).await.unwrap().is_none();
                let children = self.children(n).await;
                if gone && children.is_empty() { Ok(()) } else { Err(format!("mcd gone {gone}, children {children:?}")) }
            })
            .await;
        }
        self.task.abort();
        // Wait until the namespaces are gone in every workload cluster, so the next test
        // starts with the fleet's full capacity.
        for c in ALL {
            let client = self.env.client(c).await.unwrap();
            let api = Api::<Namespace>::all(client);
            let _ = api.delete(&self.ns.name, &DeleteParams::default()).await;
            self.eventually(&format!("namespace {} gone in {c}", self.ns.name), || async {
                match api.get_opt(&self.ns.name).await {
                    Ok(None) => Ok(()),
                    other => Err(format!("{:?}", other.map(|n| n.and_then(|n| n.status).and_then(|s| s.phase)))),
                }
            })
            .await;
        }
        let _ = Api::<Namespace>::all(self.mgmt.clone()).delete(&self.ns.name, &DeleteParams::default()).await;
    }
}

/// A failing test keeps its management namespace for inspection, but its pods in the
/// workload clusters would hold capacity that the next tests count on: remove those.
impl Drop for Harness {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        self.task.abort();
        for c in ALL {
            let _ = self.env.kubectl(c).args(["delete", "namespace", &self.ns.name, "--ignore-not-found", "--wait=false"]).output();
        }
    }
}

/// The shipped ClusterClass (its first document; the provider templates need CAPO's CRDs,
/// which the simulated Cluster API does not have) in `mck8s-system`, where CloudProvisioners
/// look by default.
pub async fn install_cloud_class(mgmt: &kube::Client) {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
    let nss: Api<Namespace> = Api::all(mgmt.clone());
    if nss.get_opt("mck8s-system").await.unwrap().is_none() {
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "mck8s-system"}})).unwrap();
        let _ = nss.create(&PostParams::default(), &ns).await;
    }
    let text = std::fs::read_to_string(repo().join("deploy/capi/clusterclass-mck8s-openstack.yaml")).unwrap();
    let first = text.split("\n---\n").next().unwrap();
    let obj: DynamicObject = serde_yaml_ng::from_str(first).unwrap();
    let class = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "ClusterClass"));
    let api: Api<DynamicObject> = Api::namespaced_with(mgmt.clone(), "mck8s-system", &class);
    api.patch("mck8s-openstack", &PatchParams::apply("cloud-test").force(), &Patch::Apply(&obj)).await.unwrap();
}

/// The shipped cluster template (deploy/capi/), as a ConfigMap in mck8s-system: what a
/// CloudProvisioner renders where the ClusterTopology gate is off.
pub async fn install_cloud_template(mgmt: &kube::Client) {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams};
    install_cloud_class(mgmt).await;
    let text = std::fs::read_to_string(repo().join("deploy/capi/cluster-template-mck8s-openstack.yaml")).unwrap();
    let cm: ConfigMap = serde_yaml_ng::from_str(&text).unwrap();
    let name = cm.metadata.name.clone().unwrap();
    Api::<ConfigMap>::namespaced(mgmt.clone(), "mck8s-system").patch(&name, &PatchParams::apply("cloud-test").force(), &Patch::Apply(&cm)).await.unwrap();
}

pub fn example(file: &str) -> String {
    std::fs::read_to_string(repo().join("../shared/mck8s/manifests/examples").join(file)).unwrap()
}

/// A small MCD: pods of 1 CPU / 1 GiB (four fit a fog cluster of the default fleet).
pub fn mcd(name: &str, extra: &str) -> String {
    mcd_shaped(name, extra, "{cpu: '1', memory: 1Gi}", "")
}

/// An MCD with `extra` spec lines, pod `requests` and pod template `annotations` (YAML flow
/// maps; annotations may be empty).
pub fn mcd_shaped(name: &str, extra: &str, requests: &str, annotations: &str) -> String {
    let annotations = if annotations.is_empty() { String::new() } else { format!("\n      annotations: {annotations}") };
    format!(
        "apiVersion: fogguru.eu/v1
kind: MultiClusterDeployment
metadata:
  name: {name}
spec:
{extra}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}{annotations}
    spec:
      containers:
      - name: {name}
        image: registry.example/{name}:1
        resources:
          requests: {requests}
"
    )
}

/// GET /metrics from an in-process controller.
pub async fn metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The value of one sample line of /metrics (`name{labels}`), 0 when absent.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

/// Samples the ready replicas of `name`'s children summed over `clusters` every 100 ms;
/// a sample where some cluster did not answer is dropped.
pub struct ReadyMonitor {
    stop: Arc<std::sync::atomic::AtomicBool>,
    samples: Arc<Mutex<Vec<u32>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyMonitor {
    pub async fn start(h: &Harness, name: &str, clusters: &[&str]) -> Self {
        let mut apis: Vec<Api<Deployment>> = Vec::new();
        for c in clusters {
            apis.push(h.api_in(c).await);
        }
        let (stop, samples) = (Arc::new(std::sync::atomic::AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (s, out, name) = (stop.clone(), samples.clone(), name.to_string());
        let task = tokio::spawn(async move {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let mut sum = Some(0u32);
                for api in &apis {
                    match tokio::time::timeout(Duration::from_secs(2), api.get_opt(&name)).await {
                        Ok(Ok(d)) => {
                            let ready = d.and_then(|d| d.status).and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32;
                            sum = sum.map(|x| x + ready);
                        }
                        _ => sum = None,
                    }
                }
                if let Some(v) = sum {
                    out.lock().unwrap().push(v);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        ReadyMonitor { stop, samples, task }
    }

    /// The lowest sum seen, and how many samples there were.
    pub async fn finish(self) -> (u32, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap();
        let s = self.samples.lock().unwrap();
        (s.iter().copied().min().unwrap_or(0), s.len())
    }
}

/// A TCP relay in front of an API server that can be cut: once cut, it holds every
/// connection open and forwards nothing either way (a black-holed network: requests neither
/// fail nor answer). Only the client pointed at it is cut off; everyone else reaches the
/// server directly.
#[allow(dead_code)]
pub struct CuttableRelay {
    pub port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

#[allow(dead_code)]
impl CuttableRelay {
    pub async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let c = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let Ok(up) = tokio::net::TcpStream::connect(upstream).await else { return };
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    tokio::join!(Self::pump(dr, uw, c.clone()), Self::pump(ur, dw, c));
                });
            }
        });
        CuttableRelay { port, cut, task }
    }

    async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, cut: Arc<std::sync::atomic::AtomicBool>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            while cut.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // Bytes read just before the cut are held back too.
            while cut.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CuttableRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A relay in front of the first server `kubeconfig` names, and a copy of `kubeconfig` at
/// `out` with every server pointed at it (the API servers' certificates name 127.0.0.1,
/// whatever the port).
#[allow(dead_code)]
pub async fn relayed_kubeconfig(kubeconfig: &std::path::Path, out: &std::path::Path) -> CuttableRelay {
    let mut kc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(kubeconfig).unwrap()).unwrap();
    let server = kc["clusters"][0]["cluster"]["server"].as_str().unwrap().to_string();
    let upstream: std::net::SocketAddr = server.trim_start_matches("https://").trim_end_matches('/').parse().unwrap();
    let relay = CuttableRelay::start(upstream).await;
    for c in kc["clusters"].as_sequence_mut().unwrap() {
        c["cluster"]["server"] = serde_yaml_ng::Value::String(format!("https://127.0.0.1:{}", relay.port));
    }
    std::fs::write(out, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    relay
}

/// A delete in the clean-up: an object listed while its finalizer was running (a test
/// deleted it and waited for its children only) may be gone by the time it is deleted.
fn deleted_or_gone<T>(result: Result<T, kube::Error>) {
    match result {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => panic!("delete: {e}"),
    }
}

/// The `mck8s` binary `cargo build --release` put beside this test's directory.
pub fn mck8s_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join("mck8s");
    assert!(bin.exists(), "{} missing: cargo build --release first", bin.display());
    bin
}

/// `mck8s ARGS` against the management cluster: its stdout, or a panic with its stderr.
pub fn mck8s_ok(h: &Harness, args: &[&str]) -> String {
    let out = std::process::Command::new(mck8s_bin()).args(args).env("KUBECONFIG", h.env.kubeconfig("cluster0")).output().unwrap();
    assert!(out.status.success(), "mck8s {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
