//! Cloud clusters on demand, end to end on the real test environment: the CloudProvisioner
//! controller against real kube-apiservers, with Cluster API played by the test
//! environment's simulator (`tests/testenv/src/capi`: no Cluster API controller can run
//! offline). Every simulated cloud cluster is a real kube-apiserver, controller-manager and
//! scheduler with simulated kubelets whose Nodes follow the Machines.
//!
//! The fog of the default fleet is cluster1-3: 2 nodes of 2 CPU / 4 GiB each, so pods of
//! 1 CPU / 1 GiB fit 4 per cluster, 12 in all. The fleet's static `cloud1` is left out.

use crate::common;
use crate::common::{FOG, Harness, mcd, mcd_shaped, serial};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use mck8s_api::CloudProvisioner;
use std::collections::BTreeSet;
use std::time::Duration;

/// Provisioning starts real API servers; on a loaded 2-core machine that takes a while.
const PROVISION_BOUND: Duration = Duration::from_secs(300);

fn capi(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", kind))
}

/// A controller that sees the fog by kubeconfig and cloud clusters by registry Secret, with
/// the CloudProvisioner controller on and polling every second.
async fn harness(prefix: &str) -> Harness {
    let env = mck8s_testenv::TestEnv::shared().await.expect("test environment");
    let ns = env.namespace("cluster0", prefix).await.expect("namespace");
    let h = Harness::start_tuned(env, ns, &FOG, None, |c| {
        c.cluster_secrets = true;
        c.cloud_provisioning = true;
        c.cloud_poll = Duration::from_secs(1);
    })
    .await;
    common::install_cloud_class(&h.mgmt).await;
    h
}

fn cps(h: &Harness) -> Api<CloudProvisioner> {
    Api::all(h.mgmt.clone())
}

async fn wait<F, Fut>(what: &str, bound: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("{what}: still not true after {bound:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The CloudProvisioner's phase, conditions and open scale step, for failure messages.
async fn cp_state(h: &Harness, cp: &str) -> String {
    match cps(h).get(cp).await {
        Ok(o) => {
            let st = o.status.unwrap_or_default();
            let conds: Vec<String> = st.conditions.iter().map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message)).collect();
            format!("phase {:?}, step {:?}, workers {:?}, next attempt {:?}, conditions {conds:?}", st.phase, st.scale_step, st.workers, st.next_attempt_at)
        }
        Err(e) => format!("CloudProvisioner {cp}: {e}"),
    }
}

async fn wait_phase(h: &Harness, cp: &str, phase: &str, bound: Duration) -> CloudProvisioner {
    wait(&format!("CloudProvisioner {cp} {phase}"), bound, || async {
        let o = cps(h).get(cp).await.map_err(|e| e.to_string())?;
        let st = o.status.clone().unwrap_or_default();
        if st.phase.as_deref() == Some(phase) {
            Ok(())
        } else {
            Err(format!("phase {:?}, conditions {:?}", st.phase, st.conditions.iter().map(|c| format!("{}={} {}", c.type_, c.reason, c.message)).collect::<Vec<_>>()))
        }
    })
    .await;
    cps(h).get(cp).await.unwrap()
}

/// A client for the simulated cloud cluster, from the kubeconfig Secret Cluster API publishes.
async fn cloud_client(h: &Harness, namespace: &str, cluster: &str) -> Client {
    let secret = Api::<Secret>::namespaced(h.mgmt.clone(), namespace).get(&format!("{cluster}-kubeconfig")).await.unwrap();
    let text = String::from_utf8(secret.data.unwrap()["value"].0.clone()).unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

/// Running pods of `app` in the cloud cluster's namespace `ns`.
async fn running_in(client: &Client, ns: &str, app: &str) -> usize {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods.list(&ListParams::default().labels(&format!("app={app}"))).await.map(|l| l.items).unwrap_or_default();
    list.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count()
}

/// The CloudProvisioner's Events' reasons, oldest first, each as often as it happened: the
/// recorder folds a repeat of the same reason into one Event's series.
async fn events(h: &Harness, cp: &CloudProvisioner) -> Vec<String> {
    let evs: Api<Event> = Api::all(h.mgmt.clone());
    let uid = cp.uid().unwrap();
    let mut list: Vec<Event> = evs.list(&ListParams::default()).await.unwrap().items.into_iter().filter(|e| e.involved_object.uid.as_deref() == Some(&uid)).collect();
    list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0).or(e.first_timestamp.as_ref().map(|t| t.0)));
    let times = |e: &Event| e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1).max(1) as usize;
    list.iter().flat_map(|e| std::iter::repeat_n(e.reason.clone().unwrap_or_default(), times(e))).collect()
}

