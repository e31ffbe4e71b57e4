//! The mck8s capacity model (`docs/original.md` §3.1), without I/O: Kubernetes
//! quantities, per-node free resources and the per-node bin-packing slot count that every
//! placement policy receives.

pub mod adjust;
pub mod quantity;
pub mod shortfall;
pub mod slots;

pub use adjust::{Reservation, adjusted_free, slots_in};
pub use quantity::{QuantityError, parse_bytes, parse_cpu_millis, parse_quantity};
pub use shortfall::{Shortfall, shortfall};
pub use slots::{NodeCapacity, Resources, fits_any_node, slots_in_cluster};
