//! `GET /snapshot`: the live fleet and the multi-cluster objects this controller watches,
//! as a what-if snapshot ([`mck8s_scheduler::whatif`]). Clusters are the states decisions
//! read (capacities, bound pods' requests per owner, health, labels, traffic); objects are
//! their parsed workloads and recorded placements. No kubeconfig, Secret or pod spec is
//! part of it. Objects whose spec is invalid are left out (nothing could place them).

use crate::context::Context;
use crate::shared;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::ListParams;
use mck8s_api::{MultiClusterDeployment, MultiClusterJob};
use mck8s_fleet::FleetSource;
use mck8s_scheduler::whatif::{FORMAT, Snapshot, SnapshotObject};

pub async fn take(ctx: &Context) -> Result<Snapshot, kube::Error> {
    let observed = ctx.clusters.observe();
    let clusters = observed.states.iter().map(|s| (**s).clone()).collect();
    let mut objects: Vec<(Option<Timestamp>, SnapshotObject)> = Vec::new();
    let mcds = shared::scoped_api::<MultiClusterDeployment>(&ctx.client, &ctx.watch_namespace).list(&ListParams::default()).await?;
    for mcd in mcds.items.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
        let (name, namespace) = (mcd.name_any(), mcd.namespace().unwrap_or_default());
        let Ok(p) = crate::spec::parse(&name, &namespace, &mcd.spec) else { continue };
        let recorded = crate::mcd::recorded(&mcd.status.clone().unwrap_or_default());
        let object = SnapshotObject { kind: crate::mcd::KIND.into(), namespace, name, policy: p.policy, workload: p.workload, recorded };
        objects.push((mcd.metadata.creation_timestamp.as_ref().map(|t| t.0), object));
    }
    let mcjs = shared::scoped_api::<MultiClusterJob>(&ctx.client, &ctx.watch_namespace).list(&ListParams::default()).await?;
    for mcj in mcjs.items.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
        let (name, namespace) = (mcj.name_any(), mcj.namespace().unwrap_or_default());
        let Ok(p) = crate::spec::parse_job(&name, &namespace, &mcj.spec) else { continue };
        let recorded = crate::mcj::recorded(&mcj.status.clone().unwrap_or_default());
        let object = SnapshotObject { kind: crate::mcj::KIND.into(), namespace, name, policy: p.spec.policy, workload: p.spec.workload, recorded };
        objects.push((mcj.metadata.creation_timestamp.as_ref().map(|t| t.0), object));
    }
    // Oldest first, as a controller starting up meets them; names break ties.
    objects.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| (&a.1.namespace, &a.1.name, &a.1.kind).cmp(&(&b.1.namespace, &b.1.name, &b.1.kind))));
    Ok(Snapshot { format: FORMAT.into(), taken_at: Timestamp::now().to_string(), clusters, rtt: observed.rtt.to_vec(), objects: objects.into_iter().map(|(_, o)| o).collect() })
}
