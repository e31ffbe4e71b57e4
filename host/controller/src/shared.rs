//! What the three reconcilers (MCD, MCS, MCJ) do alike: events, status patches, the owner
//! triggers from the workload clusters' watches.

use crate::context::Context;
use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Error as FinalizerError, Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;

/// One reconcile of a multi-cluster object: behind the finalizer `fogguru.eu/children` (so
/// its children are removed from every cluster before it goes), in a span, counted in
/// `mck8s_reconciles_total` and timed in `mck8s_reconcile_duration_seconds`. `apply` and `cleanup` do the kind's work; `finalizer_error`
/// wraps a failure of the finalizer machinery itself.
pub async fn reconcile<S, K, E, A, AF, C, CF>(state: &Arc<S>, kind: &'static str, obj: Arc<K>, apply: A, cleanup: C, finalizer_error: fn(String) -> E) -> Result<Action, E>
where
    S: AsRef<Context>,
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    A: FnOnce(Arc<K>, Arc<S>) -> AF,
    AF: Future<Output = Result<Action, E>>,
    C: FnOnce(Arc<K>, Arc<S>) -> CF,
    CF: Future<Output = Result<Action, E>>,
{
    let started = std::time::Instant::now();
    let ctx: &Context = (**state).as_ref();
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let span = tracing::info_span!("reconcile", kind, namespace = %ns, name = %obj.name_any());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            FinalizerEvent::Apply(o) => apply(o, state.clone()).await,
            FinalizerEvent::Cleanup(o) => cleanup(o, state.clone()).await,
        }
    })
    .instrument(span)
    .await
    .map_err(|e| match e {
        FinalizerError::ApplyFailed(e) | FinalizerError::CleanupFailed(e) => e,
        other => finalizer_error(other.to_string()),
    });
    ctx.metrics.reconciled(kind, result.is_ok(), started);
    result
}

/// A failed reconcile is retried after `error_retry`.
pub fn error_policy<K, E: std::fmt::Display, S: AsRef<Context>>(_obj: Arc<K>, error: &E, state: Arc<S>) -> Action {
    tracing::warn!(%error, "reconcile failed");
    Action::requeue((*state).as_ref().timing.error_retry)
}

/// Drives a controller's result stream. Reconcile errors were logged by [`error_policy`];
/// a failing watch (its CRD not installed, its list refused) is said at warn, once per
/// retry of the watcher's backoff, since the controller does nothing until it lists.
pub async fn drive<T, E: std::error::Error + 'static>(
    kind: &str,
    results: impl futures::Stream<Item = Result<T, kube::runtime::controller::Error<E, kube::runtime::watcher::Error>>>,
) {
    results
        .for_each(|res| async move {
            match res {
                Err(kube::runtime::controller::Error::QueueError(e)) => tracing::warn!(kind, error = %e, "watch failed; retrying"),
                Err(e) => tracing::debug!(error = %e, "reconcile"),
                Ok(_) => {}
            }
        })
        .await
}

/// The finalizer every multi-cluster kind carries.
pub const FINALIZER: &str = "fogguru.eu/children";

/// Records an Event about a cluster-scoped `obj`. Its Event lives in `default`, and the
/// reference names that namespace too: API servers before 1.22 refuse an Event whose
/// object's namespace (empty) differs from its own.
pub async fn publish_cluster_scoped<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, type_: EventType, reason: &str, action: &str, note: &str) {
    let mut reference = obj.object_ref(&());
    reference.namespace = Some("default".into());
    let ev = Event { type_, reason: reason.into(), note: Some(note.chars().take(1000).collect()), action: action.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
        tracing::debug!(error = %e, "publishing an event");
    }
}

/// Records an Event about `obj` (best effort: an event that cannot be written is logged).
pub async fn publish<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, type_: EventType, reason: &str, action: &str, note: &str) {
    let ev = Event { type_, reason: reason.into(), note: Some(note.chars().take(1000).collect()), action: action.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::debug!(error = %e, reason = %ev.reason, "publishing an event");
    }
}

