//! Cloud clusters on demand: the CloudProvisioner controller. When the fog is full it
//! provisions a cloud cluster through Cluster API (`cluster.x-k8s.io/v1beta2`, a Cluster with
//! a ClusterClass topology, or the provider's objects rendered from a cluster template where
//! the ClusterTopology gate is off), joins it to the registry once it is really usable, scales its
//! workers with the pending pods, and removes it once it has been idle.
//!
//! `plan` is the algorithm (pure); `observe` and `act` are the I/O around it; `controller`
//! runs the loop. `sizing` and `node_scaling` are the arithmetic, `settings` the spec with
//! its defaults, `capi` the Cluster API objects, `template` the cluster template's rendering, `access` the RoleBinding that opens a cloud cluster's
//! namespace to the controller, `member_identity` mck8s's least-privilege token in the
//! cloud cluster itself.

pub mod access;
pub mod act;
pub mod capi;
pub mod controller;
pub mod member_identity;
pub mod node_scaling;
pub mod observe;
pub mod plan;
pub mod settings;
pub mod sizing;
pub mod template;

pub use access::NamespaceAccess;
pub use controller::{CloudConfig, run};