/// Faults for the simulated provider (`capi-sim-faults`, key `<namespace>.<cluster>`).
async fn inject(h: &Harness, namespace: &str, cluster: &str, faults: Option<&str>) {
    let nss: Api<Namespace> = Api::all(h.mgmt.clone());
    if nss.get_opt("capi-sim-system").await.unwrap().is_none() {
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "capi-sim-system"}})).unwrap();
        let _ = nss.create(&PostParams::default(), &ns).await;
    }
    let cms: Api<ConfigMap> = Api::namespaced(h.mgmt.clone(), "capi-sim-system");
    let key = format!("{namespace}.{cluster}");
    let value = match faults {
        Some(f) => serde_json::Value::String(f.to_string()),
        None => serde_json::Value::Null,
    };
    let patch = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "capi-sim-faults"}, "data": {key: value}});
    cms.patch("capi-sim-faults", &PatchParams::apply(&format!("cloud-test-{cluster}")).force(), &Patch::Apply(&patch)).await.unwrap();
}

/// A CloudProvisioner with the test's short windows.
fn provisioner(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: fogguru.eu/v1
kind: CloudProvisioner
metadata:
  name: {name}
spec:
  cloudClusterName: {name}
  lifecycle: {{demandConfirmSeconds: 1, drainGraceSeconds: 2, deprovisionAfterIdleSeconds: 5, retryBackoffSeconds: 1, provisionTimeoutSeconds: 240}}
  autoscaling: {{scaleOutConfirmSeconds: 2, scaleDownUnneededSeconds: 3, scaleDownDelayAfterAddSeconds: 0}}
{extra}"
    )
}

fn apply_cluster_scoped(h: &Harness, yaml: &str) {
    use std::io::Write;
    let mut child = h
        .env
        .kubectl("cluster0")
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
}

/// Deletes the CloudProvisioner and waits until it, its Cluster, its registry Secret and its
/// namespace are gone: nothing is left behind for the next test.
async fn remove(h: &Harness, cp: &str, namespace: &str) {
    let _ = cps(h).delete(cp, &DeleteParams::default()).await;
    let clusters: Api<DynamicObject> = Api::namespaced_with(h.mgmt.clone(), namespace, &capi("Cluster"));
    let nss: Api<Namespace> = Api::all(h.mgmt.clone());
    wait(&format!("{cp} and its cluster gone"), PROVISION_BOUND, || async {
        let cp_left = cps(h).get_opt(cp).await.map_err(|e| e.to_string())?.is_some();
        let cluster_left = clusters.get_opt(namespace).await.map_err(|e| e.to_string())?.is_some();
        let ns_left = nss.get_opt(namespace).await.map_err(|e| e.to_string())?.is_some();
        if !cp_left && !cluster_left && !ns_left { Ok(()) } else { Err(format!("cp {cp_left}, cluster {cluster_left}, namespace {ns_left}")) }
    })
    .await;
}

/// What a failing test made in the management cluster, removed as it unwinds so the next
/// test starts clean: the CloudProvisioners lose their finalizer (the controller is gone),
/// their Clusters are deleted (the simulated provider tears them down) and so is any
/// AppRescheduler of the same name. A passing test removes them itself with [`remove`].
struct Leftovers {
    env: std::sync::Arc<mck8s_testenv::TestEnv>,
    /// (CloudProvisioner, the namespace of its Cluster)
    made: Vec<(&'static str, &'static str)>,
}

impl Leftovers {
    fn of(h: &Harness, made: &[(&'static str, &'static str)]) -> Leftovers {
        Leftovers { env: h.env.clone(), made: made.to_vec() }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let kubectl = |args: &[&str]| {
            let _ = self.env.kubectl("cluster0").args(args).output();
        };
        for (cp, ns) in &self.made {
            kubectl(&["patch", "cloudprovisioner", cp, "--type", "merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
            kubectl(&["delete", "cloudprovisioner", cp, "--ignore-not-found", "--wait=false"]);
            kubectl(&["delete", "apprescheduler", cp, "--ignore-not-found", "--wait=false"]);
            kubectl(&["delete", "clusters.cluster.x-k8s.io", "--all", "-n", ns, "--ignore-not-found", "--timeout=120s"]);
            kubectl(&["delete", "namespace", ns, "--ignore-not-found", "--wait=false"]);
        }
    }
}

/// mck8s's example, unchanged, plus an MCD that overflows the fog: the cloud cluster is
/// provisioned, joins only once usable, takes the overflow, and the pods run there.
#[tokio::test]
async fn the_example_provisions_a_cloud_cluster_for_the_overflow() {
    let _g = serial().await;
    let h = harness("cloud-example").await;
    let _leftovers = Leftovers::of(&h, &[("cp1", "cloud1")]);
    h.apply_yaml(&mcd("burst", "  replicas: 14"));
    h.wait_condition("burst", "Bursting", "True").await;
    let started = std::time::Instant::now();
    apply_cluster_scoped(&h, &common::example("example_cloud_provisioner.yaml"));
    let cp = wait_phase(&h, "cp1", "Ready", PROVISION_BOUND).await;
    let st = cp.status.clone().unwrap();
    assert_eq!(st.cluster.as_deref(), Some("cloud1/cloud1"));
    let cloud = cloud_client(&h, "cloud1", "cloud1").await;
    wait("2 overflow replicas Running in cloud1", PROVISION_BOUND, || async {
        let n = running_in(&cloud, &h.ns.name, "burst").await;
        if n == 2 { Ok(()) } else { Err(format!("{n} running")) }
    })
    .await;
    eprintln!("example: CloudProvisioner applied → 2 replicas Running in the new cloud cluster in {:.1} s", started.elapsed().as_secs_f64());
    // The registry holds mck8s's own member token (deploy/member/rbac.yaml), not Cluster
    // API's admin certificate: enough to run the overflow (above), refused beyond it.
    let registry = Api::<Secret>::namespaced(h.mgmt.clone(), &h.ns.name).get("mck8s-cloud-cloud1").await.unwrap();
    let text = String::from_utf8(registry.data.unwrap()["kubeconfig"].0.clone()).unwrap();
    assert!(text.contains("token:") && !text.contains("client-key-data"), "the registered credentials are a token");
    let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    let member = Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap()).unwrap();
    match Api::<Secret>::namespaced(member.clone(), "kube-system").list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => panic!("the member token lists Secrets: {other:?}"),
    }
    Api::<Node>::all(member).list(&ListParams::default()).await.expect("the member token lists Nodes");
    h.wait_condition("burst", "Bursting", "False").await;

