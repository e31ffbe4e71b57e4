//! The policy engine through its public API with real Wasm components (built by
//! `scripts/build-policies.sh` and `scripts/build-examples.sh`); no cluster needed.

mod common;

mod builtin_placement;
mod builtin_scaling;
mod cache;
mod examples;
mod reload;
mod sandbox;
