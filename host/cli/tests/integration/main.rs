//! The `mck8s` command run as a user would; no cluster needed.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

mod cli;
mod new;
mod properties;
mod simulate;
