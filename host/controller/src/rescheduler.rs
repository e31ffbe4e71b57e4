//! The rescheduler (mck8s §5.1, with §9.3's bugs fixed): while an AppRescheduler exists,
//! every `periodSeconds` it asks each MultiClusterDeployment's placement policy where the
//! application would go if it were new (the owner's own pods count as free). Where that puts
//! fewer replicas in cloud clusters than now, fog capacity has freed up: it proposes a step
//! that moves up to `maxReplicasPerStep` replicas from the cloud to the fog clusters the
//! policy chose, leaving every other cluster as it is.
//!
//! The MCD controller carries the step out like any other placement change: the new fog
//! replicas are applied first, and the cloud child keeps its replicas (status `draining`)
//! until the new placement is ready, so ready replicas never drop below the desired count.
//! mck8s instead deleted and recreated the whole application every 31 minutes, in namespace
//! `default` whatever its namespace, without looking at fog capacity.

use crate::context::Context;
use crate::proposals::Proposal;
use crate::shared;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use mck8s_api::conditions::{self, ACTIVE};
use mck8s_api::{AppRescheduler, AppReschedulerStatus, MultiClusterDeployment};
use mck8s_scheduler::{OwnerKey, PlacementRequest};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub const DEFAULT_PERIOD: Duration = Duration::from_secs(120);
/// How often the loop looks for AppReschedulers while there is none.
const IDLE_POLL: Duration = Duration::from_secs(5);

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

pub async fn run(ctx: Arc<Context>, watch_namespace: Option<String>) {
    let api: Api<AppRescheduler> = Api::all(ctx.client.clone());
    let mut enabled_at: Option<Instant> = None;
    let mut last_pass: Option<Instant> = None;
    loop {
        let objects = match api.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) => {
                tracing::warn!(error = %e, "listing AppReschedulers");
                tokio::time::sleep(ctx.timing.error_retry).await;
                continue;
            }
        };
        let Some(settings) = settings(&objects) else {
            (enabled_at, last_pass) = (None, None);
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        };
        // The first pass one period after enabling: placements just made get time to settle.
        let since = *last_pass.get_or_insert(*enabled_at.get_or_insert_with(Instant::now));
        let due = since + settings.period;
        let now = Instant::now();
        if now < due {
            tokio::time::sleep((due - now).min(IDLE_POLL)).await;
            continue;
        }
        last_pass = Some(now);
        let span = tracing::info_span!("reschedule", period_s = settings.period.as_secs());
        let moves = pass(&ctx, &settings, &watch_namespace).instrument(span).await;
        ctx.metrics.reconciled("AppRescheduler", matches!(moves, PassResult::Ran(_)), now);
        record(&ctx, &api, &objects, moves).await;
    }
}

/// What one pass did.
enum PassResult {
    Ran(Vec<(String, u32)>),
    Failed(String),
}

