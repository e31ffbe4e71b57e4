//! The fleet as mck8s observes it, in one place: each cluster's role, health, labels,
//! schedulable nodes and the pods bound there per owner ([`cluster`]), built from the Node
//! and Pod objects its watches deliver ([`inventory`]), the RTTs between clusters, and what a
//! driver hands a decision cycle ([`observed`]), and how a child or pod names its owner
//! ([`owner_labels`]).
//!
//! The controller (from watches) and the simulator (from virtual clusters) build the same
//! states through this crate. It is pure: no I/O, no clients, no wasmtime. Quantities and
//! the slot model come from `mck8s-capacity`, which the Wasm guests share; lowering a fleet
//! to WIT is the policy host's job.

pub mod cluster;
pub mod inventory;
pub mod observed;
pub mod owner_labels;

pub use cluster::{ClusterState, Health, OwnedPods, OwnerKey, Role, Rtts};
pub use inventory::ClusterInventory;
pub use observed::{FleetSource, Observed, StateCache};
