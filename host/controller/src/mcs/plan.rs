//! What one reconcile of a MultiClusterService does, decided without I/O. The shell
//! (`mod.rs`) finds the target clusters; [`propagation`] says where the Service is applied
//! and where it is removed; after acting, [`status`] says what to write and announce.

use crate::context::Timing;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mck8s_api::conditions::{self, DEGRADED, INVALID_SPEC, READY};
use mck8s_api::{MultiClusterDeploymentStatus, MultiClusterServiceStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Where the MCD of the same name has replicas or still drains: its Service must stay
/// there until the app's child is gone.
pub fn where_it_runs(mcd: &MultiClusterDeploymentStatus) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = mcd.placement.iter().filter(|p| p.replicas > 0).map(|p| p.cluster.clone()).collect();
    out.extend(mcd.draining.iter().map(|d| d.cluster.clone()));
    out
}

/// A registered cluster, as this Service sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemberView {
    pub reachable: bool,
    /// It holds a Service of ours.
    pub has_service: bool,
}

/// The actions of one reconcile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Propagation {
    /// Targets to apply the Service to.
    pub apply: Vec<String>,
    /// Clusters no longer targeted that still hold the Service.
    pub remove: Vec<String>,
    /// What cannot be done now, per cluster.
    pub errors: Vec<String>,
}

/// The Service goes to every reachable target and leaves every reachable cluster that is
/// no target; an unreachable cluster keeps what it has until it is back.
pub fn propagation(targets: &BTreeSet<String>, members: &BTreeMap<String, MemberView>) -> Propagation {
    let mut p = Propagation::default();
    for cluster in targets {
        match members.get(cluster) {
            None => p.errors.push(format!("cluster {cluster}: not registered")),
            Some(m) if !m.reachable => p.errors.push(format!("cluster {cluster}: unreachable")),
            Some(_) => p.apply.push(cluster.clone()),
        }
    }
    for (cluster, m) in members.iter().filter(|(c, m)| m.has_service && !targets.contains(*c)) {
        if m.reachable {
            p.remove.push(cluster.clone());
        } else {
            p.errors.push(format!("cluster {cluster}: unreachable; its Service is removed when it is back"));
        }
    }
    p
}

/// What acting met.
pub struct Acted<'a> {
    pub generation: Option<i64>,
    pub targets: &'a BTreeSet<String>,
    /// Why these targets: `spec.locations`, or where the MCD runs.
    pub from: &'a str,
    /// Targets that hold the current Service now.
    pub placed: &'a [String],
    pub removed: &'a [String],
    pub errors: &'a [String],
    pub now: &'a Time,
}

/// The new status, and the Event's note when where the Service is changed.
pub fn status(old: &MultiClusterServiceStatus, a: Acted<'_>) -> (MultiClusterServiceStatus, Option<String>) {
    let (g, now) = (a.generation, a.now);
    let mut new = old.clone();
    new.observed_generation = g;
    new.clusters = a.placed.to_vec();
    new.summary = Some(a.placed.join(","));
    conditions::set(&mut new.conditions, INVALID_SPEC, false, "Valid", "", g, now);
    if a.errors.is_empty() {
        conditions::set(&mut new.conditions, DEGRADED, false, "AllClustersReached", "", g, now);
    } else {
        conditions::set(&mut new.conditions, DEGRADED, true, "ClusterError", a.errors.join("; "), g, now);
    }
    let ready = !a.targets.is_empty() && a.placed.len() == a.targets.len();
    let reason = match (ready, a.targets.is_empty()) {
        (true, _) => "Propagated",
        (false, true) => "NoClusters",
        (false, false) => "Pending",
    };
    conditions::set(&mut new.conditions, READY, ready, reason, format!("{}/{} clusters, {}", a.placed.len(), a.targets.len(), a.from), g, now);
    let moved = old.clusters != new.clusters || !a.removed.is_empty();
    let note = moved.then(|| {
        let removed = if a.removed.is_empty() { String::new() } else { format!("; removed from [{}]", a.removed.join(", ")) };
        format!("Service in [{}] ({}){removed}", a.placed.join(", "), a.from)
    });
    (new, note)
}

