//! The MultiClusterService controller (§7.1): the Service, same name and namespace, in every
//! cluster where the MultiClusterDeployment of the same name runs, or in `spec.locations`.
//!
//! It follows the MCD both ways (mck8s's add path never worked and the Service did not
//! follow the scheduler at all): a change of the MCD's placement re-reconciles the MCS,
//! clusters where the app drains keep their Service until the app's child is gone there, and
//! Services in clusters no longer targeted are removed. Existing Services are re-applied
//! with the current spec (mck8s never patched them), and edits or deletes by hand are
//! repaired.

use crate::children::{self, Outcome};
use crate::context::Context;
use crate::render::{self, Owner};
use crate::shared;
use crate::spec;
use k8s_openapi::api::core::v1::ServiceSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use mck8s_api::{MultiClusterDeployment, MultiClusterService, MultiClusterServiceStatus};
use mck8s_clusters::Member;
use mck8s_fleet::{Health, OwnerKey};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod plan;

pub const KIND: &str = "MultiClusterService";
pub const FINALIZER: &str = shared::FINALIZER;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Said as kube says it: a prefix here would repeat under a chain printer, which
    /// prints the source after it.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error(transparent)]
    Child(#[from] children::ChildError),
}

/// The shared [`Context`] and this controller's status memo.
type State = shared::WithMemo<MultiClusterServiceStatus>;

pub async fn run(ctx: Arc<Context>, watch_namespace: Option<String>) {
    let api: Api<MultiClusterService> = shared::scoped_api(&ctx.watches, &watch_namespace);
    let mcds: Api<MultiClusterDeployment> = shared::scoped_api(&ctx.watches, &watch_namespace);
    let triggers = shared::owner_triggers(&ctx, KIND, watch_namespace);
    let cluster_changes = shared::cluster_changes(&ctx);
    let results = shared::controller(api, &ctx, shared::Wake::SpecOrLifecycle)
        // The MCD of the same name moved (or appeared, or went): the Service follows.
        .watches(mcds, mck8s_clusters::watch_config(), |mcd| Some(ObjectRef::new(&mcd.name_any()).within(&mcd.namespace().unwrap_or_default())))
        .reconcile_on(triggers)
        .reconcile_all_on(cluster_changes)
        .run(reconcile, shared::error_policy, Arc::new(State { ctx, status: Default::default() }));
    shared::drive(KIND, results).await;
}

fn owner_key(mcs: &MultiClusterService) -> OwnerKey {
    OwnerKey { kind: KIND.into(), namespace: mcs.namespace().unwrap_or_default(), name: mcs.name_any() }
}

async fn reconcile(obj: Arc<MultiClusterService>, state: Arc<State>) -> Result<Action, Error> {
    shared::reconcile(&state, KIND, obj, apply, cleanup, Error::Finalizer).await
}

/// Where the Service should be: `spec.locations`, else where the MCD of the same name has
/// replicas or drains, and why. `Err` is an InvalidSpec message.
async fn targets(mcs: &MultiClusterService, ctx: &Context) -> Result<(BTreeSet<String>, String), String> {
    if let Some(v) = &mcs.spec.locations {
        let list = spec::cluster_list(v, "locations").map_err(|e| e.0)?;
        if list.is_empty() {
            return Err("spec.locations is empty".into());
        }
        return Ok((list.into_iter().collect(), "spec.locations".into()));
    }
    let mcds: Api<MultiClusterDeployment> = Api::namespaced(ctx.client.clone(), &mcs.namespace().unwrap_or_default());
    let Ok(Some(mcd)) = mcds.get_opt(&mcs.name_any()).await else {
        return Ok((BTreeSet::new(), format!("no MultiClusterDeployment {} yet; the Service follows it when it is placed", mcs.name_any())));
    };
    Ok((plan::where_it_runs(&mcd.status.unwrap_or_default()), format!("where MultiClusterDeployment {} runs", mcs.name_any())))
}

