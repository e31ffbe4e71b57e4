//! What-if on the live fleet: `mck8s snapshot` of the test environment, replayed with
//! `mck8s simulate SNAPSHOT --policy best-fit.wasm --replacing worst-fit`. Each object's own
//! policy reproduces its recorded placement; the replacement's placement is then what the
//! controller does when the MCD really switches policy. The snapshot holds no credential
//! and no pod spec.

use crate::common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_replayed_with_another_policy_predicts_the_switch() {
    let _serial = serial().await;
    let port = free_port();
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "whatif").await.unwrap();
    let h = Harness::start_tuned(env, ns, &FOG, None, |c| c.metrics_addr = Some(([127, 0, 0, 1], port).into())).await;
    // cluster2 keeps 2 of its 4 slots: best-fit's pick for web, where worst-fit takes cluster1.
    h.apply_yaml(&mcd("filler", "  locations: cluster2\n  replicas: 2"));
    h.wait_condition("filler", "Ready", "True").await;
    h.apply_yaml(&mcd("web", "  placementPolicy: worst-fit\n  replicas: 2"));
    h.wait_children("web", &[("cluster1", 2)]).await;
    h.wait_condition("web", "Ready", "True").await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.yaml");
    let controller = format!("http://127.0.0.1:{port}");
    mck8s_ok(&h, &["snapshot", "--controller", &controller, "-o", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    println!("snapshot: {} bytes", text.len());
    for secret in ["BEGIN", "token", "client-key", "certificate-authority", "image", "registry.example"] {
        assert!(!text.contains(secret), "the snapshot holds {secret:?}");
    }
    let snap: Value = serde_yaml_ng::from_str(&text).unwrap();
    let names: Vec<&str> = snap["objects"].as_array().unwrap().iter().filter_map(|o| o["name"].as_str()).collect();
    assert_eq!(names, ["filler", "web"], "oldest first");
    assert_eq!(snap["clusters"].as_array().unwrap().len(), 3);

    let best = builtin_dir().join("best-fit.wasm");
    let json = dir.path().join("whatif.json");
    let table = mck8s_ok(&h, &["simulate", file.to_str().unwrap(), "--policy", best.to_str().unwrap(), "--replacing", "worst-fit", "--json", json.to_str().unwrap()]);
    println!("{table}");
    let w: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let object = |name: &str| w["objects"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap().clone();
    for name in ["filler", "web"] {
        let o = object(name);
        assert_eq!(o["now"]["placement"], o["recorded"], "{name}: its own policy decides what the controller recorded");
    }
    let web = object("web");
    assert_eq!(web["whatIf"]["placement"], serde_json::json!({"cluster2": 2}), "{web:#}");
    assert_eq!(web["moved"], 2);
    assert_eq!(object("filler")["moved"], 0);
    assert!(table.lines().any(|l| l.contains("/web") && l.contains("cluster2=2 *")), "{table}");

    // The switch, for real: the controller does what the what-if said.
    h.kubectl_ok(&["patch", "mcd", "web", "--type=merge", "-p", r#"{"spec":{"placementPolicy":"best-fit"}}"#]);
    h.wait_children("web", &[("cluster2", 2)]).await;
    h.finish().await;
}
