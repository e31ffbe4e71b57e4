//! The placement controller at scale (issue 5): N MultiClusterDeployments (default 1,000) of one
//! 10m / 16Mi replica each, worst-fit, into the three fog clusters of
//! `tests/testenv/fleet.bench.yaml`, against a `mck8s run` process. Measures, per MCD, the time
//! from its create call returning to its child Deployment being seen by a watch in a workload
//! cluster; the total time; the controller's peak RSS and CPU; and, in the same run, the same
//! number of plain Deployments created directly into the workload clusters (the floor the
//! environment sets). Prints Markdown tables; compare the ratios, not absolute times.
//!
//! `bash scripts/bench-controller.sh [--count N] [--concurrency C] [--rate R] [--phases direct,mck8s]`
//! (`--rate`: creates per second, paced; default a burst limited only by `--concurrency`)
//! starts its own environment (state dir /tmp/mck8s-bench, ports 28xxx) and runs this. Against
//! an environment already running the bench fleet:
//! `MCK8S_TESTENV_DIR=... cargo bench -p mck8s-cli --bench controller_scale -- --count 50`.
//! `MCK8S_BENCH_COUNT` sets the default count; `MCK8S_BENCH_LOG` where the controller logs.
//! `MCK8S_BENCH_WRAP` runs the controller under a profiler (`heaptrack -o /tmp/ht`, split at
//! spaces); the RSS figures are then the wrapper's, not the controller's.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]
#![allow(unsafe_code, reason = "sysconf, kill(2) and prctl(2) on the controller process it started")]

use anyhow::{Context as _, Result, anyhow, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use mck8s_api::MultiClusterDeployment;
use mck8s_testenv::TestEnv;
use mck8s_testenv::state::StateDir;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

const MGMT_NS: &str = "mck8s-bench-system";
const MCD_NS: &str = "mck8s-bench";
const DIRECT_NS: &str = "mck8s-bench-direct";
const DIRECT_MANAGER: &str = "mck8s-bench";
/// No new child seen for this long: give up waiting (a liveness bound, reported).
const STALL: Duration = Duration::from_secs(120);
/// Longest wait for a cleanup step (MCDs deleted, namespaces gone).
const CLEANUP: Duration = Duration::from_secs(900);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    Direct,
    Mck8s,
}

struct Opts {
    count: usize,
    concurrency: usize,
    /// Creates per second (paced); None: as fast as `concurrency` allows (a burst).
    rate: Option<f64>,
    phases: Vec<Phase>,
}

fn opts() -> Result<Opts> {
    let mut o = Opts {
        count: std::env::var("MCK8S_BENCH_COUNT").ok().and_then(|v| v.parse().ok()).unwrap_or(1000),
        concurrency: 32,
        rate: None,
        phases: vec![Phase::Direct, Phase::Mck8s],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| anyhow!("{key} needs a value"));
        match key.as_str() {
            "--count" => o.count = value()?.parse().context("--count")?,
            "--concurrency" => o.concurrency = value()?.parse().context("--concurrency")?,
            "--rate" => o.rate = Some(value()?.parse().context("--rate")?).filter(|r: &f64| *r > 0.0),
            "--phases" => {
                o.phases = value()?
                    .split(',')
                    .map(|p| match p.trim() {
                        "direct" => Ok(Phase::Direct),
                        "mck8s" => Ok(Phase::Mck8s),
                        other => Err(anyhow!("unknown phase {other:?} (direct, mck8s)")),
                    })
                    .collect::<Result<_>>()?
            }
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            other => eprintln!("ignoring argument {other:?}"),
        }
    }
    if o.count == 0 || o.concurrency == 0 {
        bail!("--count and --concurrency must be positive");
    }
    Ok(o)
}

fn main() -> Result<()> {
    START.get_or_init(Instant::now);
    let o = opts()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(o))
}

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn builtin_dir() -> PathBuf {
    mck8s_policy::built::ensure().unwrap_or_else(|e| panic!("{e}")).join("builtin")
}

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn log(msg: impl std::fmt::Display) {
    eprintln!("[bench {:>7.1}s] {msg}", START.get_or_init(Instant::now).elapsed().as_secs_f64());
}

struct Fleet {
    env: TestEnv,
    sd: StateDir,
    mgmt: String,
    workload: Vec<String>,
    /// A client per cluster (management first), for the apiservers' own request counts.
    clients: Vec<(String, kube::Client)>,
}

async fn run(o: Opts) -> Result<()> {
    let sd = StateDir::new(mck8s_testenv::paths::default_state_dir());
    let env = TestEnv::attach(&sd)?.ok_or_else(|| anyhow!("no test environment runs in {} (use scripts/bench-controller.sh)", sd.dir.display()))?;
    let mgmt = env.fleet().clusters.iter().find(|c| c.role == "management").map(|c| c.name.clone()).ok_or_else(|| anyhow!("the fleet has no management cluster"))?;
    let workload: Vec<String> = env.fleet().clusters.iter().filter(|c| c.role != "management").map(|c| c.name.clone()).collect();
    if workload.iter().any(|c| env.fleet().cluster(c).is_some_and(|s| s.role == "cloud")) {
        log("note: the fleet has a cloud cluster; worst-fit ranks fog first");
    }
    let mut clients = Vec::new();
    for c in std::iter::once(&mgmt).chain(&workload) {
        clients.push((c.clone(), env.client(c).await?));
    }
    let f = Fleet { env, sd, mgmt, workload, clients };
    let pace = o.rate.map(|r| format!(", paced at {r}/s")).unwrap_or_default();
    log(format!("{} MCDs into {:?}, {} concurrent creators{pace}, phases {:?}; load average {}", o.count, f.workload, o.concurrency, o.phases, loadavg()));

    install_crds(&f)?;
    // Leftovers of an interrupted run.
    cleanup_all(&f).await?;

    let mut results = Vec::new();
    for phase in &o.phases {
        let r = match phase {
            Phase::Direct => direct_phase(&f, &o).await?,
            Phase::Mck8s => mck8s_phase(&f, &o).await?,
        };
        results.push(r);
    }
    report(&f, &o, &results);
    Ok(())
}

