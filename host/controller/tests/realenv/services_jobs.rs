//! MultiClusterServices and MultiClusterJobs on the real test environment, and drift repair
//! of every child kind: the mck8s service example applied unchanged, Services following
//! their Deployment's placement both ways, Jobs completing in several clusters with the
//! status aggregated, deletes that leave nothing behind, and hand edits and deletes in
//! workload clusters put back.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};

/// A Job of `completions` pods of 100m each, every pod running `seconds` (simulated).
fn mcj(name: &str, placement: &str, completions: u32, seconds: u32) -> String {
    format!(
        "apiVersion: fogguru.eu/v1
kind: MultiClusterJob
metadata:
  name: {name}
spec:
{placement}
  completions: {completions}
  backoffLimit: 2
  template:
    metadata:
      annotations: {{sim.mck8s.io/duration-seconds: '{seconds}'}}
    spec:
      restartPolicy: Never
      containers:
      - name: {name}
        image: registry.example/{name}:1
        resources:
          requests: {{cpu: 100m, memory: 64Mi}}
"
    )
}

async fn uid<K>(api: &Api<K>, name: &str) -> String
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get(name).await.unwrap().uid().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_follow_their_deployment_both_ways_and_the_mck8s_example_applies_unchanged() {
    let _serial = serial().await;
    let h = Harness::start("mcs-follow", &ALL).await;
    // The mck8s example before its MCD exists: nothing anywhere, and status says why.
    h.apply_yaml(&example("example_service.yaml"));
    let c = h.wait_condition_of(&h.mcss(), "hello", "Ready", "False").await;
    assert_eq!(c.reason, "NoClusters", "{c:?}");
    assert!(h.present::<Service>("hello", &ALL).await.is_empty());

    // Example 02 places hello in the three fog clusters: the Service follows.
    h.apply_yaml(&example("02_example_deployment_worst_fit.yaml"));
    h.wait_children("hello", &[("cluster1", 2), ("cluster2", 2), ("cluster3", 2)]).await;
    h.wait_present::<Service>("hello", &ALL, &["cluster1", "cluster2", "cluster3"]).await;
    let svc: Service = h.api_in("cluster2").await.get("hello").await.unwrap();
    assert_eq!(svc.annotations().get("io.cilium/global-service").map(String::as_str), Some("true"));
    let spec = svc.spec.unwrap();
    assert_eq!(spec.ports.unwrap()[0].port, 80);
    assert_eq!(spec.selector.unwrap().get("tier").map(String::as_str), Some("backend"));
    h.wait_condition_of(&h.mcss(), "hello", "Ready", "True").await;

    // Example 01 moves hello off cluster1: its Service goes there too (once the child drained).
    h.apply_yaml(&example("01_example_deployment_preferred_clusters.yaml"));
    h.wait_children("hello", &[("cluster2", 2), ("cluster3", 2)]).await;
    h.wait_present::<Service>("hello", &ALL, &["cluster2", "cluster3"]).await;

    // And back onto cluster1 (the add path mck8s never got right).
    h.kubectl_ok(&["patch", "mcd", "hello", "--type=merge", "-p", r#"{"spec":{"locations":"cluster1, cluster3"}}"#]);
    h.wait_children("hello", &[("cluster1", 2), ("cluster3", 2)]).await;
    h.wait_present::<Service>("hello", &ALL, &["cluster1", "cluster3"]).await;
    let s = h.mcss().get("hello").await.unwrap().status.unwrap();
    assert_eq!(s.clusters, vec!["cluster1", "cluster3"]);

    // A spec change reaches the Services that already exist (mck8s never patched them).
    h.kubectl_ok(&["patch", "mcs", "hello", "--type=merge", "-p", r#"{"spec":{"ports":[{"protocol":"TCP","port":8080,"targetPort":"http"}]}}"#]);
    h.eventually("port 8080 in cluster1 and cluster3", || async {
        for c in ["cluster1", "cluster3"] {
            let s: Service = h.api_in(c).await.get("hello").await.map_err(|e| e.to_string())?;
            let ports: Vec<i32> = s.spec.unwrap().ports.unwrap().iter().map(|p| p.port).collect();
            if ports != [8080] {
                return Err(format!("{c}: {ports:?}"));
            }
        }
        Ok(())
    })
    .await;

    // Explicit locations, and the external-dns translation.
    h.apply_yaml(
        "apiVersion: fogguru.eu/v1
kind: MultiClusterService
metadata:
  name: pinned
  annotations: {external-dns.alpha.kubernetes.io/internal-hostname: x}
spec:
  locations: cluster2, cloud1
  selector: {app: pinned}
  ports: [{port: 443}]
",
    );
    h.wait_present::<Service>("pinned", &ALL, &["cloud1", "cluster2"]).await;
    let svc: Service = h.api_in("cloud1").await.get("pinned").await.unwrap();
    assert_eq!(svc.annotations().get("external-dns.alpha.kubernetes.io/hostname").map(String::as_str), Some("pinned.fogguru.apps"));

    // Bad input: a condition and an event, nothing touched.
    h.apply_yaml("apiVersion: fogguru.eu/v1\nkind: MultiClusterService\nmetadata: {name: broken}\nspec: {ports: 80}\n");
    let c = h.wait_condition_of(&h.mcss(), "broken", "InvalidSpec", "True").await;
    assert!(c.message.contains("ServiceSpec"), "{}", c.message);
    assert!(h.present::<Service>("broken", &ALL).await.is_empty());

    // Deleting an MCS removes its Services everywhere.
    h.mcss().delete("hello", &DeleteParams::default()).await.unwrap();
    h.wait_present::<Service>("hello", &ALL, &[]).await;
    h.mcss().delete("pinned", &DeleteParams::default()).await.unwrap();
    h.wait_present::<Service>("pinned", &ALL, &[]).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_in_several_clusters_with_the_status_aggregated_and_delete_cleanly() {
    let _serial = serial().await;
    let h = Harness::start("mcj-run", &ALL).await;
    h.apply_yaml(&mcj("batch", "  placementPolicy: worst-fit\n  numberOfLocations: 3", 2, 2));
    let c = h.wait_condition_of(&h.mcjs(), "batch", "Complete", "True").await;
    assert_eq!(c.message, "3/3 Jobs complete");
    let s = h.mcjs().get("batch").await.unwrap().status.unwrap();
    assert_eq!((s.succeeded, s.failed, s.unplaced, s.completions.as_deref()), (3, 0, 0, Some("3/3")));
    let clusters: Vec<&str> = s.jobs.iter().map(|j| j.cluster.as_str()).collect();
    assert_eq!(clusters.len(), 3);
    assert!(s.jobs.iter().all(|j| j.state == "Complete" && j.succeeded == 2), "{:?}", s.jobs);
    assert_eq!(s.message.unwrap().message, "provisioned");
    // Each chosen cluster ran the whole Job: two succeeded pods each.
    for c in &clusters {
        let pods: Api<Pod> = h.api_in(c).await;
        let done = pods.list(&ListParams::default().labels("fogguru.eu/owner=batch")).await.unwrap();
        let succeeded = done.items.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")).count();
        assert_eq!(succeeded, 2, "{c}");
    }
    let table = h.kubectl_ok(&["get", "mcj"]);
    assert!(table.contains("3/3"), "{table}");

    // Deleting it deletes the Jobs and their pods (mck8s orphaned the pods).
    h.mcjs().delete("batch", &DeleteParams::default()).await.unwrap();
    h.wait_present::<Job>("batch", &ALL, &[]).await;
    h.eventually("the Jobs' pods gone", || async {
        for c in ALL {
            let pods: Api<Pod> = h.api_in(c).await;
            let left = pods.list(&ListParams::default().labels("fogguru.eu/owner=batch")).await.map_err(|e| e.to_string())?.items.len();
            if left > 0 {
                return Err(format!("{left} pods in {c}"));
            }
        }
        Ok(())
    })
    .await;

    // Bad input is a condition, not a crash loop.
    h.apply_yaml(&mcj("nothing", "  locations: cluster1", 1, 1).replace("completions: 1", "parallelism: 0"));
    let c = h.wait_condition_of(&h.mcjs(), "nothing", "InvalidSpec", "True").await;
    assert!(c.message.contains("parallelism is 0"), "{}", c.message);
    assert!(h.present::<Job>("nothing", &ALL).await.is_empty());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_edited_or_deleted_by_hand_are_restored_for_every_kind() {
    let _serial = serial().await;
    let h = Harness::start("drift", &ALL).await;
    h.apply_yaml(&mcd("app", "  locations: cluster1\n  replicas: 1"));
    h.apply_yaml("apiVersion: fogguru.eu/v1\nkind: MultiClusterService\nmetadata: {name: app}\nspec:\n  selector: {app: app}\n  ports: [{port: 80}]\n");
    // A Job that runs long enough to be tampered with.
    h.apply_yaml(&mcj("work", "  locations: cluster2", 1, 600));
    h.wait_children("app", &[("cluster1", 1)]).await;
    h.wait_present::<Service>("app", &ALL, &["cluster1"]).await;
    h.wait_present::<Job>("work", &ALL, &["cluster2"]).await;
    let deployments: Api<Deployment> = h.api_in("cluster1").await;
    let services: Api<Service> = h.api_in("cluster1").await;
    let jobs: Api<Job> = h.api_in("cluster2").await;

    // Deployment: scaled by hand → back to the decided replicas; deleted → re-created.
    deployments.patch("app", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"replicas": 3}}))).await.unwrap();
    h.wait_children("app", &[("cluster1", 1)]).await;
    let before = uid(&deployments, "app").await;
    deployments.delete("app", &DeleteParams::default()).await.unwrap();
    h.eventually("Deployment re-created", || async {
        match deployments.get_opt("app").await.map_err(|e| e.to_string())? {
            Some(d) if d.uid().as_deref() != Some(before.as_str()) && d.metadata.deletion_timestamp.is_none() => Ok(()),
            other => Err(format!("{:?}", other.map(|d| d.uid()))),
        }
    })
    .await;

    // Service: selector changed by hand → restored; deleted → re-created.
    services.patch("app", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"selector": {"app": "elsewhere"}}}))).await.unwrap();
    h.eventually("Service selector restored", || async {
        let s = services.get("app").await.map_err(|e| e.to_string())?;
        let sel = s.spec.and_then(|s| s.selector).unwrap_or_default();
        if sel.get("app").map(String::as_str) == Some("app") { Ok(()) } else { Err(format!("{sel:?}")) }
    })
    .await;
    let before = uid(&services, "app").await;
    services.delete("app", &DeleteParams::default()).await.unwrap();
    h.eventually("Service re-created", || async {
        match services.get_opt("app").await.map_err(|e| e.to_string())? {
            Some(s) if s.uid().as_deref() != Some(before.as_str()) => Ok(()),
            other => Err(format!("{:?}", other.map(|s| s.uid()))),
        }
    })
    .await;

    // Job (still running): parallelism changed by hand → restored; deleted → re-created.
    jobs.patch("work", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"parallelism": 3}}))).await.unwrap();
    h.eventually("Job parallelism restored", || async {
        let j = jobs.get("work").await.map_err(|e| e.to_string())?;
        let p = j.spec.and_then(|s| s.parallelism);
        if p == Some(1) { Ok(()) } else { Err(format!("{p:?}")) }
    })
    .await;
    let before = uid(&jobs, "work").await;
    jobs.delete("work", &DeleteParams::background()).await.unwrap();
    h.eventually("Job re-created", || async {
        match jobs.get_opt("work").await.map_err(|e| e.to_string())? {
            Some(j) if j.uid().as_deref() != Some(before.as_str()) && j.metadata.deletion_timestamp.is_none() => Ok(()),
            other => Err(format!("{:?}", other.map(|j| j.uid()))),
        }
    })
    .await;
    h.finish().await;
}