    // The Cluster has the example's fields as the class's variables; the credentials went into
    // a Secret, not into the Cluster, and are never echoed in status or events.
    let cluster = Api::<DynamicObject>::namespaced_with(h.mgmt.clone(), "cloud1", &capi("Cluster")).get("cloud1").await.unwrap();
    let vars = cluster.data["spec"]["topology"]["variables"].as_array().unwrap().clone();
    let names: BTreeSet<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    for want in ["apiServerFloatingIP", "gatewayIP", "externalNetworkID", "securityGroupID", "identityRef", "workerFlavor"] {
        assert!(names.contains(want), "variable {want} in {names:?}");
    }
    let clouds_yaml = cp.spec.clouds_yaml.clone().unwrap();
    assert!(!serde_json::to_string(&cluster.data).unwrap().contains(&clouds_yaml));
    assert!(!serde_json::to_string(&cp.status).unwrap().contains(&clouds_yaml));
    let cred = Api::<Secret>::namespaced(h.mgmt.clone(), "cloud1").get("cloud1-cloud-config").await.unwrap();
    assert!(cred.data.unwrap().contains_key("clouds.yaml"));
    let reasons = events(&h, &cp).await;
    assert_eq!(reasons.iter().filter(|r| *r == "Provisioning").count(), 1, "{reasons:?}");
    assert!(reasons.contains(&"Joined".to_string()), "{reasons:?}");

    h.mcds().delete("burst", &DeleteParams::default()).await.unwrap();
    remove(&h, "cp1", "cloud1").await;
    h.finish().await;
}

/// The same for a MultiClusterJob: Jobs that fit nowhere bring a cloud cluster, and the
/// Job completes there.
#[tokio::test]
async fn an_overflowing_job_gets_a_cloud_cluster() {
    let _g = serial().await;
    let h = harness("cloud-job").await;
    let _leftovers = Leftovers::of(&h, &[("cloud-job", "cloud-job")]);
    // Fill the fog, then a Job of 2 parallel pods that fits nowhere.
    h.apply_yaml(&mcd("filler", "  replicas: 12"));
    h.wait_children_in("filler", &FOG, &[("cluster1", 4), ("cluster2", 4), ("cluster3", 4)]).await;
    h.apply_yaml(
        "apiVersion: fogguru.eu/v1
kind: MultiClusterJob
metadata:
  name: crunch
spec:
  parallelism: 2
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: crunch
        image: registry.example/crunch:1
        resources: {requests: {cpu: '1', memory: 1Gi}}
",
    );
    apply_cluster_scoped(&h, &provisioner("cloud-job", ""));
    wait_phase(&h, "cloud-job", "Ready", PROVISION_BOUND).await;
    let cloud = cloud_client(&h, "cloud-job", "cloud-job").await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(cloud.clone(), &h.ns.name);
    wait("the Job completes in the cloud cluster", PROVISION_BOUND, || async {
        let j = jobs.get_opt("crunch").await.map_err(|e| e.to_string())?.ok_or("no Job yet")?;
        let done = j.status.and_then(|s| s.succeeded).unwrap_or(0);
        if done >= 2 { Ok(()) } else { Err(format!("{done} succeeded")) }
    })
    .await;
    h.mcjs().delete("crunch", &DeleteParams::default()).await.unwrap();
    h.mcds().delete("filler", &DeleteParams::default()).await.unwrap();
    remove(&h, "cloud-job", "cloud-job").await;
    h.finish().await;
}

