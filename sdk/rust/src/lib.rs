//! The mck8s policy SDK for Rust.
//!
//! Implement [`PlacementPolicy`] (feature `placement`) or [`ScalingPolicy`] (feature
//! `scaling`) over the plain types of [`mck8s_policies`], then export it:
//!
//! ```ignore
//! struct MyPolicy;
//! impl mck8s_policy_sdk::PlacementPolicy for MyPolicy { /* info, place */ }
//! mck8s_policy_sdk::export_placement!(MyPolicy);
//! ```
//!
//! [`helpers`] has parameter and quantity parsing, eligibility filters and an [`Allocator`]
//! that keeps a decision within free slots and makes its replicas add up. With feature
//! `testing`, [`testing`] runs case files against the policy natively (`docs/sdk.md`).
//!
//! The SDK keeps the fleet that `set-fleet` sends once per cycle, turns the WIT records
//! into borrowed views without copying the per-cluster lists, and turns your result back.
//! Build with `cargo build --release --target wasm32-wasip2`.

pub use mck8s_policies as policies;
pub use mck8s_policies::model::*;

pub mod helpers;
pub use helpers::Allocator;

#[cfg(feature = "testing")]
pub mod testing;

/// What `mck8s policy check` shows about a policy.
pub struct Info {
    pub name: &'static str,
    pub description: &'static str,
    /// `name: meaning` lines for the parameters the policy reads.
    pub parameters: &'static [&'static str],
}

// Lets generated bindings name shared types by one absolute path, inside this crate and in
// the policy crates that expand the export macros.
extern crate self as mck8s_policy_sdk;

// The placement bindings also carry the interfaces both worlds share (`types`, `log`); the
// scaling bindings reuse them. Only the world a policy exports ends up in its component.
#[cfg(any(feature = "placement", feature = "scaling"))]
pub mod placement;
#[cfg(feature = "placement")]
pub use placement::PlacementPolicy;

#[cfg(feature = "scaling")]
pub mod scaling;
#[cfg(feature = "scaling")]
pub use scaling::ScalingPolicy;

#[cfg(any(feature = "placement", feature = "scaling"))]
impl From<Info> for placement::bindings::mck8s::policy::types::PolicyInfo {
    fn from(i: Info) -> Self {
        Self { name: i.name.to_string(), description: i.description.to_string(), parameters: i.parameters.iter().map(|p| p.to_string()).collect() }
    }
}

/// Log levels of the host's `log` import.
#[derive(Clone, Copy, Debug)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Write a line to the host's log (tagged with the policy's name and digest there). In a
/// native build (unit tests) it goes to stderr, as there is no host to import from.
pub fn log(level: Level, message: &str) {
    #[cfg(all(target_arch = "wasm32", any(feature = "placement", feature = "scaling")))]
    {
        use placement::bindings::mck8s::policy::log as l;
        let level = match level {
            Level::Trace => l::Level::Trace,
            Level::Debug => l::Level::Debug,
            Level::Info => l::Level::Info,
            Level::Warn => l::Level::Warn,
            Level::Error => l::Level::Error,
        };
        l::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{level:?}: {message}");
    #[cfg(all(target_arch = "wasm32", not(any(feature = "placement", feature = "scaling"))))]
    let _ = (level, message);
}
