//! Failover and failback, as pure decisions the reconcilers act on.
//!
//! - A cluster in an object's placement that has not been Ready for a grace period has
//!   *failed*: the placement is decided again without it (the policies skip clusters that
//!   are not Ready) and the cluster is remembered in `status.failedOver`.
//! - A remembered cluster that is Ready again has *recovered*: the placement is decided
//!   again, so it returns wherever the policy now puts it (failback, which Karmada leaves to
//!   a manual WorkloadRebalancer).
//! - Moves are rate limited fleet-wide (a token bucket), so a cluster failing under a
//!   thousand objects does not re-place them all in one burst onto stale capacity.
//! - Children left in clusters no longer chosen *drain*: they keep serving until the new
//!   placement is entirely ready, and are never deleted while their cluster is unreachable.

use mck8s_fleet::Health;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What an object's clusters say about moving it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assessment {
    /// Placed clusters not Ready for at least the grace period: (cluster, health, for how long).
    pub failed: Vec<(String, Health, Duration)>,
    /// Placed clusters not Ready for less than the grace period: the shortest time left.
    pub grace_left: Option<Duration>,
    /// Clusters the object failed over from that are Ready again.
    pub recovered: Vec<String>,
}

impl Assessment {
    pub fn wants_move(&self) -> bool {
        !self.failed.is_empty() || !self.recovered.is_empty()
    }
}

/// `health(cluster)`: None when the cluster is not registered, else its health and how long
/// it has not been Ready (None while Ready).
pub fn assess<'a>(
    placed: impl IntoIterator<Item = &'a String>,
    failed_over: &[String],
    grace: Duration,
    health: impl Fn(&str) -> Option<(Health, Option<Duration>)>,
) -> Assessment {
    let mut a = Assessment::default();
    for c in placed {
        if let Some((h, Some(down))) = health(c) {
            if down >= grace {
                a.failed.push((c.clone(), h, down));
            } else {
                let left = grace - down;
                a.grace_left = Some(a.grace_left.map_or(left, |l| l.min(left)));
            }
        }
    }
    for c in failed_over {
        if matches!(health(c), Some((Health::Ready, None))) {
            a.recovered.push(c.clone());
        }
    }
    a
}

/// `status.failedOver` after a new decision: clusters that were placed and are not Ready
/// (they failed, or the decision avoided them while they were down) are added; recovered or
/// unregistered ones, and those chosen again, are dropped.
pub fn failed_over_after(before: &[String], placed_before: &BTreeSet<String>, placed_now: &BTreeSet<String>, health: impl Fn(&str) -> Option<Health>) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for c in before.iter().chain(placed_before) {
        if placed_now.contains(c) {
            continue;
        }
        if matches!(health(c), Some(Health::NotReady | Health::Unreachable)) {
            out.insert(c.clone());
        }
    }
    out.into_iter().collect()
}

/// Why a child in a cluster no longer chosen stays, or that it may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    Delete,
    Keep(&'static str),
}

pub const KEEP_UNREACHABLE: &str = "ClusterUnreachable";
pub const KEEP_NOT_READY: &str = "ReplacementsNotReady";
pub const KEEP_BURSTING: &str = "ReplicasUnplaced";

/// `ready`/`placed`: ready and decided replicas of the new placement; `unplaced`: replicas
/// no cluster took (the old child is the best there is for them). The timeout ends any
/// drain that cannot finish, so old children never pin capacity forever.
pub fn drain(reachable: bool, ready: u32, placed: u32, unplaced: u32, draining_for: Duration, timeout: Duration) -> Drain {
    if !reachable {
        Drain::Keep(KEEP_UNREACHABLE)
    } else if draining_for >= timeout {
        Drain::Delete
    } else if unplaced > 0 {
        Drain::Keep(KEEP_BURSTING)
    } else if ready >= placed {
        Drain::Delete
    } else {
        Drain::Keep(KEEP_NOT_READY)
    }
}

/// A token bucket: `rate` moves per second on average, `burst` at once.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter { rate: rate.max(1e-3), burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Takes a token, or says how long until one is there.
    pub fn try_take(&self) -> Result<(), Duration> {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let refill = now.saturating_duration_since(s.1).as_secs_f64() * self.rate;
        s.0 = (s.0 + refill).min(self.burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.0) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_cluster_fails_only_after_the_grace_period_and_recovers_when_ready() {
        let placed = s(&["a", "b", "c", "gone"]);
        let health = |c: &str| match c {
            "a" => Some((Health::Ready, None)),
            "b" => Some((Health::Unreachable, Some(Duration::from_secs(31)))),
            "c" => Some((Health::NotReady, Some(Duration::from_secs(10)))),
            "d" => Some((Health::Ready, None)),
            "e" => Some((Health::NotReady, Some(Duration::from_secs(100)))),
            _ => None,
        };
        let a = assess(&placed, &s(&["d", "e", "gone"]), GRACE, health);
        assert_eq!(a.failed, vec![("b".to_string(), Health::Unreachable, Duration::from_secs(31))]);
        assert_eq!(a.grace_left, Some(Duration::from_secs(20)));
        assert_eq!(a.recovered, s(&["d"]));
        assert!(a.wants_move());
        let calm = assess(&s(&["a"]), &[], GRACE, health);
        assert!(!calm.wants_move() && calm.grace_left.is_none());
    }

    #[test]
    fn failed_over_keeps_what_is_down_and_not_chosen() {
        let before: BTreeSet<String> = ["a", "b", "c"].iter().map(|x| x.to_string()).collect();
        let now: BTreeSet<String> = ["a", "x"].iter().map(|x| x.to_string()).collect();
        let health = |c: &str| match c {
            "a" | "x" | "old-ok" => Some(Health::Ready),
            "b" => Some(Health::Unreachable),
            "c" => Some(Health::NotReady),
            "old-down" => Some(Health::Unreachable),
            _ => None,
        };
        let out = failed_over_after(&s(&["old-ok", "old-down", "old-gone"]), &before, &now, health);
        assert_eq!(out, s(&["b", "c", "old-down"]));
    }

    #[test]
    fn a_drained_child_goes_only_when_the_new_placement_is_ready() {
        let t = Duration::from_secs(300);
        let short = Duration::from_secs(1);
        assert_eq!(drain(true, 3, 4, 0, short, t), Drain::Keep(KEEP_NOT_READY));
        assert_eq!(drain(true, 4, 4, 0, short, t), Drain::Delete);
        assert_eq!(drain(false, 4, 4, 0, short, t), Drain::Keep(KEEP_UNREACHABLE));
        assert_eq!(drain(true, 4, 4, 2, short, t), Drain::Keep(KEEP_BURSTING));
        assert_eq!(drain(true, 0, 4, 0, t, t), Drain::Delete, "the timeout ends a drain that cannot finish");
        assert_eq!(drain(true, 0, 4, 3, t, t), Drain::Delete);
        assert_eq!(drain(false, 0, 4, 0, t, t), Drain::Keep(KEEP_UNREACHABLE), "nothing can be deleted there");
    }

    #[test]
    fn the_rate_limiter_allows_a_burst_then_the_rate() {
        let l = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.try_take_at(t0).is_ok());
        }
        let wait = l.try_take_at(t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500), "{wait:?}");
        assert!(l.try_take_at(t0 + Duration::from_millis(500)).is_ok());
        assert!(l.try_take_at(t0 + Duration::from_millis(500)).is_err());
        // Idle time refills up to the burst only.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.try_take_at(later).is_ok());
        }
        assert!(l.try_take_at(later).is_err());
    }
}