/// Observe (spec, targets, members) → plan → apply and remove → status.
async fn apply(mcs: Arc<MultiClusterService>, state: Arc<State>) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let owner = owner_key(&mcs);
    let status = state.status.current(mcs.as_ref(), mcs.status.clone().unwrap_or_default());
    let now = Time(k8s_openapi::jiff::Timestamp::now());

    let body = serde_json::Value::Object(mcs.spec.service.clone().into_iter().collect());
    let invalid = serde_json::from_value::<ServiceSpec>(body.clone()).err().map(|e| format!("spec is not a valid ServiceSpec: {e}"));
    let (targets, from) = match (invalid, targets(&mcs, ctx).await) {
        (Some(msg), _) | (None, Err(msg)) => return reject(&mcs, ctx, status, &msg, now).await,
        (None, Ok(t)) => t,
    };
    tracing::debug!(?targets, %from, "service targets");
    let uid = mcs.uid().unwrap_or_default();
    let o = Owner { kind: KIND, namespace: &owner.namespace, name: &owner.name, uid: &uid };
    let child = match render::service(&o, mcs.metadata.annotations.as_ref(), &body) {
        Ok(c) => c,
        Err(e) => return reject(&mcs, ctx, status, &format!("cannot render the Service: {e}"), now).await,
    };

    let members: BTreeMap<String, Arc<Member>> = ctx.clusters.members().into_iter().map(|m| (m.name.clone(), m)).collect();
    let views = members.iter().map(|(c, m)| (c.clone(), plan::MemberView { reachable: m.health() != Health::Unreachable, has_service: m.service_of(&owner).is_some() })).collect();
    let p = plan::propagation(&targets, &views);

    let mut errors = p.errors;
    let mut placed = Vec::new();
    for cluster in &p.apply {
        let member = &members[cluster];
        let live = member.service_of(&owner);
        let outcome = children::apply(&ctx.applied, member, &child, live.as_deref()).await;
        crate::mcd::count_apply(ctx, "Service", &outcome);
        match outcome {
            Ok(Outcome::Applied) if live.is_none() => {
                tracing::info!(%cluster, "service created");
                placed.push(cluster.clone());
            }
            Ok(_) => placed.push(cluster.clone()),
            Err(e) if e.is_invalid() => return reject(&mcs, ctx, status, &e.to_string(), now).await,
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut removed = Vec::new();
    for cluster in &p.remove {
        let member = &members[cluster];
        match children::delete_all(&ctx.applied, member, &member.services_of(&owner)).await {
            Ok(()) => removed.push(cluster.clone()),
            Err(e) => errors.push(e.to_string()),
        }
    }

    let acted = plan::Acted { generation: mcs.metadata.generation, targets: &targets, from: &from, placed: &placed, removed: &removed, errors: &errors, now: &now };
    let (new, note) = plan::status(&status, acted);
    if let Some(note) = note {
        shared::publish(ctx, mcs.as_ref(), EventType::Normal, "Propagated", "Propagate", &note).await;
    }
    let produced = shared::write_status(ctx, mcs.as_ref(), &status, &new, mcs.status.is_some()).await?;
    state.status.remember(mcs.as_ref(), produced, new);
    Ok(Action::requeue(plan::requeue(&errors, &ctx.timing)))
}

/// InvalidSpec: say why, and touch nothing in any workload cluster.
async fn reject(mcs: &MultiClusterService, ctx: &Context, status: MultiClusterServiceStatus, msg: &str, now: Time) -> Result<Action, Error> {
    Ok(shared::reject(ctx, mcs, &status, mcs.status.is_some(), "Propagate", msg, now).await?)
}

async fn cleanup(mcs: Arc<MultiClusterService>, state: Arc<State>) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let owner = owner_key(&mcs);
    for member in ctx.clusters.members() {
        children::delete_owned(&ctx.applied, &member, KIND, &owner.namespace, &owner.name, &member.services_of(&owner)).await?;
    }
    state.status.forget(mcs.as_ref());
    shared::publish(ctx, mcs.as_ref(), EventType::Normal, "Deleted", "Propagate", "Services deleted in every cluster").await;
    Ok(Action::await_change())
}
