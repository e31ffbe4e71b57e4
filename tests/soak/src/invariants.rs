//! What must hold whatever fails:
//! - never two leaders acting at once (from the controllers' own logs, see `controllers`);
//! - no child without an owner: a child mck8s made whose MultiClusterDeployment, Service or
//!   Job is gone, for longer than the grace below;
//! - no stray or duplicate child: a child Deployment in a cluster its MCD neither places on
//!   nor drains from, for longer than the grace;
//! - ready replicas never below what the surviving clusters held (see [`ReadyFloor`]);
//! - after the faults stop, everything converges within a bound (see [`converged`]).
//!
//! A workload cluster that does not answer within 5 s is skipped in that check (it is the
//! one being failed); a management API server that does not answer skips the whole check.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use mck8s_api::{MultiClusterDeployment, MultiClusterJob, MultiClusterService, labels};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long a child may be orphaned or stray while faults go on: a delete or a move must
/// wait for its cluster to come back (the longest fault is 20 s, failover grace 10 s).
pub const GRACE: Duration = Duration::from_secs(90);
const CALL: Duration = Duration::from_secs(5);

/// `(kind, cluster, name)` of a child.
type ChildKey = (&'static str, String, String);

#[derive(Default)]
pub struct Tracker {
    /// Since when each suspicious child has been seen suspicious.
    since: BTreeMap<ChildKey, (Instant, String)>,
    pub checks: u64,
    pub skipped: u64,
    /// Rounds of [`ReadyFloor::check`].
    pub floor_checks: u64,
    pub violations: Vec<String>,
}

async fn list<K>(api: Api<K>) -> Option<Vec<K>>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let lp = ListParams::default().labels(&format!("{}={}", labels::MANAGED_BY_KEY, labels::MANAGED_BY));
    tokio::time::timeout(CALL, api.list(&lp)).await.ok()?.ok().map(|l| l.items)
}

/// The owner a child's labels name.
fn owner(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<(String, String)> {
    labels::owner_of(meta.labels.as_ref(), meta.annotations.as_ref())
}

pub struct Fleet<'a> {
    pub management: &'a Client,
    pub clusters: &'a [(String, Client)],
    pub namespace: &'a str,
}

/// What the management cluster holds now (None: it did not answer).
struct Owners {
    mcds: BTreeMap<String, MultiClusterDeployment>,
    mcss: BTreeSet<String>,
    mcjs: BTreeSet<String>,
}

async fn owners(f: &Fleet<'_>) -> Option<Owners> {
    let ns = f.namespace;
    let mcds: Vec<MultiClusterDeployment> = tokio::time::timeout(CALL, Api::namespaced(f.management.clone(), ns).list(&ListParams::default())).await.ok()?.ok()?.items;
    let mcss: Vec<MultiClusterService> = tokio::time::timeout(CALL, Api::namespaced(f.management.clone(), ns).list(&ListParams::default())).await.ok()?.ok()?.items;
    let mcjs: Vec<MultiClusterJob> = tokio::time::timeout(CALL, Api::namespaced(f.management.clone(), ns).list(&ListParams::default())).await.ok()?.ok()?.items;
    Some(Owners {
        mcds: mcds.into_iter().map(|m| (m.name_any(), m)).collect(),
        mcss: mcss.iter().map(|m| m.name_any()).collect(),
        mcjs: mcjs.iter().map(|m| m.name_any()).collect(),
    })
}

/// Every suspicious child now, with why.
async fn suspicious(f: &Fleet<'_>, o: &Owners) -> BTreeMap<ChildKey, String> {
    let mut out = BTreeMap::new();
    for (cluster, client) in f.clusters {
        if let Some(ds) = list(Api::<Deployment>::namespaced(client.clone(), f.namespace)).await {
            for d in ds {
                let key = ("Deployment", cluster.clone(), d.name_any());
                match owner(&d.metadata).and_then(|(_, name)| o.mcds.get(&name)) {
                    None => {
                        out.insert(key, "its MultiClusterDeployment is gone".to_string());
                    }
                    Some(m) => {
                        let s = m.status.clone().unwrap_or_default();
                        let placed = s.placement.iter().any(|p| &p.cluster == cluster);
                        let draining = s.draining.iter().any(|p| &p.cluster == cluster);
                        if !placed && !draining && m.metadata.deletion_timestamp.is_none() {
                            out.insert(
                                key,
                                format!(
                                    "its MCD places on {:?} and drains {:?}",
                                    s.placement.iter().map(|p| &p.cluster).collect::<Vec<_>>(),
                                    s.draining.iter().map(|p| &p.cluster).collect::<Vec<_>>()
                                ),
                            );
                        }
                    }
                }
            }
        }
        if let Some(ss) = list(Api::<Service>::namespaced(client.clone(), f.namespace)).await {
            for s in ss {
                if owner(&s.metadata).is_none_or(|(_, name)| !o.mcss.contains(&name)) {
                    out.insert(("Service", cluster.clone(), s.name_any()), "its MultiClusterService is gone".into());
                }
            }
        }
        if let Some(js) = list(Api::<Job>::namespaced(client.clone(), f.namespace)).await {
            for j in js {
                if owner(&j.metadata).is_none_or(|(_, name)| !o.mcjs.contains(&name)) {
                    out.insert(("Job", cluster.clone(), j.name_any()), "its MultiClusterJob is gone".into());
                }
            }
        }
    }
    out
}

