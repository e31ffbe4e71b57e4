//! The controllers end to end on the real test environment (`scripts/testenv.sh up`): one
//! binary, one module per area, run one test at a time (`common::serial`).
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

mod common;

mod autoscaling;
mod cloud;
mod deploy;
mod explain;
mod failover;
mod placement;
mod services_jobs;
mod shadow;
mod shutdown;
mod whatif;