fn install_crds(f: &Fleet) -> Result<()> {
    let out = f.env.kubectl(&f.mgmt).args(["apply", "-f"]).arg(repo().join("deploy/crds")).output().context("kubectl")?;
    if !out.status.success() {
        bail!("kubectl apply -f deploy/crds: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = f.env.kubectl(&f.mgmt).args(["wait", "--for=condition=Established", "--timeout=60s", "crd/multiclusterdeployments.fogguru.eu"]).output().context("kubectl")?;
    if !out.status.success() {
        bail!("CRD not Established: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What is created

fn pod_template(name: &str) -> serde_json::Value {
    json!({
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{
            "name": "app",
            "image": "registry.example/bench:1",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        }]},
    })
}

fn mcd(name: &str) -> Result<MultiClusterDeployment> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "fogguru.eu/v1",
        "kind": "MultiClusterDeployment",
        "metadata": {"name": name},
        "spec": {
            "placementPolicy": "worst-fit",
            "replicas": 1,
            "numberOfLocations": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name),
        },
    }))?)
}

fn deployment(name: &str) -> Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": DIRECT_MANAGER}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name),
        },
    }))?)
}

fn name_of(i: usize) -> String {
    format!("bench-{i:05}")
}

// ---------------------------------------------------------------------------------------------
// Measuring

struct Created {
    name: String,
    started: Instant,
    returned: Instant,
    returned_wall: SystemTime,
    attempts: u32,
}

struct Seen {
    cluster: usize,
    name: String,
    at: Instant,
    wall: SystemTime,
}

/// Watches Deployments labelled `managed-by=<manager>` in `ns` of every workload cluster;
/// returns once every watch has listed (so nothing created afterwards is missed).
async fn watch_children(f: &Fleet, ns: &str, manager: &str) -> Result<(mpsc::UnboundedReceiver<Seen>, Vec<tokio::task::JoinHandle<()>>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    let mut listed = Vec::new();
    for (i, c) in f.workload.iter().enumerate() {
        let api: Api<Deployment> = Api::namespaced(f.env.client(c).await?, ns);
        let cfg = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={manager}"));
        let (ltx, lrx) = oneshot::channel::<()>();
        listed.push(lrx);
        let tx = tx.clone();
        let cluster = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut ltx = Some(ltx);
            let mut stream = watcher(api, cfg).default_backoff().boxed();
            while let Some(ev) = stream.next().await {
                let (at, wall) = (Instant::now(), SystemTime::now());
                match ev {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(l) = ltx.take() {
                            let _ = l.send(());
                        }
                    }
                    Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) => {
                        if d.metadata.deletion_timestamp.is_none()
                            && let Some(name) = d.metadata.name
                        {
                            let _ = tx.send(Seen { cluster: i, name, at, wall });
                        }
                    }
                    Ok(_) => {}
                    Err(e) => log(format!("watch {cluster}: {e}")),
                }
            }
        }));
    }
    for l in listed {
        tokio::time::timeout(Duration::from_secs(60), l).await.context("watch did not list in 60 s")?.context("watch ended")?;
    }
    Ok((rx, tasks))
}

/// Calls `create(i)` for i in 0..n, `concurrency` at a time (and, with `rate`, call i not
/// before i/rate seconds), retrying a failed call (up to 10 attempts); records when each call
/// returned.
async fn create_all<F, Fut>(n: usize, concurrency: usize, rate: Option<f64>, create: F) -> Result<Vec<Created>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    let create = &create;
    let t0 = tokio::time::Instant::now();
    let results: Vec<Result<Created>> = futures::stream::iter(0..n)
        .map(|i| async move {
            if let Some(r) = rate {
                tokio::time::sleep_until(t0 + Duration::from_secs_f64(i as f64 / r)).await;
            }
            let started = Instant::now();
            let mut attempts = 0;
            loop {
                attempts += 1;
                match create(i).await {
                    Ok(()) => break,
                    // Created by an earlier attempt whose response was lost.
                    Err(kube::Error::Api(e)) if e.code == 409 && attempts > 1 => break,
                    Err(e) if attempts < 10 => {
                        log(format!("create {}: {e}; retrying", name_of(i)));
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts))).await;
                    }
                    Err(e) => return Err(anyhow!("create {}: {e}", name_of(i))),
                }
            }
            Ok(Created { name: name_of(i), started, returned: Instant::now(), returned_wall: SystemTime::now(), attempts })
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

struct Collected {
    /// name → when the last of its expected children was first seen.
    done: HashMap<String, (Instant, SystemTime)>,
    stalled: bool,
}

