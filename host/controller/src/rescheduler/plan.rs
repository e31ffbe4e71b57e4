//! What a rescheduling pass decides, without I/O: which objects are candidates
//! ([`in_the_cloud`]), one step towards where the policy would place them now ([`step`]), the
//! merged settings of every AppRescheduler ([`settings`]), and what each AppRescheduler's
//! status says after a pass ([`status`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mck8s_api::conditions::{self, ACTIVE};
use mck8s_api::{AppRescheduler, AppReschedulerStatus, MultiClusterDeployment};
use std::collections::BTreeMap;
use std::time::Duration;

pub const DEFAULT_PERIOD: Duration = Duration::from_secs(120);

/// A settled object's placement, when some of it runs in the cloud: placed for its current
/// spec, fully placed, nothing draining, every replica ready. Anything else is still moving
/// and is left alone this pass.
pub fn in_the_cloud(mcd: &MultiClusterDeployment, is_cloud: impl Fn(&str) -> bool) -> Option<BTreeMap<String, u32>> {
    if mcd.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = mcd.status.as_ref()?;
    if status.observed_generation != mcd.metadata.generation || status.unplaced > 0 || !status.draining.is_empty() || status.ready_replicas < status.replicas {
        return None;
    }
    let current: BTreeMap<String, u32> = status.placement.iter().filter(|p| p.replicas > 0).map(|p| (p.cluster.clone(), p.replicas as u32)).collect();
    current.keys().any(|c| is_cloud(c)).then_some(current)
}

/// One step from `current` towards `fresh` (what the policy would choose now): up to `max`
/// replicas leave cloud clusters (those most above their fresh share first) for fog clusters
/// where `fresh` has more than now (largest gain first). Nothing else moves, so fog clusters
/// are never reshuffled and each fog cluster gets no more than `fresh` found room for.
/// Returns the placement after the step and how many replicas it moves.
pub fn step(current: &BTreeMap<String, u32>, fresh: &BTreeMap<String, u32>, is_cloud: impl Fn(&str) -> bool, max: Option<u32>) -> Option<(BTreeMap<String, u32>, u32)> {
    let in_cloud = |m: &BTreeMap<String, u32>| -> u32 { m.iter().filter(|(c, _)| is_cloud(c)).map(|(_, n)| n).sum() };
    let (cloud_now, cloud_fresh) = (in_cloud(current), in_cloud(fresh));
    if cloud_fresh >= cloud_now {
        return None;
    }
    let mut gains: Vec<(String, u32)> =
        fresh.iter().filter(|(c, _)| !is_cloud(c)).filter_map(|(c, n)| n.checked_sub(current.get(c).copied().unwrap_or(0)).filter(|g| *g > 0).map(|g| (c.clone(), g))).collect();
    gains.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let room: u32 = gains.iter().map(|g| g.1).sum();
    let moved = (cloud_now - cloud_fresh).min(room).min(max.unwrap_or(u32::MAX));
    if moved == 0 {
        return None;
    }
    let mut next = current.clone();
    let mut left = moved;
    for (c, g) in gains {
        let take = g.min(left);
        *next.entry(c).or_default() += take;
        left -= take;
        if left == 0 {
            break;
        }
    }
    let mut excess: Vec<(String, u32)> =
        current.iter().filter(|(c, _)| is_cloud(c)).map(|(c, n)| (c.clone(), n.saturating_sub(fresh.get(c).copied().unwrap_or(0)))).filter(|e| e.1 > 0).collect();
    excess.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut left = moved;
    for (c, e) in excess {
        let take = e.min(left);
        if let Some(n) = next.get_mut(&c) {
            *n -= take;
        }
        left -= take;
        if left == 0 {
            break;
        }
    }
    next.retain(|_, n| *n > 0);
    Some((next, moved))
}

/// `cloud1=2 → cluster1=+2`: what a step takes from where and gives where.
pub fn describe(current: &BTreeMap<String, u32>, next: &BTreeMap<String, u32>) -> String {
    let mut from = Vec::new();
    let mut to = Vec::new();
    for c in current.keys().chain(next.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (a, b) = (current.get(c).copied().unwrap_or(0), next.get(c).copied().unwrap_or(0));
        if b < a {
            from.push(format!("{c}=-{}", a - b));
        } else if b > a {
            to.push(format!("{c}=+{}", b - a));
        }
    }
    format!("{} → {}", from.join(","), to.join(","))
}