/// An MCJ naming a policy nobody has loaded is InvalidSpec; once the policy arrives (a
/// ConfigMap), the MCJ is decided without being touched. An InvalidSpec object is never
/// requeued (it waits for a change), so only the policy registry's notification can wake it:
/// no polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcj_created_before_its_policy_runs_once_the_policy_loads() {
    let _serial = serial().await;
    let h = Harness::start("mcj-late-policy", &ALL).await;
    h.apply_yaml(&mcj("late", "  placementPolicy: night-shift\n  numberOfLocations: 1", 1, 1));
    h.wait_condition_of(&h.mcjs(), "late", "InvalidSpec", "True").await;
    let bytes = std::fs::read(builtin_dir().join("worst-fit.wasm")).unwrap();
    let cm = mck8s_controller::policy_configmaps::configmap_for("night-shift", &h.ns.name, &bytes).unwrap();
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = h.ns.api();
    let started = std::time::Instant::now();
    api.create(&Default::default(), &cm).await.unwrap();
    h.wait_condition_of(&h.mcjs(), "late", "Placed", "True").await;
    eprintln!("ConfigMap created → MCJ placed by it in {:?} (InvalidSpec objects are never requeued)", started.elapsed());
    let c = h.wait_condition_of(&h.mcjs(), "late", "Complete", "True").await;
    assert_eq!(c.message, "1/1 Jobs complete");
    assert_eq!(h.mcjs().get("late").await.unwrap().status.unwrap().policy.as_deref(), Some("night-shift"));
    h.finish().await;
}
