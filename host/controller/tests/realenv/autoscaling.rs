//! The MultiClusterHorizontalPodAutoscaler and the rescheduler on the real test environment:
//! CPU load is driven through the simulated kubelets (the `sim.mck8s.io/cpu` annotation of
//! each pod), scraped by the real Prometheus, and read back per cluster by the controller.

use crate::common::*;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use mck8s_api::conditions::{self, ABLE_TO_SCALE};
use mck8s_api::{AppRescheduler, MultiClusterHorizontalPodAutoscaler, MultiClusterHorizontalPodAutoscalerStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Each pod's CPU rate over 6 s (three scrapes): load changes show within seconds.
fn tuned(cfg: &mut mck8s_controller::Config) {
    cfg.timing.cpu_window = Duration::from_secs(6);
}

/// An MCD whose pods request `request` CPU and use `load` cores each (until told otherwise).
fn loaded_mcd(name: &str, request: &str, load: &str, extra: &str) -> String {
    mcd_shaped(name, extra, &format!("{{cpu: '{request}', memory: 64Mi}}"), &format!("{{sim.mck8s.io/cpu: '{load}'}}"))
}

fn mchpa(name: &str, target: &str, min: u32, max: u32, utilization: u32, extra: &str) -> String {
    format!(
        "apiVersion: fogguru.eu/v1
kind: MultiClusterHorizontalPodAutoscaler
metadata:
  name: {name}
spec:
  scaleTargetRef: {{apiVersion: fogguru.eu/v1, kind: MultiClusterDeployment, name: {target}}}
  minReplicas: {min}
  maxReplicas: {max}
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: {utilization}}}}}
{extra}"
    )
}

fn hpas(h: &Harness) -> Api<MultiClusterHorizontalPodAutoscaler> {
    Api::namespaced(h.mgmt.clone(), &h.ns.name)
}

async fn hpa_status(h: &Harness, name: &str) -> MultiClusterHorizontalPodAutoscalerStatus {
    hpas(h).get(name).await.unwrap().status.unwrap_or_default()
}

/// The MCD's `spec.replicas`.
async fn spec_replicas(h: &Harness, name: &str) -> i32 {
    h.mcds().get(name).await.unwrap().spec.replicas.unwrap_or(1)
}

/// Sets the CPU every running pod of `app` uses, in every cluster of `among`.
async fn set_load(h: &Harness, app: &str, among: &[&str], cores: &str) -> usize {
    let patch = serde_json::json!({"metadata": {"annotations": {"sim.mck8s.io/cpu": cores}}});
    let mut n = 0;
    for c in among {
        let pods: Api<Pod> = h.api_in(c).await;
        for p in pods.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items {
            if p.metadata.deletion_timestamp.is_none() {
                pods.patch(p.metadata.name.as_deref().unwrap(), &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
                n += 1;
            }
        }
    }
    n
}

async fn events_of(h: &Harness, kind: &str, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(h.mgmt.clone(), &h.ns.name);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some(kind) && e.involved_object.name.as_deref() == Some(name))
        .collect()
}

fn reasons(events: &[Event]) -> Vec<String> {
    events.iter().filter_map(|e| e.reason.clone()).collect()
}

/// The window's progress in the `mchpa` state: the largest `cluster=seconds` value.
fn below_seconds(status: &MultiClusterHorizontalPodAutoscalerStatus) -> u32 {
    use base64::Engine as _;
    let bytes = status.policy_state.as_deref().and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).lines().filter_map(|l| l.split_once('=')).filter_map(|(_, s)| s.parse().ok()).max().unwrap_or(0)
}