/// The cloud cluster's own life: pending pods in another namespace cause exactly one scale
/// step, however many reconciles run; an underused node is the one removed; once the
/// rescheduler has brought the replicas back to the fog the cluster is drained, unjoined and
/// deleted in that order, and nothing is left.
#[tokio::test]
async fn scale_out_once_scale_in_the_chosen_node_then_deprovision_when_idle() {
    let _g = serial().await;
    let h = harness("cloud-life").await;
    let _leftovers = Leftovers::of(&h, &[("cloud-life", "cloud-life")]);
    // Leave room for exactly 2 fog replicas, so 2 of 4 burst; the filler goes later.
    h.apply_yaml(&mcd("filler", "  replicas: 10"));
    // Which cluster keeps the 2 free slots is the policy's tie-break; only the total counts.
    h.wait_fog_total("filler", 10).await;
    h.apply_yaml(&mcd("web", "  replicas: 4"));
    apply_cluster_scoped(&h, &provisioner("cloud-life", "  workers: {minReplicas: 1, maxReplicas: 4}\n  sizing: {mode: Legacy}"));
    let cp = wait_phase(&h, "cloud-life", "Ready", PROVISION_BOUND).await;
    let cloud = cloud_client(&h, "cloud-life", "cloud-life").await;
    let nodes: Api<Node> = Api::all(cloud.clone());
    let workers = || async {
        let list = Api::<Node>::all(cloud.clone()).list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
        list.into_iter().filter(|n| !n.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| !t.is_empty())).map(|n| n.name_any()).collect::<BTreeSet<_>>()
    };
    assert_eq!(workers().await.len(), 1, "Legacy: one k8s.large for 2 × 1 CPU");

    // Pods the cloud's scheduler cannot place, in a namespace mck8s knows nothing about.
    let batch = "batch-jobs";
    let _ = Api::<Namespace>::all(cloud.clone()).create(&PostParams::default(), &serde_json::from_value(serde_json::json!({"metadata": {"name": batch}})).unwrap()).await;
    let big: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "big"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "big"}}, "template": {"metadata": {"labels": {"app": "big"}},
            "spec": {"containers": [{"name": "big", "image": "registry.example/big:1", "resources": {"requests": {"cpu": "5", "memory": "4Gi"}}}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(cloud.clone(), batch).create(&PostParams::default(), &big).await.unwrap();
    let clusters: Api<DynamicObject> = Api::namespaced_with(h.mgmt.clone(), "cloud-life", &capi("Cluster"));
    let replicas = || async {
        let c = clusters.get("cloud-life").await.unwrap();
        c.data["spec"]["topology"]["workers"]["machineDeployments"][0]["replicas"].as_i64().unwrap_or(0)
    };
    wait("3 big pods Running after one scale step", PROVISION_BOUND, || async {
        let n = running_in(&cloud, batch, "big").await;
        if n == 3 { Ok(()) } else { Err(format!("{n} running, topology replicas {}; {}", replicas().await, cp_state(&h, "cloud-life").await)) }
    })
    .await;
    // Many reconciles later (1 s poll), still exactly one scale-out.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cp_now = cps(&h).get("cloud-life").await.unwrap();
    let scaled = events(&h, &cp_now).await.iter().filter(|r| *r == "ScaledOut").count();
    assert_eq!(scaled, 1, "{:?}", events(&h, &cp_now).await);
    let after_out = replicas().await;
    assert!(after_out >= 3, "1 node for web, and room for 3 pods of 5 CPU on 8-CPU nodes: {after_out}");

    // The big pods go: nodes become underused, and one named node at a time is removed.
    Api::<Deployment>::namespaced(cloud.clone(), batch).delete("big", &DeleteParams::default()).await.unwrap();
    let before = workers().await;
    wait("one node removed", PROVISION_BOUND, || async {
        let now = workers().await;
        if now.len() < before.len() { Ok(()) } else { Err(format!("{} workers; {}", now.len(), cp_state(&h, "cloud-life").await)) }
    })
    .await;
    let cp_now = cps(&h).get("cloud-life").await.unwrap();
    let removed: BTreeSet<String> = before.difference(&workers().await).cloned().collect();
    let note = {
        let evs: Api<Event> = Api::all(h.mgmt.clone());
        let list = evs.list(&ListParams::default()).await.unwrap().items;
        list.into_iter().filter(|e| e.involved_object.uid == cp_now.uid() && e.reason.as_deref() == Some("ScaledIn")).filter_map(|e| e.message).next().unwrap_or_default()
    };
    assert!(removed.iter().any(|n| note.contains(&format!("node {n} "))), "removed {removed:?}, event {note:?}");

    // Load drops: the filler goes, the rescheduler brings web's cloud replicas to the fog,
    // and the idle cloud cluster is removed.
    h.mcds().delete("filler", &DeleteParams::default()).await.unwrap();
    apply_cluster_scoped(&h, "apiVersion: fogguru.eu/v1\nkind: AppRescheduler\nmetadata:\n  name: cloud-life\nspec:\n  periodSeconds: 2\n");
    wait("web back in the fog", PROVISION_BOUND, || async {
        let fog: i32 = h.children_in("web", &FOG).await.values().sum();
        if fog == 4 { Ok(()) } else { Err(format!("{fog} in the fog")) }
    })
    .await;
    wait_phase(&h, "cloud-life", "Idle", PROVISION_BOUND).await;
    let reasons = events(&h, &cp).await;
    let pos = |r: &str| reasons.iter().position(|x| x == r).unwrap_or_else(|| panic!("{r} in {reasons:?}"));
    assert!(pos("Draining") < pos("Deprovisioning") && pos("Deprovisioning") < pos("Deprovisioned"), "{reasons:?}");
    // Nothing left: no Cluster, no registry Secret, no credentials, no namespace.
    assert!(clusters.get_opt("cloud-life").await.unwrap().is_none());
    let registry: Api<Secret> = Api::namespaced(h.mgmt.clone(), &h.ns.name);
    assert!(registry.get_opt("mck8s-cloud-cloud-life").await.unwrap().is_none());
    wait("namespace cloud-life gone", PROVISION_BOUND, || async {
        let gone = Api::<Namespace>::all(h.mgmt.clone()).get_opt("cloud-life").await.map_err(|e| e.to_string())?.is_none();
        if gone { Ok(()) } else { Err("still there".into()) }
    })
    .await;
    let _ = nodes;
    let _ = Api::<DynamicObject>::all_with(h.mgmt.clone(), &ApiResource::erase::<mck8s_api::AppRescheduler>(&())).delete("cloud-life", &DeleteParams::default()).await;
    remove(&h, "cloud-life", "cloud-life").await;
    h.finish().await;
}

/// Under a quota of one worker the cluster joins with what it got, says so, and asks for
/// more no more than once.
#[tokio::test]
async fn under_quota_the_cluster_joins_with_partial_capacity_and_no_scale_loop() {
    let _g = serial().await;
    let h = harness("cloud-quota").await;
    let _leftovers = Leftovers::of(&h, &[("cloud-quota", "cloud-quota")]);
    inject(&h, "cloud-quota", "cloud-quota", Some("{worker_quota: 1}")).await;
    h.apply_yaml(&mcd("filler", "  replicas: 12"));
    h.wait_children_in("filler", &FOG, &[("cluster1", 4), ("cluster2", 4), ("cluster3", 4)]).await;
    // 10 pods of 3 CPU: BinPack wants several nodes; the quota gives one.
    h.apply_yaml(&mcd_shaped("wide", "  replicas: 10", "{cpu: '3', memory: 1Gi}", ""));
    // Backoff base 30 s: after the partial capacity the next try is 2 minutes away.
    let cp = provisioner("cloud-quota", "  workers: {maxReplicas: 6}\n  flavors: [{name: k8s.large, cpu: '8', memory: 32Gi}]")
        .replace("retryBackoffSeconds: 1", "retryBackoffSeconds: 30");
    apply_cluster_scoped(&h, &cp);
    wait_phase(&h, "cloud-quota", "Ready", PROVISION_BOUND).await;
    wait("PartialCapacity reported", PROVISION_BOUND, || async {
        let cp = cps(&h).get("cloud-quota").await.map_err(|e| e.to_string())?;
        let st = cp.status.unwrap_or_default();
        match mck8s_api::conditions::get(&st.conditions, "Degraded") {
            Some(c) if c.reason == "PartialCapacity" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Reconciles keep running every second; the scale-out count must not grow.
    let cp = cps(&h).get("cloud-quota").await.unwrap();
    let before = events(&h, &cp).await.iter().filter(|r| *r == "ScaledOut").count();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = events(&h, &cp).await.iter().filter(|r| *r == "ScaledOut").count();
    assert_eq!(before, after, "no scale loop under quota");
    assert!(after <= 1);
    let cloud = cloud_client(&h, "cloud-quota", "cloud-quota").await;
    let running = running_in(&cloud, &h.ns.name, "wide").await;
    assert!(running >= 1 && running <= 2, "one 8-CPU worker holds 2 pods of 3 CPU: {running}");
    h.mcds().delete("wide", &DeleteParams::default()).await.unwrap();
    h.mcds().delete("filler", &DeleteParams::default()).await.unwrap();
    remove(&h, "cloud-quota", "cloud-quota").await;
    inject(&h, "cloud-quota", "cloud-quota", None).await;
    h.finish().await;
}

/// A control plane that never comes up: each attempt times out and its Cluster is deleted,
/// the controller backs off, and after maxAttempts it stays Failed until asked to retry.
#[tokio::test]
async fn a_control_plane_that_never_initialises_ends_failed_after_backoff() {
    let _g = serial().await;
    let h = harness("cloud-fail").await;
    let _leftovers = Leftovers::of(&h, &[("cloud-fail", "cloud-fail")]);
    inject(&h, "cloud-fail", "cloud-fail", Some("{control_plane: never}")).await;
    h.apply_yaml(&mcd("filler", "  replicas: 13"));
    h.wait_condition("filler", "Bursting", "True").await;
    apply_cluster_scoped(&h, &provisioner("cloud-fail", "").replace("provisionTimeoutSeconds: 240", "provisionTimeoutSeconds: 4, maxAttempts: 2"));
    let cp = wait_phase(&h, "cloud-fail", "Failed", PROVISION_BOUND).await;
    let st = cp.status.clone().unwrap();
    assert_eq!(st.attempts, 2);
    assert!(st.last_failure.as_deref().unwrap_or_default().contains("not usable"), "{:?}", st.last_failure);
    let reasons = events(&h, &cp).await;
    assert_eq!(reasons.iter().filter(|r| *r == "Provisioning").count(), 2, "{reasons:?}");
    assert_eq!(reasons.iter().filter(|r| *r == "ControlPlaneNotInitialized").count(), 2, "{reasons:?}");
    // Every failed attempt's Cluster was deleted: nothing costs money.
    let clusters: Api<DynamicObject> = Api::namespaced_with(h.mgmt.clone(), "cloud-fail", &capi("Cluster"));
    assert!(clusters.get_opt("cloud-fail").await.unwrap().is_none());
    // Terminal: many reconciles later, still Failed with no new attempt.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let again = cps(&h).get("cloud-fail").await.unwrap();
    assert_eq!(again.status.as_ref().unwrap().attempts, 2);
    assert_eq!(again.status.as_ref().unwrap().phase.as_deref(), Some("Failed"));
    h.mcds().delete("filler", &DeleteParams::default()).await.unwrap();
    // A retry asked for (with the demand gone) resets the attempts.
    cps(&h).patch("cloud-fail", &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"fogguru.eu/retry": "1"}}}))).await.unwrap();
    wait_phase(&h, "cloud-fail", "Idle", PROVISION_BOUND).await;
    remove(&h, "cloud-fail", "cloud-fail").await;
    inject(&h, "cloud-fail", "cloud-fail", None).await;
    h.finish().await;
}

