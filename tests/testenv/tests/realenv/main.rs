//! The test environment itself, running (`scripts/testenv.sh up`): real control planes,
//! simulated kubelets and Cluster API, serf, Prometheus, Helm.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

mod common;

mod capi_sim;
mod disruption;
mod helm;
mod nodes;
mod observability;
mod scheduling;
