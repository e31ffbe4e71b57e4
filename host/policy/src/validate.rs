//! Checks a policy's output before anything acts on it: a policy may be wrong, never
//! dangerous. Errors say exactly what is wrong so the author can fix it.

use crate::bindings::{wit, wit_scaling};
use crate::snapshot::FleetSnapshot;

/// Largest opaque state a scaling policy may return (it is persisted in the MCHPA status).
pub const MAX_STATE_BYTES: usize = 64 << 10;

/// What the host keeps of a policy's free text: each cluster's reason, the summary, a
/// refusal. A policy may return megabytes; the status and events they end up in may not.
pub const REASON_MAX: usize = 1024;
pub const SUMMARY_MAX: usize = 4096;

/// `text` cut to at most `max` bytes (on a character boundary), saying how much was cut.
pub fn clip_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let cut = text.floor_char_boundary(max.saturating_sub(32));
    format!("{}… [{} bytes cut]", &text[..cut], text.len() - cut)
}

pub fn placement(fleet: &FleetSnapshot, w: &wit::Workload, d: &wit::Decision) -> Result<(), String> {
    let n = fleet.len() as u32;
    let mut seen = vec![false; n as usize];
    let mut placed: u64 = 0;
    for c in &d.choices {
        if c.cluster >= n {
            return Err(format!("chose cluster index {} but the fleet has {n} clusters", c.cluster));
        }
        let name = fleet.name_of(c.cluster);
        if std::mem::replace(&mut seen[c.cluster as usize], true) {
            return Err(format!("chose cluster {name:?} twice"));
        }
        if c.replicas > 0 && !fleet.is_ready(c.cluster) {
            return Err(format!("placed {} replicas on {name:?}, which is not ready", c.replicas));
        }
        placed += u64::from(c.replicas);
    }
    let accounted = placed + u64::from(d.unplaced);
    if accounted != u64::from(w.total) {
        let what = if accounted > u64::from(w.total) { "surplus" } else { "missing" };
        return Err(format!("{what} replicas: placed {placed} + unplaced {} = {accounted}, but the workload asks for {}", d.unplaced, w.total));
    }
    Ok(())
}

pub fn scaling(r: &wit_scaling::ScalingRequest, d: &wit_scaling::ScalingDecision) -> Result<(), String> {
    if d.total < r.min_replicas || d.total > r.max_replicas {
        return Err(format!("total {} is outside [{}, {}]", d.total, r.min_replicas, r.max_replicas));
    }
    let mut sum: u64 = 0;
    for (i, (cluster, n)) in d.desired.iter().enumerate() {
        if !r.samples.iter().any(|s| &s.cluster == cluster) {
            return Err(format!("desired names cluster {cluster:?}, which has no sample"));
        }
        if d.desired[..i].iter().any(|(c, _)| c == cluster) {
            return Err(format!("desired names cluster {cluster:?} twice"));
        }
        sum += u64::from(*n);
    }
    if !d.desired.is_empty() && sum != u64::from(d.total) {
        return Err(format!("per-cluster desired replicas sum to {sum}, but total is {}", d.total));
    }
    if d.state.len() > MAX_STATE_BYTES {
        return Err(format!("state is {} bytes; the limit is {MAX_STATE_BYTES}", d.state.len()));
    }
    Ok(())
}
