//! `up`, `down`, `status` and the disruptions (stop/start a cluster's apiserver).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::try_join_all;

use crate::fleet::{ClusterSpec, Fleet};
use crate::kubeconfig::{self, Endpoint};
use crate::paths;
use crate::pki::Pki;
use crate::procs::{self, ProcRecord};
use crate::state::{State, StateDir};
use crate::{Error, Result, addons, capi};

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub fleet: Fleet,
    pub serf: bool,
    pub prometheus: bool,
    /// The `testenv` binary, which also runs the simulated kubelets.
    pub testenv_bin: PathBuf,
}

const READY_TIMEOUT: Duration = Duration::from_secs(180);
const GOGC: &str = "50";

/// Finds the `testenv` binary: `$MCK8S_TESTENV_BIN`, else next to (or one level above, for
/// test binaries in `deps/`) the current executable.
pub fn find_testenv_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MCK8S_TESTENV_BIN") {
        return p.into();
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let cand = dir.join("testenv");
            if cand.is_file() {
                return cand;
            }
        }
    }
    PathBuf::from("testenv")
}

fn etcd_data_dir(fleet: &Fleet) -> PathBuf {
    // tmpfs: etcd 3.4 has no --unsafe-no-fsync and fsync on a shared disk slows every write.
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
    base.join(format!("mck8s-testenv-etcd-{}", fleet.base_port))
}

/// Starts the fleet and returns once every cluster is usable. On failure, stops what it started.
pub async fn up(sd: &StateDir, opts: UpOptions) -> Result<State> {
    let _lock = sd.lock()?;
    if let Some(old) = sd.read()? {
        if old.procs.iter().any(ProcRecord::alive) {
            return Err(Error::Environment(format!("an environment already runs in {} (testenv down first)", sd.dir.display())));
        }
        remove_state(sd, &old);
    }
    let started = Instant::now();
    let mut state = State { fleet: opts.fleet.clone(), serf: opts.serf, prometheus: opts.prometheus, procs: Vec::new(), admin_token: String::new() };
    match start_all(sd, &opts, &mut state).await {
        Ok(()) => {
            tracing::info!(secs = started.elapsed().as_secs_f64(), "environment ready");
            Ok(state)
        }
        Err(e) => {
            tracing::error!(error = %e, "up failed; stopping what was started (logs kept in {})", sd.dir.join("logs").display());
            stop_all(sd, &state).await;
            Err(e)
        }
    }
}

