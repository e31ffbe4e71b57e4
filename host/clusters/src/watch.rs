//! One way to follow a watched collection, and one way to mirror it into something else.
//!
//! kube's watcher reports a (re)list as `Init`, `InitApply`… and `InitDone`, then single
//! changes. Every consumer here needs the same thing from that: the complete set after each
//! list, so whatever vanished while the watch was down is dropped, and the changes after.
//! [`Relist`] turns the watcher's events into [`Change`]s; [`changes`] does it for a stream and
//! logs the watcher's errors (its backoff retries them). [`Provided`] answers "this origin now
//! holds exactly these" for consumers that add things to a shared target (clusters to the
//! registry, policies to the policy registry) and must take back what an origin stops holding.

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::watcher::{self, Event};
use std::collections::{BTreeMap, BTreeSet};

/// The annotation `kubectl apply` keeps a whole copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what no controller here reads from a watched object before it is cached:
/// `managedFields` (every field's manager, often larger than the spec) and `kubectl apply`'s
/// copy of the object. Applied to every cached collection, so the controller's memory grows
/// with what it uses.
pub fn lean<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// What happened to a watched collection.
#[derive(Clone, Debug, PartialEq)]
pub enum Change<K> {
    /// The complete set after a list or relist. Anything the consumer holds that is not in it
    /// is gone: deleted while the watch was down, or during the relist.
    Reset(Vec<K>),
    /// Created or updated.
    Applied(K),
    Deleted(K),
}

/// Folds the watcher's events into [`Change`]s: buffers a relist and hands it over whole.
#[derive(Debug)]
pub struct Relist<K> {
    buffer: Vec<K>,
}

impl<K> Default for Relist<K> {
    fn default() -> Self {
        Relist { buffer: Vec::new() }
    }
}

impl<K> Relist<K> {
    /// The change this event completes, if any. A relist that restarts (a new `Init` before
    /// `InitDone`, after an error) starts from empty, so a half list is never handed over.
    pub fn feed(&mut self, event: Event<K>) -> Option<Change<K>> {
        match event {
            Event::Init => {
                self.buffer.clear();
                None
            }
            Event::InitApply(k) => {
                self.buffer.push(k);
                None
            }
            Event::InitDone => Some(Change::Reset(std::mem::take(&mut self.buffer))),
            Event::Apply(k) => Some(Change::Applied(k)),
            Event::Delete(k) => Some(Change::Deleted(k)),
        }
    }
}

/// The [`Change`]s of a watcher stream. Errors are logged at `level_warn` (else debug) with
/// `what` and skipped: the watcher retries with its backoff and relists.
pub fn changes<K, S>(stream: S, what: String, level_warn: bool) -> impl Stream<Item = Change<K>> + Send
where
    K: Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    let mut relist = Relist::default();
    stream.filter_map(move |event| {
        let change = match event {
            Ok(event) => relist.feed(event),
            Err(error) => {
                if level_warn {
                    tracing::warn!(%error, "{what} watch");
                } else {
                    tracing::debug!(%error, "{what} watch");
                }
                None
            }
        };
        futures::future::ready(change)
    })
}

/// What each origin (a Secret, a ConfigMap, …, by name) provides to a shared target, so
/// that what an origin stops providing can be taken back.
#[derive(Debug)]
pub struct Provided<T> {
    by_origin: BTreeMap<String, BTreeSet<T>>,
}

impl<T> Default for Provided<T> {
    fn default() -> Self {
        Provided { by_origin: BTreeMap::new() }
    }
}

impl<T: Ord + Clone> Provided<T> {
    /// `origin` now provides exactly `items`. Returns what it provided before and no longer does.
    pub fn set(&mut self, origin: &str, items: BTreeSet<T>) -> Vec<T> {
        let before = self.by_origin.insert(origin.to_string(), items).unwrap_or_default();
        let now = &self.by_origin[origin];
        before.into_iter().filter(|t| !now.contains(t)).collect()
    }

    /// `origin` is gone. Returns everything it provided.
    pub fn remove(&mut self, origin: &str) -> Vec<T> {
        self.by_origin.remove(origin).map(|s| s.into_iter().collect()).unwrap_or_default()
    }

