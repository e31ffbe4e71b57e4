//! The real kube-scheduler binds pods to simulated nodes, which then run them; when capacity is
//! exhausted pods stay Pending as Unschedulable.

use std::collections::BTreeSet;

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::wait::conditions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_deployment_is_bound_by_the_real_scheduler_and_becomes_ready() {
    let env = env().await;
    let cluster = "cluster1";
    let ns = env.namespace(cluster, "deploy").await.unwrap();
    let mut kubectl = env.kubectl(cluster);
    kubectl.args(["apply", "-n", &ns.name, "-f", "-"]);
    run_with_stdin(kubectl, &deployment_yaml("web", 3, Some("100m"), &[]));

    wait_for(ns.api::<Deployment>(), "web", ready_replicas(3), "3 ready replicas").await;

    let nodes: BTreeSet<String> = env.fleet().cluster(cluster).unwrap().node_names().into_iter().collect();
    let pods = ns.api::<Pod>().list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(pods.items.len(), 3);
    let mut ips = BTreeSet::new();
    for p in &pods.items {
        let spec = p.spec.as_ref().unwrap();
        let status = p.status.as_ref().unwrap();
        let node = spec.node_name.as_deref().expect("bound by the scheduler");
        assert!(nodes.contains(node), "pod bound to {node}, not a simulated node of {cluster}");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(pod_ready(p));
        ips.insert(status.pod_ip.clone().expect("pod IP"));
    }
    assert_eq!(ips.len(), 3, "pod IPs are distinct: {ips:?}");
    // The binding came from the real scheduler: it records a Scheduled event per pod.
    let events = ns.api::<k8s_openapi::api::core::v1::Event>().list(&ListParams::default()).await.unwrap();
    let scheduled = events.items.iter().filter(|e| e.reason.as_deref() == Some("Scheduled")).count();
    assert_eq!(scheduled, 3, "one Scheduled event per pod");
    ns.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_capacity_leaves_pods_pending_unschedulable() {
    let env = env().await;
    // Exclusive: the test fills the cluster's CPU, which would starve other tests' pods.
    let cluster = env.exclusive("cluster2").await.unwrap();
    let spec = env.fleet().cluster(cluster.cluster()).unwrap().clone();
    let cpu_per_node: u32 = spec.capacity.cpu.parse().expect("whole cores in the fleet's capacity");
    let fit = cpu_per_node * spec.nodes; // one core per pod
    let ns = cluster.namespace("full").await.unwrap();
    let mut kubectl = env.kubectl(cluster.cluster());
    kubectl.args(["apply", "-n", &ns.name, "-f", "-"]);
    run_with_stdin(kubectl, &deployment_yaml("big", fit + 2, Some("1"), &[]));

    wait_for(ns.api::<Deployment>(), "big", ready_replicas(fit as i32), "pods that fit become ready").await;
    let pods = ns.api::<Pod>().list(&ListParams::default().labels("app=big")).await.unwrap();
    let pending: Vec<&Pod> = pods.items.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")).collect();
    let running = pods.items.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
    assert_eq!(running as u32, fit);
    assert_eq!(pending.len(), 2);
    for p in pending {
        let name = p.metadata.name.clone().unwrap();
        // The scheduler reports the failure on the pod's PodScheduled condition.
        let unschedulable = |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")))
        };
        let p = wait_for(ns.api::<Pod>(), &name, unschedulable, "PodScheduled=False/Unschedulable").await;
        assert!(p.spec.unwrap().node_name.is_none());
        let msg = p.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "PodScheduled").unwrap().message.unwrap_or_default();
        assert!(msg.contains("Insufficient cpu"), "scheduler message: {msg}");
    }
    ns.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_pods_complete_after_the_simulated_duration() {
    let env = env().await;
    let ns = env.namespace("cluster3", "job").await.unwrap();
    let job = "apiVersion: batch/v1
kind: Job
metadata:
  name: batch
spec:
  completions: 3
  parallelism: 2
  template:
    metadata:
      annotations: {sim.mck8s.io/duration-seconds: \"1\"}
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: busybox
";
    let mut kubectl = env.kubectl("cluster3");
    kubectl.args(["apply", "-n", &ns.name, "-f", "-"]);
    run_with_stdin(kubectl, job);
    let done = wait_for(ns.api::<Job>(), "batch", conditions::is_job_completed(), "Job complete").await;
    assert_eq!(done.status.unwrap().succeeded, Some(3));
    let pods = ns.api::<Pod>().list(&ListParams::default().labels("job-name=batch")).await.unwrap();
    assert!(pods.items.iter().all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")));
    ns.delete().await.unwrap();
}