/// Merge-patches `status` when it changed. Returns the resourceVersion the write produced
/// (`None` when nothing was written), for [`StatusMemo::remember`].
pub async fn write_status<K, S>(ctx: &Context, obj: &K, old: &S, new: &S, had_status: bool) -> Result<Option<String>, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if old == new && had_status {
        return Ok(None);
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = serde_json::json!({ "status": status_patch(old, new) });
    let written = api.patch_status(&obj.name_any(), &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await?;
    Ok(written.meta().resource_version.clone())
}

/// Refuses an invalid spec: InvalidSpec set (and announced when that is news), the
/// generation observed, and no requeue: a new generation or a policy change wakes it.
pub async fn reject<K, S>(
    ctx: &Context,
    obj: &K,
    status: &S,
    had_status: bool,
    action: &str,
    msg: &str,
    now: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Result<Action, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    S: mck8s_api::conditions::Observed + Serialize + PartialEq,
{
    let (new, news) = mck8s_api::conditions::invalid_spec(status, msg, obj.meta().generation, &now);
    if news {
        publish(ctx, obj, EventType::Warning, "InvalidSpec", action, msg).await;
    }
    write_status(ctx, obj, status, &new, had_status).await?;
    Ok(Action::await_change())
}

/// The status each object was last given, so a reconcile that runs on a cached object from
/// before that write (the watch has not delivered it yet) starts from what was written, not
/// from the stale copy: otherwise it would decide again, count the same move twice, or place
/// a Job a second time. Keyed by uid; the entry applies to every resourceVersion known to
/// precede the last write: the versions writes were based on and the versions earlier writes
/// produced. The second matters: a reconcile on a stale copy writes again, and the next one
/// may see the version of the write before, which lacks the newest status (a CloudProvisioner
/// announced its provisioning mode twice that way).
pub struct StatusMemo<S> {
    entries: std::sync::Mutex<std::collections::HashMap<String, Remembered<S>>>,
}

/// The last status written and the versions it stands in for (the newest [`KNOWN_VERSIONS`]).
struct Remembered<S> {
    before: std::collections::VecDeque<String>,
    status: S,
}

const KNOWN_VERSIONS: usize = 8;

/// A controller's state: the shared [`Context`] beside its own [`StatusMemo`].
pub struct WithMemo<S> {
    pub ctx: Arc<Context>,
    /// Statuses written, for reconciles that run on a cached object from before the write
    /// (without it an MCD would decide again, or a Job be placed twice).
    pub status: StatusMemo<S>,
}

impl<S> AsRef<Context> for WithMemo<S> {
    fn as_ref(&self) -> &Context {
        &self.ctx
    }
}

impl<S> Default for StatusMemo<S> {
    fn default() -> Self {
        StatusMemo { entries: Default::default() }
    }
}

impl<S: Clone> StatusMemo<S> {
    /// The freshest status known for `obj`: the one written from this very version of it, or
    /// the object's own.
    pub fn current<K: Resource>(&self, obj: &K, own: S) -> S {
        let (Some(uid), Some(rv)) = (obj.meta().uid.as_ref(), obj.meta().resource_version.as_ref()) else { return own };
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(uid) {
            Some(r) if r.before.contains(rv) => r.status.clone(),
            _ => own,
        }
    }

    /// `status` was written from `obj`; `produced` is the version the write made, if any.
    pub fn remember<K: Resource>(&self, obj: &K, produced: Option<String>, status: S) {
        let (Some(uid), Some(rv)) = (obj.meta().uid.clone(), obj.meta().resource_version.clone()) else { return };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut before = entries.remove(&uid).map(|r| r.before).unwrap_or_default();
        for v in std::iter::once(rv).chain(produced) {
            if !before.contains(&v) {
                before.push_back(v);
            }
        }
        while before.len() > KNOWN_VERSIONS {
            before.pop_front();
        }
        entries.insert(uid, Remembered { before, status });
    }

    pub fn forget<K: Resource>(&self, obj: &K) {
        if let Some(uid) = obj.meta().uid.as_ref() {
            self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
        }
    }
}

/// A merge patch from `old` to `new`: fields serialisation leaves out (an empty `draining`,
/// a `None`) must be sent as null, or the merge would keep their old values.
fn status_patch<S: Serialize>(old: &S, new: &S) -> serde_json::Value {
    let mut patch = serde_json::to_value(new).unwrap_or_default();
    if let (Some(p), serde_json::Value::Object(o)) = (patch.as_object_mut(), serde_json::to_value(old).unwrap_or_default()) {
        for key in o.keys() {
            p.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    patch
}

/// Objects of `kind` whose children (or their pods) changed in some workload cluster.
pub fn owner_triggers<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    kind: &'static str,
    watch_namespace: Option<String>,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + use<K> {
    let owners = ctx.clusters.subscribe_owners();
    tokio_stream(owners).filter_map(move |o| {
        let keep = o.kind == kind && watch_namespace.as_ref().is_none_or(|ns| *ns == o.namespace);
        async move { keep.then(|| ObjectRef::new(&o.name).within(&o.namespace)) }
    })
}

/// Per-cluster reasons within `budget` bytes in all: the first ones whole (each is already
/// capped by the policy host), then "" with the last kept saying how many were left out.
pub fn bounded_reasons(reasons: BTreeMap<String, String>, budget: usize) -> BTreeMap<String, String> {
    let total: usize = reasons.values().map(String::len).sum();
    if total <= budget {
        return reasons;
    }
    let mut used = 0;
    let mut omitted = 0;
    let mut out = BTreeMap::new();
    for (cluster, reason) in reasons {
        if used + reason.len() <= budget {
            used += reason.len();
            out.insert(cluster, reason);
        } else {
            omitted += 1;
            out.insert(cluster, String::new());
        }
    }
    if let Some(last) = out.values_mut().rev().find(|r| !r.is_empty()) {
        last.push_str(&format!(" [{omitted} more reasons left out: status size]"));
    }
    out
}

/// A policy loaded, replaced or removed, as the registry publishes it: objects that name a
/// policy which just appeared were InvalidSpec until now and must be decided again.
pub fn policy_changes(ctx: &Context) -> impl futures::Stream<Item = ()> + Send + use<> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    ctx.scheduler.registry().subscribe(Box::new(move |_| {
        let _ = tx.send(());
    }));
    tokio_stream(rx)
}

/// A cluster added, removed, lost or back.
pub fn cluster_changes(ctx: &Context) -> impl futures::Stream<Item = ()> + Send + use<> {
    tokio_stream(ctx.clusters.subscribe_health()).map(|_| ())
}

pub fn tokio_stream<T: Send + 'static>(mut rx: tokio::sync::mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The `Api` for `K` in the watched namespace, or in all of them.
pub fn scoped_api<K>(client: &kube::Client, watch_namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Which of an object's own watch events wake its reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Every change, its status included.
    EveryChange,
    /// A new generation (its spec), its deletion or its finalizers ([`spec_or_lifecycle`]);
    /// not a write of its status, labels or annotations. For a kind whose status only its own
    /// controller writes (remembering what it wrote) and whose every reconcile requeues itself:
    /// there each status write woke the writer once more for nothing (two per MCD in a burst).
    SpecOrLifecycle,
}

/// What [`Wake::SpecOrLifecycle`] compares between two versions of an object. The finalizers
/// are in it because kube's finalizer helper adds ours and waits for that change to continue.
pub fn spec_or_lifecycle<K: Resource>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&(meta.generation, meta.deletion_timestamp.is_some(), &meta.finalizers), &mut h);
    Some(std::hash::Hasher::finish(&h))
}

/// The controller of one kind, caching its objects lean ([`mck8s_clusters::watch::lean`]):
/// at 10,000 objects `managedFields` and `kubectl apply`'s copies are most of the cache. Its
/// own watch events wake it as `wake` says; it stops gracefully on the process's shared
/// signal (`ctx.stop`).
pub fn controller<K>(api: Api<K>, ctx: &Context, wake: Wake) -> Controller<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Debug + Unpin,
{
    let (reader, writer) = reflector::store();
    let objects = watcher(api, mck8s_clusters::watch_config()).default_backoff().modify(mck8s_clusters::watch::lean).reflect(writer).applied_objects();
    let objects = match wake {
        Wake::EveryChange => objects.boxed(),
        Wake::SpecOrLifecycle => objects.predicate_filter(spec_or_lifecycle::<K>, Default::default()).boxed(),
    };
    Controller::for_stream(objects, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.max_concurrent_reconciles))
        .graceful_shutdown_on(ctx.stop.wait())
}