/// A controller killed while its cluster is being provisioned: the new one finds the Cluster
/// by its deterministic name and carries on; there is never a second one.
#[tokio::test]
async fn a_controller_killed_mid_provisioning_resumes_without_a_duplicate() {
    let _g = serial().await;
    let mut h = harness("cloud-crash").await;
    let _leftovers = Leftovers::of(&h, &[("cloud-crash", "cloud-crash")]);
    inject(&h, "cloud-crash", "cloud-crash", Some("{machines: never}")).await;
    h.apply_yaml(&mcd("filler", "  replicas: 13"));
    h.wait_condition("filler", "Bursting", "True").await;
    apply_cluster_scoped(&h, &provisioner("cloud-crash", ""));
    wait_phase(&h, "cloud-crash", "Provisioning", PROVISION_BOUND).await;
    h.restart_controller().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    inject(&h, "cloud-crash", "cloud-crash", None).await;
    let cp = wait_phase(&h, "cloud-crash", "Ready", PROVISION_BOUND).await;
    assert_eq!(cp.status.as_ref().unwrap().attempts, 0, "joined on the first attempt");
    let all: Api<DynamicObject> = Api::all_with(h.mgmt.clone(), &capi("Cluster"));
    let ours = all.list(&ListParams::default().labels("fogguru.eu/cloud-provisioner=cloud-crash")).await.unwrap();
    assert_eq!(ours.items.len(), 1);
    let reasons = events(&h, &cp).await;
    assert_eq!(reasons.iter().filter(|r| *r == "Provisioning").count(), 1, "{reasons:?}");
    h.mcds().delete("filler", &DeleteParams::default()).await.unwrap();
    remove(&h, "cloud-crash", "cloud-crash").await;
    h.finish().await;
}