    /// After a relist: only `origins` exist. Returns `(origin, items)` for each that vanished.
    pub fn retain(&mut self, origins: &BTreeSet<String>) -> Vec<(String, Vec<T>)> {
        let gone: Vec<String> = self.by_origin.keys().filter(|o| !origins.contains(*o)).cloned().collect();
        gone.into_iter().map(|o| (o.clone(), self.remove(&o))).collect()
    }

    /// What `origin` provides now.
    pub fn get(&self, origin: &str) -> Option<&BTreeSet<T>> {
        self.by_origin.get(origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(relist: &mut Relist<&'static str>, events: Vec<Event<&'static str>>) -> Vec<Change<&'static str>> {
        events.into_iter().filter_map(|e| relist.feed(e)).collect()
    }

    #[test]
    fn a_lean_object_keeps_everything_but_field_managers_and_kubectls_copy() {
        let mut d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web",
                "labels": {"app": "web"},
                "annotations": {LAST_APPLIED: "{\"a whole\": \"copy\"}", "keep": "me"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]
            },
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {}}
        }))
        .unwrap();
        let mut want = d.clone();
        lean(&mut d);
        want.metadata.managed_fields = None;
        want.metadata.annotations = Some([("keep".to_string(), "me".to_string())].into());
        assert_eq!(d, want);
    }

    #[test]
    fn a_list_is_handed_over_whole_then_single_changes() {
        let mut r = Relist::default();
        let got = feed_all(&mut r, vec![Event::Init, Event::InitApply("a"), Event::InitApply("b"), Event::InitDone, Event::Apply("c"), Event::Delete("a")]);
        assert_eq!(got, [Change::Reset(vec!["a", "b"]), Change::Applied("c"), Change::Deleted("a")]);
    }

    #[test]
    fn a_relist_that_restarts_never_hands_over_half_a_list() {
        let mut r = Relist::default();
        // The watch broke in the middle of a relist; the watcher starts over.
        let got = feed_all(&mut r, vec![Event::Init, Event::InitApply("a"), Event::Init, Event::InitApply("b"), Event::InitDone]);
        assert_eq!(got, [Change::Reset(vec!["b"])]);
        // An empty relist is a Reset to nothing: every object went while the watch was down.
        assert_eq!(feed_all(&mut r, vec![Event::Init, Event::InitDone]), [Change::Reset(vec![])]);
    }

    #[test]
    fn a_delete_during_a_relist_takes_back_what_the_origin_provided() {
        let mut p: Provided<String> = Provided::default();
        assert!(p.set("secret-a", ["c1".to_string()].into()).is_empty());
        assert!(p.set("secret-b", ["c2".to_string(), "c3".to_string()].into()).is_empty());
        // secret-b was deleted while the watch relisted: the relist holds only secret-a.
        let gone = p.retain(&["secret-a".to_string()].into());
        assert_eq!(gone, [("secret-b".to_string(), vec!["c2".to_string(), "c3".to_string()])]);
        // An origin that now provides less gives back the rest, and keeps what stays.
        assert!(p.set("secret-a", ["c1".to_string(), "c4".to_string()].into()).is_empty());
        assert_eq!(p.set("secret-a", ["c4".to_string()].into()), ["c1".to_string()]);
        assert_eq!(p.remove("secret-a"), ["c4".to_string()]);
        assert!(p.remove("secret-a").is_empty());
    }

    #[tokio::test]
    async fn the_stream_form_skips_errors_and_keeps_going_after_a_restart() {
        let events: Vec<Result<Event<&'static str>, watcher::Error>> = vec![
            Ok(Event::Init),
            Ok(Event::InitApply("a")),
            Err(watcher::Error::NoResourceVersion),
            // The watcher restarts: a fresh relist follows the error.
            Ok(Event::Init),
            Ok(Event::InitApply("a")),
            Ok(Event::InitApply("b")),
            Ok(Event::InitDone),
            Ok(Event::Delete("b")),
        ];
        let got: Vec<_> = changes(futures::stream::iter(events), "test".into(), false).collect().await;
        assert_eq!(got, [Change::Reset(vec!["a", "b"]), Change::Deleted("b")]);
    }
}
