//! Carries out a plan's steps. Every write is a server-side apply with a fixed field manager
//! or an idempotent delete, so a step repeated after a crash changes nothing.

use super::access::{self, NamespaceAccess};
use super::capi::{self, AUTOSCALER_MANAGER, ClusterShape, PROVISIONER_MANAGER};
use super::member_identity::{self, IdentityError};
use super::observe;
use super::plan::Step;
use super::settings::Settings;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use mck8s_api::labels;
use serde_json::json;

/// The registry Secret's label saying "no new placements" (the registry reports the cluster
/// NotReady, so policies pass it over while it drains).
pub const CORDONED: &str = "fogguru.eu/cordoned";
/// Which CloudProvisioner made a namespace or Secret (so only those are cleaned up).
pub const MADE_BY: &str = "fogguru.eu/cloud-provisioner";
const SOURCE_VERSION: &str = "fogguru.eu/kubeconfig-source-version";

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Identity(IdentityError),
    /// Not an error yet: something it needs is on its way (retried without a warning).
    #[error("{0}")]
    NotYet(String),
}

fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ActError {
    let what = what.into();
    move |source| ActError::Kube { what, source }
}

pub struct Target<'a> {
    pub client: &'a Client,
    pub settings: &'a Settings,
    pub owner: &'a str,
    pub owner_uid: &'a str,
    /// The controller's namespace, where registry Secrets live.
    pub registry_namespace: &'a str,
    /// The worker flavor (for the Cluster's variables).
    pub flavor: &'a str,
    /// The RoleBinding that opens the cluster's namespace to the controller (chart role).
    pub access: Option<&'a NamespaceAccess>,
}

impl Target<'_> {
    fn shape(&self) -> ClusterShape {
        self.settings.shape(self.owner, self.owner_uid, self.flavor)
    }

    fn clusters(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.settings.namespace, &capi::resource("Cluster"))
    }

    /// The registry Secret's name for this cluster.
    pub fn registry_secret(&self) -> String {
        format!("mck8s-cloud-{}", self.settings.cluster)
    }
}

pub async fn run(t: &Target<'_>, step: &Step) -> Result<(), ActError> {
    match step {
        Step::Provision { workers, .. } => provision(t, *workers).await,
        Step::Register { cordoned } => register(t, *cordoned).await,
        Step::Unregister => delete_opt(Api::<Secret>::namespaced(t.client.clone(), t.registry_namespace), &t.registry_secret()).await,
        Step::SetWorkers(n) => set_workers(t, *n).await,
        Step::RemoveNode { machine, workers } => {
            let machines: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), &t.settings.namespace, &capi::resource("Machine"));
            let patch = json!({"metadata": {"annotations": {capi::DELETE_MACHINE: "yes"}}});
            machines.patch(machine, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(kube(format!("annotating Machine {machine}")))?;
            set_workers(t, *workers).await
        }
        Step::DeleteCluster => delete_opt(t.clusters(), &t.settings.cluster).await,
        Step::CleanUp => clean_up(t).await,
    }
}

fn apply(manager: &str) -> PatchParams {
    PatchParams::apply(manager).force()
}

async fn provision(t: &Target<'_>, workers: i32) -> Result<(), ActError> {
    let s = t.settings;
    let namespaces: Api<Namespace> = Api::all(t.client.clone());
    match namespaces.get_opt(&s.namespace).await.map_err(kube("reading the namespace"))? {
        None => {
            // Created, not applied: the chart's role may create namespaces but not change one.
            let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": s.namespace, "labels": {MADE_BY: t.owner, "fogguru.eu/managed-by": "mck8s"}}}))
                .map_err(|e| ActError::Invalid(e.to_string()))?;
            match namespaces.create(&PostParams { field_manager: Some(PROVISIONER_MANAGER.into()), ..Default::default() }, &ns).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(ActError::Kube { what: format!("namespace {}", s.namespace), source: e }),
            }
        }
        // The last de-provisioning's clean-up is still finishing: nothing can be made in it.
        Some(n) if n.metadata.deletion_timestamp.is_some() => {
            return Err(ActError::NotYet(format!("namespace {} is still being deleted", s.namespace)));
        }
        Some(_) => {}
    }
    if let Some(a) = t.access {
        access::grant(t.client, a, &s.namespace, t.owner, PROVISIONER_MANAGER).await.map_err(kube(format!("RoleBinding {}/{}", s.namespace, access::BINDING)))?;
    }
    credentials(t).await?;
    let body = t.shape().apply_body(Some(workers));
    t.clusters().patch(&s.cluster, &apply(PROVISIONER_MANAGER), &Patch::Apply(&body)).await.map_err(kube(format!("Cluster {}/{}", s.namespace, s.cluster)))?;
    Ok(())
}

/// The credentials Secret the class's `identityRef` names: the inline fields moved out of
/// the spec, or a copy of `credentialsSecretRef`. Values are never logged or echoed.
async fn credentials(t: &Target<'_>) -> Result<(), ActError> {
    let s = t.settings;
    let mut data = serde_json::Map::new();
    for (key, b64) in &s.inline_credentials {
        use base64::Engine as _;
        // The original took these base64-encoded; check without quoting them.
        if base64::engine::general_purpose::STANDARD.decode(b64.trim()).is_err() {
            return Err(ActError::Invalid(format!("spec field for {key} is not valid base64")));
        }
        data.insert(key.clone(), json!(b64.trim()));
    }
    if let Some((ns, name)) = &s.credentials_ref {
        let src = Api::<Secret>::namespaced(t.client.clone(), ns).get_opt(name).await.map_err(kube("reading credentialsSecretRef"))?;
        let src = src.ok_or_else(|| ActError::Invalid(format!("credentialsSecretRef {ns}/{name} does not exist")))?;
        for (k, v) in src.data.unwrap_or_default() {
            use base64::Engine as _;
            data.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(&v.0)));
        }
    }
    if data.is_empty() {
        return Ok(());
    }
    let name = s.credentials_secret();
    let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": s.namespace, "labels": {MADE_BY: t.owner}}, "type": "Opaque", "data": data});
    let secrets = Api::<Secret>::namespaced(t.client.clone(), &s.namespace);
    let (pp, patch) = (apply(PROVISIONER_MANAGER), Patch::Apply(&body));
    access::after_grant(|| secrets.patch(&name, &pp, &patch))
        .await
        .map_err(kube(format!("credentials Secret {}/{name}", s.namespace)))?;
    Ok(())
}

