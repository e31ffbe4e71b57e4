//! The decision step every driver shares. The controller feeds it from per-cluster watches,
//! the simulator from its virtual clusters; both get the same answer for the same state.
//!
//! A decision sees each cluster's slots with two corrections ([`mck8s_capacity::adjust`]):
//! the workload's own bound pods count as free, and replicas decided for other workloads
//! but not yet bound are deducted. The [`Ledger`] remembers those decisions; it forgets
//! them as the clusters report the pods, so nothing needs to expire.

mod cycle;
pub mod explain;
mod ledger;
mod scheduler;
pub mod shadow;
pub mod whatif;

pub use cycle::{Cycles, FleetCycle};
pub use explain::{ClusterRow, Explanation, PassedOver, Why};
pub use ledger::Ledger;
pub use scheduler::{Placed, PlacementRequest, ScheduleError, Scheduler};
pub use shadow::{ShadowOutcome, ShadowRun};