/// The settings of every AppRescheduler together: the shortest period, the smallest step,
/// the union of namespaces (any object without namespaces means all).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub period: Duration,
    pub max_step: Option<u32>,
    pub namespaces: Option<Vec<String>>,
}

pub fn settings(objects: &[AppRescheduler]) -> Option<Settings> {
    let live: Vec<&AppRescheduler> = objects.iter().filter(|o| o.metadata.deletion_timestamp.is_none()).collect();
    if live.is_empty() {
        return None;
    }
    let period = live.iter().map(|o| o.spec.period_seconds.map_or(DEFAULT_PERIOD, |s| Duration::from_secs(s.max(1) as u64))).min().expect("not empty");
    let max_step = live.iter().filter_map(|o| o.spec.max_replicas_per_step).map(|s| s.max(1) as u32).min();
    let namespaces = if live.iter().any(|o| o.spec.namespaces.is_empty()) {
        None
    } else {
        let mut all: Vec<String> = live.iter().flat_map(|o| o.spec.namespaces.clone()).collect();
        all.sort();
        all.dedup();
        Some(all)
    };
    Some(Settings { period, max_step, namespaces })
}

/// What one pass did.
#[derive(Clone, Debug, PartialEq)]
pub enum Pass {
    /// The moves proposed: which object, what moves, how many replicas.
    Ran(Vec<(String, u32)>),
    Failed(String),
}