/// Records every distinct (spec replicas, status reason) the objects go through.
struct History {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(i32, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl History {
    fn start(h: &Harness, mcd: &str, hpa: &str) -> Self {
        let (mcds, hpas) = (h.mcds(), hpas(h));
        let (mcd, hpa) = (mcd.to_string(), hpa.to_string());
        let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (s, out) = (stop.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let (Ok(m), Ok(a)) = (mcds.get(&mcd).await, hpas.get(&hpa).await) {
                    let entry = (m.spec.replicas.unwrap_or(1), a.status.and_then(|s| s.reason).unwrap_or_default());
                    let mut v = out.lock().unwrap();
                    if v.last() != Some(&entry) {
                        v.push(entry);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        History { stop, seen, task }
    }

    async fn finish(self) -> Vec<(i32, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        self.seen.lock().unwrap().clone()
    }
}

/// 200m pods using 0.2 cores (100 % of requests) against a 50 % target: the autoscaler
/// doubles them each period up to maxReplicas, stays there, and after the load drops to
/// 10 % scales in to minReplicas only once the stabilisation window has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_out_under_load_and_in_after_the_window_within_min_and_max() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "hpa-scale").await.unwrap();
    let h = Harness::start_tuned(env, ns, &FOG, None, tuned).await;
    h.apply_yaml(&loaded_mcd("web", "200m", "0.2", "  placementPolicy: worst-fit\n  replicas: 1"));
    h.wait_condition("web", "Ready", "True").await;
    let history = History::start(&h, "web", "web");
    let started = std::time::Instant::now();
    h.apply_yaml(&mchpa("web", "web", 2, 5, 50, "  periodSeconds: 2\n  scalingParams: {scaleDownStabilizationSeconds: '12'}\n"));

    // Out, to max and no further.
    h.eventually("scaled out to maxReplicas 5", || async {
        let (r, s) = (spec_replicas(&h, "web").await, hpa_status(&h, "web").await);
        if r == 5 && s.desired_replicas == Some(5) { Ok(()) } else { Err(format!("replicas {r}, status {s:?}")) }
    })
    .await;
    eprintln!("MCHPA created → MCD at maxReplicas 5: {:?}", started.elapsed());
    h.wait_condition_of(&hpas(&h), "web", "ScalingLimited", "True").await;
    h.eventually("5 ready replicas", || async {
        let s = h.status("web").await;
        if s.ready_replicas == 5 { Ok(()) } else { Err(format!("{s:?}")) }
    })
    .await;
    let at_max = hpa_status(&h, "web").await.last_evaluation_time.unwrap();
    h.eventually("two more evaluations at full load", || async {
        let s = hpa_status(&h, "web").await;
        let later = s.last_evaluation_time.as_ref().is_some_and(|t| t.0.duration_since(at_max.0).as_secs() >= 4);
        if later { Ok(()) } else { Err(format!("{:?}", s.last_evaluation_time)) }
    })
    .await;
    assert_eq!(spec_replicas(&h, "web").await, 5, "maxReplicas holds under load");
    let s = hpa_status(&h, "web").await;
    // cluster3 serves metrics.k8s.io, the others are measured through Prometheus. The load is
    // 100 % of requests; a rate over a few scrapes of young pods reads a little lower, so
    // the check is only that it is measured above the 50 % target.
    assert!(s.clusters.iter().all(|c| ["prometheus", "metrics.k8s.io"].contains(&c.source.as_str()) && c.utilization.is_some_and(|u| u > 50)), "{:?}", s.clusters);
    assert_eq!(mck8s_api::conditions::get(&s.conditions, "ScalingLimited").unwrap().reason, "TooManyReplicas");

    // The load drops to 10 %: in to min, after the window.
    let patched = set_load(&h, "web", &FOG, "0.02").await;
    assert_eq!(patched, 5);
    let dropped = std::time::Instant::now();
    h.eventually("scaled in to minReplicas 2", || async {
        let r = spec_replicas(&h, "web").await;
        if r == 2 { Ok(()) } else { Err(format!("replicas {r}, {:?}", hpa_status(&h, "web").await.reason)) }
    })
    .await;
    eprintln!("load dropped → scaled in (12 s window, 6 s rate window, 2 s period): {:?}", dropped.elapsed());
    let seen = history.finish().await;
    let at_max = seen.iter().position(|(r, _)| *r == 5).expect("reached max");
    let first_in = seen[at_max..].iter().position(|(r, _)| *r < 5).map_or(seen.len(), |i| at_max + i);
    assert!(seen[at_max..first_in].iter().any(|(r, reason)| *r == 5 && reason.contains("stabilising")), "the window held replicas at 5 before scaling in: {seen:?}");
    assert!(seen.iter().all(|(r, _)| (1..=5).contains(r)), "{seen:?}");
    let s = hpa_status(&h, "web").await;
    assert_eq!(mck8s_api::conditions::get(&s.conditions, "ScalingLimited").unwrap().reason, "TooFewReplicas");
    let ev = reasons(&events_of(&h, "MultiClusterHorizontalPodAutoscaler", "web").await);
    assert!(ev.contains(&"ScaledOut".to_string()) && ev.contains(&"ScaledIn".to_string()), "{ev:?}");
    h.eventually("the placement follows: 2 replicas", || async {
        let n: i32 = h.children("web").await.values().sum();
        if n == 2 { Ok(()) } else { Err(format!("{n}")) }
    })
    .await;
    h.finish().await;
}

/// One fog cluster with room for four 1-CPU pods and a cloud cluster. Under load the
/// autoscaler asks for 6: the placement bursts two to the cloud and the Service follows.
/// When the load drops, the scale-in is placed in the fog again and the cloud child goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_to_the_cloud_under_load_and_returns_to_the_fog_when_it_drops() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "hpa-burst").await.unwrap();
    let h = Harness::start_tuned(env, ns, &["cluster1", "cloud1"], None, tuned).await;
    h.apply_yaml(&loaded_mcd("burst", "1", "1", "  placementPolicy: worst-fit\n  replicas: 1"));
    h.apply_yaml(
        "apiVersion: fogguru.eu/v1
kind: MultiClusterService
metadata: {name: burst}
spec:
  selector: {app: burst}
  ports: [{port: 80, targetPort: 8080}]
",
    );
    h.wait_condition("burst", "Ready", "True").await;
    let started = std::time::Instant::now();
    h.apply_yaml(&mchpa("burst", "burst", 2, 6, 50, "  periodSeconds: 2\n  scalingParams: {scaleDownStabilizationSeconds: '6'}\n"));
    h.wait_children("burst", &[("cluster1", 4), ("cloud1", 2)]).await;
    eprintln!("MCHPA created → burst to cluster1=4, cloud1=2: {:?}", started.elapsed());
    h.wait_present::<Service>("burst", &ALL, &["cluster1", "cloud1"]).await;
    let s = h.status("burst").await;
    assert_eq!(s.unplaced, 0);
    h.eventually("6 ready", || async {
        let s = h.status("burst").await;
        if s.ready_replicas == 6 { Ok(()) } else { Err(format!("{s:?}")) }
    })
    .await;

    let monitor = ReadyMonitor::start(&h, "burst", &["cluster1", "cloud1"]).await;
    set_load(&h, "burst", &["cluster1", "cloud1"], "0.1").await;
    let dropped = std::time::Instant::now();
    h.wait_children("burst", &[("cluster1", 2)]).await;
    eprintln!("load dropped → back in the fog, cloud child gone: {:?}", dropped.elapsed());
    h.wait_present::<Service>("burst", &ALL, &["cluster1"]).await;
    let (lowest, samples) = monitor.finish().await;
    assert!(samples > 10, "{samples} samples");
    assert!(lowest >= 2, "ready replicas fell to {lowest} below the desired 2");
    assert_eq!(spec_replicas(&h, "burst").await, 2);
    h.finish().await;
}

/// A filler takes three of the fog cluster's four slots, so `app` (3 replicas) runs one in
/// the fog and two in the cloud. With an AppRescheduler (one replica per step) nothing moves
/// while the fog is full; once the filler is gone the two cloud replicas come back one step
/// at a time, each fog replica ready before its cloud one goes: ready never below 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rescheduler_brings_cloud_replicas_back_as_fog_capacity_frees_up() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "resched").await.unwrap();
    let h = Harness::start_tuned(env, ns, &["cluster1", "cloud1"], None, tuned).await;
    h.apply_yaml(&mcd("filler", "  locations: cluster1\n  replicas: 3"));
    h.wait_children("filler", &[("cluster1", 3)]).await;
    h.wait_condition("filler", "Ready", "True").await;
    h.apply_yaml(&mcd("app", "  placementPolicy: worst-fit\n  replicas: 3"));
    h.wait_children("app", &[("cluster1", 1), ("cloud1", 2)]).await;
    h.wait_condition("app", "Ready", "True").await;

    let reschedulers: Api<AppRescheduler> = Api::all(h.mgmt.clone());
    let name = format!("{}-r", h.ns.name);
    let r: AppRescheduler = serde_yaml_ng::from_str(&format!(
        "apiVersion: fogguru.eu/v1\nkind: AppRescheduler\nmetadata: {{name: {name}}}\nspec: {{periodSeconds: 2, maxReplicasPerStep: 1, namespaces: [{}]}}",
        h.ns.name
    ))
    .unwrap();
    reschedulers.create(&Default::default(), &r).await.unwrap();
    // A pass while the fog is full moves nothing.
    h.wait_condition_of(&reschedulers, &name, "Active", "True").await;
    assert_eq!(h.children("app").await, [("cluster1".to_string(), 1), ("cloud1".to_string(), 2)].into());

    let monitor = ReadyMonitor::start(&h, "app", &["cluster1", "cloud1"]).await;
    h.mcds().delete("filler", &DeleteParams::default()).await.unwrap();
    let freed = std::time::Instant::now();
    h.wait_children("app", &[("cluster1", 3)]).await;
    eprintln!("filler deleted → both cloud replicas back in two steps (period 2 s): {:?}", freed.elapsed());
    let (lowest, samples) = monitor.finish().await;
    assert!(samples > 10, "{samples} samples");
    assert!(lowest >= 3, "ready replicas fell to {lowest} during the move");
    let ev = events_of(&h, "MultiClusterDeployment", "app").await;
    let steps: Vec<&Event> = ev.iter().filter(|e| e.reason.as_deref() == Some("Rescheduled")).collect();
    // kube's recorder folds repeats of a reason into one Event with a series count.
    let occurrences: i32 = steps.iter().map(|e| e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1)).sum();
    assert_eq!(occurrences, 2, "one replica per step: {steps:?}");
    assert!(steps.iter().all(|e| e.message.as_deref().unwrap_or("").contains("cloud1=-1 → cluster1=+1")), "{steps:?}");
    let st = reschedulers.get(&name).await.unwrap().status.unwrap();
    assert_eq!(st.moved_replicas, 2, "{st:?}");
    let s = h.status("app").await;
    assert!(s.draining.is_empty() && s.ready_replicas == 3, "{s:?}");
    reschedulers.delete(&name, &DeleteParams::default()).await.unwrap();
    h.finish().await;
}

/// The `mchpa` state (seconds below target per cluster) is in the MCHPA status: a controller
/// crash and a hot reload of the policy (a new version in its ConfigMap) both keep the
/// window going instead of starting it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scaling_state_survives_a_controller_restart_and_a_policy_hot_reload() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "hpa-state").await.unwrap();
    let mut h = Harness::start_tuned(env, ns, &FOG, None, tuned).await;
    // The scaling policy comes from a ConfigMap: today's mchpa.
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = h.ns.api();
    let v1 = std::fs::read(builtin_dir().join("mchpa.wasm")).unwrap();
    api.create(&Default::default(), &mck8s_controller::policy_configmaps::configmap_for("my-scaler", &h.ns.name, &v1).unwrap()).await.unwrap();
    // 4 pods at 10 % of a 50 % target: each period adds to the window; scale-in at 40 s.
    h.apply_yaml(&loaded_mcd("calm", "200m", "0.02", "  placementPolicy: worst-fit\n  replicas: 4"));
    h.wait_condition("calm", "Ready", "True").await;
    h.apply_yaml(&mchpa("calm", "calm", 1, 10, 50, "  periodSeconds: 2\n  scalingPolicy: my-scaler\n  scalingParams: {scaleDownStabilizationSeconds: '40'}\n"));
    h.eventually("the window under way", || async {
        let s = hpa_status(&h, "calm").await;
        if below_seconds(&s) >= 6 { Ok(()) } else { Err(format!("{:?} {:?}", s.reason, s.policy_state)) }
    })
    .await;