/// Errors are retried sooner than the resync.
pub fn requeue(errors: &[String], timing: &Timing) -> Duration {
    if errors.is_empty() { timing.resync } else { timing.error_retry }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mck8s_api::{ClusterPlacement, DrainingChild};

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn members(rows: &[(&str, bool, bool)]) -> BTreeMap<String, MemberView> {
        rows.iter().map(|(c, reachable, has_service)| (c.to_string(), MemberView { reachable: *reachable, has_service: *has_service })).collect()
    }

    static NOW: std::sync::LazyLock<Time> = std::sync::LazyLock::new(|| Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap()));

    #[test]
    fn the_service_follows_replicas_and_stays_while_they_drain() {
        let mcd = MultiClusterDeploymentStatus {
            placement: vec![
                ClusterPlacement { cluster: "a".into(), replicas: 2, ..Default::default() },
                ClusterPlacement { cluster: "b".into(), replicas: 0, ..Default::default() },
            ],
            draining: vec![DrainingChild { cluster: "c".into(), replicas: 1, ready_replicas: 1, since: NOW.clone(), reason: "ReplacementsNotReady".into() }],
            ..Default::default()
        };
        assert_eq!(where_it_runs(&mcd), set(&["a", "c"]));
    }

    #[test]
    fn targets_get_the_service_and_others_lose_it_unless_unreachable() {
        let m = members(&[("a", true, false), ("b", false, false), ("c", true, true), ("d", false, true), ("e", true, false)]);
        let p = propagation(&set(&["a", "b", "x"]), &m);
        assert_eq!(p.apply, ["a"]);
        assert_eq!(p.remove, ["c"], "d is unreachable; e has nothing to remove");
        assert_eq!(p.errors, ["cluster b: unreachable", "cluster x: not registered", "cluster d: unreachable; its Service is removed when it is back"]);
    }

    #[test]
    fn ready_when_every_target_holds_it_and_moves_are_announced_once() {
        let targets = set(&["a", "b"]);
        let strings = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
        let (both, none) = (strings(&["a", "b"]), Vec::new());
        let acted = |placed, removed, errors| Acted { generation: Some(2), targets: &targets, from: "spec.locations", placed, removed, errors, now: &NOW };
        let (first, note) = status(&Default::default(), acted(&both, &none, &none));
        assert_eq!(note.as_deref(), Some("Service in [a, b] (spec.locations)"));
        assert!(conditions::is_true(&first.conditions, READY));
        assert!(!conditions::is_true(&first.conditions, DEGRADED));
        assert_eq!((first.observed_generation, first.summary.as_deref()), (Some(2), Some("a,b")));
        let (again, note) = status(&first, acted(&both, &none, &none));
        assert_eq!((note, &again), (None, &first), "nothing moved: no event and the same status");

        let (one, gone, err) = (strings(&["a"]), strings(&["c"]), strings(&["cluster b: unreachable"]));
        let (partial, note) = status(&first, acted(&one, &gone, &err));
        assert_eq!(note.as_deref(), Some("Service in [a] (spec.locations); removed from [c]"));
        let ready = conditions::get(&partial.conditions, READY).unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str(), ready.message.as_str()), ("False", "Pending", "1/2 clusters, spec.locations"));
        assert_eq!(conditions::get(&partial.conditions, DEGRADED).unwrap().message, "cluster b: unreachable");
    }

    #[test]
    fn no_targets_is_not_ready_and_errors_retry_sooner() {
        let (st, _) =
            status(&Default::default(), Acted { generation: Some(1), targets: &BTreeSet::new(), from: "where it runs", placed: &[], removed: &[], errors: &[], now: &NOW });
        assert_eq!(conditions::get(&st.conditions, READY).unwrap().reason, "NoClusters");
        let timing = Timing::default();
        assert_eq!(requeue(&[], &timing), timing.resync);
        assert_eq!(requeue(&["x".into()], &timing), timing.error_retry);
        assert!(timing.error_retry < timing.resync);
    }
}