/// Receives watch events until every one of `n` objects has `expect` children (in distinct
/// clusters), or nothing new arrives for [`STALL`].
async fn collect(rx: &mut mpsc::UnboundedReceiver<Seen>, n: usize, expect: usize) -> Collected {
    let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
    let mut done = HashMap::new();
    let mut last_progress = Instant::now();
    let mut next_note = Instant::now() + Duration::from_secs(10);
    while done.len() < n {
        match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            Ok(Some(s)) => {
                if done.contains_key(&s.name) {
                    continue;
                }
                let clusters = seen.entry(s.name.clone()).or_default();
                if !clusters.contains(&s.cluster) {
                    clusters.push(s.cluster);
                    if clusters.len() >= expect {
                        done.insert(s.name, (s.at, s.wall));
                        last_progress = Instant::now();
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
        if last_progress.elapsed() > STALL {
            log(format!("no new child for {} s; {} of {n} complete", STALL.as_secs(), done.len()));
            return Collected { done, stalled: true };
        }
        if Instant::now() > next_note {
            log(format!("{} of {n} complete", done.len()));
            next_note = Instant::now() + Duration::from_secs(10);
        }
    }
    Collected { done, stalled: false }
}

// ---------------------------------------------------------------------------------------------
// /proc

fn ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state(3) ... utime(14) stime(15).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks())
}

/// A `/proc/<pid>/status` value in KiB (VmHWM, VmRSS).
fn status_kib(pid: i32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// Samples the 1-minute load average every 2 s until stopped; `stop` gives (mean, max).
struct LoadSampler(tokio::task::JoinHandle<()>, std::sync::Arc<std::sync::Mutex<Vec<f64>>>);

impl LoadSampler {
    fn start() -> LoadSampler {
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = samples.clone();
        LoadSampler(
            tokio::spawn(async move {
                loop {
                    if let Some(v) = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next()?.parse().ok()) {
                        s.lock().unwrap().push(v);
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }),
            samples,
        )
    }

    fn stop(self) -> (f64, f64) {
        self.0.abort();
        let v = self.1.lock().unwrap();
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        (mean, v.iter().copied().fold(0.0, f64::max))
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// CPU seconds of the environment's processes by name (`cluster0/kube-apiserver`, `etcd`, ...).
fn env_cpu(sd: &StateDir) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Ok(Some(state)) = sd.read() {
        for p in state.procs.iter().filter(|p| p.alive()) {
            *out.entry(p.name.clone()).or_insert(0.0) += cpu_seconds(p.pid).unwrap_or(0.0);
        }
    }
    out
}

/// The same summed by component (kube-apiserver, etcd, ...).
fn by_component(cpu: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (name, v) in cpu {
        *out.entry(name.rsplit('/').next().unwrap_or(name).to_string()).or_insert(0.0) += v;
    }
    out
}

/// `apiserver_request_total` of one apiserver summed by "VERB resource[/subresource]".
async fn apiserver_requests(client: &kube::Client) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(req) = http::Request::get("/metrics").body(Vec::new()) else { return out };
    let Ok(text) = client.request_text(req).await else { return out };
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else { continue };
        let Some((labels, value)) = rest.split_once('}') else { continue };
        let Ok(v) = value.trim().parse::<f64>() else { continue };
        let label = |k: &str| labels.split(',').find_map(|kv| kv.strip_prefix(&format!("{k}=\""))).map(|s| s.trim_end_matches('"').to_string()).unwrap_or_default();
        let sub = label("subresource");
        let key = format!("{} {}{}", label("verb"), label("resource"), if sub.is_empty() { String::new() } else { format!("/{sub}") });
        *out.entry(key).or_insert(0.0) += v;
    }
    out
}

/// Request counts of every cluster's apiserver, by cluster.
async fn requests_by_cluster(clients: &[(String, kube::Client)]) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for (name, client) in clients {
        out.insert(name.clone(), apiserver_requests(client).await);
    }
    out
}

fn requests_diff(after: &BTreeMap<String, BTreeMap<String, f64>>, before: &BTreeMap<String, BTreeMap<String, f64>>) -> BTreeMap<String, BTreeMap<String, f64>> {
    let empty = BTreeMap::new();
    after.iter().map(|(c, a)| (c.clone(), diff(a, before.get(c).unwrap_or(&empty)).into_iter().filter(|(_, v)| *v > 0.0).collect())).collect()
}

fn diff(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0))).collect()
}

// ---------------------------------------------------------------------------------------------
// Namespaces

async fn create_namespace(f: &Fleet, cluster: &str, ns: &str) -> Result<()> {
    let client = f.env.client(cluster).await?;
    let api: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": ns, "labels": {"mck8s.io/bench": "true"}}}))?;
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    // Pods need the default ServiceAccount and its token first (else the ReplicaSet
    // controller retries): wait for it, as a namespace made ahead of time would have.
    let sas: Api<ServiceAccount> = Api::namespaced(client, ns);
    let cond = |sa: Option<&ServiceAccount>| sa.is_some_and(|sa| sa.secrets.as_ref().is_some_and(|s| !s.is_empty()));
    tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(sas, "default", cond)).await.context("default ServiceAccount")??;
    Ok(())
}