/// Registers the cluster: a registry Secret the cluster watch picks up, with Cluster API's
/// server and CA and mck8s's own member token ([`member_identity`]). The
/// context is renamed `<cluster>-admin@<cluster>` → `<cluster>`, as the original did.
async fn register(t: &Target<'_>, cordoned: bool) -> Result<(), ActError> {
    let s = t.settings;
    let source = observe::kubeconfig_secret(t.client, s).await.map_err(kube("reading the kubeconfig Secret"))?;
    let source = source.ok_or_else(|| ActError::Invalid(format!("Secret {}/{}-kubeconfig is gone", s.namespace, s.cluster)))?;
    let text = observe::kubeconfig_text(&source).map_err(ActError::Invalid)?;
    let admin = kube::config::Kubeconfig::from_yaml(&text).map_err(|_| ActError::Invalid("the kubeconfig does not parse".into()))?;
    // The registry gets mck8s's own least-privilege token, not Cluster API's admin.
    let workload = observe::workload_client(&text).await.map_err(ActError::Invalid)?;
    let mut kc = member_identity::token_kubeconfig(&workload, &admin, PROVISIONER_MANAGER).await.map_err(|e| match e {
        IdentityError::NotYet => ActError::NotYet(e.to_string()),
        e => ActError::Identity(e),
    })?;
    let current = kc.current_context.clone().or_else(|| kc.contexts.first().map(|c| c.name.clone()));
    for c in &mut kc.contexts {
        if Some(&c.name) == current.as_ref() {
            c.name = s.cluster.clone();
        }
    }
    kc.contexts.retain(|c| c.name == s.cluster);
    kc.current_context = Some(s.cluster.clone());
    let yaml = serde_yaml::to_string(&kc).map_err(|_| ActError::Invalid("the kubeconfig does not serialise".into()))?;
    let mut labels_ = serde_json::Map::new();
    labels_.insert(labels::CLUSTER_SECRET.into(), json!(s.cluster));
    labels_.insert(labels::CLUSTER_ROLE.into(), json!("cloud"));
    labels_.insert(MADE_BY.into(), json!(t.owner));
    if cordoned {
        labels_.insert(CORDONED.into(), json!("true"));
    }
    use base64::Engine as _;
    let body = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": t.registry_secret(), "namespace": t.registry_namespace, "labels": labels_,
                     "annotations": {SOURCE_VERSION: source.metadata.resource_version, capi::CLUSTER_NAME_LABEL: s.cluster}},
        "type": "Opaque",
        "data": {"kubeconfig": base64::engine::general_purpose::STANDARD.encode(yaml)}
    });
    Api::<Secret>::namespaced(t.client.clone(), t.registry_namespace)
        .patch(&t.registry_secret(), &apply(PROVISIONER_MANAGER), &Patch::Apply(&body))
        .await
        .map_err(kube("writing the registry Secret"))?;
    Ok(())
}

async fn set_workers(t: &Target<'_>, n: i32) -> Result<(), ActError> {
    let body = t.shape().replicas_body(n);
    t.clusters()
        .patch(&t.settings.cluster, &apply(AUTOSCALER_MANAGER), &Patch::Apply(&body))
        .await
        .map_err(kube(format!("scaling Cluster {} to {n} workers", t.settings.cluster)))?;
    Ok(())
}

/// After the Cluster is gone: our credentials Secret and the namespace, if we made them.
async fn clean_up(t: &Target<'_>) -> Result<(), ActError> {
    let s = t.settings;
    let ours = |l: Option<&std::collections::BTreeMap<String, String>>| l.and_then(|l| l.get(MADE_BY)).map(String::as_str) == Some(t.owner);
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &s.namespace);
    if let Some(sec) = secrets.get_opt(&s.credentials_secret()).await.map_err(kube("reading the credentials Secret"))?
        && ours(sec.metadata.labels.as_ref())
    {
        delete_opt(secrets, &s.credentials_secret()).await?;
    }
    // The namespace goes if we made it (our RoleBinding in it allows exactly that); in a
    // namespace someone else made, only our RoleBinding goes, last, as we need it until then.
    let namespaces: Api<Namespace> = Api::all(t.client.clone());
    match namespaces.get_opt(&s.namespace).await.map_err(kube("reading the namespace"))? {
        Some(ns) if ours(ns.metadata.labels.as_ref()) => delete_opt(namespaces, &s.namespace).await?,
        Some(_) if t.access.is_some() => access::revoke(t.client, &s.namespace).await.map_err(kube(format!("deleting RoleBinding {}/{}", s.namespace, access::BINDING)))?,
        _ => {}
    }
    Ok(())
}

async fn delete_opt<K>(api: Api<K>, name: &str) -> Result<(), ActError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(ActError::Kube { what: format!("deleting {name}"), source: e }),
    }
}
