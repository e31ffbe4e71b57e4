//! Putting children (Deployments, Services, Jobs) into workload clusters and taking them
//! out, the same way for every kind: server-side apply with mck8s's field manager, the
//! namespace created on demand, deletes that tolerate 404.
//!
//! Every reconcile re-applies what it decided, which is what repairs drift (a child edited
//! or deleted by hand). Most reconciles change nothing, though, and with a thousand objects
//! an apply per child per pod event would be most of the controller's work. So the last
//! apply per child is remembered (body hash, uid, spec version) and skipped while the watch
//! cache shows the very object it produced: any edit bumps the version, a delete and
//! re-create changes the uid, and both make the next reconcile apply again.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use mck8s_api::labels;
use mck8s_clusters::Member;
use mck8s_clusters::child::{SpecVersion, spec_version};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// What the last successful apply of one child produced.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Applied {
    body: u64,
    uid: String,
    version: SpecVersion,
}

/// (cluster, kind, namespace, name)
type ChildId = (String, &'static str, String, String);

#[derive(Default)]
pub struct AppliedCache {
    entries: Mutex<HashMap<ChildId, Applied>>,
}

fn body_hash<K: Serialize>(body: &K) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(body).unwrap_or_default().hash(&mut h);
    h.finish()
}

impl AppliedCache {
    fn fresh<K: Resource>(&self, id: &ChildId, body: u64, live: Option<&K>) -> bool {
        let Some(live) = live else { return false };
        if live.meta().deletion_timestamp.is_some() {
            return false;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(id).is_some_and(|a| a.body == body && Some(&a.uid) == live.meta().uid.as_ref() && a.version == spec_version(live))
    }

    fn record<K: Resource>(&self, id: ChildId, body: u64, applied: &K) {
        let entry = Applied { body, uid: applied.meta().uid.clone().unwrap_or_default(), version: spec_version(applied) };
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).insert(id, entry);
    }

    fn forget(&self, id: &ChildId) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// Whether an apply changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Applied,
}

#[derive(Debug, thiserror::Error)]
#[error("cluster {cluster}: {action} {kind} {namespace}/{name}: {source}")]
pub struct ChildError {
    pub cluster: String,
    pub action: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    #[source]
    pub source: kube::Error,
}

impl ChildError {
    /// The API server refused the object itself (422: invalid or an immutable field).
    pub fn is_invalid(&self) -> bool {
        matches!(&self.source, kube::Error::Api(s) if s.code == 422)
    }
}

/// Applies `body` in `member`, unless the watch cache (`live`) shows what the last apply
/// produced and nobody changed since.
pub async fn apply<K>(cache: &AppliedCache, member: &Member, body: &K, live: Option<&K>) -> Result<Outcome, ChildError>
where
    K: Resource<Scope = NamespaceResourceScope> + k8s_openapi::Resource + Clone + Serialize + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let kind = kind_of::<K>();
    let namespace = body.meta().namespace.clone().unwrap_or_default();
    let name = body.meta().name.clone().unwrap_or_default();
    let id: ChildId = (member.name.clone(), kind, namespace.clone(), name.clone());
    let hash = body_hash(body);
    if cache.fresh(&id, hash, live) {
        return Ok(Outcome::Unchanged);
    }
    let err = |action: &'static str, source: kube::Error| ChildError { cluster: member.name.clone(), action, kind, namespace: namespace.clone(), name: name.clone(), source };
    let api: Api<K> = Api::namespaced(member.client.clone(), &namespace);
    let pp = PatchParams::apply(labels::FIELD_MANAGER).force();
    let applied = match api.patch(&name, &pp, &Patch::Apply(body)).await {
        Ok(o) => o,
        // The namespace does not exist there yet: create it, then retry once.
        Err(kube::Error::Api(s)) if s.code == 404 => {
            ensure_namespace(&member.client, &namespace).await.map_err(|e| err("creating the namespace for", e))?;
            api.patch(&name, &pp, &Patch::Apply(body)).await.map_err(|e| err("applying", e))?
        }
        Err(e) => return Err(err("applying", e)),
    };
    cache.record(id, hash, &applied);
    Ok(Outcome::Applied)
}

