//! Typed policy errors. Every error names the policy and the sha256 of the version at fault,
//! so a log line or a status condition points at exactly what to fix.

use std::fmt;
use thiserror::Error;

/// What went wrong, without the policy identity.
#[derive(Debug, Error)]
pub enum PolicyErrorKind {
    #[error("does not compile as a WebAssembly component: {0}")]
    Compile(String),
    #[error("{0}")]
    Incompatible(String),
    #[error("imports {}, which mck8s does not provide: policies get no filesystem, network, clock, randomness or environment", .imports.join(", "))]
    ForbiddenImport { imports: Vec<String> },
    #[error("exceeded its {limit_ms} ms deadline in {call} and was stopped")]
    Timeout { limit_ms: u128, call: &'static str },
    #[error("ran out of memory in {call}: tried to grow past its {limit_mib} MiB cap ({detail})")]
    OutOfMemory { limit_mib: usize, detail: String, call: &'static str },
    #[error("trapped in {call}: {trap}{}", stderr_suffix(.stderr))]
    Trap { trap: String, stderr: String, call: &'static str },
    #[error("returned an error: {0}")]
    Refused(String),
    #[error("returned an invalid decision: {0}")]
    InvalidOutput(String),
    #[error("failed its self-check: {0}")]
    SelfCheck(String),
    #[error("cannot be instantiated: {0}")]
    Instantiate(String),
    #[error("no policy named {0:?} is loaded")]
    NotFound(String),
}

impl PolicyErrorKind {
    /// A short stable name, for metric labels.
    pub fn label(&self) -> &'static str {
        match self {
            PolicyErrorKind::Compile(_) => "compile",
            PolicyErrorKind::Incompatible(_) => "incompatible",
            PolicyErrorKind::ForbiddenImport { .. } => "forbidden-import",
            PolicyErrorKind::Timeout { .. } => "timeout",
            PolicyErrorKind::OutOfMemory { .. } => "out-of-memory",
            PolicyErrorKind::Trap { .. } => "trap",
            PolicyErrorKind::Refused(_) => "refused",
            PolicyErrorKind::InvalidOutput(_) => "invalid-output",
            PolicyErrorKind::SelfCheck(_) => "self-check",
            PolicyErrorKind::Instantiate(_) => "instantiate",
            PolicyErrorKind::NotFound(_) => "not-found",
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() { String::new() } else { format!(" (guest stderr: {s})") }
}

#[derive(Debug, Error)]
pub struct PolicyError {
    pub policy: String,
    /// Hex sha256 of the component; empty when no component is involved.
    pub digest: String,
    /// Part of this error's own message, so not also its `source()`: a reporter that walks
    /// the chain (anyhow's `{:#}`, kube's controller) would say it twice.
    pub kind: PolicyErrorKind,
}

impl PolicyError {
    pub fn new(policy: impl Into<String>, digest: impl Into<String>, kind: PolicyErrorKind) -> Self {
        PolicyError { policy: policy.into(), digest: digest.into(), kind }
    }

    /// Whether the instance that produced it must be rebuilt (wasmtime refuses to re-enter a
    /// component instance after a trap).
    pub fn poisons_instance(&self) -> bool {
        matches!(self.kind, PolicyErrorKind::Timeout { .. } | PolicyErrorKind::OutOfMemory { .. } | PolicyErrorKind::Trap { .. })
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.digest.is_empty() {
            write!(f, "policy {:?} {}", self.policy, self.kind)
        } else {
            write!(f, "policy {:?} (sha256 {}) {}", self.policy, short(&self.digest), self.kind)
        }
    }
}

/// The first 12 hex digits, enough to tell versions apart in logs.
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chained_report_says_the_cause_once() {
        let e = PolicyError::new("slow", "ab".repeat(32), PolicyErrorKind::Timeout { limit_ms: 100, call: "info" });
        let report = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(report.matches("deadline").count(), 1, "{report}");
        assert_eq!(report, "policy \"slow\" (sha256 abababababab) exceeded its 100 ms deadline in info and was stopped");
    }
}
