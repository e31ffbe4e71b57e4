//! The `mck8s` command run as a user would; no cluster needed.

mod cli;
mod new;
mod properties;
mod simulate;
