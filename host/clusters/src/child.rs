//! The kinds mck8s puts into workload clusters (Deployments, Services, Jobs), as their watches
//! cache them: what is dropped before caching, and what an owner's reconcile reads back. An
//! update that leaves the read-back alone (a Deployment's `updatedReplicas`, its conditions,
//! a heartbeat of its status) wakes nobody: in a burst of 1,000 MCDs such updates cost about
//! one reconcile per MCD (`docs/benchmarks.md`).

use crate::watch::lean;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::Event;
use mck8s_api::labels;
use mck8s_fleet::OwnerKey;
use std::hash::{DefaultHasher, Hash, Hasher};

pub trait Child: Resource + Sized {
    /// Drops what is never read back, before the object is cached ([`lean`] for every kind).
    fn lean(&mut self) {
        lean(self);
    }

    /// Hashes what owners read of this kind beyond [`read_back`]'s common part.
    fn hash_read_back(&self, h: &mut DefaultHasher);
}

/// The version that moves when someone changes an object's spec: `generation` where the kind
/// keeps one (status updates leave it alone), else `resourceVersion`. The controller's applied
/// cache compares it and [`read_back`] hashes it: one rule, so a hand edit that the cache must
/// re-apply always wakes the owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpecVersion {
    Generation(i64),
    Resource(String),
}

pub fn spec_version<K: Resource>(obj: &K) -> SpecVersion {
    let meta = obj.meta();
    match meta.generation {
        Some(g) => SpecVersion::Generation(g),
        None => SpecVersion::Resource(meta.resource_version.clone().unwrap_or_default()),
    }
}

/// A digest of what owners read back of `child`: its identity (uid), whether it is being
/// deleted, its labels (which owner it belongs to), its [`spec_version`] and the kind's own
/// part. Equal digests mean no owner would decide anything differently.
pub fn read_back<K: Child>(child: &K) -> u64 {
    let meta = child.meta();
    let mut h = DefaultHasher::new();
    meta.uid.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    meta.labels.hash(&mut h);
    spec_version(child).hash(&mut h);
    child.hash_read_back(&mut h);
    h.finish()
}

/// The owner a child's labels and annotations name.
pub fn owner_of<K: Resource>(obj: &K) -> Option<OwnerKey> {
    let meta = obj.meta();
    let (kind, name) = labels::owner_of(meta.labels.as_ref(), meta.annotations.as_ref())?;
    Some(OwnerKey { kind, namespace: meta.namespace.clone().unwrap_or_default(), name })
}

/// One child kind's watch cache in one cluster, written event by event, saying after each
/// event which owners to wake: a child that appeared, went, or changed what its owner reads
/// back. The store is written here rather than by kube's `reflect`, so the old version is at
/// hand to compare, and an owner is woken only once the store holds what woke it.
pub struct ChildCache<K: Child + Clone + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    writer: Writer<K>,
    stored: Store<K>,
    /// Owners of children that changed in a (re)list still being received: woken when it ends
    /// and the store holds it.
    relisted: Vec<OwnerKey>,
}

impl<K: Child + Clone + 'static> ChildCache<K>
where
    K::DynamicType: Default + Eq + Hash + Clone,
{
    pub fn new(writer: Writer<K>) -> Self {
        ChildCache { stored: writer.as_reader(), writer, relisted: Vec::new() }
    }

    /// Stores `ev`; returns the owners to wake now.
    pub fn apply(&mut self, ev: &Event<K>) -> Vec<OwnerKey> {
        let mut wake = Vec::new();
        let mut gone_in_relist = None;
        match ev {
            Event::Apply(c) if self.changed(c) => wake.extend(owner_of(c)),
            Event::InitApply(c) if self.changed(c) => self.relisted.extend(owner_of(c)),
            Event::Apply(_) | Event::InitApply(_) => {}
            Event::Delete(c) => wake.extend(owner_of(c)),
            Event::Init => self.relisted.clear(),
            // No Delete comes for a child removed while the watch was down: its owner is
            // woken too (it restores the child, or finishes a drain).
            Event::InitDone => gone_in_relist = Some(self.stored.state()),
        }
        self.writer.apply_watcher_event(ev);
        if let Some(before) = gone_in_relist {
            let gone = before.iter().filter(|old| self.stored.get(&ObjectRef::from_obj(old.as_ref())).is_none());
            self.relisted.extend(gone.filter_map(|old| owner_of(old.as_ref())));
            wake.append(&mut self.relisted);
        }
        wake
    }

    fn changed(&self, c: &K) -> bool {
        self.stored.get(&ObjectRef::from_obj(c)).is_none_or(|old| read_back(old.as_ref()) != read_back(c))
    }
}

