//! The policy engine through its public API with real Wasm components (built by
//! `scripts/build-policies.sh` and `scripts/build-examples.sh`); no cluster needed.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

mod common;

mod builtin_placement;
mod builtin_scaling;
mod cache;
mod compat;
mod examples;
mod reload;
mod sandbox;
