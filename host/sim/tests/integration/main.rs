//! The simulator through its public API; no cluster needed.

mod common;

mod decide;
mod run;
