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
use mck8s_api::{AppRescheduler, MultiClusterDeployment};
use mck8s_fleet::OwnerKey;
use mck8s_scheduler::PlacementRequest;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

mod plan;

use plan::Pass;
pub use plan::{DEFAULT_PERIOD, Settings, describe, settings, step};
/// How often the loop looks for AppReschedulers while there is none.
const IDLE_POLL: Duration = Duration::from_secs(5);

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
        ctx.metrics.reconciled("AppRescheduler", matches!(moves, Pass::Ran(_)), now);
        record(&ctx, &api, &objects, moves).await;
    }
}

async fn pass(ctx: &Context, settings: &Settings, watch_namespace: &Option<String>) -> Pass {
    let api: Api<MultiClusterDeployment> = shared::scoped_api(&ctx.client, watch_namespace);
    let mcds = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => return Pass::Failed(format!("listing MultiClusterDeployments: {e}")),
    };
    let cycle = match ctx.cycle() {
        Ok(c) => c,
        Err(e) => return Pass::Failed(format!("fleet: {e}")),
    };
    let is_cloud = |c: &str| ctx.clusters.get(c).is_some_and(|m| m.is_cloud());
    let mut moves = Vec::new();
    for mcd in mcds {
        let owner = OwnerKey { kind: crate::mcd::KIND.into(), namespace: mcd.namespace().unwrap_or_default(), name: mcd.name_any() };
        if settings.namespaces.as_ref().is_some_and(|ns| !ns.contains(&owner.namespace)) {
            continue;
        }
        let Some(current) = plan::in_the_cloud(&mcd, is_cloud) else { continue };
        let Ok(parsed) = crate::spec::parse(&owner.name, &owner.namespace, &mcd.spec) else { continue };
        let req = PlacementRequest { owner: owner.clone(), policy: parsed.policy.clone(), workload: parsed.workload.clone() };
        let (scheduler, fleet) = (ctx.scheduler.clone(), cycle.clone());
        let fresh = match ctx.policy_calls.run(move || scheduler.preview(&fleet, &req)).await {
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
    Pass::Ran(moves)
}

/// The pass, in every AppRescheduler's status.
async fn record(ctx: &Context, api: &Api<AppRescheduler>, objects: &[AppRescheduler], result: Pass) {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    if let Pass::Failed(e) = &result {
        tracing::warn!(error = %e, "reschedule pass");
    }
    for o in objects.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
        let (new, note) = plan::status(o, &result, &now);
        if let Some(note) = note {
            shared::publish(ctx, o, EventType::Normal, "Rescheduling", "Reschedule", &note).await;
        }
        let patch = serde_json::json!({ "status": new });
        if let Err(e) = api.patch_status(&o.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::debug!(error = %e, "AppRescheduler status");
        }
    }
}