/// Deleting a CloudProvisioner: while its cluster runs mck8s workloads it waits (and says
/// why); once they are gone the cluster is removed, then the CloudProvisioner. An idle one
/// goes at once. A second CloudProvisioner naming the same cluster is refused.
#[tokio::test]
async fn deleting_a_cloud_provisioner_while_busy_and_while_idle() {
    let _g = serial().await;
    let h = harness("cloud-delete").await;
    let _leftovers = Leftovers::of(&h, &[("cloud-idle-2", "cloud-idle"), ("cloud-idle", "cloud-idle"), ("cloud-busy", "cloud-busy")]);
    apply_cluster_scoped(&h, &provisioner("cloud-idle", ""));
    wait_phase(&h, "cloud-idle", "Idle", PROVISION_BOUND).await;
    // Same cluster name, younger: Conflict, no action.
    apply_cluster_scoped(&h, &provisioner("cloud-idle-2", "").replace("cloudClusterName: cloud-idle-2", "cloudClusterName: cloud-idle"));
    wait("the younger one reports the conflict", PROVISION_BOUND, || async {
        let cp = cps(&h).get("cloud-idle-2").await.map_err(|e| e.to_string())?;
        if mck8s_api::conditions::is_true(&cp.status.unwrap_or_default().conditions, "Conflict") { Ok(()) } else { Err("no Conflict yet".into()) }
    })
    .await;
    remove(&h, "cloud-idle-2", "cloud-idle").await;
    let started = std::time::Instant::now();
    remove(&h, "cloud-idle", "cloud-idle").await;
    eprintln!("idle CloudProvisioner deleted in {:.1} s", started.elapsed().as_secs_f64());

    h.apply_yaml(&mcd("busy", "  replicas: 14"));
    h.wait_condition("busy", "Bursting", "True").await;
    apply_cluster_scoped(&h, &provisioner("cloud-busy", ""));
    wait_phase(&h, "cloud-busy", "Ready", PROVISION_BOUND).await;
    h.wait_condition("busy", "Bursting", "False").await;
    cps(&h).delete("cloud-busy", &DeleteParams::default()).await.unwrap();
    wait("deletion blocked while workloads run", PROVISION_BOUND, || async {
        let cp = cps(&h).get("cloud-busy").await.map_err(|e| e.to_string())?;
        if mck8s_api::conditions::is_true(&cp.status.unwrap_or_default().conditions, "DeletionBlocked") { Ok(()) } else { Err("not blocked yet".into()) }
    })
    .await;
    let clusters: Api<DynamicObject> = Api::namespaced_with(h.mgmt.clone(), "cloud-busy", &capi("Cluster"));
    assert!(clusters.get_opt("cloud-busy").await.unwrap().is_some_and(|c| c.metadata.deletion_timestamp.is_none()));
    h.mcds().delete("busy", &DeleteParams::default()).await.unwrap();
    remove(&h, "cloud-busy", "cloud-busy").await;
    h.finish().await;
}