/// Counts what a shadow policy made of a real decision, and says so in an Event when it
/// diverged or failed (an agreement is only counted).
pub async fn report_shadow<K>(ctx: &Context, obj: &K, policy: &str, run: &mck8s_scheduler::ShadowRun)
where
    K: kube::Resource<DynamicType = ()>,
{
    let label = crate::metrics::ShadowLabel { policy: mck8s_policy::registry::normalize(policy), shadow: run.policy.clone(), result: run.outcome.label().into() };
    ctx.metrics.shadow_decisions.get_or_create(&label).inc();
    ctx.metrics.shadow_replicas_moved.get_or_create(&label).inc_by(u64::from(run.outcome.replicas_moved()));
    let reason = match run.outcome {
        mck8s_scheduler::ShadowOutcome::Agreed => return,
        mck8s_scheduler::ShadowOutcome::Diverged { .. } => "ShadowDiverged",
        mck8s_scheduler::ShadowOutcome::Failed(_) => "ShadowFailed",
    };
    publish(ctx, obj, kube::runtime::events::EventType::Normal, reason, "Place", &run.to_string()).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_new_spec_a_deletion_or_a_finalizer_wakes_a_spec_or_lifecycle_controller() {
        use super::spec_or_lifecycle as key;
        let mut base = mck8s_api::MultiClusterDeployment::new("a", Default::default());
        base.metadata.generation = Some(1);
        base.metadata.resource_version = Some("10".into());
        let same = |f: &dyn Fn(&mut mck8s_api::MultiClusterDeployment)| {
            let mut o = base.clone();
            f(&mut o);
            key(&o) == key(&base)
        };
        assert!(same(&|o| o.status = Some(Default::default())), "its own status write");
        assert!(same(&|o| o.metadata.resource_version = Some("11".into())));
        assert!(same(&|o| o.metadata.labels = Some([("team".to_string(), "x".to_string())].into())));
        assert!(!same(&|o| o.metadata.generation = Some(2)), "a spec change");
        assert!(!same(&|o| o.metadata.finalizers = Some(vec![super::FINALIZER.into()])), "the finalizer helper waits for this");
        assert!(!same(&|o| o.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()))));
    }

    #[test]
    fn a_written_status_stands_in_for_the_stale_object_it_was_based_on() {
        let memo = super::StatusMemo::<u32>::default();
        let mut obj = mck8s_api::MultiClusterDeployment::new("a", Default::default());
        obj.metadata.uid = Some("u".into());
        obj.metadata.resource_version = Some("10".into());
        assert_eq!(memo.current(&obj, 1), 1);
        memo.remember(&obj, Some("11".into()), 2);
        assert_eq!(memo.current(&obj, 1), 2, "the same version: the write is not in it yet");
        obj.metadata.resource_version = Some("12".into());
        assert_eq!(memo.current(&obj, 3), 3, "a later version someone else wrote carries its own status");
        obj.metadata.resource_version = Some("10".into());
        memo.forget(&obj);
        assert_eq!(memo.current(&obj, 1), 1);
    }

    #[test]
    fn a_write_from_a_stale_copy_also_covers_the_version_of_the_write_before() {
        let memo = super::StatusMemo::<u32>::default();
        let mut obj = mck8s_api::MultiClusterDeployment::new("a", Default::default());
        obj.metadata.uid = Some("u".into());
        obj.metadata.resource_version = Some("10".into());
        memo.remember(&obj, Some("11".into()), 1);
        // The next reconcile still runs on version 10 (the watch is behind): it starts from
        // status 1 and writes status 2, producing version 12.
        assert_eq!(memo.current(&obj, 0), 1);
        memo.remember(&obj, Some("12".into()), 2);
        // Then the watch delivers version 11, which holds status 1 only.
        obj.metadata.resource_version = Some("11".into());
        assert_eq!(memo.current(&obj, 1), 2);
        obj.metadata.resource_version = Some("12".into());
        assert_eq!(memo.current(&obj, 2), 2);
        // Nothing written (the status did not change): the version it was based on still counts.
        obj.metadata.resource_version = Some("13".into());
        memo.remember(&obj, None, 2);
        assert_eq!(memo.current(&obj, 0), 2);
        obj.metadata.resource_version = Some("11".into());
        assert_eq!(memo.current(&obj, 0), 2, "older versions are kept too");
    }

    #[test]
    fn reasons_stay_within_their_budget() {
        let many: std::collections::BTreeMap<String, String> = (0..1000).map(|i| (format!("c{i:04}"), "x".repeat(1024))).collect();
        let out = super::bounded_reasons(many, 16 << 10);
        assert_eq!(out.len(), 1000, "every cluster keeps its row");
        let total: usize = out.values().map(String::len).sum();
        assert!(total < (16 << 10) + 100, "{total}");
        assert!(out["c0015"].ends_with("[984 more reasons left out: status size]"), "{}", &out["c0015"][1000..]);
        let few: std::collections::BTreeMap<String, String> = [("a".to_string(), "fits".to_string())].into();
        assert_eq!(super::bounded_reasons(few.clone(), 16), few);
    }

    #[test]
    fn fields_that_went_away_are_nulled() {
        let old = mck8s_api::MultiClusterDeploymentStatus { failed_over: vec!["c3".into()], policy: Some("a".into()), summary: Some("a".into()), ..Default::default() };
        let new = mck8s_api::MultiClusterDeploymentStatus { summary: Some("b".into()), ..Default::default() };
        let p = super::status_patch(&old, &new);
        assert!(p.as_object().unwrap().contains_key("policy") && p["policy"].is_null());
        assert_eq!(p["summary"], "b");
        assert_eq!(p["failedOver"], serde_json::json!([]), "lists are always written, so they can be emptied");
    }
}
