//! The mck8s controllers and their wiring. [`run`] starts everything for one management
//! cluster: the workload-cluster sources, the policy sources, the signal refreshers, the
//! MultiClusterDeployment, MultiClusterService, MultiClusterJob and
//! MultiClusterHorizontalPodAutoscaler controllers, the rescheduler and the metrics/health
//! endpoints.

pub mod children;
pub mod cloud;
pub mod context;
pub mod cpu_load;
pub mod explain;
pub mod failover;
pub mod leader;
pub mod mcd;
pub mod mchpa;
pub mod mcj;
pub mod mcs;
pub mod metrics;
pub mod policy_calls;
pub mod policy_configmaps;
pub mod proposals;
pub mod recorder;
pub mod render;
pub mod rescheduler;
pub mod shared;
pub mod shutdown;
pub mod signals;
pub mod snapshot;
pub mod spec;
pub mod web;

use anyhow::Context as _;
use context::{Context, MoveLimit, Timing};
use mck8s_clusters::Registry;
use mck8s_policy::{DirSource, EngineConfig, Limits, PolicyEngine, PolicyRegistry};
use mck8s_scheduler::Scheduler;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything `mck8s run` is told.
#[derive(Clone, Debug)]
pub struct Config {
    /// The controller's namespace: policy ConfigMaps, cluster Secrets.
    pub namespace: String,
    /// Reconcile objects in this namespace only (default: all).
    pub watch_namespace: Option<String>,
    /// Kubeconfig files or directories naming workload clusters by context.
    pub cluster_paths: Vec<PathBuf>,
    /// Contexts that are not workload clusters (the management cluster).
    pub exclude_clusters: Vec<String>,
    /// Whether those kubeconfig files may name local files (`certificate-authority`,
    /// `tokenFile`, ...). Credential plugins are refused regardless, and Secrets always.
    pub kubeconfig_local_files: bool,
    /// Watch labelled kubeconfig Secrets in `namespace`.
    pub cluster_secrets: bool,
    /// Policy directories (built-ins, large components), watched.
    pub policy_dirs: Vec<PathBuf>,
    /// Watch labelled policy ConfigMaps in `namespace`.
    pub policy_configmaps: bool,
    pub policy_limits: Limits,
    /// Most the compiled-policy cache may hold on disk.
    pub policy_cache_max_bytes: u64,
    pub prometheus_url: Option<String>,
    pub serf_rpc: Option<String>,
    pub rtt_file: Option<PathBuf>,
    pub metrics_addr: Option<SocketAddr>,
    /// Names this process in Events.
    pub instance: String,
    pub timing: Timing,
    /// Fleet-wide rate of failover and failback moves.
    pub move_limit: MoveLimit,
    /// Reconcile only while holding the Lease `mck8s-leader` in `namespace` (see [`leader`]);
    /// the watches run on standbys too.
    pub leader_election: bool,
    /// Run the CloudProvisioner controller (Cluster API in the management cluster); its
    /// registry Secrets go to `namespace`, which `cluster_secrets` must watch.
    pub cloud_provisioning: bool,
    /// Cloud clusters being provisioned at once, fleet-wide.
    pub max_concurrent_provisions: usize,
    /// How often each CloudProvisioner is re-examined (machines booting, windows passing).
    pub cloud_poll: Duration,
    /// The role the CloudProvisioner binds to itself in each cloud cluster's namespace
    /// (`--cloud-namespace-role`, set by the chart); `None` with an admin identity.
    pub cloud_access: Option<cloud::NamespaceAccess>,
    /// Reconciles each controller runs at once; 0 is unbounded (kube-runtime's default).
    /// Every reconcile in flight holds a task and, waiting on the API server, an HTTP/1
    /// connection with its buffers: unbounded, a burst of N objects held N of each.
    pub max_concurrent_reconciles: u16,
}

/// [`Config::max_concurrent_reconciles`] unless told otherwise (`--max-concurrent-reconciles`).
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: u16 = 32;

