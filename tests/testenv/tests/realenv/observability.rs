//! Real serf agents, one per cluster; real Prometheus scraping the simulated kubelets'
//! per-pod metrics with a `cluster_name` label.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use mck8s_testenv::addons::serf_members;
use mck8s_testenv::kubelet::{ANN_RX, RX_METRIC};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serf_members_lists_every_cluster() {
    let env = env().await;
    assert!(env.has_serf(), "environment started without --serf");
    let members: BTreeMap<String, String> = serf_members(env.fleet()).unwrap().into_iter().collect();
    for c in env.cluster_names() {
        assert_eq!(members.get(&c).map(String::as_str), Some("alive"), "serf member {c}: {members:?}");
    }
    assert_eq!(members.len(), env.cluster_names().len());
}

/// Queries Prometheus until `accept` likes the result vector (scrapes are every 2 s).
async fn query_until(url: &str, promql: &str, accept: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let body: serde_json::Value = http.get(format!("{url}/api/v1/query")).query(&[("query", promql)]).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["status"], "success", "{body}");
        let result = body["data"]["result"].as_array().cloned().unwrap_or_default();
        if accept(&result) {
            return result;
        }
        assert!(Instant::now() < deadline, "prometheus: {promql} never satisfied; last {result:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_returns_the_simulated_metrics_of_every_cluster() {
    let env = env().await;
    let url = env.prometheus_url().expect("environment started without --prometheus");
    let clusters = env.cluster_names();
    let mut namespaces = Vec::new();
    for c in &clusters {
        let ns = env.namespace(c, "prom").await.unwrap();
        let mut kubectl = env.kubectl(c);
        kubectl.args(["apply", "-n", &ns.name, "-f", "-"]);
        // The "hot" pod receives 1000x the bytes of the "cold" one (load via annotations).
        run_with_stdin(kubectl, &(deployment_yaml("hot", 1, None, &[(ANN_RX, "1000000")]) + "---\n" + &deployment_yaml("cold", 1, None, &[(ANN_RX, "1000")])));
        namespaces.push(ns);
    }
    for ns in &namespaces {
        wait_for(ns.api::<Deployment>(), "hot", ready_replicas(1), "hot ready").await;
        wait_for(ns.api::<Deployment>(), "cold", ready_replicas(1), "cold ready").await;
    }
    let ns_regex = namespaces.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join("|");

    let promql = format!("sum by (cluster_name) ({RX_METRIC}{{namespace=~\"{ns_regex}\"}})");
    let want: BTreeSet<&str> = clusters.iter().map(String::as_str).collect();
    let result = query_until(&url, &promql, |r| {
        let got: BTreeSet<&str> = r.iter().filter_map(|s| s["metric"]["cluster_name"].as_str()).collect();
        got == want && r.iter().all(|s| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) > 0.0)
    })
    .await;
    assert_eq!(result.len(), clusters.len());

    // Per pod, the hot pod's counter grows faster: the configured load drives the metric.
    let per_pod = format!("sum by (cluster_name, pod) ({RX_METRIC}{{namespace=~\"{ns_regex}\"}})");
    let positive = |s: &serde_json::Value| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) > 0.0;
    let result = query_until(&url, &per_pod, |r| r.len() == 2 * clusters.len() && r.iter().all(positive)).await;
    for c in &clusters {
        let value = |prefix: &str| {
            result
                .iter()
                .find(|s| s["metric"]["cluster_name"] == c.as_str() && s["metric"]["pod"].as_str().is_some_and(|p| p.starts_with(prefix)))
                .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{c}: no {prefix} series in {result:?}"))
        };
        assert!(value("hot-") > value("cold-"), "{c}: hot {} <= cold {}", value("hot-"), value("cold-"));
    }
    for ns in namespaces {
        ns.delete().await.unwrap();
    }
}
