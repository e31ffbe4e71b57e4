//! Carries out a plan's steps. Every write is a server-side apply with a fixed field manager
//! or an idempotent delete, so a step repeated after a crash changes nothing.

use super::access::{self, NamespaceAccess};
use super::capi::{self, AUTOSCALER_MANAGER, ClusterShape, PROVISIONER_MANAGER};
use super::member_identity::{self, IdentityError};
use super::observe;
use super::plan::Step;
use super::settings::{ProvisioningMode, Settings};
use super::template;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use mck8s_api::labels;
// Which CloudProvisioner made a namespace or Secret (so only those are cleaned up).
use mck8s_api::labels::MADE_BY_PROVISIONER as MADE_BY;
use serde_json::json;

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
    /// Cluster API refused `spec.topology` (its ClusterTopology feature gate is off).
    #[error("Cluster API refused spec.topology (is the ClusterTopology feature gate off?); spec.provisioningMode Auto or Templates renders the provider's objects instead: {0}")]
    TopologyRefused(String),
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
    /// The Cluster as it is: `Some(true)` rendered from the template, `Some(false)` with a
    /// topology, `None` not there (the settings and Cluster API decide).
    pub templated: Option<bool>,
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
    // A Cluster keeps the way it was made; a new one follows the settings.
    match (t.templated, s.mode) {
        (Some(true), _) | (None, ProvisioningMode::Templates) => apply_template(t, workers).await,
        (Some(false), _) | (None, ProvisioningMode::Topology) => apply_topology(t, workers).await,
        (None, ProvisioningMode::Auto) => match apply_topology(t, workers).await {
            Err(ActError::TopologyRefused(why)) => {
                tracing::warn!(cluster = %s.cluster, %why, template = %format!("{}/{}", s.template.namespace, s.template.name), "Cluster API refused spec.topology; rendering the cluster template");
                apply_template(t, workers).await
            }
            other => other,
        },
    }
}

async fn apply_topology(t: &Target<'_>, workers: i32) -> Result<(), ActError> {
    let s = t.settings;
    let body = t.shape().apply_body(Some(workers));
    match t.clusters().patch(&s.cluster, &apply(PROVISIONER_MANAGER), &Patch::Apply(&body)).await {
        Ok(_) => Ok(()),
        Err(e) if capi::topology_refusal(&e).is_some() => Err(ActError::TopologyRefused(capi::topology_refusal(&e).unwrap_or_default().to_string())),
        Err(e) => Err(ActError::Kube { what: format!("Cluster {}/{}", s.namespace, s.cluster), source: e }),
    }
}

/// The provider's objects from the cluster template: the Cluster first, then the rest with
/// the Cluster as their owner (deleting the Cluster removes them), the workers'
/// MachineDeployment last. An object that exists and is not ours is never taken over; an
/// existing MachineDeployment is left alone (its replicas are the node autoscaler's).
async fn apply_template(t: &Target<'_>, workers: i32) -> Result<(), ActError> {
    let s = t.settings;
    let src = &s.template;
    let where_ = format!("cluster template {}/{} key {}", src.namespace, src.name, src.key);
    let cm = Api::<ConfigMap>::namespaced(t.client.clone(), &src.namespace).get_opt(&src.name).await.map_err(kube(format!("reading the {where_}")))?;
    let text = cm.and_then(|c| c.data).and_then(|mut d| d.remove(&src.key)).ok_or_else(|| ActError::Invalid(format!("the {where_} does not exist")))?;
    let rendered = template::render(&text, &t.shape(), &s.worker_machine_deployment(), workers).map_err(|e| ActError::Invalid(format!("{where_}: {e}")))?;
    let cluster =
        t.clusters().patch(&s.cluster, &apply(PROVISIONER_MANAGER), &Patch::Apply(&rendered.cluster)).await.map_err(kube(format!("Cluster {}/{}", s.namespace, s.cluster)))?;
    let owner = json!({"apiVersion": format!("{}/{}", capi::GROUP, capi::VERSION), "kind": "Cluster", "name": s.cluster, "uid": cluster.metadata.uid});
    for mut obj in rendered.objects {
        let (api_version, kind) = (obj["apiVersion"].as_str().unwrap_or_default().to_string(), obj["kind"].as_str().unwrap_or_default().to_string());
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let what = format!("{kind} {}/{name}", s.namespace);
        let (group, version) = api_version.split_once('/').unwrap_or_default();
        let gvk = kube::core::GroupVersionKind::gvk(group, version, &kind);
        let (resource, _) = kube::discovery::pinned_kind(t.client, &gvk).await.map_err(kube(format!("{what}: is {api_version} served?")))?;
        let api: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), &s.namespace, &resource);
        if let Some(existing) = api.get_opt(&name).await.map_err(kube(format!("reading {what}")))? {
            if existing.labels().get(capi::OWNER_UID_LABEL).map(String::as_str) != Some(t.owner_uid) {
                return Err(ActError::Invalid(format!("{what} exists and was not made by this CloudProvisioner; it is left alone")));
            }
            if kind == "MachineDeployment" {
                continue;
            }
        }
        obj["metadata"]["ownerReferences"] = json!([owner]);
        api.patch(&name, &apply(PROVISIONER_MANAGER), &Patch::Apply(&obj)).await.map_err(kube(what))?;
    }
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
    access::after_grant(|| secrets.patch(&name, &pp, &patch)).await.map_err(kube(format!("credentials Secret {}/{name}", s.namespace)))?;
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
    let yaml = serde_yaml_ng::to_string(&kc).map_err(|_| ActError::Invalid("the kubeconfig does not serialise".into()))?;
    let mut labels_ = serde_json::Map::new();
    labels_.insert(labels::CLUSTER_SECRET.into(), json!(s.cluster));
    labels_.insert(labels::CLUSTER_ROLE.into(), json!("cloud"));
    labels_.insert(MADE_BY.into(), json!(t.owner));
    if cordoned {
        // No new placements: the registry reports it NotReady, so policies pass it over while it drains.
        labels_.insert(labels::CLUSTER_CORDONED.into(), json!("true"));
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

/// The workers' replicas: the topology entry's, or the rendered MachineDeployment's.
async fn set_workers(t: &Target<'_>, n: i32) -> Result<(), ActError> {
    let s = t.settings;
    if t.templated == Some(true) {
        let md = s.worker_machine_deployment();
        let body = capi::machine_deployment_replicas_body(&md, &s.namespace, n);
        let api: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), &s.namespace, &capi::resource("MachineDeployment"));
        api.patch(&md, &apply(AUTOSCALER_MANAGER), &Patch::Apply(&body)).await.map_err(kube(format!("scaling MachineDeployment {md} to {n} workers")))?;
        return Ok(());
    }
    let body = t.shape().replicas_body(n);
    t.clusters().patch(&s.cluster, &apply(AUTOSCALER_MANAGER), &Patch::Apply(&body)).await.map_err(kube(format!("scaling Cluster {} to {n} workers", s.cluster)))?;
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