/// Deletes `ns` in `cluster` and waits until it is gone.
async fn delete_namespace(f: &Fleet, cluster: &str, ns: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(f.env.client(cluster).await?);
    match api.delete(ns, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let deadline = Instant::now() + CLEANUP;
    while api.get_opt(ns).await?.is_some() {
        if Instant::now() > deadline {
            bail!("namespace {ns} in {cluster} still there after {} s", CLEANUP.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

async fn delete_namespaces(f: &Fleet, pairs: &[(&str, &str)]) -> Result<()> {
    let results = futures::future::join_all(pairs.iter().map(|(c, ns)| delete_namespace(f, c, ns))).await;
    results.into_iter().collect()
}

/// Removes whatever an interrupted run left (MCDs need a controller for their finalizer: the
/// finalizer is dropped by hand, the namespaces take their children).
async fn cleanup_all(f: &Fleet) -> Result<()> {
    let mcds: Api<MultiClusterDeployment> = Api::namespaced(f.env.client(&f.mgmt).await?, MCD_NS);
    if let Ok(list) = mcds.list(&ListParams::default()).await
        && !list.items.is_empty()
    {
        log(format!("removing {} MCDs left by an earlier run", list.items.len()));
        let patch = kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}}));
        for m in list.items {
            let name = m.metadata.name.unwrap_or_default();
            let _ = mcds.patch(&name, &kube::api::PatchParams::default(), &patch).await;
        }
    }
    let mut pairs: Vec<(&str, &str)> = vec![(f.mgmt.as_str(), MCD_NS), (f.mgmt.as_str(), MGMT_NS)];
    for c in &f.workload {
        pairs.push((c.as_str(), MCD_NS));
        pairs.push((c.as_str(), DIRECT_NS));
    }
    delete_namespaces(f, &pairs).await
}

// ---------------------------------------------------------------------------------------------
// The controller process

struct Controller {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Controller {
    fn start(f: &Fleet) -> Result<Controller> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log_path = std::env::var_os("MCK8S_BENCH_LOG").map(PathBuf::from).unwrap_or_else(|| f.sd.dir.join("logs").join("bench-controller.log"));
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let out = std::fs::File::create(&log_path).with_context(|| log_path.display().to_string())?;
        let policy_dir = builtin_dir();
        if !policy_dir.join("worst-fit.wasm").exists() {
            bail!("{} has no worst-fit.wasm: run scripts/build-policies.sh", policy_dir.display());
        }
        let wrap: Vec<String> = std::env::var("MCK8S_BENCH_WRAP").unwrap_or_default().split_whitespace().map(String::from).collect();
        let mut cmd = match wrap.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_mck8s"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_mck8s")),
        };
        cmd.arg("run")
            .arg("--kubeconfig")
            .arg(f.env.kubeconfig(&f.mgmt))
            .arg("--clusters")
            .arg(f.env.merged_kubeconfig())
            .args(["--exclude-cluster", &f.mgmt])
            .arg("--policy-dir")
            .arg(&policy_dir)
            .args(["--namespace", MGMT_NS, "--watch-namespace", MCD_NS])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .arg("--no-cluster-secrets")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // A bench killed before it stops its controller must not leave it running: the next
        // run's fleet has the same ports and names, and an orphan reconciled it. The parent
        // "thread" prctl watches is the main one: this runs inside `block_on`.
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().context("starting mck8s run")?;
        Ok(Controller { child, port, log: log_path })
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("mck8s run exited ({status}); see {}", self.log.display());
            }
            if let Ok((200, _)) = http_get(self.port, "/readyz").await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("mck8s run not ready after 120 s; see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn metrics(&self) -> Metrics {
        Metrics(http_get(self.port, "/metrics").await.map(|(_, body)| body).unwrap_or_default())
    }

    /// SIGTERM, then SIGKILL after 10 s.
    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await??;
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

/// The controller's /metrics text.
#[derive(Default)]
struct Metrics(String);

impl Metrics {
    /// Samples of `name` (exact metric name) as (labels, value).
    fn samples(&self, name: &str) -> Vec<(String, f64)> {
        self.0
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
                    let (labels, v) = r.split_once('}')?;
                    (labels.to_string(), v)
                } else if rest.starts_with(' ') {
                    (String::new(), rest)
                } else {
                    return None;
                };
                Some((labels, value.split_whitespace().next()?.parse().ok()?))
            })
            .collect()
    }

    /// Sum of `name` grouped by the value of label `by`.
    fn by(&self, name: &str, by: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (labels, v) in self.samples(name) {
            let key = labels.split(',').find_map(|kv| kv.strip_prefix(&format!("{by}=")).map(|s| s.trim_matches('"').to_string())).unwrap_or_default();
            *out.entry(key).or_insert(0.0) += v;
        }
        out
    }

    fn total(&self, name: &str) -> f64 {
        self.samples(name).iter().map(|(_, v)| v).sum()
    }

    /// The upper bound of the bucket holding quantile `q` of a histogram (all label sets).
    fn histogram_quantile(&self, name: &str, q: f64, before: &Metrics) -> Option<f64> {
        let buckets = |m: &Metrics| {
            let mut b: BTreeMap<u64, f64> = BTreeMap::new();
            for (labels, v) in m.samples(&format!("{name}_bucket")) {
                let le = labels.split(',').find_map(|kv| kv.strip_prefix("le=")).map(|s| s.trim_matches('"'))?;
                let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                *b.entry(le.to_bits()).or_insert(0.0) += v;
            }
            Some(b)
        };
        let (after, before) = (buckets(self)?, buckets(before)?);
        let mut pairs: Vec<(f64, f64)> = after.iter().map(|(k, v)| (f64::from_bits(*k), v - before.get(k).copied().unwrap_or(0.0))).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = pairs.last()?.1;
        if total <= 0.0 {
            return None;
        }
        pairs.iter().find(|(_, c)| *c >= q * total).map(|(le, _)| *le)
    }
}

