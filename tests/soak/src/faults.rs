//! The faults, one at a time, each undone before the next: API servers frozen (SIGSTOP),
//! stopped and restarted; a workload cluster's nodes lost; a controller or the leader killed
//! (restarted, as its Deployment would); the `house` policy replaced by a broken build.

use crate::Rng;
use crate::controllers::Controller;
use mck8s_testenv::TestEnv;
use mck8s_testenv::fixture::ExclusiveCluster;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub const WORKLOAD_CLUSTERS: [&str; 3] = ["cluster1", "cluster2", "cluster3"];
pub const MANAGEMENT: &str = "cluster0";

/// The workload cluster a fault takes away, if it takes one.
pub fn spares_not(fault: Fault, cluster: &str) -> Option<&str> {
    match fault {
        Fault::FreezeWorkloadApiServer | Fault::RestartWorkloadApiServer | Fault::LoseNodes => Some(cluster),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    FreezeWorkloadApiServer,
    RestartWorkloadApiServer,
    LoseNodes,
    FreezeManagementApiServer,
    RestartManagementApiServer,
    KillController,
    KillLeader,
    BreakPolicy,
}

pub const ALL: [Fault; 8] = [
    Fault::FreezeWorkloadApiServer,
    Fault::RestartWorkloadApiServer,
    Fault::LoseNodes,
    Fault::FreezeManagementApiServer,
    Fault::RestartManagementApiServer,
    Fault::KillController,
    Fault::KillLeader,
    Fault::BreakPolicy,
];

/// Where the replaceable policy lives, and what replaces it.
pub struct PolicyFiles<'a> {
    pub house: &'a Path,
    pub good: &'a Path,
    pub broken: &'a Path,
}

/// Holds `fault` for `hold`, then undoes it. Returns what was done, for the log.
pub async fn inject(
    fault: Fault,
    env: &TestEnv,
    guards: &BTreeMap<&str, ExclusiveCluster<'_>>,
    cluster: &str,
    rng: &mut Rng,
    hold: Duration,
    controllers: &mut [Controller],
    bin: &Path,
    lease_holder: Option<String>,
    policy: &PolicyFiles<'_>,
) -> anyhow::Result<String> {
    let guard = &guards[cluster];
    let management = &guards[MANAGEMENT];
    Ok(match fault {
        Fault::FreezeWorkloadApiServer => {
            let frozen = env.freeze_cluster(guard)?;
            tokio::time::sleep(hold).await;
            drop(frozen);
            format!("froze {cluster}'s API server for {hold:?}")
        }
        Fault::RestartWorkloadApiServer => {
            env.stop_cluster(guard).await?;
            tokio::time::sleep(hold).await;
            env.start_cluster(guard).await?;
            format!("stopped {cluster}'s API server for {hold:?}")
        }
        Fault::LoseNodes => {
            let nodes = [format!("{cluster}-node0"), format!("{cluster}-node1")];
            for n in &nodes {
                env.set_node_lost(guard, n, true).await?;
            }
            tokio::time::sleep(hold).await;
            for n in &nodes {
                env.set_node_lost(guard, n, false).await?;
            }
            format!("lost {cluster}'s nodes for {hold:?}")
        }
        Fault::FreezeManagementApiServer => {
            let frozen = env.freeze_cluster(management)?;
            tokio::time::sleep(hold).await;
            drop(frozen);
            format!("froze the management API server for {hold:?}")
        }
        Fault::RestartManagementApiServer => {
            env.stop_cluster(management).await?;
            tokio::time::sleep(hold.min(Duration::from_secs(8))).await;
            env.start_cluster(management).await?;
            "restarted the management API server".to_string()
        }
        Fault::KillController => {
            let i = rng.below(controllers.len() as u64) as usize;
            controllers[i].kill();
            tokio::time::sleep(Duration::from_secs(3)).await;
            controllers[i].start(bin)?;
            format!("killed {}", controllers[i].name)
        }
        Fault::KillLeader => {
            let Some(c) = controllers.iter_mut().find(|c| Some(&c.name) == lease_holder.as_ref()) else {
                return Ok("no leader to kill".into());
            };
            c.kill();
            // The standby takes over meanwhile; the old leader comes back as a standby.
            tokio::time::sleep(hold).await;
            c.start(bin)?;
            format!("killed the leader {}", c.name)
        }
        Fault::BreakPolicy => {
            copy_over(policy.broken, policy.house)?;
            tokio::time::sleep(hold).await;
            copy_over(policy.good, policy.house)?;
            format!("replaced policy house by a broken build for {hold:?}")
        }
    })
}

/// Replaces `to` by a copy of `from` in one rename, as a deploy would.
pub fn copy_over(from: &Path, to: &Path) -> std::io::Result<()> {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp)?;
    std::fs::rename(&tmp, to)
}
