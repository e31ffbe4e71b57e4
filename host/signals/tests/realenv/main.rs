//! The signal sources against the real serf agents and Prometheus of the test environment
//! (`scripts/testenv.sh up --serf --prometheus`).

mod common;

mod prometheus;
mod serf;
