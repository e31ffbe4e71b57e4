//! `mck8s run`: the controller.

use anyhow::{Context, Result};
use clap::Args;
use mck8s_controller::Config;
use mck8s_controller::context::{MoveLimit, Timing};
use mck8s_policy::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Kubeconfig of the management cluster (default: in-cluster, then $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "MCK8S_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the management cluster in that kubeconfig (default: its current context).
    #[arg(long, env = "MCK8S_CONTEXT")]
    pub context: Option<String>,
    /// The controller's namespace: policy ConfigMaps and cluster Secrets live there.
    #[arg(long, env = "MCK8S_NAMESPACE", default_value = "mck8s-system")]
    pub namespace: String,
    /// Reconcile objects in this namespace only (default: every namespace).
    #[arg(long, env = "MCK8S_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Workload clusters: a kubeconfig file or directory whose contexts are named like the clusters (repeatable).
    #[arg(long = "clusters", env = "MCK8S_CLUSTERS", value_delimiter = ',')]
    pub clusters: Vec<PathBuf>,
    /// Contexts in those kubeconfigs that are not workload clusters (the management cluster).
    #[arg(long = "exclude-cluster", env = "MCK8S_EXCLUDE_CLUSTERS", value_delimiter = ',')]
    pub exclude_clusters: Vec<String>,
    /// Let the --clusters kubeconfigs name local files (certificate-authority, client-key,
    /// tokenFile). Exec and auth-provider plugins stay refused; Secrets never may.
    #[arg(long, env = "MCK8S_ALLOW_KUBECONFIG_LOCAL_FILES")]
    pub allow_kubeconfig_local_files: bool,
    /// Do not watch kubeconfig Secrets labelled fogguru.eu/cluster in the controller's namespace.
    #[arg(long)]
    pub no_cluster_secrets: bool,
    /// Directory of policy components (`<name>.wasm`), watched (repeatable).
    #[arg(long = "policy-dir", env = "MCK8S_POLICY_DIRS", value_delimiter = ',')]
    pub policy_dirs: Vec<PathBuf>,
    /// Do not watch policy ConfigMaps labelled fogguru.eu/policy in the controller's namespace.
    #[arg(long)]
    pub no_policy_configmaps: bool,
    /// Per-call CPU-time deadline of a policy, in milliseconds.
    #[arg(long, env = "MCK8S_POLICY_DEADLINE_MS", default_value_t = 100)]
    pub policy_deadline_ms: u64,
    /// Memory cap of a policy instance, in MiB.
    #[arg(long, env = "MCK8S_POLICY_MEMORY_MIB", default_value_t = 64)]
    pub policy_memory_mib: usize,
    /// Most the compiled-policy cache may hold on disk, in MiB (least recently used evicted).
    #[arg(long, env = "MCK8S_POLICY_CACHE_MAX_MIB", default_value_t = 192)]
    pub policy_cache_max_mib: u64,
    /// Prometheus base URL, for traffic (e.g. http://prometheus:9090).
    #[arg(long, env = "MCK8S_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// serf RPC address, for RTTs between clusters (e.g. 127.0.0.1:7373).
    #[arg(long, env = "MCK8S_SERF_RPC")]
    pub serf_rpc: Option<String>,
    /// A static RTT map (YAML) instead of serf.
    #[arg(long, env = "MCK8S_RTT_FILE")]
    pub rtt_file: Option<PathBuf>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "MCK8S_METRICS_ADDR", default_value = "0.0.0.0:9464")]
    pub metrics_addr: SocketAddr,
    /// Seconds between retries of a placement with unplaced replicas.
    #[arg(long, default_value_t = 30)]
    pub burst_retry_seconds: u64,
    /// Seconds a workload cluster may be unreachable or NotReady before its replicas are placed elsewhere.
    #[arg(long, env = "MCK8S_FAILOVER_GRACE_SECONDS", default_value_t = 60)]
    pub failover_grace_seconds: u64,
    /// Failover and failback moves per second, fleet-wide.
    #[arg(long, env = "MCK8S_FAILOVER_RATE", default_value_t = 2.0)]
    pub failover_rate: f64,
    /// Failover and failback moves allowed at once.
    #[arg(long, env = "MCK8S_FAILOVER_BURST", default_value_t = 20)]
    pub failover_burst: u32,
    /// Longest a child in a cluster no longer chosen is kept while the new placement is not ready.
    #[arg(long, env = "MCK8S_DRAIN_TIMEOUT_SECONDS", default_value_t = 600)]
    pub drain_timeout_seconds: u64,
    /// Window (seconds) of each pod's CPU rate in Prometheus, for the autoscaler.
    #[arg(long, env = "MCK8S_CPU_WINDOW_SECONDS", default_value_t = 60)]
    pub cpu_window_seconds: u64,
    /// Seconds the controllers get to stop after SIGTERM/SIGINT before the process exits
    /// anyway (keep it below the pod's terminationGracePeriodSeconds).
    #[arg(long, env = "MCK8S_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
    /// Reconciles each controller runs at once (0: unbounded). Each one in flight holds a
    /// task and an HTTP connection to the API server with its buffers.
    #[arg(long, env = "MCK8S_MAX_CONCURRENT_RECONCILES", default_value_t = mck8s_controller::DEFAULT_MAX_CONCURRENT_RECONCILES)]
    pub max_concurrent_reconciles: u16,
    /// Log as JSON lines.
    #[arg(long, env = "MCK8S_LOG_JSON")]
    pub log_json: bool,
    /// Reconcile only while holding the Lease mck8s-leader in --namespace (several replicas).
    #[arg(long, env = "MCK8S_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Do not run the CloudProvisioner controller (no Cluster API in the management cluster).
    #[arg(long, env = "MCK8S_NO_CLOUD_PROVISIONING")]
    pub no_cloud_provisioning: bool,
    /// Cloud clusters provisioned at once, fleet-wide.
    #[arg(long, env = "MCK8S_MAX_CONCURRENT_PROVISIONS", default_value_t = 1)]
    pub max_concurrent_provisions: usize,
    /// Seconds between re-examinations of each CloudProvisioner.
    #[arg(long, env = "MCK8S_CLOUD_POLL_SECONDS", default_value_t = 10)]
    pub cloud_poll_seconds: u64,
    /// A ClusterRole the CloudProvisioner binds to --service-account in each cloud cluster's
    /// namespace, so that its own role needs no Secrets outside --namespace (the chart's
    /// `<release>-cloud-namespace`). Unset: nothing is bound (an identity that already
    /// reaches every namespace).
    #[arg(long, env = "MCK8S_CLOUD_NAMESPACE_ROLE", requires = "service_account")]
    pub cloud_namespace_role: Option<String>,
    /// The controller's own ServiceAccount in --namespace (the subject of those bindings).
    #[arg(long, env = "MCK8S_SERVICE_ACCOUNT")]
    pub service_account: Option<String>,
}

