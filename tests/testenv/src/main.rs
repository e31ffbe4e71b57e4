//! `testenv`: start, inspect, disrupt and stop the mck8s test environment.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use mck8s_testenv::env::{self, UpOptions};
use mck8s_testenv::fleet::Fleet;
use mck8s_testenv::state::StateDir;
use mck8s_testenv::{capi, kubelet, paths};

#[derive(Parser)]
#[command(about = "mck8s test environment: real control planes, simulated kubelets, serf, Prometheus")]
struct Cli {
    /// State directory (default: $MCK8S_TESTENV_DIR or /tmp/mck8s-testenv).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the fleet (default: cluster0 management, cluster1-3 fog, cloud1) and wait until ready.
    Up {
        /// Also start one serf agent per cluster.
        #[arg(long)]
        serf: bool,
        /// Also start Prometheus scraping the simulated kubelets.
        #[arg(long)]
        prometheus: bool,
        /// Fleet YAML file.
        fleet: Option<PathBuf>,
    },
    /// Stop exactly the processes `up` started and remove the state.
    Down {
        /// Keep logs and kubeconfigs (for a failed CI run).
        #[arg(long)]
        keep_logs: bool,
    },
    /// What runs, with PIDs and memory; exits 3 if a recorded process is not running.
    Status,
    /// Print shell exports for a running environment.
    Env,
    /// Stop or start a cluster's apiserver (whole-cluster loss).
    Cluster {
        #[arg(value_parser = ["stop", "start"])]
        action: String,
        name: String,
    },
    /// Simulate the loss or return of one node.
    Node {
        #[arg(value_parser = ["lose", "restore"])]
        action: String,
        cluster: String,
        node: String,
    },
    /// Run the simulated kubelet of one cluster (started by `up`).
    Kubelet {
        #[arg(long)]
        cluster: String,
    },
    /// Run the simulated Cluster API (started by `up` when the fleet has a `capi` section).
    CapiSim,
    /// Print the default fleet as YAML (a starting point for a fleet file).
    DefaultFleet,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube_client=off".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let sd = StateDir::new(cli.state_dir.unwrap_or_else(paths::default_state_dir));
    match cli.cmd {
        Cmd::Up { serf, prometheus, fleet } => {
            let fleet = match fleet {
                Some(p) => Fleet::load(&p)?,
                None => Fleet::default_fleet(),
            };
            for bin in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
                if !paths::kube_bin(bin).exists() {
                    bail!("{} missing: run `scripts/testenv.sh provision` first", paths::kube_bin(bin).display());
                }
            }
            let testenv_bin = std::env::current_exe().context("locating testenv")?;
            let t = std::time::Instant::now();
            let state = env::up(&sd, UpOptions { fleet, serf, prometheus, testenv_bin }).await?;
            print!("{}", env::usage(&sd, &state));
            println!("  (ready in {:.1} s)", t.elapsed().as_secs_f64());
        }
        Cmd::Down { keep_logs } => {
            let t = std::time::Instant::now();
            if env::down(&sd, keep_logs).await? {
                println!("stopped in {:.1} s", t.elapsed().as_secs_f64());
            } else {
                println!("nothing running in {}", sd.dir.display());
            }
        }
        Cmd::Status => {
            let (text, all_running) = env::status(&sd)?;
            print!("{text}");
            if !all_running {
                // Lets scripts notice a component that died.
                std::process::exit(3);
            }
        }
        Cmd::Env => {
            sd.read()?.with_context(|| format!("nothing running in {}", sd.dir.display()))?;
            println!("export {}={}", paths::STATE_DIR_ENV, sd.dir.display());
            println!("export KUBECONFIG={}", sd.merged_kubeconfig().display());
        }
        Cmd::Cluster { action, name } => match action.as_str() {
            "stop" => env::stop_cluster(&sd, &name).await?,
            _ => env::start_cluster(&sd, &name).await?,
        },
        Cmd::Node { action, cluster, node } => {
            let state = sd.read()?.with_context(|| format!("nothing running in {}", sd.dir.display()))?;
            let i = state.fleet.clusters.iter().position(|c| c.name == cluster).with_context(|| format!("unknown cluster {cluster}"))?;
            kubelet::set_node_lost(state.fleet.ports().kubelet(i), &node, action == "lose").await?;
        }
        Cmd::Kubelet { cluster } => kubelet::run(&sd, &cluster).await?,
        Cmd::CapiSim => capi::run(&sd).await?,
        Cmd::DefaultFleet => print!("{}", serde_yaml_ng::to_string(&Fleet::default_fleet())?),
    }
    Ok(())
}