/// An AppRescheduler's status after `pass`, and the note of its Event when it moved anything.
pub fn status(o: &AppRescheduler, pass: &Pass, now: &Time) -> (AppReschedulerStatus, Option<String>) {
    let g = o.metadata.generation;
    let mut new = o.status.clone().unwrap_or_default();
    new.observed_generation = g;
    new.last_run_time = Some(now.clone());
    let mut note = None;
    match pass {
        Pass::Ran(moves) => {
            new.moving = moves.len() as i32;
            new.moved_replicas += moves.iter().map(|m| i64::from(m.1)).sum::<i64>();
            new.last_moves = moves.iter().map(|m| m.0.clone()).collect();
            let msg = if moves.is_empty() { "no replica in the cloud has room in the fog".to_string() } else { format!("moving {} applications back to the fog", moves.len()) };
            if !moves.is_empty() {
                note = Some(moves.iter().map(|m| m.0.as_str()).collect::<Vec<_>>().join("; "));
            }
            conditions::set(&mut new.conditions, ACTIVE, true, "Ran", msg, g, now);
        }
        Pass::Failed(e) => conditions::set(&mut new.conditions, ACTIVE, false, "PassFailed", e, g, now),
    }
    (new, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    }

    fn cloud(c: &str) -> bool {
        c.starts_with("cloud")
    }

    #[test]
    fn a_step_moves_cloud_replicas_to_fog_room_only() {
        let current = m(&[("cluster1", 2), ("cluster2", 2), ("cloud1", 3)]);
        // The policy would now put 4 on cluster1, 3 on cluster3, and none on cluster2.
        let fresh = m(&[("cluster1", 4), ("cluster3", 3)]);
        let (next, moved) = step(&current, &fresh, cloud, None).unwrap();
        assert_eq!(moved, 3);
        // Largest gain first: cluster3 takes all 3; cluster2 is not reshuffled; the total stays 7.
        assert_eq!(next, m(&[("cluster1", 2), ("cluster2", 2), ("cluster3", 3)]));
        assert_eq!(describe(&current, &next), "cloud1=-3 → cluster3=+3");
        let (next, _) = step(&current, &m(&[("cluster1", 5), ("cluster3", 2)]), cloud, None).unwrap();
        assert_eq!(next, m(&[("cluster1", 5), ("cluster2", 2)]), "cluster1's gain (3) takes the whole budget");
    }

    #[test]
    fn steps_are_limited_and_converge() {
        let mut current = m(&[("cluster1", 1), ("cloud1", 3)]);
        let fresh = m(&[("cluster1", 4)]);
        let mut steps = 0;
        while let Some((next, moved)) = step(&current, &fresh, cloud, Some(1)) {
            assert_eq!(moved, 1);
            assert_eq!(next.values().sum::<u32>(), 4);
            current = next;
            steps += 1;
        }
        assert_eq!((steps, current), (3, m(&[("cluster1", 4)])));
    }

    #[test]
    fn no_step_without_fog_room_or_cloud_replicas() {
        assert_eq!(step(&m(&[("cluster1", 2), ("cloud1", 2)]), &m(&[("cluster1", 2), ("cloud1", 2)]), cloud, None), None);
        assert_eq!(step(&m(&[("cluster1", 2)]), &m(&[("cluster2", 2)]), cloud, None), None, "fog to fog is not the rescheduler's business");
        assert_eq!(step(&m(&[("cluster1", 2), ("cloud1", 2)]), &m(&[("cloud2", 4)]), cloud, None), None, "cloud to cloud neither");
    }

    #[test]
    fn settings_merge_every_object() {
        let o = |yaml: &str| -> AppRescheduler { AppRescheduler::new("r", serde_yaml_ng::from_str(yaml).unwrap()) };
        assert_eq!(settings(&[]), None);
        let s = settings(&[o("{}")]).unwrap();
        assert_eq!((s.period, s.max_step, s.namespaces), (DEFAULT_PERIOD, None, None));
        let s = settings(&[o("periodSeconds: 10\nnamespaces: [a]"), o("periodSeconds: 30\nmaxReplicasPerStep: 2\nnamespaces: [b]")]).unwrap();
        assert_eq!((s.period, s.max_step, s.namespaces), (Duration::from_secs(10), Some(2), Some(vec!["a".to_string(), "b".to_string()])));
    }

    fn mcd(status: serde_json::Value) -> MultiClusterDeployment {
        let mut o = MultiClusterDeployment::new("web", Default::default());
        o.metadata.generation = Some(3);
        o.status = Some(serde_json::from_value(status).unwrap());
        o
    }

    #[test]
    fn only_settled_objects_with_cloud_replicas_are_candidates() {
        let settled = serde_json::json!({"observedGeneration": 3, "replicas": 3, "readyReplicas": 3,
            "placement": [{"cluster": "cluster1", "replicas": 1}, {"cluster": "cloud1", "replicas": 2}, {"cluster": "cluster2", "replicas": 0}]});
        assert_eq!(in_the_cloud(&mcd(settled.clone()), cloud), Some(m(&[("cluster1", 1), ("cloud1", 2)])));
        let with = |k: &str, v: serde_json::Value| {
            let mut s = settled.clone();
            s[k] = v;
            in_the_cloud(&mcd(s), cloud)
        };
        assert_eq!(with("observedGeneration", 2.into()), None, "not yet placed for its spec");
        assert_eq!(with("unplaced", 1.into()), None, "not fully placed");
        assert_eq!(with("readyReplicas", 2.into()), None, "not all ready");
        let draining = serde_json::json!([{"cluster": "cloud2", "replicas": 1, "since": "2026-01-01T00:00:00Z", "reason": "ReplacementsNotReady"}]);
        assert_eq!(with("draining", draining), None, "a move under way");
        assert_eq!(with("placement", serde_json::json!([{"cluster": "cluster1", "replicas": 3}])), None, "all in the fog");
        let mut deleting = mcd(settled);
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap()));
        assert_eq!(in_the_cloud(&deleting, cloud), None);
    }

    #[test]
    fn a_pass_is_recorded_and_announced_only_when_it_moved_something() {
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(100).unwrap());
        let mut o = AppRescheduler::new("r", serde_yaml_ng::from_str("{}").unwrap());
        o.metadata.generation = Some(1);
        o.status = Some(AppReschedulerStatus { moved_replicas: 5, ..Default::default() });
        let (st, note) = status(&o, &Pass::Ran(vec![("ns/web: cloud1=-2 → cluster1=+2".into(), 2)]), &now);
        assert_eq!((st.moving, st.moved_replicas, st.last_run_time.as_ref()), (1, 7, Some(&now)));
        assert_eq!(note.as_deref(), Some("ns/web: cloud1=-2 → cluster1=+2"));
        assert!(conditions::is_true(&st.conditions, ACTIVE));
        let (st, note) = status(&o, &Pass::Ran(Vec::new()), &now);
        assert_eq!((st.moving, st.moved_replicas, note), (0, 5, None));
        let (st, note) = status(&o, &Pass::Failed("listing: forbidden".into()), &now);
        let c = conditions::get(&st.conditions, ACTIVE).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str(), c.message.as_str(), note), ("False", "PassFailed", "listing: forbidden", None));
    }
}