async fn start_all(sd: &StateDir, opts: &UpOptions, state: &mut State) -> Result<()> {
    let fleet = &opts.fleet;
    let ports = fleet.ports();
    for sub in ["logs", "kubeconfig", "pki"] {
        let p = sd.sub(sub);
        std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
    }
    preflight_ports(opts)?;
    let pki = sd.pki();
    state.admin_token = Pki::ensure(&pki)?;

    let etcd_dir = etcd_data_dir(fleet);
    let _ = std::fs::remove_dir_all(&etcd_dir);
    let etcd_url = etcd_url(fleet);
    let peer_url = format!("http://127.0.0.1:{}", ports.etcd_peer());
    let args = vec![
        "--name=testenv".into(),
        format!("--data-dir={}", etcd_dir.display()),
        format!("--listen-client-urls={etcd_url}"),
        format!("--advertise-client-urls={etcd_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=testenv={peer_url}"),
        "--log-level=warn".into(),
    ];
    launch(sd, state, "etcd", &PathBuf::from("etcd"), args)?;
    wait_http(&format!("{etcd_url}/health"), "etcd", state, "etcd").await?;

    // Every apiserver at once: start-up is CPU-bound, and the 2 cores are shared anyway.
    for (i, c) in fleet.clusters.iter().enumerate() {
        let args = apiserver_args(sd, &etcd_url, &c.name, ports.apiserver(i));
        launch(sd, state, &format!("{}/kube-apiserver", c.name), &paths::kube_bin("kube-apiserver"), args)?;
    }
    write_kubeconfigs(sd, state)?;
    try_join_all(fleet.clusters.iter().map(|c| wait_apiserver(sd, &c.name, state))).await?;

    let testenv = opts.testenv_bin.to_string_lossy().to_string();
    for c in &fleet.clusters {
        let kc = sd.kubeconfig(&c.name);
        let cm = controller_manager_args(sd, &kc, &c.name);
        launch(sd, state, &format!("{}/kube-controller-manager", c.name), &paths::kube_bin("kube-controller-manager"), cm)?;
        launch(sd, state, &format!("{}/kube-scheduler", c.name), &paths::kube_bin("kube-scheduler"), scheduler_args(&kc))?;
        let kubelet = vec!["kubelet".into(), format!("--state-dir={}", sd.dir.display()), format!("--cluster={}", c.name)];
        launch(sd, state, &format!("{}/kubelet", c.name), &PathBuf::from(&testenv), kubelet)?;
    }
    if fleet.capi.is_some() {
        // After the management apiserver is ready: the simulator installs its CRDs there.
        let args = vec![capi::PROC_NAME.into(), format!("--state-dir={}", sd.dir.display())];
        launch(sd, state, capi::PROC_NAME, &PathBuf::from(&testenv), args)?;
    }
    if opts.serf {
        for (name, program, args) in addons::serf_commands(fleet) {
            launch(sd, state, &name, &program, args)?;
        }
    }
    if opts.prometheus {
        let (program, args) = addons::prometheus_command(sd, fleet)?;
        launch(sd, state, "prometheus", &program, args)?;
    }

    try_join_all(fleet.clusters.iter().map(|c| wait_cluster_usable(sd, c))).await?;
    if fleet.capi.is_some() {
        wait_capi_ready(sd, state).await?;
    }
    if opts.serf {
        addons::wait_serf(fleet, READY_TIMEOUT).await?;
    }
    if opts.prometheus {
        wait_http(&format!("http://127.0.0.1:{}/-/ready", ports.prometheus()), "prometheus", state, "prometheus").await?;
    }
    sd.write(state)
}

/// Fails early if a port is taken: otherwise a second environment on the same ports would
/// find the first one's etcd healthy and wait for apiservers that never bound.
fn preflight_ports(opts: &UpOptions) -> Result<()> {
    let ports = opts.fleet.ports();
    let mut all = vec![ports.etcd_client(), ports.etcd_peer()];
    if opts.fleet.capi.is_some() {
        all.extend((0..crate::fleet::CAPI_SLOTS).map(|slot| ports.capi_apiserver(slot)));
    }
    for i in 0..opts.fleet.clusters.len() {
        all.extend([ports.apiserver(i), ports.kubelet(i)]);
        if opts.serf {
            all.extend([ports.serf_bind(i), ports.serf_rpc(i)]);
        }
    }
    if opts.prometheus {
        all.push(ports.prometheus());
    }
    for p in all {
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_err() {
            return Err(Error::Environment(format!("127.0.0.1:{p} is in use (another environment? give the fleet another base_port)")));
        }
    }
    Ok(())
}

