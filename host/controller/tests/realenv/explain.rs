//! `mck8s explain` end to end: the controller's `/explain` asked through the CLI binary and
//! through kubectl's plugin mechanism (`kubectl mck8s explain`), on the real fleet. Each
//! cluster an MCD did not get is named with its real reason: a node too small, no slots,
//! not ready, ranked lower. A component built for WIT 0.1.0 is explained by the host alone.
//! The Placed event carries the condensed form.

use crate::common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, ListParams};
use serde_json::Value;

const CLUSTERS: [&str; 4] = ["cluster1", "cluster2", "cluster3", "cloud1"];

fn explain_json(h: &Harness, port: u16, name: &str) -> Value {
    let out =
        std::process::Command::new(mck8s_bin()).args(["explain", name, "-n", &h.ns.name, "--controller", &format!("http://127.0.0.1:{port}"), "-o", "json"]).output().unwrap();
    assert!(out.status.success(), "mck8s explain {name}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// cluster → (why, replicas, reason, reason from the policy?)
fn rows(v: &Value) -> std::collections::BTreeMap<String, (String, u64, String, bool)> {
    v["explanation"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("cluster"), (s("why"), r["replicas"].as_u64().unwrap(), s("reason"), r["reasonFromPolicy"].as_bool().unwrap()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_real_reason_each_cluster_got_nothing() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let c3 = env.exclusive("cluster3").await.unwrap();
    let ns = env.namespace("cluster0", "explain").await.unwrap();
    let port = free_port();
    let h = Harness::start_tuned(env.clone(), ns, &CLUSTERS, None, |c| c.metrics_addr = Some(([127, 0, 0, 1], port).into())).await;

    // cluster2 full: four 1-CPU replicas on its 2 × 2 CPU.
    h.apply_yaml(&mcd("filler", "  locations: cluster2\n  replicas: 4"));
    h.wait_children("filler", &[("cluster2", 4)]).await;
    h.wait_condition("filler", "Ready", "True").await;
    // web: worst-fit, one location of 2 replicas; cluster1 and cluster3 tie at 4 slots and
    // name order breaks it.
    h.apply_yaml(&mcd("web", "  placementPolicy: worst-fit\n  replicas: 2"));
    h.wait_children("web", &[("cluster1", 2)]).await;
    h.wait_condition("web", "Ready", "True").await;

    let v = explain_json(&h, port, "web");
    assert_eq!((&v["kind"], &v["sameAsRecorded"], &v["explanation"]["policyExplains"]), (&"MultiClusterDeployment".into(), &true.into(), &true.into()), "{v:#}");
    let r = rows(&v);
    assert_eq!((r["cluster1"].0.as_str(), r["cluster1"].1), ("chosen", 2));
    assert_eq!(r["cluster2"].0, "no-slots", "{:?}", r["cluster2"]);
    assert!(r["cluster2"].2.starts_with("no free slots for 1000m cpu, 1Gi memory"), "{:?}", r["cluster2"]);
    assert_eq!(r["cluster3"].0, "passed-over");
    assert!(r["cluster3"].3 && r["cluster3"].2.starts_with("ranked #2 of 2 fog clusters by free slots"), "{:?}", r["cluster3"]);
    assert!(r["cloud1"].3 && r["cloud1"].2.starts_with("cloud: takes only what the fog clusters cannot"), "{:?}", r["cloud1"]);

    // The same through kubectl's plugin mechanism, as a table.
    let plugins = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(mck8s_bin(), plugins.path().join("kubectl-mck8s")).unwrap();
    let path = format!("{}:{}", plugins.path().display(), std::env::var("PATH").unwrap_or_default());
    let out = std::process::Command::new(mck8s_testenv::paths::tool_bin("kubectl"))
        .env("PATH", path)
        .env("KUBECONFIG", env.kubeconfig("cluster0"))
        .args(["mck8s", "explain", "web", "-n", &h.ns.name, "--controller", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kubectl mck8s explain: {}", String::from_utf8_lossy(&out.stderr));
    println!("kubectl mck8s explain web:\n{table}");
    assert!(table.lines().any(|l| l.starts_with("cluster2 ") && l.contains("[host] no free slots")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("cluster3 ") && l.contains("ranked #2 of 2")), "{table}");

    // The Placed event, condensed.
    let events: Api<Event> = Api::namespaced(h.mgmt.clone(), &h.ns.name);
    let placed: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Placed") && e.involved_object.name.as_deref() == Some("web"))
        .filter_map(|e| e.message)
        .collect();
    assert!(placed.iter().any(|m| m.contains("passed over: cluster2 no free slots; cloud1, cluster3 passed over by the policy")), "{placed:?}");

    // big: one replica of 3 CPU fits no fog node (2 CPU each); cloud1's are 16.
    h.apply_yaml(&mcd_shaped("big", "  placementPolicy: worst-fit\n  replicas: 1", "{cpu: '3', memory: 1Gi}", ""));
    h.wait_children("big", &[("cloud1", 1)]).await;
    let r = rows(&explain_json(&h, port, "big"));
    for fog in ["cluster1", "cluster2", "cluster3"] {
        assert_eq!((r[fog].0.as_str(), r[fog].2.as_str()), ("too-small", "too small for one replica: needs 3000m cpu: the largest node has 2000m"), "{fog}");
    }

    // cluster3 loses its nodes: NotReady, and explain says so at once (the recorded
    // placement does not use it, so nothing moves).
    for n in ["cluster3-node0", "cluster3-node1"] {
        env.set_node_lost(&c3, n, true).await.unwrap();
    }
    h.eventually("explain sees cluster3 not ready", || async {
        let r = rows(&explain_json(&h, port, "web"));
        if r["cluster3"].0 == "not-ready" && r["cluster3"].2.contains("NotReady") { Ok(()) } else { Err(format!("{:?}", r["cluster3"])) }
    })
    .await;
    for n in ["cluster3-node0", "cluster3-node1"] {
        env.set_node_lost(&c3, n, false).await.unwrap();
    }

    // A component built for WIT 0.1.0, from a ConfigMap: the host's reasons only.
    let cm = mck8s_controller::policy_configmaps::configmap_for("old", &h.ns.name, &mck8s_policy::built::read("mck8s_guest_wit_0_1_0.wasm")).unwrap();
    let cms: Api<ConfigMap> = h.ns.api();
    cms.create(&Default::default(), &cm).await.unwrap();
    h.apply_yaml(&mcd("legacy", "  placementPolicy: old\n  replicas: 1"));
    h.wait_condition("legacy", "Placed", "True").await;
    let v = explain_json(&h, port, "legacy");
    assert_eq!((&v["explanation"]["witVersion"], &v["explanation"]["policyExplains"]), (&"0.1.0".into(), &false.into()), "{v:#}");
    let r = rows(&v);
    assert_eq!(r["cluster2"].0, "no-slots");
    let passed: Vec<&(String, u64, String, bool)> = r.values().filter(|x| x.0 == "passed-over").collect();
    assert!(!passed.is_empty() && passed.iter().all(|x| !x.3 && x.2.ends_with("(the policy gives no reason)")), "{r:?}");

    // Bad input: a clear error, nothing asked of the API server.
    let out = std::process::Command::new(mck8s_bin()).args(["explain", "../secrets", "-n", &h.ns.name, "--controller", &format!("http://127.0.0.1:{port}")]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("400 Bad Request"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(mck8s_bin()).args(["explain", "nobody", "-n", &h.ns.name, "--controller", &format!("http://127.0.0.1:{port}")]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("404 Not Found"), "{}", String::from_utf8_lossy(&out.stderr));
    h.finish().await;
}