// ---------------------------------------------------------------------------------------------
// The phases

struct PhaseResult {
    phase: Phase,
    n: usize,
    complete: usize,
    stalled: bool,
    latencies: Vec<Duration>,
    /// Create call sent → child seen.
    from_sent: Vec<Duration>,
    /// Children seen before their create call returned (latency counted as 0).
    early: usize,
    create_calls: Vec<Duration>,
    retries: u32,
    total: Duration,
    /// CPU seconds by process name over the run.
    env_cpu: BTreeMap<String, f64>,
    /// Requests served by each cluster's apiserver over the run, by verb and resource.
    requests: BTreeMap<String, BTreeMap<String, f64>>,
    bench_cpu: f64,
    load_before: String,
    load_after: String,
    /// 1-minute load average sampled every 2 s during the run: mean, max.
    load_during: (f64, f64),
    controller: Option<ControllerResult>,
}

struct ControllerResult {
    peak_rss_mib: f64,
    rss_done_mib: f64,
    cpu_startup: f64,
    cpu_run: f64,
    cpu_settle: f64,
    settle: Duration,
    /// (stage, before, after) snapshots of /metrics: run = first create → last child.
    run_before: Metrics,
    run_after: Metrics,
    settled: Metrics,
    /// create returned → "placement decided" in the controller's log; decided → child seen.
    to_decision: Vec<Duration>,
    decision_to_child: Vec<Duration>,
}

/// Per object: create returned → done (sorted), create sent → done (sorted), and how many
/// were seen before their create call returned.
fn latencies(created: &[Created], done: &HashMap<String, (Instant, SystemTime)>) -> (Vec<Duration>, Vec<Duration>, usize) {
    let mut early = 0;
    let mut from_returned = Vec::new();
    let mut from_sent = Vec::new();
    for c in created {
        if let Some((at, _)) = done.get(&c.name) {
            if *at < c.returned {
                early += 1;
            }
            from_returned.push(at.saturating_duration_since(c.returned));
            from_sent.push(at.saturating_duration_since(c.started));
        }
    }
    from_returned.sort();
    from_sent.sort();
    (from_returned, from_sent, early)
}

fn total_time(created: &[Created], done: &HashMap<String, (Instant, SystemTime)>) -> Duration {
    let first = created.iter().map(|c| c.started).min();
    let last = done.values().map(|(at, _)| *at).max();
    match (first, last) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    }
}

async fn direct_phase(f: &Fleet, o: &Opts) -> Result<PhaseResult> {
    log(format!("direct: {} Deployments round-robin into {:?}", o.count, f.workload));
    for c in &f.workload {
        create_namespace(f, c, DIRECT_NS).await?;
    }
    let (mut rx, watches) = watch_children(f, DIRECT_NS, DIRECT_MANAGER).await?;
    let mut apis = Vec::new();
    for c in &f.workload {
        apis.push(Api::<Deployment>::namespaced(f.env.client(c).await?, DIRECT_NS));
    }
    let objects: Vec<Deployment> = (0..o.count).map(|i| deployment(&name_of(i))).collect::<Result<_>>()?;
    let req0 = requests_by_cluster(&f.clients).await;
    let (load_before, env0, bench0) = (loadavg(), env_cpu(&f.sd), cpu_seconds(std::process::id() as i32).unwrap_or(0.0));

    let apis = &apis;
    let objects = &objects;
    let sampler = LoadSampler::start();
    let creating = create_all(o.count, o.concurrency, o.rate, |i| async move { apis[i % apis.len()].create(&PostParams::default(), &objects[i]).await.map(|_| ()) });
    let (created, collected) = tokio::join!(creating, collect(&mut rx, o.count, 1));
    let created = created?;
    let (env1, bench1, load_after) = (env_cpu(&f.sd), cpu_seconds(std::process::id() as i32).unwrap_or(0.0), loadavg());
    let requests = requests_diff(&requests_by_cluster(&f.clients).await, &req0);
    let load_during = sampler.stop();
    watches.iter().for_each(|w| w.abort());

    let (lat, lat_sent, early) = latencies(&created, &collected.done);
    let result = PhaseResult {
        phase: Phase::Direct,
        load_during,
        n: o.count,
        complete: collected.done.len(),
        stalled: collected.stalled,
        early,
        create_calls: sorted(created.iter().map(|c| c.returned - c.started)),
        retries: created.iter().map(|c| c.attempts - 1).sum(),
        total: total_time(&created, &collected.done),
        latencies: lat,
        from_sent: lat_sent,
        env_cpu: diff(&env1, &env0),
        requests,
        bench_cpu: bench1 - bench0,
        load_before,
        load_after,
        controller: None,
    };
    log(format!("direct: {} of {} seen in {:.1} s; cleaning up", result.complete, result.n, result.total.as_secs_f64()));
    let pairs: Vec<(&str, &str)> = f.workload.iter().map(|c| (c.as_str(), DIRECT_NS)).collect();
    delete_namespaces(f, &pairs).await?;
    Ok(result)
}

