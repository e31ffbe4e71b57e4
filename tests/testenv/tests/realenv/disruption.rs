//! Whole-cluster loss (apiserver stopped and restarted) and simulated node loss.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_restart_keeps_objects_and_the_cluster_keeps_working() {
    let env = env().await;
    let cluster = env.exclusive("cluster3").await.unwrap();
    let ns = cluster.namespace("restart").await.unwrap();
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "keep"}, "data": {"answer": "42"}}))
    .unwrap();
    let cm = ns.api::<ConfigMap>().create(&PostParams::default(), &cm).await.unwrap();
    let mut kubectl = env.kubectl(cluster.cluster());
    kubectl.args(["apply", "-n", &ns.name, "-f", "-"]);
    run_with_stdin(kubectl, &deployment_yaml("web", 2, None, &[]));
    let before = wait_for(ns.api::<Deployment>(), "web", ready_replicas(2), "2 ready before the outage").await;

    env.stop_cluster(&cluster).await.unwrap();
    // The cluster is really gone: a fresh client cannot reach it.
    let err = env.client(cluster.cluster()).await.unwrap().apiserver_version().await;
    assert!(err.is_err(), "apiserver still answers after stop: {err:?}");

    env.start_cluster(&cluster).await.unwrap();
    let client = env.client(cluster.cluster()).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let after = cms.get("keep").await.unwrap();
    assert_eq!(after.metadata.uid, cm.metadata.uid);
    assert_eq!(after.data.unwrap()["answer"], "42");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let d = deploys.get("web").await.unwrap();
    assert_eq!(d.metadata.uid, before.metadata.uid);

    // Controllers, scheduler and simulated kubelet reconnected: scaling up works end to end.
    deploys.patch("web", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"replicas": 3}}))).await.unwrap();
    wait_for(deploys, "web", ready_replicas(3), "3 ready after the restart").await;
    ns.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_loss_makes_the_node_unready_and_unschedulable_until_it_returns() {
    let env = env().await;
    let cluster = env.exclusive("cloud1").await.unwrap();
    let ns = cluster.namespace("nodeloss").await.unwrap();
    let nodes: Api<Node> = Api::all(ns.client.clone());
    let mut kubectl = env.kubectl(cluster.cluster());
    kubectl.args(["apply", "-n", &ns.name, "-f", "-"]);
    run_with_stdin(kubectl, &deployment_yaml("before", 6, None, &[]));
    wait_for(ns.api::<Deployment>(), "before", ready_replicas(6), "6 ready").await;
    // Lose a node that runs one of our pods.
    let some_pod = ns.api::<Pod>().list(&ListParams::default().labels("app=before")).await.unwrap().items.remove(0);
    let lost_node = some_pod.spec.unwrap().node_name.unwrap();
    let lost = lost_node.as_str();

    env.set_node_lost(&cluster, lost, true).await.unwrap();
    let ready_unknown =
        |n: Option<&Node>| n.and_then(|n| n.status.as_ref()).and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "Unknown"));
    let node = wait_for(nodes.clone(), lost, ready_unknown, "lost node Ready=Unknown").await;
    let taints = node.spec.unwrap().taints.unwrap_or_default();
    assert!(taints.iter().any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoSchedule"), "{taints:?}");
    // Its pods are reported not Ready; the Deployment sees fewer ready replicas.
    let pods = ns.api::<Pod>().list(&ListParams::default().fields(&format!("spec.nodeName={lost}"))).await.unwrap();
    for p in &pods.items {
        assert!(!pod_ready(p), "pod {:?} on a lost node still Ready", p.metadata.name);
    }

    // Nobody finishes a deletion on a lost node: the pod stays, Terminating.
    let victim = pods.items.first().expect("the lost node runs a pod of ours");
    let victim_name = victim.metadata.name.clone().unwrap();
    let victim_uid = victim.metadata.uid.clone().unwrap();
    ns.api::<Pod>().delete(&victim_name, &Default::default()).await.unwrap();
    let terminating = ns.api::<Pod>().get(&victim_name).await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());

    // The real scheduler avoids the tainted node.
    let mut kubectl = env.kubectl(cluster.cluster());
    kubectl.args(["apply", "-n", &ns.name, "-f", "-"]);
    run_with_stdin(kubectl, &deployment_yaml("during", 4, None, &[]));
    wait_for(ns.api::<Deployment>(), "during", ready_replicas(4), "4 ready on the remaining nodes").await;
    let during = ns.api::<Pod>().list(&ListParams::default().labels("app=during")).await.unwrap();
    for p in &during.items {
        assert_ne!(p.spec.as_ref().unwrap().node_name.as_deref(), Some(lost));
    }

    env.set_node_lost(&cluster, lost, false).await.unwrap();
    wait_for(nodes, lost, |n: Option<&Node>| mck8s_testenv::kubelet::node_is_ready(n), "node Ready again").await;
    wait_for(ns.api::<Deployment>(), "before", ready_replicas(6), "pods Ready again").await;
    // ...and the kubelet, back, finishes the pending deletion.
    let gone = kube::runtime::wait::conditions::is_deleted(&victim_uid);
    tokio::time::timeout(WAIT, kube::runtime::wait::await_condition(ns.api::<Pod>(), &victim_name, gone)).await.expect("deleted after restore").unwrap();
    ns.delete().await.unwrap();
}