/// Fails fast with the log's tail when a process we wait for has exited.
fn ensure_alive(state: &State, name: &str) -> Result<()> {
    match state.proc(name) {
        Some(p) if !p.alive() => {
            let log = std::fs::read_to_string(&p.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            Err(Error::Command {
                what: format!("{name} (pid {})", p.pid),
                detail: format!("exited; last log lines ({}):\n{}", p.log.display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n")),
            })
        }
        _ => Ok(()),
    }
}

fn launch(sd: &StateDir, state: &mut State, name: &str, program: &std::path::Path, args: Vec<String>) -> Result<()> {
    let rec = procs::spawn(name, program, &args, &go_env(name), &procs::log_path(&sd.dir, name))?;
    state.procs.push(rec);
    // Record every PID as soon as it exists, so `down` can stop a half-started environment.
    sd.write(state)
}

/// Environment for a process called `name`. The Go components' heaps are mostly garbage
/// between collections; collecting earlier trades a little CPU for a smaller resident set
/// (see docs/testing.md for the numbers).
pub(crate) fn go_env(name: &str) -> Vec<(String, String)> {
    match std::env::var("MCK8S_TESTENV_GOGC") {
        Ok(v) if v.is_empty() => vec![],
        Ok(v) => vec![("GOGC".into(), v)],
        Err(_) if name.contains("/kube-") || name == "etcd" => vec![("GOGC".into(), GOGC.into())],
        Err(_) => vec![],
    }
}

pub(crate) fn etcd_url(fleet: &Fleet) -> String {
    format!("http://127.0.0.1:{}", fleet.ports().etcd_client())
}

fn apiserver_args(sd: &StateDir, etcd_url: &str, cluster: &str, port: u16) -> Vec<String> {
    let api = ApiserverArgs { etcd_prefix: format!("/mck8s-testenv/{cluster}"), port, cert_dir: sd.sub(format!("apiserver/{cluster}")), token_file: sd.pki().join("tokens.csv") };
    api.args(sd, etcd_url)
}

/// What differs between the environment's apiservers (the fleet's and the simulated Cluster
/// API's workload clusters); everything else is shared.
pub(crate) struct ApiserverArgs {
    pub etcd_prefix: String,
    pub port: u16,
    pub cert_dir: PathBuf,
    pub token_file: PathBuf,
}

impl ApiserverArgs {
    pub(crate) fn args(&self, sd: &StateDir, etcd_url: &str) -> Vec<String> {
        let pki = sd.pki();
        let p = |f: &str| pki.join(f).display().to_string();
        vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--etcd-prefix={}", self.etcd_prefix),
            format!("--secure-port={}", self.port),
            "--insecure-port=0".into(),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--cert-dir={}", self.cert_dir.display()),
            format!("--tls-cert-file={}", p("serving.crt")),
            format!("--tls-private-key-file={}", p("serving.key")),
            format!("--client-ca-file={}", p("ca.crt")),
            format!("--token-auth-file={}", self.token_file.display()),
            "--authorization-mode=RBAC".into(),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            "--api-audiences=https://kubernetes.default.svc.cluster.local".into(),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ]
    }
}

pub(crate) fn controller_manager_args(sd: &StateDir, kubeconfig: &std::path::Path, cluster: &str) -> Vec<String> {
    let pki = sd.pki();
    vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--service-account-private-key-file={}", pki.join("sa.key").display()),
        format!("--root-ca-file={}", pki.join("ca.crt").display()),
        "--leader-elect=false".into(),
        // nodeipam needs a cluster CIDR; nodelifecycle would evict from nodes whose
        // heartbeats we deliberately stop (node loss is simulated by the kubelet instead).
        "--controllers=*,-nodeipam,-nodelifecycle".into(),
        "--port=0".into(),
        "--secure-port=0".into(),
        format!("--cluster-name={cluster}"),
        "--v=1".into(),
    ]
}

pub(crate) fn scheduler_args(kubeconfig: &std::path::Path) -> Vec<String> {
    vec![format!("--kubeconfig={}", kubeconfig.display()), "--leader-elect=false".into(), "--port=0".into(), "--secure-port=0".into(), "--v=1".into()]
}

fn write_kubeconfigs(sd: &StateDir, state: &State) -> Result<()> {
    let ports = state.fleet.ports();
    let ca = sd.pki().join("ca.crt");
    let endpoints: Vec<Endpoint<'_>> = state.fleet.clusters.iter().enumerate().map(|(i, c)| Endpoint { cluster: &c.name, port: ports.apiserver(i) }).collect();
    for e in &endpoints {
        kubeconfig::write(&sd.kubeconfig(e.cluster), std::slice::from_ref(e), &ca, &state.admin_token)?;
    }
    kubeconfig::write(&sd.merged_kubeconfig(), &endpoints, &ca, &state.admin_token)
}

