//! The CloudProvisioner reconciler: observe, plan, act, write status. Reconciles are
//! periodic (`poll`) as well as on change, because most of what it waits for (machines
//! booting, windows passing, demand elsewhere) does not touch the CloudProvisioner.

use super::act::{self, Target};
use super::capi;
use super::observe;
use super::plan::{self, Claim, Observed, Plan};
use super::settings::{Settings, resolve};
use crate::context::Context;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use mck8s_api::{CloudProvisioner, CloudProvisionerStatus, conditions};
use mck8s_fleet::Health;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

pub const FINALIZER: &str = "fogguru.eu/cloudprovisioner";
const RETRY_ANNOTATION: &str = "fogguru.eu/retry";

#[derive(Clone, Debug)]
pub struct CloudConfig {
    /// Where registry Secrets are written (the controller's namespace, whose cluster
    /// Secrets the registry watches).
    pub registry_namespace: String,
    /// Demand is read from MultiClusterDeployments and Jobs here (default: everywhere).
    pub watch_namespace: Option<String>,
    /// Clusters being provisioned at once, fleet-wide.
    pub max_concurrent_provisions: usize,
    pub poll: Duration,
    /// Bind this role in each cloud cluster's namespace (the chart's narrow role); `None`
    /// with an identity that can already reach every namespace's Secrets.
    pub namespace_access: Option<super::NamespaceAccess>,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig { registry_namespace: "mck8s-system".into(), watch_namespace: None, max_concurrent_provisions: 1, poll: Duration::from_secs(10), namespace_access: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Act(#[from] act::ActError),
}

struct Shared {
    ctx: Arc<Context>,
    cfg: CloudConfig,
    /// What each CloudProvisioner's status was last set to, for reconciles that run on a
    /// cached copy from before that write (a stale phase would read as a lost status).
    memo: crate::shared::StatusMemo<CloudProvisionerStatus>,
}

pub async fn run(ctx: Arc<Context>, cfg: CloudConfig) {
    let api: Api<CloudProvisioner> = Api::all(ctx.watches.clone());
    let mut controller = crate::shared::controller(api, &ctx, crate::shared::Wake::EveryChange);
    // Cluster API's progress (control plane up, workers ready, deletion done) and the
    // registry's view of the joined cluster wake the owner at once, so a transition costs a
    // watch event rather than a poll period. Without Cluster API installed there is nothing
    // to watch: the poll alone drives it (and reports what is missing).
    if capi_served(&ctx.client).await {
        let clusters: Api<DynamicObject> = Api::all_with(ctx.watches.clone(), &capi::resource("Cluster"));
        let owned = mck8s_clusters::watch_config().labels(capi::OWNER_LABEL);
        controller =
            controller.watches_with(clusters, capi::resource("Cluster"), owned, |c| c.labels().get(capi::OWNER_LABEL).map(|owner| ObjectRef::<CloudProvisioner>::new(owner)));
    } else {
        tracing::info!("cluster.x-k8s.io/v1beta2 is not served: CloudProvisioners are polled only");
    }
    let health = crate::shared::cluster_changes(&ctx);
    let shared = Arc::new(Shared { ctx, cfg, memo: Default::default() });
    crate::shared::drive("CloudProvisioner", controller.reconcile_all_on(health).run(reconcile, error_policy, shared)).await;
}

async fn capi_served(client: &kube::Client) -> bool {
    client.list_api_group_resources(&format!("{}/{}", capi::GROUP, capi::VERSION)).await.is_ok_and(|r| r.resources.iter().any(|r| r.name == "clusters"))
}

fn error_policy(cp: Arc<CloudProvisioner>, error: &Error, shared: Arc<Shared>) -> Action {
    if matches!(error, Error::Act(act::ActError::NotYet(_))) {
        // Something it needs is on its way (a token being issued, a namespace going away).
        tracing::info!(name = %cp.name_any(), %error, "cloud provisioner waiting");
    } else {
        tracing::warn!(name = %cp.name_any(), %error, "cloud provisioner reconcile failed");
    }
    Action::requeue(shared.ctx.timing.error_retry)
}

async fn reconcile(cp: Arc<CloudProvisioner>, shared: Arc<Shared>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let span = tracing::info_span!("reconcile", kind = "CloudProvisioner", name = %cp.name_any());
    let result = reconcile_inner(&cp, &shared).instrument(span).await;
    shared.ctx.metrics.reconciled("CloudProvisioner", result.is_ok(), started);
    result
}

async fn reconcile_inner(cp: &CloudProvisioner, shared: &Shared) -> Result<Action, Error> {
    let (ctx, cfg) = (&shared.ctx, &shared.cfg);
    let api: Api<CloudProvisioner> = Api::all(ctx.client.clone());
    let deleting = cp.metadata.deletion_timestamp.is_some();
    let settings = match resolve(cp) {
        Ok(s) => s,
        Err(e) => {
            let mut st = cp.status.clone().unwrap_or_default();
            let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
            conditions::set(&mut st.conditions, conditions::INVALID_SPEC, true, "InvalidSpec", e.clone(), cp.metadata.generation, &now);
            write_status(&api, cp, &st).await?;
            if deleting && st.cluster.is_none() {
                release(&api, cp).await?;
            }
            return Ok(Action::requeue(cfg.poll * 6));
        }
    };
    let mut cp = cp.clone();
    if !deleting && !cp.finalizers().iter().any(|f| f == FINALIZER) {
        let mut fins = cp.finalizers().to_vec();
        fins.push(FINALIZER.into());
        // Go on with the patched object, so the status written below is based on its version.
        cp = api.patch(&cp.name_any(), &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"finalizers": fins}}))).await?;
    }
    let own = cp.status.clone().unwrap_or_default();
    cp.status = Some(shared.memo.current(&cp, own));
    let cp = &cp;
    let observed = observe_all(cp, &settings, shared).await?;
    let plan = plan::plan(&settings, cp.status.as_ref(), &observed);
    carry_out(cp, &settings, &observed, &plan, shared).await?;
    let mut status = plan.status.clone();
    conditions::set(
        &mut status.conditions,
        conditions::INVALID_SPEC,
        false,
        "Valid",
        "the spec is valid",
        cp.metadata.generation,
        &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(observed.now),
    );
    if cp.status.as_ref() != Some(&status) {
        let produced = write_status(&api, cp, &status).await?;
        shared.memo.remember(cp, produced, status);
    }
    if plan.release {
        shared.memo.forget(cp);
        release(&api, cp).await?;
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(cfg.poll))
}

