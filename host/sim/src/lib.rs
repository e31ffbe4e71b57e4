//! `mck8s simulate`: a discrete-event simulator of a fog/cloud fleet over virtual time.
//!
//! It drives the **same decision code** as the controllers: the fleet cycle, the
//! assume-and-deduct ledger and the policy call of [`mck8s_scheduler`], the Wasm placement
//! and scaling policies of [`mck8s_policy`]. What it adds is the world around them:
//! virtual clusters whose kube-scheduler bin-packs pods onto nodes ([`fleet`]), a scenario
//! of arrivals, departures, load curves and failures ([`scenario`]), the clock
//! ([`clock`]), the run loop ([`driver`]) and the reports ([`report`]). The one decision
//! it makes itself is the KubeFed-like baseline ([`baseline`]).

pub mod baseline;
pub mod clock;
pub mod driver;
pub mod fleet;
pub mod policies;
pub mod report;
pub mod scenario;

pub use driver::run;
pub use fleet::Fleet;
pub use report::{RunResult, charts, table};
pub use scenario::{DEFAULT_SCENARIO, EVEN_SPLIT, Scenario};

use mck8s_policy::registry::normalize;
use mck8s_policy::{Decision, PolicyRegistry};
use mck8s_scheduler::{PlacementRequest, Scheduler};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("scenario: {0}")]
    Scenario(String),
    #[error(transparent)]
    Input(#[from] mck8s_policy::input::InputError),
    #[error(transparent)]
    Schedule(#[from] mck8s_scheduler::ScheduleError),
    #[error(transparent)]
    Policy(#[from] mck8s_policy::PolicyError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("policy engine: {0}")]
    Engine(String),
}

/// One decision on the simulator's fleet, through the simulator's fleet-building code and
/// a fresh [`Scheduler`]: what the controller must also decide for the same fleet and
/// workload (the cross-check between the two drivers).
pub fn decide_once(registry: Arc<PolicyRegistry>, fleet: &Fleet, request: &PlacementRequest) -> Result<Decision, SimError> {
    let cycle = Arc::new(fleet.cycle(1)?);
    if normalize(&request.policy) == EVEN_SPLIT {
        return baseline::even_split(&cycle, &request.workload);
    }
    Ok(Scheduler::new(registry).place(&cycle, request)?.decision)
}
