//! Real Helm (from the PyPI wheel) installs a chart into a cluster of the environment.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_a_chart_and_waits_for_it() {
    let env = env().await;
    let ns = env.namespace("cluster2", "helm").await.unwrap();
    let dir = std::env::temp_dir().join(format!("mck8s-helm-{}", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let mut create = env.helm("cluster2");
    create.current_dir(&dir).args(["create", "demo"]);
    run(create);

    // `--wait` returns only once the chart's Deployment is ready: the simulated kubelet runs it.
    let mut install = env.helm("cluster2");
    install.args(["install", "demo", dir.join("demo").to_str().unwrap(), "-n", &ns.name, "--wait", "--timeout", "2m", "--set", "replicaCount=2"]);
    run(install);

    wait_for(ns.api::<Deployment>(), "demo", ready_replicas(2), "chart Deployment ready").await;
    let mut list = env.helm("cluster2");
    list.args(["list", "-n", &ns.name, "-o", "json"]);
    let releases: serde_json::Value = serde_json::from_str(&run(list)).unwrap();
    assert_eq!(releases[0]["name"], "demo");
    assert_eq!(releases[0]["status"], "deployed");
    std::fs::remove_dir_all(&dir).unwrap();
    ns.delete().await.unwrap();
}