async fn observe_all(cp: &CloudProvisioner, s: &Settings, shared: &Shared) -> Result<Observed, Error> {
    let (ctx, cfg) = (&shared.ctx, &shared.cfg);
    let client = &ctx.client;
    let all = Api::<CloudProvisioner>::all(client.clone()).list(&ListParams::default()).await?.items;
    let provisioning =
        all.iter().filter(|o| o.uid() != cp.uid()).filter(|o| matches!(o.status.as_ref().and_then(|s| s.phase.as_deref()), Some(plan::PROVISIONING) | Some(plan::JOINING))).count();
    let uid = cp.uid().unwrap_or_default();
    let (cluster, mut claim) = observe::cluster(client, s, &uid).await?;
    if let Some(other) = observe::older_claim(cp, &all, s) {
        claim = Claim::OlderProvisioner(other);
    }
    let machines = if cluster.is_some() { observe::machines(client, s).await? } else { Vec::new() };
    let kubeconfig = if cluster.is_some() { observe::kubeconfig_secret(client, s).await? } else { None };
    let registry: Api<Secret> = Api::namespaced(client.clone(), &cfg.registry_namespace);
    let registered = registry.get_opt(&format!("mck8s-cloud-{}", s.cluster)).await?.map(|sec| sec.labels().get(mck8s_api::labels::CLUSTER_CORDONED).is_some_and(|v| v == "true"));
    let member_ready = ctx.clusters.get(&s.cluster).is_some_and(|m| m.health() == Health::Ready);
    let phase = cp.status.as_ref().and_then(|st| st.phase.clone()).unwrap_or_default();
    let workload = match (&kubeconfig, phase.as_str()) {
        (Some(secret), plan::JOINING | plan::READY | plan::DRAINING) => Some(probe(secret).await),
        _ => None,
    };
    Ok(Observed {
        now: k8s_openapi::jiff::Timestamp::now(),
        generation: cp.metadata.generation,
        deleting: cp.metadata.deletion_timestamp.is_some(),
        retry_annotation: cp.annotations().get(RETRY_ANNOTATION).cloned(),
        claim,
        demand: observe::demand(client, &cfg.watch_namespace).await?,
        cluster,
        machines,
        kubeconfig_version: kubeconfig.as_ref().and_then(|k| k.metadata.resource_version.clone()),
        registered,
        member_ready,
        workload,
        provision_slot_free: provisioning < cfg.max_concurrent_provisions,
    })
}