async fn mck8s_phase(f: &Fleet, o: &Opts) -> Result<PhaseResult> {
    log(format!("mck8s: {} MCDs (worst-fit, 1 replica, numberOfLocations 1)", o.count));
    create_namespace(f, &f.mgmt, MGMT_NS).await?;
    create_namespace(f, &f.mgmt, MCD_NS).await?;
    let mut ctl = Controller::start(f)?;
    let started = Instant::now();
    ctl.wait_ready().await?;
    log(format!("controller pid {} ready in {:.1} s (log {})", ctl.pid(), started.elapsed().as_secs_f64(), ctl.log.display()));
    let (mut rx, watches) = watch_children(f, MCD_NS, "mck8s").await?;
    let api: Api<MultiClusterDeployment> = Api::namespaced(f.env.client(&f.mgmt).await?, MCD_NS);
    let objects: Vec<MultiClusterDeployment> = (0..o.count).map(|i| mcd(&name_of(i))).collect::<Result<_>>()?;

    let cpu0 = cpu_seconds(ctl.pid()).unwrap_or(0.0);
    let m0 = ctl.metrics().await;
    let req0 = requests_by_cluster(&f.clients).await;
    let (load_before, env0, bench0) = (loadavg(), env_cpu(&f.sd), cpu_seconds(std::process::id() as i32).unwrap_or(0.0));

    let (api_ref, objects_ref) = (&api, &objects);
    let sampler = LoadSampler::start();
    let creating = create_all(o.count, o.concurrency, o.rate, |i| async move { api_ref.create(&PostParams::default(), &objects_ref[i]).await.map(|_| ()) });
    let (created, collected) = tokio::join!(creating, collect(&mut rx, o.count, 1));
    let created = created?;
    let (env1, bench1, load_after) = (env_cpu(&f.sd), cpu_seconds(std::process::id() as i32).unwrap_or(0.0), loadavg());
    let requests = requests_diff(&requests_by_cluster(&f.clients).await, &req0);
    let cpu1 = cpu_seconds(ctl.pid()).unwrap_or(0.0);
    let load_during = sampler.stop();
    let rss_done = status_kib(ctl.pid(), "VmRSS").unwrap_or(0);
    let m1 = ctl.metrics().await;
    watches.iter().for_each(|w| w.abort());
    log(format!("mck8s: {} of {} complete in {:.1} s; waiting for the controller to go quiet", collected.done.len(), o.count, total_time(&created, &collected.done).as_secs_f64()));

    // Settle: children's pods get scheduled and become ready, each a reconcile of its owner.
    // Quiet = no reconcile for 6 s (bounded at 300 s).
    let settle_start = Instant::now();
    let mut last = m1.total("mck8s_reconciles_total");
    let mut quiet_since = Instant::now();
    let mut m2 = Metrics::default();
    while settle_start.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        m2 = ctl.metrics().await;
        let now = m2.total("mck8s_reconciles_total");
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_secs(6) {
            break;
        }
    }
    let settle = quiet_since.duration_since(settle_start);
    let cpu2 = cpu_seconds(ctl.pid()).unwrap_or(0.0);
    let peak = status_kib(ctl.pid(), "VmHWM").unwrap_or(0);

    // Where the time goes: the controller's "placement decided" log lines.
    let decided = decisions_from_log(&ctl.log);
    let mut to_decision = Vec::new();
    let mut decision_to_child = Vec::new();
    for c in &created {
        if let (Some(d), Some((_, child_wall))) = (decided.get(&c.name), collected.done.get(&c.name)) {
            to_decision.push(d.duration_since(c.returned_wall).unwrap_or(Duration::ZERO));
            decision_to_child.push(child_wall.duration_since(*d).unwrap_or(Duration::ZERO));
        }
    }
    to_decision.sort();
    decision_to_child.sort();

    let (lat, lat_sent, early) = latencies(&created, &collected.done);
    let result = PhaseResult {
        phase: Phase::Mck8s,
        load_during,
        n: o.count,
        complete: collected.done.len(),
        stalled: collected.stalled,
        early,
        create_calls: sorted(created.iter().map(|c| c.returned - c.started)),
        retries: created.iter().map(|c| c.attempts - 1).sum(),
        total: total_time(&created, &collected.done),
        latencies: lat,
        from_sent: lat_sent,
        env_cpu: diff(&env1, &env0),
        requests,
        bench_cpu: bench1 - bench0,
        load_before,
        load_after,
        controller: Some(ControllerResult {
            peak_rss_mib: peak as f64 / 1024.0,
            rss_done_mib: rss_done as f64 / 1024.0,
            cpu_startup: cpu0,
            cpu_run: cpu1 - cpu0,
            cpu_settle: cpu2 - cpu1,
            settle,
            run_before: m0,
            run_after: m1,
            settled: m2,
            to_decision,
            decision_to_child,
        }),
    };

    // Cleanup: MCDs first (the running controller removes children and finalizers), then the
    // controller, then the namespaces.
    log("mck8s: deleting the MCDs");
    let t = Instant::now();
    api.delete_collection(&DeleteParams::default(), &ListParams::default()).await?;
    loop {
        let left = api.list(&ListParams::default()).await?.items.len();
        if left == 0 {
            break;
        }
        if t.elapsed() > CLEANUP {
            bail!("{left} MCDs still there after {} s", CLEANUP.as_secs());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    log(format!("mck8s: MCDs and children deleted in {:.1} s; stopping the controller", t.elapsed().as_secs_f64()));
    ctl.stop();
    let mut pairs: Vec<(&str, &str)> = vec![(f.mgmt.as_str(), MCD_NS), (f.mgmt.as_str(), MGMT_NS)];
    for c in &f.workload {
        pairs.push((c.as_str(), MCD_NS));
    }
    delete_namespaces(f, &pairs).await?;
    Ok(result)
}

/// MCD name → when the controller logged "placement decided" for it (the first time).
fn decisions_from_log(path: &Path) -> HashMap<String, SystemTime> {
    let mut out = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else { return out };
    for line in text.lines() {
        let line = strip_ansi(line);
        if !line.contains("placement decided") || !line.contains(&format!("namespace={MCD_NS}")) {
            continue;
        }
        let Some(ts) = line.split_whitespace().next().and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok()) else { continue };
        let Some(name) = line.split(['{', ' ', '}']).find_map(|w| w.strip_prefix("name=")) else { continue };
        let Ok(micros) = u64::try_from(ts.as_microsecond()) else { continue };
        out.entry(name.to_string()).or_insert(UNIX_EPOCH + Duration::from_micros(micros));
    }
    out
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Report

fn sorted(it: impl Iterator<Item = Duration>) -> Vec<Duration> {
    let mut v: Vec<Duration> = it.collect();
    v.sort();
    v
}

/// Nearest-rank percentile of a sorted slice, in milliseconds.
fn pct(v: &[Duration], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1].as_secs_f64() * 1000.0
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() { format!("{:.2}×", a / b) } else { "–".into() }
}