    // A crash: the new controller carries on from the stored state.
    h.restart_controller().await;
    let before = below_seconds(&hpa_status(&h, "calm").await);
    h.eventually("the window goes on after the restart", || async {
        let s = hpa_status(&h, "calm").await;
        let b = below_seconds(&s);
        if b > before { Ok(()) } else { Err(format!("{b} (was {before})")) }
    })
    .await;
    // (A state lost in the restart would start again near 0; `before` is at least 6.)

    // A hot reload: a new version of my-scaler (another build of the same formula).
    let old_digest = hpa_status(&h, "calm").await.policy_digest.unwrap();
    let v2 = std::fs::read(builtin_dir().join("mchpa-traffic.wasm")).unwrap();
    api.replace("mck8s-policy-my-scaler", &Default::default(), &mck8s_controller::policy_configmaps::configmap_for("my-scaler", &h.ns.name, &v2).unwrap()).await.unwrap();
    let before = below_seconds(&hpa_status(&h, "calm").await);
    h.eventually("the new version decides, with the window going on", || async {
        let s = hpa_status(&h, "calm").await;
        let b = below_seconds(&s);
        if s.policy_digest.as_deref() != Some(old_digest.as_str()) && b > before { Ok(()) } else { Err(format!("{:?} {b}", s.policy_digest)) }
    })
    .await;
    assert_eq!(spec_replicas(&h, "calm").await, 4, "the window has not passed yet");
    // And the window ends when it should: 4 pods at 10 % → ceil(0.8) = 1.
    h.eventually("scaled in after the window", || async {
        let r = spec_replicas(&h, "calm").await;
        if r == 1 { Ok(()) } else { Err(format!("{r}, {:?}", hpa_status(&h, "calm").await.reason)) }
    })
    .await;
    h.finish().await;
}