/// Deletes one child (background propagation: a Job's pods go with it); gone already is fine.
pub async fn delete<K>(cache: &AppliedCache, member: &Member, namespace: &str, name: &str) -> Result<(), ChildError>
where
    K: Resource<Scope = NamespaceResourceScope> + k8s_openapi::Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let kind = kind_of::<K>();
    cache.forget(&(member.name.clone(), kind, namespace.to_string(), name.to_string()));
    let api: Api<K> = Api::namespaced(member.client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(ChildError { cluster: member.name.clone(), action: "deleting", kind, namespace: namespace.to_string(), name: name.to_string(), source }),
    }
}

/// Deletes every child in `children` (as found in a watch cache).
pub async fn delete_all<K>(cache: &AppliedCache, member: &Member, children: &[Arc<K>]) -> Result<(), ChildError>
where
    K: Resource<Scope = NamespaceResourceScope> + k8s_openapi::Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    for c in children {
        delete::<K>(cache, member, c.meta().namespace.as_deref().unwrap_or_default(), c.meta().name.as_deref().unwrap_or_default()).await?;
    }
    Ok(())
}

/// Deletes `owner`'s children of kind `K` in `member` when the owner goes: every one the watch
/// cache lists, and the one under the owner's own name (every child is named like its owner)
/// read live. The cache can be behind: a child created just as its cluster went down is not in
/// it until the watch lists again, and trusting the cache alone left such a child orphaned
/// forever (found by the fault soak). The live one is deleted only if its labels name this
/// owner, so a user's own object of the same name is never touched.
pub async fn delete_owned<K>(cache: &AppliedCache, member: &Member, owner_kind: &str, namespace: &str, name: &str, cached: &[Arc<K>]) -> Result<(), ChildError>
where
    K: Resource<Scope = NamespaceResourceScope> + k8s_openapi::Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    delete_all(cache, member, cached).await?;
    let api: Api<K> = Api::namespaced(member.client.clone(), namespace);
    let live = api.get_opt(name).await.map_err(|source| ChildError {
        cluster: member.name.clone(),
        action: "reading",
        kind: kind_of::<K>(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        source,
    })?;
    let ours = live.is_some_and(|l| {
        let meta = l.meta();
        let managed = meta.labels.as_ref().and_then(|l| l.get(labels::MANAGED_BY_KEY)).is_some_and(|v| v == labels::MANAGED_BY);
        managed && labels::labelled_owner(meta.labels.as_ref(), owner_kind, &labels::owner_value(name))
    });
    if ours { delete::<K>(cache, member, namespace, name).await } else { Ok(()) }
}

fn kind_of<K: k8s_openapi::Resource>() -> &'static str {
    K::KIND
}

pub async fn ensure_namespace(client: &kube::Client, ns: &str) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut n = Namespace::default();
    n.metadata.name = Some(ns.to_string());
    n.metadata.labels = Some([(labels::MANAGED_BY_KEY.to_string(), labels::MANAGED_BY.to_string())].into());
    match api.create(&PostParams::default(), &n).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;

    fn dep(uid: &str, generation: i64) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.uid = Some(uid.into());
        d.metadata.generation = Some(generation);
        d
    }

    #[test]
    fn an_apply_is_skipped_only_while_the_live_object_is_the_one_it_produced() {
        let cache = AppliedCache::default();
        let id: ChildId = ("c1".into(), "Deployment", "ns".into(), "web".into());
        let live = dep("u1", 3);
        assert!(!cache.fresh(&id, 7, Some(&live)), "never applied");
        cache.record(id.clone(), 7, &live);
        assert!(cache.fresh(&id, 7, Some(&live)));
        assert!(!cache.fresh(&id, 8, Some(&live)), "a different body");
        assert!(!cache.fresh(&id, 7, Some(&dep("u1", 4))), "edited by hand (generation moved)");
        assert!(!cache.fresh(&id, 7, Some(&dep("u2", 3))), "deleted and re-created");
        assert!(!cache.fresh::<Deployment>(&id, 7, None), "deleted");
        let mut deleting = live.clone();
        deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(!cache.fresh(&id, 7, Some(&deleting)), "being deleted");
        cache.forget(&id);
        assert!(!cache.fresh(&id, 7, Some(&live)));
    }
}
