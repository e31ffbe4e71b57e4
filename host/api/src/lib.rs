//! The mck8s API, group `fogguru.eu/v1`: the six kinds of the original with their names,
//! short names and scopes, so its manifests apply unchanged. Specs keep the original's
//! free-form shape (unknown fields are preserved and copied to the children) but type and
//! validate what mck8s reads; status gains conditions, `observedGeneration` and a
//! per-cluster placement.

// kube's CustomResource derive takes one `derive = …` or `printcolumn(…)` per item, which
// this lint reads as the same attribute written twice.
#![allow(clippy::duplicated_attributes)]

pub mod cloud_provisioner;
pub mod conditions;
pub mod crds;
pub mod labels;
pub mod mcd;
pub mod others;
pub mod schema;

pub use cloud_provisioner::*;
pub use mcd::{ClusterPlacement, DrainingChild, MultiClusterDeployment, MultiClusterDeploymentSpec, MultiClusterDeploymentStatus};
pub use others::*;

pub const GROUP: &str = "fogguru.eu";
pub const VERSION: &str = "v1";