/// A scaling policy that appears, and then a new version of it, reach an MCHPA at once: its
/// period is 10 minutes, and each is asked within seconds (the policy registry tells the
/// controller; nothing polls it, and the period does not hold a new version back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaling_policy_that_appears_or_changes_is_asked_at_once_not_at_the_next_period() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "hpa-swap").await.unwrap();
    let h = Harness::start_tuned(env, ns, &FOG, None, tuned).await;
    h.apply_yaml(&loaded_mcd("lazy", "200m", "0.02", "  placementPolicy: worst-fit\n  replicas: 2"));
    h.wait_condition("lazy", "Ready", "True").await;
    h.apply_yaml(&mchpa("lazy", "lazy", 1, 10, 50, "  periodSeconds: 600\n  scalingPolicy: late-scaler\n"));
    h.eventually("evaluated once, without its policy", || async {
        let s = hpa_status(&h, "lazy").await;
        let failed = conditions::get(&s.conditions, ABLE_TO_SCALE).is_some_and(|c| c.reason == "PolicyFailed");
        if failed && s.last_evaluation_time.is_some() { Ok(()) } else { Err(format!("{:?}", s.conditions)) }
    })
    .await;

    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = h.ns.api();
    let v1 = std::fs::read(builtin_dir().join("mchpa.wasm")).unwrap();
    let started = std::time::Instant::now();
    api.create(&Default::default(), &mck8s_controller::policy_configmaps::configmap_for("late-scaler", &h.ns.name, &v1).unwrap()).await.unwrap();
    h.eventually("the policy that appeared decides", || async {
        let s = hpa_status(&h, "lazy").await;
        if s.policy.as_deref() == Some("late-scaler") { Ok(()) } else { Err(format!("{:?}", s.conditions)) }
    })
    .await;
    eprintln!("a policy that appeared was asked {:.1} s after its ConfigMap (period 600 s)", started.elapsed().as_secs_f64());
    let first = hpa_status(&h, "lazy").await.policy_digest.unwrap();

    let v2 = std::fs::read(builtin_dir().join("mchpa-traffic.wasm")).unwrap();
    let started = std::time::Instant::now();
    api.replace("mck8s-policy-late-scaler", &Default::default(), &mck8s_controller::policy_configmaps::configmap_for("late-scaler", &h.ns.name, &v2).unwrap()).await.unwrap();
    h.eventually("the new version decides", || async {
        let s = hpa_status(&h, "lazy").await;
        if s.policy_digest.as_deref().is_some_and(|d| d != first) { Ok(()) } else { Err(format!("{:?}", s.policy_digest)) }
    })
    .await;
    eprintln!("a new version was asked {:.1} s after its ConfigMap changed (period 600 s)", started.elapsed().as_secs_f64());
    h.finish().await;
}