/// The simulated ClusterTopology gate turned off for one test, and on again after it,
/// whether it passes or panics (a panicking test cannot await, so kubectl puts it back).
struct TopologyGateOff {
    env: std::sync::Arc<mck8s_testenv::TestEnv>,
}

impl TopologyGateOff {
    async fn new(h: &Harness) -> TopologyGateOff {
        mck8s_testenv::capi::access::set_cluster_topology_gate(&h.mgmt, false).await.expect("gate off");
        TopologyGateOff { env: h.env.clone() }
    }
}

impl Drop for TopologyGateOff {
    fn drop(&mut self) {
        let path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/topology/maxProperties";
        let patch = format!(r#"[{{"op":"remove","path":"{path}"}}]"#);
        let _ = self.env.kubectl("cluster0").args(["patch", "crd", "clusters.cluster.x-k8s.io", "--type", "json", "-p", &patch]).output();
    }
}

/// Cluster API without the ClusterTopology gate refuses `spec.topology`: the provisioner
/// falls back to the shipped cluster template (the provider's objects, the original's way),
/// the cluster joins and runs the overflow, the node autoscaler scales the template's
/// MachineDeployment, and deleting the Cluster (only the Cluster) removes every object it
/// owns, in a namespace mck8s did not make and so leaves in place.
#[tokio::test]
async fn without_the_topology_gate_the_clusters_objects_come_from_the_template() {
    let _g = serial().await;
    let h = harness("cloud-template").await;
    let (cp_name, ns) = ("cloud-tmpl", "tmpl");
    let _leftovers = Leftovers::of(&h, &[("cloud-tmpl", "tmpl")]);
    let gate = TopologyGateOff::new(&h).await;
    common::install_cloud_template(&h.mgmt).await;
    let nss: Api<Namespace> = Api::all(h.mgmt.clone());
    let _ = nss.create(&PostParams::default(), &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap()).await;
    h.apply_yaml(&mcd("burst", "  replicas: 14"));
    h.wait_condition("burst", "Bursting", "True").await;
    let fields = "  namespace: tmpl
  extNetworkID: net-1
  securityGroupID: sg-1
  gatewayIP: 10.0.0.1
  workers: {minReplicas: 1, maxReplicas: 4}
  sizing: {mode: Legacy}
  variables: [{name: identityRef, value: {name: openstack-creds, cloudName: openstack}}]";
    apply_cluster_scoped(&h, &provisioner(cp_name, fields));
    let cp = wait_phase(&h, cp_name, "Ready", PROVISION_BOUND).await;
    let st = cp.status.clone().unwrap();
    assert_eq!(st.provisioning_mode.as_deref(), Some("Templates"));
    let cloud = cloud_client(&h, ns, cp_name).await;
    wait("2 overflow replicas Running in the templated cluster", PROVISION_BOUND, || async {
        let n = running_in(&cloud, &h.ns.name, "burst").await;
        if n == 2 { Ok(()) } else { Err(format!("{n} running")) }
    })
    .await;

    // The Cluster names its provider objects instead of a class; they carry the variables
    // and are owned by the Cluster.
    let cluster = Api::<DynamicObject>::namespaced_with(h.mgmt.clone(), ns, &capi("Cluster")).get(cp_name).await.unwrap();
    assert!(cluster.data["spec"].get("topology").is_none(), "{:?}", cluster.data["spec"]);
    assert_eq!(cluster.data["spec"]["infrastructureRef"]["kind"], "OpenStackCluster");
    let provider =
        |group: &str, version: &str, kind: &str| Api::<DynamicObject>::namespaced_with(h.mgmt.clone(), ns, &ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind)));
    let osc = provider("infrastructure.cluster.x-k8s.io", "v1beta1", "OpenStackCluster").get(cp_name).await.unwrap();
    assert_eq!(osc.data["spec"]["externalNetwork"]["id"], "net-1");
    assert_eq!(osc.data["spec"]["identityRef"]["name"], "openstack-creds");
    assert_eq!(osc.owner_references().iter().map(|o| o.uid.as_str()).collect::<Vec<_>>(), [cluster.uid().unwrap().as_str()]);
    let worker_template = provider("infrastructure.cluster.x-k8s.io", "v1beta1", "OpenStackMachineTemplate").get("cloud-tmpl-md-0").await.unwrap();
    assert_eq!(worker_template.data["spec"]["template"]["spec"]["flavor"].as_str(), st.flavor.as_deref());
    let mds: Api<DynamicObject> = Api::namespaced_with(h.mgmt.clone(), ns, &capi("MachineDeployment"));
    let md_replicas = || async { mds.get("cloud-tmpl-md-0").await.unwrap().data["spec"]["replicas"].as_i64().unwrap_or(0) };
    assert_eq!(md_replicas().await, 1, "Legacy: one k8s.large for 2 × 1 CPU");
    let reasons = events(&h, &cp).await;
    assert_eq!(reasons.iter().filter(|r| *r == "RenderedFromTemplate").count(), 1, "{reasons:?}");
    assert_eq!(reasons.iter().filter(|r| *r == "Provisioning").count(), 1, "{reasons:?}");

    // Pods the cloud cannot place: one scale step, on the MachineDeployment.
    let batch = "batch-jobs";
    let _ = Api::<Namespace>::all(cloud.clone()).create(&PostParams::default(), &serde_json::from_value(serde_json::json!({"metadata": {"name": batch}})).unwrap()).await;
    let big: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "big"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "big"}}, "template": {"metadata": {"labels": {"app": "big"}},
            "spec": {"containers": [{"name": "big", "image": "registry.example/big:1", "resources": {"requests": {"cpu": "5", "memory": "4Gi"}}}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(cloud.clone(), batch).create(&PostParams::default(), &big).await.unwrap();
    wait("2 big pods Running after a scale step", PROVISION_BOUND, || async {
        let n = running_in(&cloud, batch, "big").await;
        if n == 2 { Ok(()) } else { Err(format!("{n} running, MachineDeployment replicas {}; {}", md_replicas().await, cp_state(&h, cp_name).await)) }
    })
    .await;
    assert!(md_replicas().await >= 2);
    let md = mds.get("cloud-tmpl-md-0").await.unwrap();
    let replicas_owner = md
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|f| f.fields_v1.as_ref().is_some_and(|v| v.0.pointer("/f:spec/f:replicas").is_some()))
        .map(|f| f.manager.clone().unwrap_or_default())
        .collect::<Vec<_>>();
    assert_eq!(replicas_owner, ["mck8s-node-autoscaler"], "the replicas are the node autoscaler's alone");

    // Idle, then deleted: only the Cluster is deleted, and what it owns goes with it.
    Api::<Deployment>::namespaced(cloud.clone(), batch).delete("big", &DeleteParams::default()).await.unwrap();
    h.mcds().delete("burst", &DeleteParams::default()).await.unwrap();
    let _ = cps(&h).delete(cp_name, &DeleteParams::default()).await;
    wait("the CloudProvisioner and its Cluster gone", PROVISION_BOUND, || async {
        let cp_left = cps(&h).get_opt(cp_name).await.map_err(|e| e.to_string())?.is_some();
        let cluster_left = Api::<DynamicObject>::namespaced_with(h.mgmt.clone(), ns, &capi("Cluster")).get_opt(cp_name).await.map_err(|e| e.to_string())?.is_some();
        if !cp_left && !cluster_left { Ok(()) } else { Err(format!("cp {cp_left}, cluster {cluster_left}")) }
    })
    .await;
    let kinds = [
        ("infrastructure.cluster.x-k8s.io", "v1beta1", "OpenStackCluster"),
        ("infrastructure.cluster.x-k8s.io", "v1beta1", "OpenStackMachineTemplate"),
        ("controlplane.cluster.x-k8s.io", "v1beta2", "KubeadmControlPlane"),
        ("bootstrap.cluster.x-k8s.io", "v1beta2", "KubeadmConfigTemplate"),
        ("cluster.x-k8s.io", "v1beta2", "MachineDeployment"),
    ];
    wait("every object the Cluster owned garbage-collected", PROVISION_BOUND, || async {
        let mut left = Vec::new();
        for (g, v, k) in kinds {
            for o in provider(g, v, k).list(&ListParams::default()).await.map_err(|e| e.to_string())?.items {
                left.push(format!("{k} {}", o.name_any()));
            }
        }
        if left.is_empty() { Ok(()) } else { Err(format!("left: {left:?}")) }
    })
    .await;
    assert!(nss.get_opt(ns).await.unwrap().is_some_and(|n| n.metadata.deletion_timestamp.is_none()), "a namespace mck8s did not make stays");
    let _ = nss.delete(ns, &DeleteParams::default()).await;
    mck8s_testenv::capi::access::set_cluster_topology_gate(&h.mgmt, true).await.expect("gate on");
    drop(gate);
    h.finish().await;
}
