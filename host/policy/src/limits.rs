//! Per-policy resource limits.

use std::time::Duration;

/// What one policy may use per call. Defaults: 100 ms, 64 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Budget of one call in CPU time of the calling thread (a descheduled host does not
    /// fail a good policy), with a wall-clock backstop of ten budgets (`state::CallClock`);
    /// checked at each epoch tick.
    pub deadline: Duration,
    /// Cap on the instance's linear memory; growing past it traps with a clear cause.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { deadline: Duration::from_millis(100), memory_bytes: 64 << 20 }
    }
}
