//! The CloudProvisioner's own overhead (issue 15): from the first unplaced replica to the
//! replicas Running in a cloud cluster made for them, with the simulated Cluster API's delays
//! set to zero (`tests/testenv/fleet.cloud-bench.yaml`), so what is left is the API servers'
//! own start-up and the controllers. Each run is split at the moments the bench can see:
//!
//! | segment | who |
//! |---|---|
//! | demand → Cluster created | mck8s (demand poll, sizing, namespace, Secret, Cluster SSA) |
//! | Cluster → control plane initialised | the simulated provider: a real kube-apiserver starting |
//! | → first worker Ready | the simulated provider: Machine phases, Node registration |
//! | → CloudProvisioner Ready | mck8s (gate, own probe, registry Secret, registry connects) |
//! | → replicas Running | mck8s (re-placement, child apply) + the cloud's KCM, scheduler, kubelet |
//!
//! `bash scripts/bench-cloud.sh [--runs N]` starts its own environment (ports 285xx, state dir
//! /tmp/mck8s-cloud-bench) and runs this; the controller runs in-process with a 1 s poll.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use mck8s_api::{CloudProvisioner, MultiClusterDeployment};
use mck8s_controller::Config;
use mck8s_controller::context::Timing;
use mck8s_testenv::TestEnv;
use mck8s_testenv::state::StateDir;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const NS: &str = "cloud-bench";
const BOUND: Duration = Duration::from_secs(300);

fn capi(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", kind))
}

fn builtin_dir() -> PathBuf {
    mck8s_policy::built::ensure().unwrap_or_else(|e| panic!("{e}")).join("builtin")
}

#[derive(Default, Clone, Copy)]
struct Marks {
    cluster: Option<f64>,
    control_plane: Option<f64>,
    worker: Option<f64>,
    joined: Option<f64>,
    running: Option<f64>,
}

fn main() -> Result<()> {
    let runs: usize = std::env::args().skip_while(|a| a != "--runs").nth(1).and_then(|v| v.parse().ok()).unwrap_or(3);
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(runs))
}

