//! The mck8s policy engine.
//!
//! Placement and scaling decisions are made by WebAssembly components implementing the
//! `mck8s:policy` WIT package (`wit/`). This crate compiles, caches, sandboxes, calls and
//! hot-reloads them. It knows nothing about Kubernetes: it takes component bytes and plain
//! inputs ([`input`]), lowers them to WIT ([`snapshot`] per fleet, [`workload`] per
//! decision) and returns validated decisions.
//!
//! - [`PolicyEngine`]: one wasmtime `Engine` (pooling allocator, epoch deadlines), the
//!   compiled-component cache and the linkers.
//! - [`LoadedPolicy`]: one checked version of one policy (`InstancePre`, digest, limits).
//! - [`PlacementSession`]: a policy instance holding one cycle's fleet; `place` per workload.
//! - [`PolicyRegistry`]: name → current version, fed by sources such as [`DirSource`], with
//!   refusal of bad versions and the previous one kept serving.

pub mod bindings;
pub mod built;
pub mod cache;
pub mod canary;
pub mod cases;
pub mod engine;
pub mod error;
pub mod input;
pub mod inspect;
pub mod limits;
pub mod loaded;
pub mod registry;
pub mod session;
pub mod snapshot;
pub mod source;
mod state;
pub mod synthetic;
pub mod validate;
pub mod workload;

pub use engine::{DEFAULT_CACHE_MAX_BYTES, EngineConfig, PolicyEngine};
pub use error::{PolicyError, PolicyErrorKind};
pub use input::{PlacementInput, ScalingInput};
pub use limits::Limits;
pub use loaded::{LoadedPolicy, PolicyKind};
pub use registry::{PolicyChange, PolicyRegistry, Subscriber};
pub use session::{Decision, FleetSends, PlacementSession, ScalingOutcome, fleet_sends_total};
pub use snapshot::FleetSnapshot;
pub use source::DirSource;
pub use state::guest_log_lines_dropped;
pub use workload::Adjustment;

/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.1.2";
