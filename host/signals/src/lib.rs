//! External signals the mck8s controller ranks clusters by (`docs/original.md` §3.2, §3.3,
//! §8): inter-cluster RTT from serf's Vivaldi coordinates ([`serf`], or a static file when no
//! serf runs: [`rtt_file`]), and per-cluster / per-app network ingress and CPU from Prometheus
//! ([`prometheus`]). Cluster names are the serf node names and the Prometheus `cluster_name`
//! label values.

mod msgpack;
pub mod prometheus;
pub mod promql;
pub mod rtt_file;
pub mod serf;

pub use prometheus::{AppCpu, PromError, Prometheus, Sample};
pub use rtt_file::{RttFileError, load_rtt_file};
pub use serf::{Coordinate, Member, SerfClient, SerfError, estimated_rtt, rtt_matrix};
