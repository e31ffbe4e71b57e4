//! The MultiClusterDeployment controller on the real test environment: the mck8s examples
//! applied unchanged with kubectl, each policy on a fleet of known capacity, overflow,
//! bursting, updates, deletes, concurrent MCDs, bad input and ConfigMap policies.
//!
//! Default fleet: cluster1–3 are fog clusters of 2 nodes × 2 CPU / 4 GiB (four 1-CPU/1-GiB
//! replicas each), cloud1 has 3 × 16 CPU / 64 GiB.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mck8s_examples_apply_unchanged_and_update_and_delete() {
    let _serial = serial().await;
    let h = Harness::start("mcd-examples", &ALL).await;
    // 02: worst_fit, numberOfLocations 3, replicas 2 → 2 in each of the 3 roomiest (fog) clusters.
    h.apply_yaml(&example("02_example_deployment_worst_fit.yaml"));
    h.wait_children("hello", &[("cluster1", 2), ("cluster2", 2), ("cluster3", 2)]).await;
    let ready = h.wait_condition("hello", "Ready", "True").await;
    assert!(ready.message.starts_with("6/6"), "{}", ready.message);
    let s = h.status("hello").await;
    assert_eq!((s.replicas, s.ready_replicas, s.unplaced), (6, 6, 0));
    assert_eq!(s.message.unwrap().message, "provisioned");
    // kubectl shows the printer columns and the short name works.
    let table = h.kubectl_ok(&["get", "mcd"]);
    assert!(table.contains("worst_fit") && table.contains("cluster1=2,cluster2=2,cluster3=2"), "{table}");
    // The summary condition is a column of its own (no other column prints True), beside the
    // ready replica count, and the `mck8s` category lists it.
    let (header, row) = table.split_once('\n').unwrap();
    assert!(header.contains("READY REPLICAS") && row.split_whitespace().any(|w| w == "True"), "{table}");
    let category = h.kubectl_ok(&["get", "mck8s", "-o", "name"]);
    assert!(category.lines().any(|l| l == "multiclusterdeployment.fogguru.eu/hello"), "{category}");

    // 01 over the same name: a locations change (cluster2, cluster3 × 2); cluster1's child goes.
    h.apply_yaml(&example("01_example_deployment_preferred_clusters.yaml"));
    h.wait_children("hello", &[("cluster2", 2), ("cluster3", 2)]).await;
    h.wait_condition("hello", "Ready", "True").await;

    // Scale up through the scale subresource: 3 per location.
    h.kubectl_ok(&["scale", "mcd", "hello", "--replicas=3"]);
    h.wait_children("hello", &[("cluster2", 3), ("cluster3", 3)]).await;
    // Scale down.
    h.kubectl_ok(&["patch", "mcd", "hello", "--type=merge", "-p", r#"{"spec":{"replicas":1}}"#]);
    h.wait_children("hello", &[("cluster2", 1), ("cluster3", 1)]).await;
    // Policy change: drop locations, best-fit with 2 locations of 1.
    h.kubectl_ok(&[
        "patch",
        "mcd",
        "hello",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/locations"},{"op":"add","path":"/spec/placementPolicy","value":"best-fit"},{"op":"add","path":"/spec/numberOfLocations","value":2}]"#,
    ]);
    h.eventually("best-fit placement", || async {
        let got = h.children("hello").await;
        if got.len() == 2 && got.values().all(|r| *r == 1) && got.keys().all(|c| c.starts_with("cluster")) { Ok(()) } else { Err(format!("{got:?}")) }
    })
    .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_overflow_and_burst_on_a_fleet_of_known_capacity() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "mcd-policies").await.unwrap();
    // cluster2 is near cluster1, cluster3 far from both.
    let rtt = "rtt:\n- [cluster1, cluster2, 5]\n- [cluster1, cluster3, 80]\n- [cluster2, cluster3, 60]\n";
    let h = Harness::start_with(env.clone(), ns, &FOG, Some(rtt)).await;
    // Fill cluster1 to 3 of 4 slots and cluster2 to 1: worst-fit picks cluster3 (4 free), best-fit cluster1 (1 free).
    h.apply_yaml(&mcd("fill1", "  placementPolicy: preferred\n  locations: cluster1\n  replicas: 3"));
    h.apply_yaml(&mcd("fill2", "  placementPolicy: preferred\n  locations: cluster2\n  replicas: 1"));
    h.wait_children("fill1", &[("cluster1", 3)]).await;
    h.wait_children("fill2", &[("cluster2", 1)]).await;
    h.wait_condition("fill1", "Ready", "True").await;
    h.wait_condition("fill2", "Ready", "True").await;

    h.apply_yaml(&mcd("wf", "  placementPolicy: worst-fit\n  replicas: 1"));
    h.wait_children("wf", &[("cluster3", 1)]).await;
    h.apply_yaml(&mcd("bf", "  placementPolicy: best_fit\n  replicas: 1"));
    h.wait_children("bf", &[("cluster1", 1)]).await;
    // Free now: cluster1 0, cluster2 3, cluster3 3. divided by free slots: 6 → 3 + 3.
    h.apply_yaml(&mcd("div", "  placementPolicy: divided\n  replicas: 6"));
    h.wait_children("div", &[("cluster2", 3), ("cluster3", 3)]).await;
    // Everything fog is full: a preferred MCD overflows nowhere and there is no cloud:
    // the burst signal, in the condition and in mck8s's status.message.
    h.apply_yaml(&mcd("burst", "  locations: cluster1\n  replicas: 2"));
    let c = h.wait_condition("burst", "Bursting", "True").await;
    assert!(c.message.contains("2 replicas"), "{}", c.message);
    let s = h.status("burst").await;
    assert_eq!(s.unplaced, 2);
    let m = s.message.unwrap();
    assert_eq!((m.message.as_str(), m.replicas.clone()), ("to_cloud", serde_json::json!(2)));
    assert!(h.children("burst").await.is_empty());
    // Capacity frees up (div deleted): the retry overflows from the full preferred cluster
    // to its nearest neighbour by RTT, cluster2 (5 ms), not cluster3 (80 ms).
    h.mcds().delete("div", &Default::default()).await.unwrap();
    h.wait_condition("burst", "Bursting", "False").await;
    h.wait_children("burst", &[("cluster2", 2)]).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mcds_never_over_commit() {
    let _serial = serial().await;
    let h = Harness::start("mcd-concurrent", &FOG).await;
    // Seven MCDs of 2 replicas against 12 fog slots, applied in one kubectl call.
    let all: String = (0..7).map(|i| format!("---\n{}", mcd(&format!("app{i}"), "  placementPolicy: worst-fit\n  replicas: 2"))).collect();
    h.apply_yaml(&all);
    let mut placed = 0;
    let mut unplaced = 0;
    for i in 0..7 {
        let name = format!("app{i}");
        h.eventually(&name, || async {
            let s = h.status(&name).await;
            if s.replicas == 2 { Ok(()) } else { Err(format!("{s:?}")) }
        })
        .await;
        let s = h.status(&name).await;
        placed += s.replicas - s.unplaced;
        unplaced += s.unplaced;
    }
    assert_eq!((placed, unplaced), (12, 2));
    // No cluster got more than its 4 slots, and no child pod is left Pending.
    let mut per_cluster = std::collections::BTreeMap::<String, i32>::new();
    for i in 0..7 {
        for (c, r) in h.children(&format!("app{i}")).await {
            *per_cluster.entry(c).or_default() += r;
        }
    }
    assert!(per_cluster.values().all(|&n| n == 4), "{per_cluster:?}");
    for i in 0..7 {
        let name = format!("app{i}");
        let s = h.status(&name).await;
        if s.unplaced == 0 {
            h.wait_condition(&name, "Ready", "True").await;
        }
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_spec_and_touches_no_cluster() {
    let _serial = serial().await;
    let h = Harness::start("mcd-invalid", &ALL).await;
    let cases = [
        ("zero", mcd("zero", "  replicas: 0"), "replicas is 0"),
        ("nopolicy", mcd("nopolicy", "  placementPolicy: no-such-policy"), "unknown placementPolicy"),
        ("nocluster", mcd("nocluster", "  locations: cluster9"), "unknown cluster"),
        ("badqty", mcd("badqty", "").replace("cpu: '1'", "cpu: 'lots'"), "not a Kubernetes quantity"),
        ("noreq", mcd("noreq", "").replace("requests: {cpu: '1', memory: 1Gi}", "{}"), "no container requests"),
    ];
    for (name, yaml, _) in &cases {
        // Malformed quantities are refused by nothing before us: the CRD keeps the template.
        h.apply_yaml(yaml);
        let _ = name;
    }
    for (name, _, want) in &cases {
        let c = h.wait_condition(name, "InvalidSpec", "True").await;
        assert!(c.message.contains(want), "{name}: {}", c.message);
        assert!(h.children(name).await.is_empty(), "{name} created children");
    }
    // An event says it too.
    let events = h.kubectl_ok(&["get", "events", "--field-selector", "reason=InvalidSpec", "-o", "name"]);
    assert!(!events.trim().is_empty());
    // Fixing one makes it place.
    h.kubectl_ok(&["patch", "mcd", "zero", "--type=merge", "-p", r#"{"spec":{"replicas":1}}"#]);
    h.wait_condition("zero", "InvalidSpec", "False").await;
    h.wait_condition("zero", "Placed", "True").await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_dropped_into_a_configmap_changes_the_next_decision() {
    let _serial = serial().await;
    let h = Harness::start("mcd-configmap", &FOG).await;
    // An MCD naming a policy nobody has loaded yet.
    h.apply_yaml(&mcd("cm", "  placementPolicy: house-rules\n  replicas: 1"));
    h.wait_condition("cm", "InvalidSpec", "True").await;
    // The user drops worst-fit's component in as `house-rules`.
    let bytes = std::fs::read(builtin_dir().join("worst-fit.wasm")).unwrap();
    let cm = mck8s_controller::policy_configmaps::configmap_for("house-rules", &h.ns.name, &bytes).unwrap();
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = h.ns.api();
    let started = std::time::Instant::now();
    api.create(&Default::default(), &cm).await.unwrap();
    h.wait_condition("cm", "Placed", "True").await;
    eprintln!("ConfigMap created → MCD placed by it in {:?}", started.elapsed());
    let s = h.status("cm").await;
    assert_eq!(s.policy.as_deref(), Some("house-rules"));
    assert_eq!(h.children("cm").await.values().sum::<i32>(), 1);
    let first_digest = s.policy_digest.clone();
    assert!(first_digest.is_some());
    // A broken replacement is refused; the last good version keeps serving.
    let mut broken = cm.clone();
    broken.binary_data = Some([("house-rules.wasm".to_string(), k8s_openapi::ByteString(b"\0asm not really".to_vec()))].into());
    api.replace("mck8s-policy-house-rules", &Default::default(), &broken).await.unwrap();
    h.kubectl_ok(&["patch", "mcd", "cm", "--type=merge", "-p", r#"{"spec":{"replicas":2}}"#]);
    h.eventually("re-placed by the last good house-rules", || async {
        let n: i32 = h.children("cm").await.values().sum();
        let s = h.status("cm").await;
        if n == 2 && s.policy_digest == first_digest { Ok(()) } else { Err(format!("{n} replicas, digest {:?}", s.policy_digest)) }
    })
    .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_apiserver_restart_mid_reconcile_leaves_no_duplicate_or_orphan() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    install_crds(&env).await;
    let mgmt = env.exclusive("cluster0").await.unwrap();
    let ns = mgmt.namespace("mcd-restart").await.unwrap();
    let h = Harness::start_in(env.clone(), ns, &FOG).await;
    // Create, and take the management API server away while the controller works on it.
    h.apply_yaml(&mcd("survivor", "  placementPolicy: worst-fit\n  numberOfLocations: 2\n  replicas: 3"));
    env.stop_cluster(&mgmt).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    env.start_cluster(&mgmt).await.unwrap();
    // Converges: the children are exactly the recorded placement, 6 replicas, no more.
    h.wait_condition("survivor", "Ready", "True").await;
    let s = h.status("survivor").await;
    let recorded: std::collections::BTreeMap<String, i32> = s.placement.iter().map(|p| (p.cluster.clone(), p.replicas)).collect();
    assert_eq!(recorded.values().sum::<i32>(), 6);
    assert_eq!(h.children("survivor").await, recorded);
    // Delete, and restart again mid-cleanup: the finalizer still removes every child.
    h.mcds().delete("survivor", &Default::default()).await.unwrap();
    env.stop_cluster(&mgmt).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    env.start_cluster(&mgmt).await.unwrap();
    h.eventually("deleted with every child", || async {
        let gone = h.mcds().get_opt("survivor").await.map_err(|e| e.to_string())?.is_none();
        let children = h.children("survivor").await;
        if gone && children.is_empty() { Ok(()) } else { Err(format!("mcd gone {gone}, children {children:?}")) }
    })
    .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn most_traffic_follows_the_ingress_prometheus_measures() {
    let _serial = serial().await;
    let h = Harness::start("mcd-traffic", &FOG).await;
    // Heavy ingress on cluster3 only, from pods of a plain Deployment there (the simulated
    // kubelet's counters, scraped by the real Prometheus).
    let c3 = h.env.client("cluster3").await.unwrap();
    let ns_api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(c3.clone());
    let mut n = k8s_openapi::api::core::v1::Namespace::default();
    n.metadata.name = Some(h.ns.name.clone());
    ns_api.create(&Default::default(), &n).await.unwrap();
    let load: k8s_openapi::api::apps::v1::Deployment = serde_yaml_ng::from_str(&format!(
        "metadata: {{name: ingress, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: ingress}}}}
  template:
    metadata: {{labels: {{app: ingress}}, annotations: {{sim.mck8s.io/rx-bytes-per-second: '50000000'}}}}
    spec: {{containers: [{{name: c, image: img, resources: {{requests: {{cpu: 10m, memory: 10Mi}}}}}}]}}",
        ns = h.ns.name
    ))
    .unwrap();
    kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(c3, &h.ns.name).create(&Default::default(), &load).await.unwrap();
    let prom = mck8s_signals::Prometheus::new(&h.env.prometheus_url().unwrap(), std::time::Duration::from_secs(5)).unwrap();
    h.eventually("cluster3 has the most ingress", || async {
        let t = prom.cluster_traffic().await.map_err(|e| e.to_string())?;
        let top = t.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(c, _)| c.clone());
        if top.as_deref() == Some("cluster3") { Ok(()) } else { Err(format!("{t:?}")) }
    })
    .await;
    // The controller re-reads traffic every 15 s; let one refresh pass, then the default
    // policy (most-traffic) ranks cluster3 first.
    tokio::time::sleep(std::time::Duration::from_secs(16)).await;
    h.apply_yaml(&mcd("shop", "  replicas: 1"));
    h.wait_children("shop", &[("cluster3", 1)]).await;
    h.status_when("shop", "decided by most-traffic", |s| s.policy.as_deref() == Some("most-traffic")).await;
    h.finish().await;
}

fn cluster_secret(env: &mck8s_testenv::TestEnv, cluster: &str) -> k8s_openapi::api::core::v1::Secret {
    let kubeconfig = std::fs::read(env.kubeconfig(cluster)).unwrap();
    let mut s = k8s_openapi::api::core::v1::Secret::default();
    s.metadata.name = Some(format!("cluster-{cluster}"));
    s.metadata.labels = Some([("fogguru.eu/cluster".to_string(), cluster.to_string()), ("fogguru.eu/role".to_string(), "fog".to_string())].into());
    s.data = Some([("kubeconfig".to_string(), k8s_openapi::ByteString(kubeconfig))].into());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_registered_by_secrets_come_and_go_at_runtime() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "mcd-secrets").await.unwrap();
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = ns.api();
    secrets.create(&Default::default(), &cluster_secret(&env, "cluster2")).await.unwrap();
    let h = Harness::start_in(env.clone(), ns, &[]).await;
    // Only cluster2 is registered.
    h.apply_yaml(&mcd("reg", "  placementPolicy: worst-fit\n  replicas: 2"));
    h.wait_children("reg", &[("cluster2", 2)]).await;
    // cluster3 joins at runtime; two locations now fit.
    secrets.create(&Default::default(), &cluster_secret(&env, "cluster3")).await.unwrap();
    h.kubectl_ok(&["patch", "mcd", "reg", "--type=merge", "-p", r#"{"spec":{"numberOfLocations":2}}"#]);
    h.wait_children("reg", &[("cluster2", 2), ("cluster3", 2)]).await;
    // cluster3 leaves: the placement is decided again without it.
    secrets.delete("cluster-cluster3", &Default::default()).await.unwrap();
    h.eventually("placement without cluster3", || async {
        let s = h.status("reg").await;
        let clusters: Vec<&str> = s.placement.iter().map(|p| p.cluster.as_str()).collect();
        if clusters == ["cluster2"] && s.replicas == 4 { Ok(()) } else { Err(format!("{:?}", s.placement)) }
    })
    .await;
    // mck8s cannot reach a cluster it no longer has credentials for: its child stays there
    // until an administrator removes it (documented).
    let c3 = h.env.client("cluster3").await.unwrap();
    kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(c3, &h.ns.name).delete("reg", &Default::default()).await.unwrap();
    h.finish().await;
}

fn h_name(p: &std::path::Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// A kubeconfig Secret is anyone's who may create Secrets in the controller's namespace:
/// one with an `exec` plugin never runs its command and one pointing at a local token file is
/// refused; neither cluster gets a client, and the good Secret beside them still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kubeconfig_secrets_are_refused_and_run_nothing() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "mcd-hostile").await.unwrap();
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = ns.api();
    secrets.create(&Default::default(), &cluster_secret(&env, "cluster2")).await.unwrap();
    let marker = std::env::temp_dir().join(format!("mck8s-exec-ran-{}", ns.name));
    let _ = std::fs::remove_file(&marker);
    let server = |c: &str| {
        let text = std::fs::read_to_string(env.kubeconfig(c)).unwrap();
        let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        kc.clusters[0].cluster.clone().unwrap()
    };
    let hostile = |name: &str, cluster: &str, user: serde_json::Value| {
        let doc = serde_json::json!({
            "apiVersion": "v1", "kind": "Config", "current-context": cluster,
            "clusters": [{"name": cluster, "cluster": serde_json::to_value(server(cluster)).unwrap()}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": "u"}}],
            "users": [{"name": "u", "user": user}],
        });
        let mut s = cluster_secret(&env, cluster);
        s.metadata.name = Some(name.to_string());
        s.data = Some([("kubeconfig".to_string(), k8s_openapi::ByteString(serde_yaml_ng::to_string(&doc).unwrap().into_bytes()))].into());
        s
    };
    let exec = serde_json::json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "/bin/sh", "args": ["-c", format!("touch {}", marker.display())]}});
    secrets.create(&Default::default(), &hostile("evil-exec", "cluster3", exec)).await.unwrap();
    // A real token in a file on the controller's machine: followed, it would work.
    let admin: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(env.kubeconfig("cluster1")).unwrap()).unwrap();
    let token = admin["users"][0]["user"]["token"].as_str().expect("the test environment's admin token").to_string();
    let token_path = std::env::temp_dir().join(format!("mck8s-token-{}", h_name(&marker)));
    std::fs::write(&token_path, token).unwrap();
    let token_file = serde_json::json!({"tokenFile": token_path.display().to_string()});
    secrets.create(&Default::default(), &hostile("evil-token-file", "cluster1", token_file)).await.unwrap();
    let h = Harness::start_in(env.clone(), ns, &[]).await;
    // Three locations asked for; only cluster2 is registered, so it takes every replica.
    h.apply_yaml(&mcd("safe", "  placementPolicy: worst-fit\n  replicas: 2\n  numberOfLocations: 3"));
    h.wait_children("safe", &[("cluster2", 2)]).await;
    let s = h.status_when("safe", "placement recorded", |s| !s.placement.is_empty()).await;
    assert_eq!(s.placement.iter().map(|p| p.cluster.as_str()).collect::<Vec<_>>(), ["cluster2"], "no client for a refused cluster");
    assert!(!marker.exists(), "the exec plugin's command ran");
    let _ = std::fs::remove_file(&token_path);
    h.finish().await;
}

/// A name longer than a label value (63 characters) is hashed in the owner label its pods
/// carry. A new decision must still count the object's own pods as free, as for a short name:
/// both fill one cluster, scale down by one, and stay there with nothing unplaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_named_mcd_counts_its_own_pods_as_free_like_a_short_one() {
    let _serial = serial().await;
    let h = Harness::start("mcd-long", &ALL).await;
    let long = format!("long-{}", "n".repeat(65));
    assert_eq!(long.len(), 70);
    let cases = [(long.as_str(), "cluster1"), ("short", "cluster2")];
    for (name, cluster) in cases {
        // Only the object's name is long: its pod label and container name must stay valid.
        let app = if name.len() > 63 { "longapp" } else { name };
        h.apply_yaml(&mcd(app, &format!("  locations: {cluster}\n  replicas: 4")).replacen(&format!("name: {app}\n"), &format!("name: {name}\n"), 1));
        h.wait_children(name, &[(cluster, 4)]).await;
        h.eventually(&format!("{name}: 4 ready"), || async {
            let s = h.status(name).await;
            if s.ready_replicas == 4 { Ok(()) } else { Err(format!("{} ready", s.ready_replicas)) }
        })
        .await;
    }
    // Each cluster is now full of that object's own pods.
    for (name, cluster) in cases {
        h.kubectl_ok(&["patch", "mcd", name, "--type=merge", "-p", r#"{"spec":{"replicas":3}}"#]);
        h.wait_children(name, &[(cluster, 3)]).await;
        h.eventually(&format!("{name}: decided for generation 2"), || async {
            let s = h.status(name).await;
            if s.observed_generation == Some(2) { Ok(()) } else { Err(format!("{:?}", s.observed_generation)) }
        })
        .await;
        let s = h.status(name).await;
        assert_eq!((s.replicas, s.unplaced), (3, 0), "{name}: {:?}", s.placement);
    }
    h.finish().await;
}

/// A policy whose placement is valid but carries 4 MiB of reason and of summary text: the
/// MCD is placed and its status written with the text cut (the API server refuses a request
/// that large with 413, which used to leave the MCD with no status, retried forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_returning_megabytes_of_text_gets_its_placement_written_with_the_text_cut() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "mcd-verbose").await.unwrap();
    let policies = tempfile::tempdir().unwrap();
    std::fs::copy(builtin_dir().parent().unwrap().join("mck8s_guest_hostile.wasm"), policies.path().join("hostile.wasm")).unwrap();
    let dir = policies.path().to_path_buf();
    let h = Harness::start_tuned(env, ns, &FOG, None, move |c| c.policy_dirs.push(dir)).await;
    h.apply_yaml(&mcd("wordy", "  placementPolicy: hostile\n  placementParams: {mode: verbose}\n  replicas: 2"));
    let placed = h.wait_condition("wordy", "Placed", "True").await;
    h.wait_fog_total("wordy", 2).await;

    let s = h.status("wordy").await;
    assert_eq!(s.policy.as_deref(), Some("hostile"));
    // The condition carries the policy's summary when that reconcile decided (cut), else a count.
    let cut = placed.message.starts_with("why why") && placed.message.ends_with("bytes cut]");
    assert!(cut || placed.message == "2 replicas in 1 clusters" || placed.message == "2 replicas in 2 clusters", "{}…", &placed.message[..80.min(placed.message.len())]);
    assert!(placed.message.len() <= mck8s_api::conditions::MESSAGE_MAX, "{} bytes", placed.message.len());
    assert!(!s.placement.is_empty());
    for p in &s.placement {
        assert!(p.reason.starts_with("why why") && p.reason.ends_with("bytes cut]"), "{}: {} bytes", p.cluster, p.reason.len());
        assert!(p.reason.len() <= 1024, "{}: {} bytes", p.cluster, p.reason.len());
    }
    let written = serde_json::to_vec(&h.mcds().get("wordy").await.unwrap()).unwrap().len();
    println!("the MCD as stored: {written} bytes, from a policy result of 8 MiB of text");
    assert!(written < 64 << 10, "{written} bytes");
    h.finish().await;
}