/// Without any metric (Prometheus unreachable, no metrics.k8s.io) the autoscaler says so
/// in a condition and an event and changes nothing, whatever minReplicas says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_metrics_hold_the_replicas_with_a_clear_condition() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "hpa-dark").await.unwrap();
    // Not cluster3: it serves metrics.k8s.io.
    let h = Harness::start_tuned(env, ns, &["cluster1", "cluster2"], None, |cfg| {
        tuned(cfg);
        cfg.prometheus_url = Some(format!("http://127.0.0.1:{}", free_port()));
    })
    .await;
    h.apply_yaml(&loaded_mcd("dark", "200m", "0.02", "  placementPolicy: worst-fit\n  replicas: 3"));
    h.wait_condition("dark", "Ready", "True").await;
    h.apply_yaml(&mchpa("dark", "dark", 1, 10, 50, "  periodSeconds: 1\n  scalingParams: {scaleDownStabilizationSeconds: '1'}\n"));
    let c = h.wait_condition_of(&hpas(&h), "dark", "ScalingActive", "False").await;
    assert_eq!(c.reason, "MissingMetrics");
    assert!(c.message.contains("prometheus") && c.message.contains("never scaling down"), "{}", c.message);
    // Many evaluations later (window 1 s), nothing has moved.
    let first = hpa_status(&h, "dark").await.last_evaluation_time.unwrap();
    h.eventually("five more evaluations", || async {
        let s = hpa_status(&h, "dark").await;
        if s.last_evaluation_time.as_ref().is_some_and(|t| t.0.duration_since(first.0).as_secs() >= 5) { Ok(()) } else { Err(format!("{:?}", s.last_evaluation_time)) }
    })
    .await;
    let s = hpa_status(&h, "dark").await;
    assert_eq!(spec_replicas(&h, "dark").await, 3);
    assert_eq!(s.desired_replicas, Some(3), "{s:?}");
    assert!(s.clusters.iter().all(|c| c.utilization.is_none() && c.source.starts_with("prometheus:")), "{:?}", s.clusters);
    assert!(reasons(&events_of(&h, "MultiClusterHorizontalPodAutoscaler", "dark").await).contains(&"MissingMetrics".to_string()));
    h.finish().await;
}

