//! The signal sources against the real serf agents and Prometheus of the test environment
//! (`scripts/testenv.sh up --serf --prometheus`).
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

mod common;

mod prometheus;
mod serf;