async fn probe(secret: &Secret) -> Result<plan::Workload, String> {
    let text = observe::kubeconfig_text(secret)?;
    let client = observe::workload_client(&text).await?;
    observe::workload(&client).await
}

async fn carry_out(cp: &CloudProvisioner, s: &Settings, observed: &Observed, plan: &Plan, shared: &Shared) -> Result<(), Error> {
    let ctx = &shared.ctx;
    let owner = cp.name_any();
    let uid = cp.uid().unwrap_or_default();
    let flavor = plan.status.flavor.clone().unwrap_or_else(|| "k8s.large".into());
    let target = Target {
        client: &ctx.client,
        settings: s,
        owner: &owner,
        owner_uid: &uid,
        registry_namespace: &shared.cfg.registry_namespace,
        flavor: &flavor,
        access: shared.cfg.namespace_access.as_ref(),
        templated: observed.cluster.as_ref().map(|c| c.templated),
    };
    for step in &plan.steps {
        tracing::info!(?step, cluster = %s.cluster, "cloud provisioner step");
        if let Err(e) = act::run(&target, step).await {
            if !matches!(e, act::ActError::NotYet(_)) {
                crate::shared::publish_cluster_scoped(ctx, cp, EventType::Warning, "StepFailed", "Provision", &e.to_string()).await;
            }
            return Err(e.into());
        }
    }
    for ev in &plan.events {
        ctx.metrics.cloud.get_or_create(&crate::metrics::ResultLabel { result: ev.reason.into() }).inc();
        let type_ = if ev.warning { EventType::Warning } else { EventType::Normal };
        tracing::info!(reason = ev.reason, note = %ev.note, "cloud provisioner");
        crate::shared::publish_cluster_scoped(ctx, cp, type_, ev.reason, "Provision", &ev.note).await;
    }
    Ok(())
}

/// Returns the resourceVersion the write produced.
async fn write_status(api: &Api<CloudProvisioner>, cp: &CloudProvisioner, status: &CloudProvisionerStatus) -> Result<Option<String>, kube::Error> {
    // Server-side apply: fields dropped from the status (an emptied map) are removed.
    let body = serde_json::json!({
        "apiVersion": CloudProvisioner::api_version(&()),
        "kind": CloudProvisioner::kind(&()),
        "metadata": {"name": cp.name_any()},
        "status": status,
    });
    let written = api.patch_status(&cp.name_any(), &PatchParams::apply("mck8s-cloudprovisioner").force(), &Patch::Apply(&body)).await?;
    Ok(written.metadata.resource_version)
}

async fn release(api: &Api<CloudProvisioner>, cp: &CloudProvisioner) -> Result<(), kube::Error> {
    let fins: Vec<String> = cp.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    api.patch(&cp.name_any(), &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"finalizers": fins}}))).await?;
    Ok(())
}
