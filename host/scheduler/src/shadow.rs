//! Shadow policies: a policy declared the shadow of another decides on the same input as
//! every real decision of the active one, under its own limits. Its result is compared and
//! reported, never applied, never recorded in the ledger.

use mck8s_policy::Decision;
use std::collections::BTreeMap;
use std::fmt;

/// What the shadow made of one real decision.
#[derive(Clone, Debug, PartialEq)]
pub struct ShadowRun {
    pub policy: String,
    pub digest: String,
    pub outcome: ShadowOutcome,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ShadowOutcome {
    /// The same replicas in the same clusters, the same unplaced.
    Agreed,
    /// Where they differ: `(cluster, active, shadow)` replicas, in cluster order; and the
    /// unplaced replicas `(active, shadow)`.
    Diverged { clusters: Vec<(String, u32, u32)>, unplaced: (u32, u32) },
    /// It failed (trapped, timed out, refused, gave an invalid placement): the real decision
    /// is unaffected.
    Failed(String),
}

impl ShadowOutcome {
    pub fn compare(active: &Decision, shadow: &Decision) -> Self {
        fn per(d: &Decision) -> BTreeMap<&str, u32> {
            let mut m = BTreeMap::new();
            for p in d.placements.iter().filter(|p| p.replicas > 0) {
                *m.entry(p.cluster.as_str()).or_default() += p.replicas;
            }
            m
        }
        let (a, s) = (per(active), per(shadow));
        let mut clusters: Vec<(String, u32, u32)> = a
            .keys()
            .chain(s.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter_map(|c| {
                let (x, y) = (a.get(c).copied().unwrap_or(0), s.get(c).copied().unwrap_or(0));
                (x != y).then(|| (c.to_string(), x, y))
            })
            .collect();
        clusters.sort();
        if clusters.is_empty() && active.unplaced == shadow.unplaced {
            ShadowOutcome::Agreed
        } else {
            ShadowOutcome::Diverged { clusters, unplaced: (active.unplaced, shadow.unplaced) }
        }
    }

    /// `agreed`, `diverged` or `failed`: the metric label.
    pub fn label(&self) -> &'static str {
        match self {
            ShadowOutcome::Agreed => "agreed",
            ShadowOutcome::Diverged { .. } => "diverged",
            ShadowOutcome::Failed(_) => "failed",
        }
    }

    /// Replicas the shadow would have put elsewhere (half the absolute difference, plus
    /// the change in unplaced).
    pub fn replicas_moved(&self) -> u32 {
        match self {
            ShadowOutcome::Diverged { clusters, .. } => clusters.iter().map(|(_, a, s)| a.saturating_sub(*s)).sum(),
            _ => 0,
        }
    }
}

impl fmt::Display for ShadowRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = format!("shadow {} (sha256 {})", self.policy, &self.digest[..self.digest.len().min(12)]);
        match &self.outcome {
            ShadowOutcome::Agreed => write!(f, "{who} agrees"),
            ShadowOutcome::Failed(e) => write!(f, "{who} failed: {e}"),
            ShadowOutcome::Diverged { clusters, unplaced } => {
                let side = |pick: fn(&(String, u32, u32)) -> u32| clusters.iter().map(|c| format!("{}={}", c.0, pick(c))).collect::<Vec<_>>().join(",");
                write!(f, "{who} would place {} where the active policy places {}", side(|c| c.2), side(|c| c.1))?;
                if unplaced.0 != unplaced.1 {
                    write!(f, "; unplaced {} against {}", unplaced.1, unplaced.0)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mck8s_policy::session::ClusterReplicas;

    fn d(p: &[(&str, u32)], unplaced: u32) -> Decision {
        let placements = p.iter().map(|(c, r)| ClusterReplicas { cluster: c.to_string(), replicas: *r, reason: String::new() }).collect();
        Decision { policy: "p".into(), digest: "d".into(), placements, unplaced, summary: String::new() }
    }

    #[test]
    fn the_same_replicas_in_any_order_agree() {
        assert_eq!(ShadowOutcome::compare(&d(&[("a", 2), ("b", 1)], 0), &d(&[("b", 1), ("a", 2), ("c", 0)], 0)), ShadowOutcome::Agreed);
    }

    #[test]
    fn a_divergence_names_only_the_clusters_that_differ() {
        let o = ShadowOutcome::compare(&d(&[("a", 2), ("b", 1)], 0), &d(&[("b", 1), ("c", 1)], 1));
        assert_eq!(o, ShadowOutcome::Diverged { clusters: vec![("a".into(), 2, 0), ("c".into(), 0, 1)], unplaced: (0, 1) });
        assert_eq!(o.replicas_moved(), 2);
        let run = ShadowRun { policy: "next".into(), digest: "0123456789abcdef".into(), outcome: o };
        assert_eq!(run.to_string(), "shadow next (sha256 0123456789ab) would place a=0,c=1 where the active policy places a=2,c=0; unplaced 1 against 0");
    }
}