/// mck8s renders a child Deployment from its owner and reads back its replicas and ready
/// replicas. The pod template is most of a Deployment (with 10,000 children, most of the cache).
impl Child for Deployment {
    fn lean(&mut self) {
        lean(self);
        if let Some(spec) = self.spec.as_mut() {
            spec.template = Default::default();
        }
    }

    fn hash_read_back(&self, h: &mut DefaultHasher) {
        self.spec.as_ref().and_then(|s| s.replicas).hash(h);
        self.status.as_ref().and_then(|s| s.ready_replicas).hash(h);
    }
}

/// A Service's existence and spec version are what is read back (it has no `generation`, so
/// every change of its `resourceVersion` counts).
impl Child for Service {
    fn hash_read_back(&self, _: &mut DefaultHasher) {}
}

/// A child Job's whole status is read back (active, succeeded, failed, its conditions).
impl Child for Job {
    fn lean(&mut self) {
        lean(self);
        if let Some(spec) = self.spec.as_mut() {
            spec.template = Default::default();
        }
    }

    fn hash_read_back(&self, h: &mut DefaultHasher) {
        serde_json::to_string(&self.status).unwrap_or_default().hash(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "generation": 3, "uid": "u1", "resourceVersion": "10",
                         "labels": {"fogguru.eu/owner": "web"}, "annotations": {"fogguru.eu/owner-ref": "ns/web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx", "env": [{"name": "A", "value": "x"}]}]}}},
            "status": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 1, "observedGeneration": 3}
        }))
        .unwrap()
    }

    #[test]
    fn a_lean_child_keeps_what_is_read_back_and_drops_its_pod_template() {
        let mut d = deployment();
        let mut want = d.clone();
        Child::lean(&mut d);
        want.spec.as_mut().unwrap().template = Default::default();
        assert_eq!(d, want);
        assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
        assert_eq!(d.status.as_ref().unwrap().ready_replicas, Some(1));
        assert_eq!(d.metadata.generation, Some(3));

        let mut j: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "batch"},
            "spec": {"completions": 4, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
            "status": {"succeeded": 3}
        }))
        .unwrap();
        Child::lean(&mut j);
        assert_eq!(j.spec.as_ref().unwrap().template, Default::default());
        assert_eq!(j.spec.as_ref().unwrap().completions, Some(4));
        assert_eq!(j.status.as_ref().unwrap().succeeded, Some(3));
    }

    #[test]
    fn only_updates_an_owner_reads_back_change_a_deployments_digest() {
        let base = read_back(&deployment());
        let unchanged = |f: &dyn Fn(&mut Deployment)| {
            let mut d = deployment();
            f(&mut d);
            read_back(&d) == base
        };
        // A status heartbeat, a rollout's other counters, a new resourceVersion: nobody reads them.
        assert!(unchanged(&|d| d.metadata.resource_version = Some("11".into())));
        assert!(unchanged(&|d| d.status.as_mut().unwrap().updated_replicas = Some(2)));
        assert!(unchanged(&|d| d.status.as_mut().unwrap().observed_generation = Some(4)));
        assert!(unchanged(&|d| d.status.as_mut().unwrap().conditions = Some(vec![Default::default()])));
        // What owners read: each one wakes the owner.
        assert!(!unchanged(&|d| d.status.as_mut().unwrap().ready_replicas = Some(2)));
        assert!(!unchanged(&|d| d.spec.as_mut().unwrap().replicas = Some(3)));
        assert!(!unchanged(&|d| d.metadata.generation = Some(4)), "an edit by hand: the applied cache must see it");
        assert!(!unchanged(&|d| d.metadata.uid = Some("u2".into())), "deleted and re-created");
        assert!(!unchanged(&|d| d.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()))));
        assert!(!unchanged(&|d| d.metadata.labels = None), "relabelled: no longer this owner's");
    }

    fn owned(name: &str, ready: i32) -> Deployment {
        let mut d = deployment();
        d.metadata.name = Some(name.into());
        d.metadata.uid = Some(format!("uid-{name}"));
        d.metadata.labels = Some([(labels::OWNER_KIND.to_string(), "MultiClusterDeployment".to_string()), (labels::OWNER_NAME.to_string(), name.to_string())].into());
        d.metadata.annotations = None;
        d.status.as_mut().unwrap().ready_replicas = Some(ready);
        d
    }

    fn names(owners: Vec<OwnerKey>) -> Vec<String> {
        let mut n: Vec<String> = owners.into_iter().map(|o| o.name).collect();
        n.sort();
        n
    }

    #[test]
    fn the_cache_wakes_an_owner_for_what_it_reads_back_and_only_once_it_is_stored() {
        let (reader, writer) = kube::runtime::reflector::store();
        let mut cache = ChildCache::new(writer);
        assert_eq!(names(cache.apply(&Event::Apply(owned("a", 0)))), ["a"], "a new child");
        assert!(reader.get(&ObjectRef::new("a").within("ns")).is_some(), "stored before its owner is woken");
        let mut heartbeat = owned("a", 0);
        heartbeat.metadata.resource_version = Some("11".into());
        heartbeat.status.as_mut().unwrap().updated_replicas = Some(2);
        assert!(cache.apply(&Event::Apply(heartbeat)).is_empty(), "nothing the owner reads changed");
        assert_eq!(names(cache.apply(&Event::Apply(owned("a", 1)))), ["a"], "ready replicas moved");
        assert_eq!(names(cache.apply(&Event::Apply(owned("b", 0)))), ["b"]);
        assert_eq!(names(cache.apply(&Event::Apply(owned("c", 0)))), ["c"]);

        // A relist after an outage: `a` unchanged, `b` became ready, `c` was deleted meanwhile,
        // `d` is new. Nobody is woken until the list is complete and stored.
        assert!(cache.apply(&Event::Init).is_empty());
        for c in [owned("a", 1), owned("b", 1), owned("d", 0)] {
            assert!(cache.apply(&Event::InitApply(c)).is_empty());
        }
        assert!(reader.get(&ObjectRef::new("d").within("ns")).is_none(), "the list is not stored yet");
        assert_eq!(names(cache.apply(&Event::InitDone)), ["b", "c", "d"]);
        assert!(reader.get(&ObjectRef::new("c").within("ns")).is_none());

        assert_eq!(names(cache.apply(&Event::Delete(owned("d", 0)))), ["d"]);
        let mut users = owned("e", 0);
        users.metadata.labels = None;
        assert!(cache.apply(&Event::Apply(users)).is_empty(), "an object naming no owner wakes nobody");
    }

    #[test]
    fn kinds_without_a_generation_use_the_resource_version() {
        let mut s = Service::default();
        s.metadata.resource_version = Some("41".into());
        assert_eq!(spec_version(&s), SpecVersion::Resource("41".into()));
        s.metadata.generation = Some(2);
        assert_eq!(spec_version(&s), SpecVersion::Generation(2));
    }

    #[test]
    fn a_service_without_generation_changes_digest_with_every_version() {
        let s: Service = serde_json::from_value(serde_json::json!({"metadata": {"name": "web", "uid": "u", "resourceVersion": "5"}})).unwrap();
        let mut t = s.clone();
        t.metadata.resource_version = Some("6".into());
        assert_ne!(read_back(&s), read_back(&t));
        assert_eq!(read_back(&s), read_back(&s.clone()));
    }

    #[test]
    fn any_change_of_a_jobs_status_changes_its_digest() {
        let j: Job = serde_json::from_value(serde_json::json!({"metadata": {"name": "b", "uid": "u", "generation": 1}, "status": {"active": 1}})).unwrap();
        let mut k = j.clone();
        k.status.as_mut().unwrap().succeeded = Some(1);
        assert_ne!(read_back(&j), read_back(&k));
    }
}
