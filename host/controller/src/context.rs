//! What every reconcile shares: handles to the management cluster, the member clusters, the
//! scheduler, metrics and the fleet-wide limits. What one kind keeps (its status memo, its
//! probes) lives with its controller.

use crate::metrics::Metrics;
use crate::recorder::Recorder;
use kube::Client;
use mck8s_clusters::Registry;
use mck8s_policy::input::InputError;
use mck8s_scheduler::{Cycles, FleetCycle, Scheduler};
use mck8s_signals::prometheus::Prometheus;
use std::sync::Arc;
use std::time::Duration;

pub struct Context {
    /// The management cluster, where the multi-cluster objects live: requests (each with a
    /// read deadline) ...
    pub client: Client,
    /// ... and the controllers' watches (see [`mck8s_clusters::client`]).
    pub watches: Client,
    pub clusters: Arc<Registry>,
    /// The last decision cycle built from `clusters`.
    pub cycles: Cycles,
    pub scheduler: Arc<Scheduler>,
    /// Where placement and scaling calls run: off the async workers.
    pub policy_calls: crate::policy_calls::PolicyCalls,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub prometheus: Option<Prometheus>,
    pub timing: Timing,
    /// The last apply of every child, so unchanged children are not re-applied.
    pub applied: crate::children::AppliedCache,
    /// Failover and failback moves, fleet-wide.
    pub moves: crate::failover::RateLimiter,
    /// Moves from cloud to fog the rescheduler proposed, for the MCD controller to carry out.
    pub reschedule: crate::proposals::Proposals,
    /// The namespace the controllers watch (all when `None`).
    pub watch_namespace: Option<String>,
    /// Reconciles each controller runs at once (see [`crate::Config::max_concurrent_reconciles`]).
    pub max_concurrent_reconciles: u16,
    /// SIGTERM/SIGINT, shared by every controller (see [`crate::shutdown`]).
    pub stop: crate::shutdown::Signal,
}

impl Context {
    /// The fleet for a decision: rebuilt only when something changed, and then as an update.
    pub fn cycle(&self) -> Result<Arc<FleetCycle>, InputError> {
        self.cycles.current(&*self.clusters)
    }
}

/// A controller's own state holds the shared [`Context`] beside what only it keeps.
impl AsRef<Context> for Context {
    fn as_ref(&self) -> &Context {
        self
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Retry of a placement with unplaced replicas (mck8s: 30 s).
    pub burst_retry: Duration,
    /// Retry after an error reaching a cluster or a failed policy.
    pub error_retry: Duration,
    /// Periodic re-check of a settled object.
    pub resync: Duration,
    /// How long a cluster may be unreachable or NotReady before its replicas are placed
    /// elsewhere.
    pub failover_grace: Duration,
    /// How long a child in a cluster no longer chosen is kept at most while the new
    /// placement is not ready (a move that cannot finish must not pin capacity forever).
    pub drain_timeout: Duration,
    /// The window each pod's CPU rate is taken over in Prometheus (at least two scrapes).
    pub cpu_window: Duration,
    /// How long the controllers get to stop after SIGTERM/SIGINT before [`crate::run`]
    /// returns anyway (below the chart's termination grace of 30 s).
    pub shutdown_grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            burst_retry: Duration::from_secs(30),
            error_retry: Duration::from_secs(10),
            resync: Duration::from_secs(300),
            failover_grace: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(600),
            cpu_window: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Fleet-wide limit on failover and failback moves.
#[derive(Clone, Copy, Debug)]
pub struct MoveLimit {
    /// Moves per second on average.
    pub rate: f64,
    /// Moves at once.
    pub burst: u32,
}

impl Default for MoveLimit {
    fn default() -> Self {
        MoveLimit { rate: 2.0, burst: 20 }
    }
}