fn report(f: &Fleet, o: &Opts, results: &[PhaseResult]) {
    let nodes: u32 = f.workload.iter().filter_map(|c| f.env.fleet().cluster(c)).map(|c| c.nodes).sum();
    println!();
    let pace = o.rate.map(|r| format!(", paced at {r} creates/s")).unwrap_or_else(|| ", as fast as they go (a burst)".into());
    println!("### controller_scale: {} objects into {} workload clusters ({nodes} nodes), {} concurrent creators{pace}", o.count, f.workload.len(), o.concurrency);
    println!();
    println!("Latency per object: from its create call returning (and, in brackets, from the call being sent) to its Deployment being seen by a watch in a workload cluster.");
    println!();
    println!(
        "| phase | complete | P50 ms | P90 ms | P99 ms | max ms | (sent) P50 / P99 ms | total s | objects/s | create call P50 / P99 ms | load avg (1 min) during: mean / max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let what = match r.phase {
            Phase::Mck8s => "mck8s: MCD → child Deployment",
            Phase::Direct => "direct: Deployment",
        };
        let complete = format!("{}/{}{}", r.complete, r.n, if r.stalled { " (stalled)" } else { "" });
        println!(
            "| {what} | {complete} | {:.0} | {:.0} | {:.0} | {:.0} | ({:.0} / {:.0}) | {:.1} | {:.1} | {:.0} / {:.0} | {:.2} / {:.2} |",
            pct(&r.latencies, 0.5),
            pct(&r.latencies, 0.9),
            pct(&r.latencies, 0.99),
            pct(&r.latencies, 1.0),
            pct(&r.from_sent, 0.5),
            pct(&r.from_sent, 0.99),
            r.total.as_secs_f64(),
            r.complete as f64 / r.total.as_secs_f64().max(1e-9),
            pct(&r.create_calls, 0.5),
            pct(&r.create_calls, 0.99),
            r.load_during.0,
            r.load_during.1
        );
    }
    let m = results.iter().find(|r| r.phase == Phase::Mck8s);
    let d = results.iter().find(|r| r.phase == Phase::Direct);
    if let (Some(m), Some(d)) = (m, d) {
        println!(
            "| **ratio mck8s / direct** | | {} | {} | {} | {} | ({} / {}) | {} | | | |",
            ratio(pct(&m.latencies, 0.5), pct(&d.latencies, 0.5)),
            ratio(pct(&m.latencies, 0.9), pct(&d.latencies, 0.9)),
            ratio(pct(&m.latencies, 0.99), pct(&d.latencies, 0.99)),
            ratio(pct(&m.latencies, 1.0), pct(&d.latencies, 1.0)),
            ratio(pct(&m.from_sent, 0.5), pct(&d.from_sent, 0.5)),
            ratio(pct(&m.from_sent, 0.99), pct(&d.from_sent, 0.99)),
            ratio(m.total.as_secs_f64(), d.total.as_secs_f64()),
        );
    }
    println!();
    for r in results {
        println!("{:?}: load average (1/5/15 min) {} before → {} after.", r.phase, r.load_before, r.load_after);
    }
    for r in results {
        if r.early > 0 || r.retries > 0 {
            println!("{:?}: {} objects seen before their create call returned (counted as 0 ms); {} create retries", r.phase, r.early, r.retries);
        }
    }

    println!();
    println!("CPU seconds during each phase's run (first create → last object seen), by process:");
    println!();
    let comps: Vec<BTreeMap<String, f64>> = results.iter().map(|r| by_component(&r.env_cpu)).collect();
    let mut kinds: Vec<String> = comps.iter().flat_map(|c| c.keys().cloned()).collect();
    kinds.sort();
    kinds.dedup();
    print!("| phase | wall s |");
    for k in &kinds {
        print!(" {k} |");
    }
    println!(" bench process | mck8s controller | total | cores used |");
    print!("|---|---:|");
    for _ in &kinds {
        print!("---:|");
    }
    println!("---:|---:|---:|---:|");
    for (r, comp) in results.iter().zip(&comps) {
        let ctl = r.controller.as_ref().map(|c| c.cpu_run).unwrap_or(0.0);
        let total: f64 = comp.values().sum::<f64>() + r.bench_cpu + ctl;
        print!("| {:?} | {:.1} |", r.phase, r.total.as_secs_f64());
        for k in &kinds {
            print!(" {:.1} |", comp.get(k).copied().unwrap_or(0.0));
        }
        let ctl_cell = if r.controller.is_some() { format!("{ctl:.1}") } else { "–".into() };
        println!(" {:.1} | {ctl_cell} | {total:.1} | {:.2} |", r.bench_cpu, total / r.total.as_secs_f64().max(1e-9));
    }
    println!();
    for r in results {
        let per: Vec<String> =
            std::iter::once(&f.mgmt).chain(&f.workload).map(|c| format!("{c} {:.1}", r.env_cpu.get(&format!("{c}/kube-apiserver")).copied().unwrap_or(0.0))).collect();
        println!("{:?}: kube-apiserver CPU s by cluster: {}.", r.phase, per.join(", "));
    }
    println!();
    println!("Requests served per object during the run (`apiserver_request_total`; the top ten by count):");
    println!();
    println!("| phase | apiserver | requests / object | top requests / object |");
    println!("|---|---|---:|---|");
    for r in results {
        for (cluster, reqs) in &r.requests {
            let total: f64 = reqs.values().sum();
            if total <= 0.0 {
                continue;
            }
            let role = if *cluster == f.mgmt { format!("{cluster} (management)") } else { cluster.clone() };
            let mut top: Vec<(&String, &f64)> = reqs.iter().collect();
            top.sort_by(|a, b| b.1.total_cmp(a.1));
            let top: Vec<String> = top.iter().take(10).map(|(k, v)| format!("{k} {:.2}", *v / r.n as f64)).collect();
            println!("| {:?} | {role} | {:.2} | {} |", r.phase, total / r.n as f64, top.join(", "));
        }
    }

    if let Some(c) = m.and_then(|m| m.controller.as_ref().map(|c| (m, c))) {
        let (m, c) = c;
        println!();
        println!("The controller (`mck8s run`, one process):");
        println!();
        println!("| what | value |");
        println!("|---|---:|");
        println!("| peak RSS (VmHWM) | {:.1} MiB |", c.peak_rss_mib);
        println!("| RSS when the last child appeared | {:.1} MiB |", c.rss_done_mib);
        println!("| CPU, start until ready | {:.2} s |", c.cpu_startup);
        println!("| CPU, first create → last child ({:.1} s) | {:.2} s, {:.2} cores on average |", m.total.as_secs_f64(), c.cpu_run, c.cpu_run / m.total.as_secs_f64().max(1e-9));
        println!("| CPU, then until no reconcile for 6 s ({:.1} s) | {:.2} s |", c.settle.as_secs_f64(), c.cpu_settle);
        let delta = |after: &Metrics, before: &Metrics, name: &str, by: &str| -> String {
            let a = after.by(name, by);
            let b = before.by(name, by);
            if a.is_empty() {
                return "absent".into();
            }
            a.iter().map(|(k, v)| format!("{k} {:.0}", v - b.get(k).copied().unwrap_or(0.0))).collect::<Vec<_>>().join(", ")
        };
        for (stage, after) in [("during the run", &c.run_after), ("until quiet", &c.settled)] {
            println!("| reconciles {stage} | {} |", delta(after, &c.run_before, "mck8s_reconciles_total", "result"));
            println!("| child applies {stage} (`mck8s_child_applies_total`) | {} |", delta(after, &c.run_before, "mck8s_child_applies_total", "result"));
        }
        let n = c.run_after.total("mck8s_placement_decision_seconds_count") - c.run_before.total("mck8s_placement_decision_seconds_count");
        let s = c.run_after.total("mck8s_placement_decision_seconds_sum") - c.run_before.total("mck8s_placement_decision_seconds_sum");
        if n > 0.0 {
            let p99 = c.run_after.histogram_quantile("mck8s_placement_decision_seconds", 0.99, &c.run_before);
            println!(
                "| placement decisions during the run | {n:.0}, mean {:.3} ms, P99 ≤ {} ms (histogram bucket), {:.2} s in all |",
                s / n * 1000.0,
                p99.map(|v| format!("{:.3}", v * 1000.0)).unwrap_or_else(|| "?".into()),
                s
            );
        }
        if !c.to_decision.is_empty() {
            println!(
                "| create returned → \"placement decided\" logged, P50 / P99 | {:.0} / {:.0} ms ({} MCDs) |",
                pct(&c.to_decision, 0.5),
                pct(&c.to_decision, 0.99),
                c.to_decision.len()
            );
            println!("| \"placement decided\" → child seen, P50 / P99 | {:.0} / {:.0} ms |", pct(&c.decision_to_child, 0.5), pct(&c.decision_to_child, 0.99));
        }
    }
}
