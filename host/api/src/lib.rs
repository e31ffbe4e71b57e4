//! The mck8s API, group `fogguru.eu/v1`: the six kinds of the original with their names,
//! short names and scopes, so its manifests apply unchanged. Specs keep the original's
//! free-form shape (unknown fields are preserved and copied to the children) but type and
//! validate what mck8s reads; status gains conditions, `observedGeneration` and a
//! per-cluster placement. One file per kind; `docs/original.md` cites the original's sections (§).

// kube's CustomResource derive takes one `derive = …` or `printcolumn(…)` per item, which
// this lint reads as the same attribute written twice.
#![allow(clippy::duplicated_attributes)]

pub mod app_rescheduler;
pub mod cloud_provisioner;
pub mod conditions;
pub mod crds;
pub mod labels;
pub mod mcd;
pub mod mchpa;
pub mod mcj;
pub mod mcs;
pub mod schema;

pub use app_rescheduler::*;
pub use cloud_provisioner::*;
pub use mcd::{ClusterPlacement, DrainingChild, MultiClusterDeployment, MultiClusterDeploymentSpec, MultiClusterDeploymentStatus};
pub use mchpa::*;
pub use mcj::*;
pub use mcs::*;

pub const GROUP: &str = "fogguru.eu";
pub const VERSION: &str = "v1";