async fn wait_http(url: &str, what: &str, state: &State, proc_name: &str) -> Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        ensure_alive(state, proc_name)?;
        if Instant::now() > deadline {
            return Err(Error::Timeout { what: what.into(), secs: READY_TIMEOUT.as_secs() });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls `/readyz`: there is nothing to watch before the apiserver answers.
pub async fn wait_apiserver(sd: &StateDir, cluster: &str, state: &State) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(client) = kubeconfig::client(&sd.kubeconfig(cluster), cluster).await {
            let req = http::Request::get("/readyz").body(Vec::new()).expect("static request");
            if let Ok(text) = client.request_text(req).await
                && text.trim() == "ok"
            {
                return Ok(());
            }
        }
        ensure_alive(state, &format!("{cluster}/kube-apiserver"))?;
        if Instant::now() > deadline {
            return Err(Error::Timeout { what: format!("{cluster} apiserver /readyz"), secs: READY_TIMEOUT.as_secs() });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The simulator is ready once it has installed its CRDs and its ClusterClass.
async fn wait_capi_ready(sd: &StateDir, state: &State) -> Result<()> {
    let Some(mgmt) = state.fleet.management() else { return Ok(()) };
    let client = kubeconfig::client(&sd.kubeconfig(&mgmt.name), &mgmt.name).await?;
    let classes: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(client, capi::SIM_NAMESPACE, &capi::Kind::ClusterClass.resource());
    let deadline = Instant::now() + READY_TIMEOUT;
    while !matches!(classes.get_opt(capi::CLASS_NAME).await, Ok(Some(_))) {
        ensure_alive(state, capi::PROC_NAME)?;
        if Instant::now() > deadline {
            return Err(Error::Timeout { what: "capi-sim ClusterClass".into(), secs: READY_TIMEOUT.as_secs() });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

/// Usable = every simulated node Ready, the `default` ServiceAccount has its token secret
/// (without it the ServiceAccount admission plugin rejects pods), and `metrics.k8s.io`
/// answers where the cluster serves it.
async fn wait_cluster_usable(sd: &StateDir, c: &ClusterSpec) -> Result<()> {
    use k8s_openapi::api::core::v1::{Node, ServiceAccount};
    use kube::runtime::wait::await_condition;
    let client = kubeconfig::client(&sd.kubeconfig(&c.name), &c.name).await?;
    let timeout = |what: String| Error::Timeout { what, secs: READY_TIMEOUT.as_secs() };
    let sa_ready = |sa: Option<&ServiceAccount>| sa.is_some_and(|sa| sa.secrets.as_ref().is_some_and(|s| !s.is_empty()));
    let sas: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), "default");
    tokio::time::timeout(READY_TIMEOUT, await_condition(sas, "default", sa_ready))
        .await
        .map_err(|_| timeout(format!("{} default ServiceAccount token", c.name)))?
        .map_err(|e| Error::State(e.to_string()))?;
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    for name in c.node_names() {
        tokio::time::timeout(READY_TIMEOUT, await_condition(nodes.clone(), &name, crate::kubelet::node_is_ready))
            .await
            .map_err(|_| timeout(format!("node {name} Ready")))?
            .map_err(|e| Error::State(e.to_string()))?;
    }
    if c.metrics_api {
        // Served through the aggregator once the kubelet has registered it.
        let deadline = Instant::now() + READY_TIMEOUT;
        while client.list_api_group_resources("metrics.k8s.io/v1beta1").await.is_err() {
            if Instant::now() > deadline {
                return Err(timeout(format!("{} metrics.k8s.io", c.name)));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(())
}

/// Stops every recorded process in three waves, so no component outlives what it talks to
/// for long: clients (kubelets, controllers, serf, Prometheus), then apiservers, then etcd.
/// The simulated Cluster API goes first, under its record lock, so that it cannot start a
/// workload cluster that the waves would miss; its workload clusters' processes join the waves.
pub async fn stop_all(sd: &StateDir, state: &State) {
    let procs = state.procs.clone();
    let dir = sd.dir.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let _lock = capi::record::lock(&dir).map_err(|e| tracing::warn!(error = %e, "capi record lock"));
        let sim: Vec<ProcRecord> = procs.iter().filter(|p| p.name == capi::PROC_NAME).cloned().collect();
        procs::stop_all(&sim, Duration::from_secs(5));
        let mut procs = procs;
        procs.extend(capi::record::all_procs(&dir));
        let wave = |pred: &dyn Fn(&ProcRecord) -> bool| procs.iter().filter(|p| pred(p)).cloned().collect::<Vec<_>>();
        let is_api = |p: &ProcRecord| p.name.ends_with("/kube-apiserver");
        let is_etcd = |p: &ProcRecord| p.name == "etcd";
        procs::stop_all(&wave(&|p| !is_api(p) && !is_etcd(p)), Duration::from_secs(10));
        procs::stop_all(&wave(&is_api), Duration::from_secs(15));
        procs::stop_all(&wave(&is_etcd), Duration::from_secs(10));
    })
    .await;
}

fn remove_state(sd: &StateDir, state: &State) {
    let _ = std::fs::remove_dir_all(etcd_data_dir(&state.fleet));
    for sub in ["state.json", "logs", "kubeconfig", "pki", "apiserver", "prometheus", "locks", "capi", capi::record::FILE, capi::record::LOCK_FILE] {
        let p = sd.sub(sub);
        let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
    }
}

/// Stops exactly the processes `up` started and removes the state it wrote.
pub async fn down(sd: &StateDir, keep_logs: bool) -> Result<bool> {
    let _lock = sd.lock()?;
    let Some(state) = sd.read()? else { return Ok(false) };
    stop_all(sd, &state).await;
    if keep_logs {
        let _ = std::fs::remove_file(sd.state_file());
        let _ = std::fs::remove_dir_all(etcd_data_dir(&state.fleet));
    } else {
        remove_state(sd, &state);
        let _ = std::fs::remove_file(sd.sub("lock"));
        let _ = std::fs::remove_dir(&sd.dir);
        let _ = std::fs::remove_file(sd.dir.with_extension("starting"));
    }
    Ok(true)
}

/// Whole-cluster loss: stops the cluster's apiserver (its objects stay in etcd).
pub async fn stop_cluster(sd: &StateDir, cluster: &str) -> Result<()> {
    let _lock = sd.lock()?;
    let state = sd.read()?.ok_or_else(|| Error::NotRunning(sd.dir.clone()))?;
    let rec = state.proc(&format!("{cluster}/kube-apiserver")).ok_or_else(|| Error::UnknownCluster(cluster.into()))?.clone();
    // Short grace: a cluster going away is abrupt; etcd keeps whatever was committed.
    tokio::task::spawn_blocking(move || rec.stop(Duration::from_secs(3))).await.ok();
    Ok(())
}

/// The record of a cluster's kube-apiserver process.
pub fn apiserver_proc(sd: &StateDir, cluster: &str) -> Result<ProcRecord> {
    let state = sd.read()?.ok_or_else(|| Error::NotRunning(sd.dir.clone()))?;
    Ok(state.proc(&format!("{cluster}/kube-apiserver")).ok_or_else(|| Error::UnknownCluster(cluster.into()))?.clone())
}

/// Brings a stopped cluster back with the same flags, and any of its controllers that died
/// meanwhile (for the management cluster, also the simulated Cluster API); returns once its
/// apiserver is ready.
pub async fn start_cluster(sd: &StateDir, cluster: &str) -> Result<()> {
    let _lock = sd.lock()?;
    let mut state = sd.read()?.ok_or_else(|| Error::NotRunning(sd.dir.clone()))?;
    if state.fleet.cluster(cluster).is_none() {
        return Err(Error::UnknownCluster(cluster.into()));
    }
    for comp in ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"] {
        let name = format!("{cluster}/{comp}");
        if let Some(rec) = state.proc(&name).filter(|r| !r.alive()).cloned() {
            let new = rec.restart()?;
            state.replace_proc(new);
            sd.write(&state)?;
        }
        if comp == "kube-apiserver" {
            wait_apiserver(sd, cluster, &state).await?;
        }
    }
    // The simulated Cluster API lives in the management cluster; it re-adopts its workload
    // clusters when restarted.
    if state.fleet.capi.is_some()
        && state.fleet.management().is_some_and(|m| m.name == cluster)
        && let Some(rec) = state.proc(capi::PROC_NAME).filter(|r| !r.alive()).cloned()
    {
        state.replace_proc(rec.restart()?);
        sd.write(&state)?;
    }
    Ok(())
}

/// One line per process: name, PID, alive, RSS; and the total RSS. The flag is true when
/// every recorded process runs.
pub fn status(sd: &StateDir) -> Result<(String, bool)> {
    use std::fmt::Write;
    let Some(state) = sd.read()? else { return Err(Error::NotRunning(sd.dir.clone())) };
    let mut out = String::new();
    let mut total = 0u64;
    let _ = writeln!(out, "state dir {}  (export {}={})", sd.dir.display(), paths::STATE_DIR_ENV, sd.dir.display());
    let _ = writeln!(out, "{:<34} {:>8} {:>7} {:>10}", "process", "pid", "state", "rss MiB");
    let all: Vec<ProcRecord> = state.procs.iter().cloned().chain(capi::record::all_procs(&sd.dir)).collect();
    for p in &all {
        let rss = p.rss_bytes();
        total += rss.unwrap_or(0);
        let _ = writeln!(
            out,
            "{:<34} {:>8} {:>7} {:>10}",
            p.name,
            p.pid,
            if p.alive() { "running" } else { "stopped" },
            rss.map(|b| format!("{:.0}", b as f64 / 1048576.0)).unwrap_or_else(|| "-".into())
        );
    }
    let _ = writeln!(out, "total RSS {:.0} MiB", total as f64 / 1048576.0);
    Ok((out, all.iter().all(ProcRecord::alive)))
}

/// How to use a running environment, printed by `up`.
pub fn usage(sd: &StateDir, state: &State) -> String {
    let mut s = format!(
        "mck8s testenv ready: {} clusters\n  export {}={}\n  export KUBECONFIG={}   # contexts: {}\n",
        state.fleet.clusters.len(),
        paths::STATE_DIR_ENV,
        sd.dir.display(),
        sd.merged_kubeconfig().display(),
        state.fleet.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
    );
    s += &format!("  kubectl --context {} get nodes\n", state.fleet.clusters[0].name);
    s += &format!("  per-cluster kubeconfigs: {}/<cluster>.yaml\n", sd.dir.join("kubeconfig").display());
    let ports = state.fleet.ports();
    s += &format!("  simulated kubelet metrics: http://127.0.0.1:{}/metrics (cluster 0; +1 per cluster)\n", ports.kubelet(0));
    if state.serf {
        s += &format!("  serf members -rpc-addr=127.0.0.1:{}\n", ports.serf_rpc(0));
    }
    if state.prometheus {
        s += &format!("  prometheus: http://127.0.0.1:{}\n", ports.prometheus());
    }
    if let (Some(_), Some(m)) = (&state.fleet.capi, state.fleet.management()) {
        s += &format!(
            "  simulated Cluster API in {}: kubectl --context {} get clusters.cluster.x-k8s.io -A  (ClusterClass {}/{})\n",
            m.name,
            m.name,
            capi::SIM_NAMESPACE,
            capi::CLASS_NAME
        );
    }
    s
}