pub fn run(args: RunArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        let client = management_client(&args).await?;
        let cloud_access = args.cloud_namespace_role.map(|cluster_role| mck8s_controller::cloud::NamespaceAccess {
            cluster_role,
            service_account: args.service_account.unwrap_or_default(),
            service_account_namespace: args.namespace.clone(),
        });
        let config = Config {
            namespace: args.namespace,
            watch_namespace: args.watch_namespace,
            cluster_paths: args.clusters,
            exclude_clusters: args.exclude_clusters,
            kubeconfig_local_files: args.allow_kubeconfig_local_files,
            cluster_secrets: !args.no_cluster_secrets,
            policy_dirs: args.policy_dirs,
            policy_configmaps: !args.no_policy_configmaps,
            policy_limits: Limits { deadline: Duration::from_millis(args.policy_deadline_ms), memory_bytes: args.policy_memory_mib << 20 },
            policy_cache_max_bytes: args.policy_cache_max_mib << 20,
            prometheus_url: args.prometheus_url,
            serf_rpc: args.serf_rpc,
            rtt_file: args.rtt_file,
            metrics_addr: Some(args.metrics_addr),
            instance: std::env::var("POD_NAME").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_else(|_| "mck8s".into()),
            timing: Timing {
                burst_retry: Duration::from_secs(args.burst_retry_seconds),
                failover_grace: Duration::from_secs(args.failover_grace_seconds),
                drain_timeout: Duration::from_secs(args.drain_timeout_seconds),
                cpu_window: Duration::from_secs(args.cpu_window_seconds.max(1)),
                shutdown_grace: Duration::from_secs(args.shutdown_grace_seconds),
                ..Timing::default()
            },
            move_limit: MoveLimit { rate: args.failover_rate, burst: args.failover_burst },
            leader_election: args.leader_elect,
            cloud_provisioning: !args.no_cloud_provisioning,
            max_concurrent_provisions: args.max_concurrent_provisions,
            cloud_poll: Duration::from_secs(args.cloud_poll_seconds.max(1)),
            cloud_access,
            max_concurrent_reconciles: args.max_concurrent_reconciles,
        };
        mck8s_controller::run(client, config).await
    });
    // Dropping a runtime waits for every blocking task (the policy directory watcher, a
    // policy call at its deadline): bound that wait as well.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

async fn management_client(args: &RunArgs) -> Result<mck8s_clusters::Clients> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            let opts = kube::config::KubeConfigOptions { context: args.context.clone(), ..Default::default() };
            kube::Config::from_custom_kubeconfig(kc, &opts).await.context("management kubeconfig")?
        }
        None => kube::Config::infer().await.context("no management cluster configuration (in-cluster or kubeconfig)")?,
    };
    mck8s_clusters::Clients::new(config).context("management cluster client")
}