async fn pass(ctx: &Context, settings: &Settings, watch_namespace: &Option<String>) -> PassResult {
    let api: Api<MultiClusterDeployment> = shared::scoped_api(&ctx.client, watch_namespace);
    let mcds = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => return PassResult::Failed(format!("listing MultiClusterDeployments: {e}")),
    };
    let cycle = match ctx.clusters.cycle() {
        Ok(c) => c,
        Err(e) => return PassResult::Failed(format!("fleet: {e}")),
    };
    let is_cloud = |c: &str| ctx.clusters.get(c).is_some_and(|m| m.is_cloud());
    let mut moves = Vec::new();
    for mcd in mcds {
        let owner = OwnerKey { kind: crate::mcd::KIND.into(), namespace: mcd.namespace().unwrap_or_default(), name: mcd.name_any() };
        if settings.namespaces.as_ref().is_some_and(|ns| !ns.contains(&owner.namespace)) || mcd.metadata.deletion_timestamp.is_some() {
            continue;
        }
        // Only settled objects: placed for their current spec, fully placed, nothing draining.
        let Some(status) = mcd.status.as_ref() else { continue };
        if status.observed_generation != mcd.metadata.generation || status.unplaced > 0 || !status.draining.is_empty() || status.ready_replicas < status.replicas {
            continue;
        }
        let current: BTreeMap<String, u32> = status.placement.iter().filter(|p| p.replicas > 0).map(|p| (p.cluster.clone(), p.replicas as u32)).collect();
        if !current.keys().any(|c| is_cloud(c)) {
            continue;
        }
        let Ok(parsed) = crate::spec::parse(&owner.name, &owner.namespace, &mcd.spec) else { continue };
        let req = PlacementRequest { owner: owner.clone(), policy: parsed.policy.clone(), workload: parsed.workload.clone() };
        let fresh = match ctx.scheduler.preview(&cycle, &req) {
            Ok(d) if d.unplaced == 0 => d.placements.iter().map(|p| (p.cluster.clone(), p.replicas)).collect::<BTreeMap<_, _>>(),
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(%owner, error = %e, "reschedule preview");
                continue;
            }
        };
        let Some((next, moved)) = step(&current, &fresh, is_cloud, settings.max_step) else { continue };
        // Moves share the fleet-wide budget with failover and failback: a pass over many
        // applications does not start them all at once; the rest go in later passes.
        if ctx.moves.try_take().is_err() {
            ctx.metrics.reschedules.get_or_create(&crate::metrics::ResultLabel { result: "throttled".into() }).inc();
            continue;
        }
        let note = describe(&current, &next);
        tracing::info!(%owner, %note, moved, "rescheduling from the cloud");
        ctx.metrics.reschedules.get_or_create(&crate::metrics::ResultLabel { result: "proposed".into() }).inc();
        shared::publish(
            ctx,
            &mcd,
            EventType::Normal,
            "Rescheduling",
            "Reschedule",
            &format!("fog capacity freed: moving {moved} replicas {note} (fog first; cloud replicas go once those are ready)"),
        )
        .await;
        ctx.reschedule.propose(owner.clone(), Proposal { generation: mcd.metadata.generation, placement: next, note: note.clone(), moved });
        moves.push((format!("{owner}: {note}"), moved));
    }
    PassResult::Ran(moves)
}

/// The pass, in every AppRescheduler's status.
async fn record(ctx: &Context, api: &Api<AppRescheduler>, objects: &[AppRescheduler], result: PassResult) {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    for o in objects.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
        let old = o.status.clone().unwrap_or_default();
        let mut new: AppReschedulerStatus = old.clone();
        new.observed_generation = o.metadata.generation;
        new.last_run_time = Some(now.clone());
        match &result {
            PassResult::Ran(moves) => {
                new.moving = moves.len() as i32;
                new.moved_replicas += moves.iter().map(|m| i64::from(m.1)).sum::<i64>();
                new.last_moves = moves.iter().map(|m| m.0.clone()).collect();
                let msg = if moves.is_empty() { "no replica in the cloud has room in the fog".to_string() } else { format!("moving {} applications back to the fog", moves.len()) };
                if !moves.is_empty() {
                    let note = moves.iter().map(|m| m.0.as_str()).collect::<Vec<_>>().join("; ");
                    shared::publish(ctx, o, EventType::Normal, "Rescheduling", "Reschedule", &note).await;
                }
                conditions::set(&mut new.conditions, ACTIVE, true, "Ran", msg, o.metadata.generation, &now);
            }
            PassResult::Failed(e) => {
                tracing::warn!(error = %e, "reschedule pass");
                conditions::set(&mut new.conditions, ACTIVE, false, "PassFailed", e, o.metadata.generation, &now);
            }
        }
        let patch = serde_json::json!({ "status": new });
        if let Err(e) = api.patch_status(&o.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::debug!(error = %e, "AppRescheduler status");
        }
    }
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
}
