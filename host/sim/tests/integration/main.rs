//! The simulator through its public API; no cluster needed.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

mod common;

mod decide;
mod run;