impl Tracker {
    /// One round of checks while faults go on: a child suspicious for longer than [`GRACE`]
    /// is a violation (reported once).
    pub async fn check(&mut self, f: &Fleet<'_>) {
        let Some(o) = owners(f).await else {
            self.skipped += 1;
            return;
        };
        self.checks += 1;
        let now = suspicious(f, &o).await;
        self.since.retain(|k, _| now.contains_key(k));
        for (k, why) in now {
            let (first, _) = self.since.entry(k.clone()).or_insert((Instant::now(), why.clone()));
            if first.elapsed() > GRACE {
                let v = format!("{} {}/{} in {}: {why}, for {:?}", k.0, f.namespace, k.2, k.1, first.elapsed());
                if !self.violations.iter().any(|x| x.starts_with(&format!("{} {}/{} in {}:", k.0, f.namespace, k.2, k.1))) {
                    self.violations.push(v);
                }
            }
        }
    }
}

/// After the faults: every MCD Ready with all its replicas, observed at its generation, and
/// children exactly where it places them; no orphan; every MCS's Services where its MCD is.
/// Returns what does not hold yet.
pub async fn converged(f: &Fleet<'_>) -> Vec<String> {
    let Some(o) = owners(f).await else { return vec!["the management API server does not answer".into()] };
    let mut out: Vec<String> = suspicious(f, &o).await.into_iter().map(|(k, why)| format!("{} {} in {}: {why}", k.0, k.2, k.1)).collect();
    for (name, m) in &o.mcds {
        if m.metadata.deletion_timestamp.is_some() {
            out.push(format!("MCD {name} is still being deleted"));
            continue;
        }
        let s = m.status.clone().unwrap_or_default();
        let want = m.spec.replicas.unwrap_or(1);
        let ready = mck8s_api::conditions::get(&s.conditions, "Ready").is_some_and(|c| c.status == "True");
        if !ready || s.ready_replicas != want || s.observed_generation != m.metadata.generation || !s.draining.is_empty() {
            out.push(format!(
                "MCD {name}: ready {}/{want}, Ready {ready}, observed {:?} of {:?}, draining {}",
                s.ready_replicas,
                s.observed_generation,
                m.metadata.generation,
                s.draining.len()
            ));
        }
        let placed: BTreeSet<&String> = s.placement.iter().map(|p| &p.cluster).collect();
        for (cluster, client) in f.clusters {
            let has = tokio::time::timeout(CALL, Api::<Deployment>::namespaced(client.clone(), f.namespace).get_opt(name)).await;
            let has = matches!(has, Ok(Ok(Some(_))));
            if has != placed.contains(cluster) {
                out.push(format!("MCD {name}: child in {cluster} {has}, placed there {}", placed.contains(cluster)));
            }
            if o.mcss.contains(name) {
                let svc = tokio::time::timeout(CALL, Api::<Service>::namespaced(client.clone(), f.namespace).get_opt(name)).await;
                let svc = matches!(svc, Ok(Ok(Some(_))));
                if svc != placed.contains(cluster) {
                    out.push(format!("MCS {name}: Service in {cluster} {svc}, its MCD there {}", placed.contains(cluster)));
                }
            }
        }
    }
    out
}

/// Ready replicas of each MCD's children in `clusters` (the ones that answer).
pub async fn ready_by_mcd(f: &Fleet<'_>, clusters: &[String]) -> BTreeMap<String, i32> {
    let mut out = BTreeMap::new();
    for (_, client) in f.clusters.iter().filter(|(c, _)| clusters.contains(c)) {
        for d in list(Api::<Deployment>::namespaced(client.clone(), f.namespace)).await.unwrap_or_default() {
            if let Some((_, name)) = owner(&d.metadata) {
                *out.entry(name).or_default() += d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            }
        }
    }
    out
}

/// "Ready replicas never below what surviving capacity allows": while a fault lasts, an MCD
/// the user did not touch keeps at least the ready replicas it had, just before the fault, in
/// the clusters the fault spares, up to its replicas (failover only adds; a move drains only
/// once the replacements are ready).
pub struct ReadyFloor {
    pub fault: String,
    pub surviving: Vec<String>,
    pub before: BTreeMap<String, i32>,
    pub since: Instant,
    reported: BTreeSet<String>,
}

impl ReadyFloor {
    /// The floor of each MCD: the ready replicas it has now in `surviving`, but never more
    /// than it asks for (a move in progress counts old and new children at once; draining the
    /// old ones is no loss). Without the MCDs' specs (the management API server down) nothing
    /// is checked during this fault.
    pub async fn start(f: &Fleet<'_>, fault: String, surviving: Vec<String>) -> Self {
        let ready = ready_by_mcd(f, &surviving).await;
        let before = match owners(f).await {
            Some(o) => ready
                .into_iter()
                .filter_map(|(name, r)| o.mcds.get(&name).filter(|m| m.metadata.deletion_timestamp.is_none()).map(|m| (name, r.min(m.spec.replicas.unwrap_or(1)))))
                .collect(),
            None => BTreeMap::new(),
        };
        ReadyFloor { fault, surviving, before, since: Instant::now(), reported: BTreeSet::new() }
    }

    /// Checks now; `touched` says when the soak last changed each MCD.
    pub async fn check(&mut self, f: &Fleet<'_>, touched: &BTreeMap<String, Instant>, tracker: &mut Tracker) {
        let now = ready_by_mcd(f, &self.surviving).await;
        tracker.floor_checks += 1;
        for (name, before) in &self.before {
            if touched.get(name).is_some_and(|t| *t >= self.since) {
                continue;
            }
            let after = now.get(name).copied().unwrap_or(0);
            if after < *before && self.reported.insert(name.clone()) {
                tracker.violations.push(format!(
                    "ready replicas of MCD {name} fell from {before} to {after} in {:?} during \"{}\" ({:?} in)",
                    self.surviving,
                    self.fault,
                    self.since.elapsed()
                ));
            }
        }
    }
}