/// Runs until the MultiClusterDeployment controller stops (SIGTERM/SIGINT). `clients` is the
/// management cluster's pair from [`mck8s_clusters::Clients::new`] (a plain `kube::Client`
/// also works, with its own deadlines).
pub async fn run(clients: impl Into<mck8s_clusters::Clients>, config: Config) -> anyhow::Result<()> {
    let mck8s_clusters::Clients { requests: client, watches } = clients.into();
    let metrics = Arc::new(metrics::Metrics::default());
    let clusters = Registry::new();
    for path in &config.cluster_paths {
        let trust = if config.kubeconfig_local_files { mck8s_clusters::Trust::LocalFiles } else { mck8s_clusters::Trust::Untrusted };
        tokio::spawn(mck8s_clusters::watch_path(clusters.clone(), path.clone(), config.exclude_clusters.clone(), trust));
    }
    if config.cluster_secrets {
        tokio::spawn(mck8s_clusters::watch_secrets(clusters.clone(), watches.clone(), config.namespace.clone()));
    }

    let engine = PolicyEngine::new(EngineConfig { default_limits: config.policy_limits, cache_max_bytes: config.policy_cache_max_bytes, ..EngineConfig::default() })
        .context("policy engine")?;
    let policies = Arc::new(PolicyRegistry::new(engine));
    let mut dir_sources = Vec::new();
    for dir in &config.policy_dirs {
        let registry = policies.clone();
        let dir = dir.clone();
        // The first load compiles every component: seconds, off the async workers.
        let source = tokio::task::spawn_blocking(move || DirSource::start(registry, &dir)).await?.with_context(|| "policy directory")?;
        dir_sources.push(source);
    }
    if config.policy_configmaps {
        tokio::spawn(policy_configmaps::watch(policies.clone(), watches.clone(), config.namespace.clone()));
    }

    let prometheus = match &config.prometheus_url {
        Some(url) => Some(mck8s_signals::Prometheus::new(url, Duration::from_secs(5)).context("prometheus URL")?),
        None => None,
    };
    if let Some(p) = &prometheus {
        tokio::spawn(signals::traffic_from_prometheus(clusters.clone(), p.clone(), Duration::from_secs(15)));
    }
    if let Some(file) = &config.rtt_file {
        clusters.set_rtt(mck8s_signals::load_rtt_file(file).context("RTT file")?);
    } else if let Some(addr) = &config.serf_rpc {
        tokio::spawn(signals::rtt_from_serf(clusters.clone(), addr.clone(), Duration::from_secs(30)));
    }
    let late_ctx = web::LateContext::default();
    if let Some(addr) = config.metrics_addr {
        let (m, c, x) = (metrics.clone(), clusters.clone(), late_ctx.clone());
        tokio::spawn(async move {
            if let Err(e) = web::serve(addr, m, c, x).await {
                tracing::error!(error = %e, "metrics server");
            }
        });
    }

    // Decisions before every cluster has listed its nodes would see no capacity.
    if !clusters.wait_synced(Duration::from_secs(30)).await {
        tracing::warn!("not every workload cluster synced within 30 s; starting anyway");
    }
    let ctx = Arc::new(Context {
        client: client.clone(),
        watches,
        clusters: clusters.clone(),
        cycles: Default::default(),
        scheduler: Arc::new(Scheduler::new(policies.clone())),
        policy_calls: policy_calls::PolicyCalls::per_core(metrics.policy_call_wait.clone()),
        recorder: recorder::Recorder::new(client.clone(), "mck8s", config.instance.clone()),
        metrics,
        prometheus,
        timing: config.timing,
        applied: Default::default(),
        moves: failover::RateLimiter::new(config.move_limit.rate, config.move_limit.burst),
        reschedule: Default::default(),
        watch_namespace: config.watch_namespace.clone(),
        max_concurrent_reconciles: config.max_concurrent_reconciles,
        stop: shutdown::Signal::listen(),
    });
    if !config.leader_election {
        let _ = late_ctx.set(ctx.clone());
        controllers(ctx, &config).await;
        drop(dir_sources);
        return Ok(());
    }
    let Some(leadership) = leader::acquire_or_shutdown(client.clone(), leader::LeaderConfig::new(&config.namespace, &config.instance), ctx.stop.wait()).await else {
        return Ok(());
    };
    // Only the leader's ledger knows the decisions in flight: a standby does not explain.
    let _ = late_ctx.set(ctx.clone());
    let lost = tokio::select! {
        () = controllers(ctx, &config) => None,
        lost = leadership.hold() => Some(lost),
    };
    match lost {
        Some(lost) => return Err(lost),
        None => leadership.release().await,
    }
    drop(dir_sources);
    Ok(())
}

/// The reconcilers and the rescheduler. The reconcilers stop together (on `ctx.stop`, the
/// shared SIGTERM/SIGINT, each controller shuts down); the rescheduler's loop stops with them.
/// A controller still stopping `shutdown_grace` after the signal is dropped (see [`shutdown`]).
async fn controllers(ctx: Arc<Context>, config: &Config) {
    let grace = ctx.timing.shutdown_grace;
    let stop = ctx.stop.wait();
    if shutdown::bounded(all_controllers(ctx, config), stop, grace).await == shutdown::Stopped::GraceElapsed {
        tracing::warn!(grace_seconds = grace.as_secs(), "controllers still stopping after the shutdown grace (a CRD missing?); stopping anyway");
    }
}

async fn all_controllers(ctx: Arc<Context>, config: &Config) {
    let watch_namespace = config.watch_namespace.clone();
    let cloud = cloud::CloudConfig {
        registry_namespace: config.namespace.clone(),
        watch_namespace: watch_namespace.clone(),
        max_concurrent_provisions: config.max_concurrent_provisions.max(1),
        poll: config.cloud_poll,
        namespace_access: config.cloud_access.clone(),
    };
    let provisioner = async {
        if config.cloud_provisioning {
            cloud::run(ctx.clone(), cloud).await
        }
    };
    let reconcilers = async {
        tokio::join!(
            mcd::run(ctx.clone(), watch_namespace.clone()),
            mcs::run(ctx.clone(), watch_namespace.clone()),
            mcj::run(ctx.clone(), watch_namespace.clone()),
            mchpa::run(ctx.clone(), watch_namespace.clone()),
            provisioner,
        )
    };
    tokio::select! {
        _ = reconcilers => {}
        () = rescheduler::run(ctx.clone(), watch_namespace.clone()) => {}
    }
}