/// cluster3's simulated kubelet plays metrics-server behind the real API server's aggregator.
/// Without Prometheus, that is the autoscaler's only source: it reads the pods' CPU there and
/// scales an MCD with `locations` through `replicaOverrides`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_k8s_io_is_read_where_a_cluster_serves_it() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "hpa-served").await.unwrap();
    let h = Harness::start_tuned(env, ns, &FOG, None, |cfg| {
        tuned(cfg);
        cfg.prometheus_url = None;
    })
    .await;
    // 0.15 cores on 200m requests: 75 % against a 50 % target.
    h.apply_yaml(&loaded_mcd("served", "200m", "0.15", "  locations: cluster3\n  replicas: 2"));
    h.wait_condition("served", "Ready", "True").await;
    // The aggregated API answers through cluster3's API server, as kubectl sees it.
    let raw = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods?labelSelector=app%3Dserved", h.ns.name);
    let out = h.env.kubectl("cluster3").args(["get", "--raw", &raw]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list["items"][0]["containers"][0]["usage"]["cpu"], "150000000n");

    h.apply_yaml(&mchpa("served", "served", 1, 6, 50, "  periodSeconds: 2\n"));
    h.eventually("measured through metrics.k8s.io", || async {
        let s = hpa_status(&h, "served").await;
        match s.clusters.first() {
            Some(c) if c.source == "metrics.k8s.io" && c.utilization == Some(75) => Ok(()),
            _ => Err(format!("{:?}", s.clusters)),
        }
    })
    .await;
    h.eventually("scaled to max through replicaOverrides", || async {
        let m = h.mcds().get("served").await.unwrap();
        let o = m.spec.replica_overrides.clone();
        if o == Some(serde_json::json!("6")) { Ok(()) } else { Err(format!("{o:?}")) }
    })
    .await;
    h.wait_children("served", &[("cluster3", 6)]).await;
    h.finish().await;
}

/// mck8s's example applies unchanged; a spec it cannot honour is a condition, not a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mck8s_example_applies_and_bad_specs_get_a_condition() {
    let _serial = serial().await;
    let h = Harness::start("hpa-example", &FOG).await;
    h.apply_yaml(&example("example_mchpa.yaml"));
    // Its target does not exist here.
    let c = h.wait_condition_of(&hpas(&h), "hello", "ScalingActive", "False").await;
    assert_eq!(c.reason, "FailedGetScale", "{c:?}");
    h.apply_yaml(&mchpa("bad", "x", 5, 2, 50, ""));
    let c = h.wait_condition_of(&hpas(&h), "bad", "InvalidSpec", "True").await;
    assert!(c.message.contains("below spec.minReplicas"), "{c:?}");
    h.finish().await;
}
