//! Watches and scheduling: one task per Cluster (so a Cluster's steps, and its Events, are
//! strictly ordered), woken by watch events on Clusters, MachineDeployments, Machines and the
//! fault ConfigMap, and at least every second; a full resync every 2 s finds Clusters whose
//! events were missed and stops workload clusters whose Cluster is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;

use super::cluster::{self, ClusterRt, Next};
use super::{Ctx, FAULTS_CONFIGMAP, Kind, LABEL_CLUSTER_NAME, SIM_NAMESPACE, crds, names, record, workload};
use crate::Result;

const FULL_RESYNC: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Dispatcher {
    /// Running Cluster tasks by `<ns>/<name>`.
    tasks: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Dispatcher {
    /// Wakes the Cluster's task, starting one if there is none.
    fn wake(self: &Arc<Self>, ctx: &Arc<Ctx>, ns: &str, name: &str) {
        let key = names::key(ns, name);
        let mut tasks = self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = tasks.get(&key) {
            n.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        tasks.insert(key.clone(), notify.clone());
        tokio::spawn(cluster_task(ctx.clone(), self.clone(), key, ClusterRt::new(ns, name), notify));
    }

    fn wake_all(self: &Arc<Self>) {
        self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().for_each(|n| n.notify_one());
    }
}

async fn cluster_task(ctx: Arc<Ctx>, disp: Arc<Dispatcher>, key: String, mut rt: ClusterRt, notify: Arc<Notify>) {
    tracing::debug!(cluster = %key, "task started");
    loop {
        let next = match cluster::reconcile(&ctx, &mut rt).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(cluster = %key, error = %e, "step failed; retrying");
                Next::After(Duration::from_secs(1))
            }
        };
        match next {
            Next::Gone => break,
            Next::After(d) => {
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(d) => {}
                }
            }
        }
    }
    disp.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
    tracing::debug!(cluster = %key, "task ended");
}

pub(super) async fn run(ctx: Arc<Ctx>) -> Result<()> {
    // The management API server is up (`up` started us after it), but be patient anyway.
    let mut attempt = 0;
    while let Err(e) = crds::install(&ctx.mgmt).await {
        attempt += 1;
        if attempt > 30 {
            return Err(e);
        }
        tracing::warn!(error = %e, "installing the Cluster API CRDs; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let disp = Arc::new(Dispatcher::default());
    tokio::spawn(watch_clusters(ctx.clone(), disp.clone()));
    for kind in [Kind::Machine, Kind::MachineDeployment] {
        tokio::spawn(watch_children(ctx.clone(), disp.clone(), kind));
    }
    tokio::spawn(watch_faults(ctx.clone(), disp.clone()));
    loop {
        if let Err(e) = resync(&ctx, &disp).await {
            tracing::debug!(error = %e, "resync failed");
        }
        tokio::time::sleep(FULL_RESYNC).await;
    }
}

async fn watch_clusters(ctx: Arc<Ctx>, disp: Arc<Dispatcher>) {
    let api: Api<DynamicObject> = Api::all_with(ctx.mgmt.clone(), &Kind::Cluster.resource());
    let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o)) => {
                disp.wake(&ctx, o.metadata.namespace.as_deref().unwrap_or_default(), o.metadata.name.as_deref().unwrap_or_default());
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "Cluster watch (retrying)"),
        }
    }
}

/// Machines and MachineDeployments wake their Cluster's task (scale-in annotations, direct
/// MachineDeployment scaling in autoscaler mode, deletions).
async fn watch_children(ctx: Arc<Ctx>, disp: Arc<Dispatcher>, kind: Kind) {
    let api: Api<DynamicObject> = Api::all_with(ctx.mgmt.clone(), &kind.resource());
    let mut events = watcher(api, watcher::Config::default().labels(LABEL_CLUSTER_NAME)).default_backoff().boxed();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
                if let Some(c) = o.metadata.labels.as_ref().and_then(|l| l.get(LABEL_CLUSTER_NAME)) {
                    disp.wake(&ctx, o.metadata.namespace.as_deref().unwrap_or_default(), c);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, kind = kind.name(), "watch (retrying)"),
        }
    }
}

async fn watch_faults(ctx: Arc<Ctx>, disp: Arc<Dispatcher>) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.mgmt.clone(), SIM_NAMESPACE);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={FAULTS_CONFIGMAP}"));
    let mut events = watcher(api, cfg).default_backoff().boxed();
    while let Some(ev) = events.next().await {
        if let Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) = ev {
            disp.wake_all();
        }
    }
}

/// Wakes every Cluster (starting tasks for new ones) and stops orphaned workload clusters.
async fn resync(ctx: &Arc<Ctx>, disp: &Arc<Dispatcher>) -> Result<()> {
    let api: Api<DynamicObject> = Api::all_with(ctx.mgmt.clone(), &Kind::Cluster.resource());
    for c in api.list(&ListParams::default()).await?.items {
        disp.wake(ctx, c.metadata.namespace.as_deref().unwrap_or_default(), c.metadata.name.as_deref().unwrap_or_default());
    }
    // A record is an orphan only if its Cluster (same UID) is confirmed gone and no task
    // owns it (a task tears its own workload down when its Cluster goes).
    for (key, r) in record::read(&ctx.sd.dir)?.clusters {
        if disp.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(&key) {
            continue;
        }
        let current = ctx.api(Kind::Cluster, &r.namespace).get_opt(&r.name).await?;
        if current.and_then(|c| c.metadata.uid) != Some(r.uid.clone()) {
            tracing::info!(cluster = %key, "workload cluster without its Cluster; stopping it");
            workload::teardown(ctx, &r.namespace, &r.name).await?;
        }
    }
    Ok(())
}
