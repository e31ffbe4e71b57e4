//! Workload clusters: where they come from ([`source`]), the connection to each with its
//! watches and health ([`member`]), and the set of them ([`registry`]), the controllers'
//! [`mck8s_fleet::FleetSource`]. Each member feeds its Node and Pod watches into a
//! [`mck8s_fleet::ClusterInventory`]. [`watch`] is how each of them follows a watched
//! collection; [`child`] what is cached and read back of the children mck8s puts there.

pub mod child;
pub mod client;
pub mod credentials;
pub mod member;
pub mod notifier;
pub mod registry;
pub mod source;
pub mod watch;

pub use client::{Clients, watch_config};
pub use credentials::Trust;
pub use member::Member;
pub use notifier::Notifier;
pub use registry::{Registry, watch_path, watch_secrets};
pub use source::ClusterSpec;