async fn bench(runs: usize) -> Result<()> {
    let sd = StateDir::new(std::env::var_os("MCK8S_TESTENV_DIR").map(PathBuf::from).context("MCK8S_TESTENV_DIR (use scripts/bench-cloud.sh)")?);
    let env = TestEnv::attach(&sd)?.context("no environment running there")?;
    let fog: Vec<String> = env.cluster_names().into_iter().filter(|c| c != "mgmt").collect();
    let mgmt = env.client("mgmt").await?;
    let out = env.kubectl("mgmt").args(["apply", "-f"]).arg(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crds"))).output()?;
    if !out.status.success() {
        bail!("kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
    }
    let nss: Api<Namespace> = Api::all(mgmt.clone());
    for ns in [NS, "mck8s-system"] {
        if nss.get_opt(ns).await?.is_none() {
            nss.create(&PostParams::default(), &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?).await?;
        }
    }
    let class_text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/capi/clusterclass-mck8s-openstack.yaml"))?;
    let class: DynamicObject = serde_yaml_ng::from_str(class_text.split("\n---\n").next().unwrap_or_default())?;
    Api::<DynamicObject>::namespaced_with(mgmt.clone(), "mck8s-system", &capi("ClusterClass"))
        .patch("mck8s-openstack", &PatchParams::apply("bench").force(), &Patch::Apply(&class))
        .await?;

    let exclude: Vec<String> = env.cluster_names().into_iter().filter(|c| !fog.contains(c)).collect();
    let config = Config {
        namespace: NS.into(),
        watch_namespace: Some(NS.into()),
        cluster_paths: vec![env.merged_kubeconfig()],
        exclude_clusters: exclude,
        kubeconfig_local_files: false,
        cluster_secrets: true,
        policy_dirs: vec![builtin_dir()],
        policy_configmaps: false,
        policy_limits: Default::default(),
        policy_cache_max_bytes: mck8s_policy::DEFAULT_CACHE_MAX_BYTES,
        prometheus_url: None,
        serf_rpc: None,
        rtt_file: None,
        metrics_addr: None,
        instance: "cloud-bench".into(),
        timing: Timing { burst_retry: Duration::from_secs(1), error_retry: Duration::from_secs(1), ..Timing::default() },
        move_limit: Default::default(),
        leader_election: false,
        cloud_provisioning: true,
        max_concurrent_provisions: 1,
        cloud_poll: Duration::from_secs(1),
        cloud_access: None,
        max_concurrent_reconciles: mck8s_controller::DEFAULT_MAX_CONCURRENT_RECONCILES,
    };
    let controller = tokio::spawn(mck8s_controller::run(mgmt.clone(), config));
    let mut rows = Vec::new();
    for i in 0..runs {
        let m = one_run(&mgmt, i).await?;
        eprintln!("run {i}: {:?}", [m.cluster, m.control_plane, m.worker, m.joined, m.running]);
        rows.push(m);
    }
    controller.abort();
    print(&rows);
    Ok(())
}

/// One burst: an MCD that fits nowhere (the bench fleet's fog is one tiny cluster), then a
/// CloudProvisioner with no confirmation window; times from the CloudProvisioner's create.
async fn one_run(mgmt: &kube::Client, i: usize) -> Result<Marks> {
    let name = format!("cloud-bench-{i}");
    let mcds: Api<MultiClusterDeployment> = Api::namespaced(mgmt.clone(), NS);
    let mcd: MultiClusterDeployment = serde_yaml_ng::from_str(&format!(
        "apiVersion: fogguru.eu/v1\nkind: MultiClusterDeployment\nmetadata: {{name: app-{i}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec: {{containers: [{{name: c, image: registry.example/c:1, resources: {{requests: {{cpu: '3', memory: 1Gi}}}}}}]}}\n"
    ))?;
    mcds.create(&PostParams::default(), &mcd).await?;
    wait("to_cloud", || async {
        let m = mcds.get(&format!("app-{i}")).await.ok()?;
        m.status?.message.filter(|m| m.message == "to_cloud").map(|_| ())
    })
    .await?;
    let cps: Api<CloudProvisioner> = Api::all(mgmt.clone());
    let cp: CloudProvisioner = serde_yaml_ng::from_str(&format!(
        "apiVersion: fogguru.eu/v1\nkind: CloudProvisioner\nmetadata: {{name: {name}}}\nspec:\n  cloudClusterName: {name}\n  lifecycle: {{demandConfirmSeconds: 0, drainGraceSeconds: 0, deprovisionAfterIdleSeconds: 0}}\n"
    ))?;
    let t0 = Instant::now();
    cps.create(&PostParams::default(), &cp).await?;
    let clusters: Api<DynamicObject> = Api::namespaced_with(mgmt.clone(), &name, &capi("Cluster"));
    let mut m = Marks::default();
    let mut cloud: Option<kube::Client> = None;
    while m.running.is_none() {
        if t0.elapsed() > BOUND {
            bail!("run {i} stuck: {:?}", [m.cluster, m.control_plane, m.worker, m.joined]);
        }
        let now = t0.elapsed().as_secs_f64();
        if let Ok(Some(c)) = clusters.get_opt(&name).await {
            m.cluster.get_or_insert(now);
            if c.data.pointer("/status/initialization/controlPlaneInitialized").and_then(|v| v.as_bool()) == Some(true) {
                m.control_plane.get_or_insert(now);
            }
            if c.data.pointer("/status/workers/readyReplicas").and_then(|v| v.as_i64()).unwrap_or(0) >= 1 {
                m.worker.get_or_insert(now);
            }
        }
        if m.joined.is_none() && cps.get(&name).await.ok().and_then(|c| c.status).and_then(|s| s.phase).as_deref() == Some("Ready") {
            m.joined = Some(now);
        }
        if m.joined.is_some() {
            if cloud.is_none() {
                cloud = mck8s_testenv::capi::access::workload_client(mgmt, &name, &name).await.ok();
            }
            if let Some(c) = &cloud {
                let pods = Api::<Pod>::namespaced(c.clone(), NS).list(&ListParams::default().labels(&format!("app=app-{i}"))).await.map(|l| l.items).unwrap_or_default();
                if pods.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count() >= 2 {
                    m.running = Some(t0.elapsed().as_secs_f64());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mcds.delete(&format!("app-{i}"), &DeleteParams::default()).await?;
    cps.delete(&name, &DeleteParams::default()).await?;
    wait("CloudProvisioner gone", || async { cps.get_opt(&name).await.ok()?.is_none().then_some(()) }).await?;
    Ok(m)
}

async fn wait<F, Fut>(what: &str, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let start = Instant::now();
    while f().await.is_none() {
        if start.elapsed() > BOUND {
            bail!("{what}: not within {BOUND:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn print(rows: &[Marks]) {
    println!(
        "| run | demand → Cluster (mck8s) | → control plane (sim: apiserver start) | → worker Ready (sim) | → joined (mck8s) | → Running (mck8s + cloud KCM/scheduler) | total | mck8s share |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, m) in rows.iter().enumerate() {
        let [a, b, c, d, e] = [m.cluster, m.control_plane, m.worker, m.joined, m.running].map(|x| x.unwrap_or(f64::NAN));
        let ours = a + (d - c) + (e - d);
        println!("| {i} | {a:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {e:.2} s | {ours:.2} s |", b - a, c - b, d - c, e - d);
    }
}
