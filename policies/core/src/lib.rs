//! The mck8s placement and scaling algorithms (`docs/policies.md`), as plain Rust.
//!
//! The built-in Wasm policies are thin wrappers over this crate, and the benchmarks run
//! the very same code natively as the baseline. It has no dependencies and no I/O: a
//! policy sees only the [`model`] types.

pub mod model;
pub mod params;
pub mod placement;
pub mod scaling;

pub use model::*;
