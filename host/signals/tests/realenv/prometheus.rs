//! Against the real Prometheus of the test environment, which scrapes every cluster's
//! simulated kubelet every 2 s and labels the series with `cluster_name`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::common::*;
use mck8s_signals::prometheus::{PromError, Prometheus};

fn prometheus(env: &mck8s_testenv::TestEnv) -> Prometheus {
    let url = env.prometheus_url().expect("environment started without --prometheus");
    Prometheus::new(&url, Duration::from_secs(10)).unwrap()
}

fn positive(m: &HashMap<String, f64>, cluster: &str) -> bool {
    m.get(cluster).is_some_and(|v| *v > 0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_traffic_has_every_workload_cluster() {
    let env = env().await;
    let prom = prometheus(&env);
    // A cluster without pods exports no series; give every workload cluster one receiving pod.
    let workload: Vec<String> = env.fleet().clusters.iter().filter(|c| c.role != "management").map(|c| c.name.clone()).collect();
    assert!(!workload.is_empty());
    let mut namespaces = Vec::new();
    for c in &workload {
        let ns = env.namespace(c, "signals-traffic").await.unwrap();
        create_deployment(&ns.client, &ns.name, "ingress", 1, 10_000.0, 0.1).await;
        namespaces.push(ns);
    }
    let traffic = poll("cluster_traffic with every workload cluster positive", || async {
        let t = prom.cluster_traffic().await.unwrap();
        if workload.iter().all(|c| positive(&t, c)) { Ok(t) } else { Err(t) }
    })
    .await;
    let known: BTreeSet<String> = env.cluster_names().into_iter().collect();
    for (c, v) in &traffic {
        assert!(known.contains(c), "unknown cluster_name {c:?} in {traffic:?}");
        assert!(v.is_finite() && *v >= 0.0, "{c}: {v}");
    }
    for ns in namespaces {
        ns.delete().await.unwrap();
    }
}

/// The app `web.v1` runs on cluster A only. Decoys that a sloppy query would count: on A and
/// on B in a namespace of the same name, `webxv1` (matches if the `.` is left unescaped) and
/// `web.v1-canary` (matches a prefix regex); on B, a `web.v1` in another namespace. Each decoy
/// pod receives 250× the app's bytes and uses 6× its CPU.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_traffic_and_cpu_count_only_the_apps_pods_on_their_cluster() {
    let env = env().await;
    let prom = prometheus(&env);
    // A: the first workload cluster; B: any other (the small fleet has only one workload one).
    let a = env.fleet().clusters.iter().find(|c| c.role != "management").expect("a workload cluster").name.clone();
    let b = env.cluster_names().into_iter().find(|c| c != &a).expect("a second cluster");
    let ns_a = env.namespace(&a, "signals-app").await.unwrap();
    let ns_b = env.namespace(&b, "signals-app-other").await.unwrap();
    let n = ns_a.name.clone();
    create_namespace_named(&ns_b.client, &n).await;

    const APP: &str = "web.v1";
    create_deployment(&ns_a.client, &n, APP, 2, 20_000.0, 0.25).await;
    for (client, ns) in [(&ns_a.client, &n), (&ns_b.client, &n)] {
        create_deployment(client, ns, "webxv1", 1, 5_000_000.0, 1.5).await;
        create_deployment(client, ns, "web.v1-canary", 1, 5_000_000.0, 1.5).await;
    }
    create_deployment(&ns_b.client, &ns_b.name, APP, 1, 5_000_000.0, 1.5).await;

    // Unfiltered per-namespace totals show that the decoys are scraped, so their absence from
    // the app's numbers means something.
    let ns_total = |metric: &'static str, ns: String| {
        let prom = prom.clone();
        async move {
            let q = format!("sum by (cluster_name) (rate({metric}{{namespace={}}}[1m]))", mck8s_signals::promql::quote(&ns));
            let mut m = HashMap::new();
            for s in prom.query(&q).await.unwrap() {
                m.insert(s.labels["cluster_name"].clone(), s.value);
            }
            m
        }
    };
    let rx = "container_network_receive_bytes_total";
    let cpu = "container_cpu_usage_seconds_total";
    let (traffic, cores, rx_total, cpu_total) = poll("the app and every decoy in Prometheus", || async {
        let traffic = prom.app_traffic(&n, APP).await.unwrap();
        let cores = prom.app_cpu_cores(&n, APP).await.unwrap();
        let rx_total = ns_total(rx, n.clone()).await;
        let cpu_total = ns_total(cpu, n.clone()).await;
        let other_ns = ns_total(rx, ns_b.name.clone()).await;
        let ready = positive(&traffic, &a) && positive(&cores, &a) && [&rx_total, &cpu_total].iter().all(|m| positive(m, &a) && positive(m, &b)) && positive(&other_ns, &b)
            // The decoys scraped too (else the namespace total is the app's alone).
            && [(&traffic, &rx_total), (&cores, &cpu_total)].iter().all(|(app, total)| app.get(&a).zip(total.get(&a)).is_some_and(|(x, t)| x * 2.0 < *t));
        if ready { Ok((traffic, cores, rx_total, cpu_total)) } else { Err((traffic, cores, rx_total, cpu_total, other_ns)) }
    })
    .await;

    for (what, app, total) in [("traffic", &traffic, &rx_total), ("cpu", &cores, &cpu_total)] {
        for (c, v) in app.iter() {
            assert!(c == &a || *v == 0.0, "{what}: {APP} counted on {c}: {app:?}");
        }
        // On A the decoys dominate the namespace; had one leaked in, the app would too.
        assert!(app[&a] * 2.0 < total[&a], "{what}: {APP} {} vs namespace {} on {a}", app[&a], total[&a]);
    }

    // Per pod: the app's two pods on A, the same cores as the per-cluster sum, nothing on B.
    let per_pod = prom.app_cpu(&n, APP, std::time::Duration::from_secs(60)).await.unwrap();
    assert_eq!(per_pod.get(&a).map(|c| c.pods), Some(2), "{per_pod:?}");
    assert!(!per_pod.contains_key(&b), "{per_pod:?}");
    assert!((per_pod[&a].cores - cores[&a]).abs() < 0.05 * cores[&a].max(0.01), "{per_pod:?} vs {cores:?}");

    delete_namespace(&ns_b.client, &n).await;
    ns_a.delete().await.unwrap();
    ns_b.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_return_labelled_samples_and_typed_errors() {
    let env = env().await;
    let url = env.prometheus_url().expect("environment started without --prometheus");
    let prom = prometheus(&env);

    // `up` of every scrape target: one sample per cluster, labelled.
    let up = prom.query("up").await.unwrap();
    let clusters: BTreeSet<&str> = up.iter().map(|s| s.labels["cluster_name"].as_str()).collect();
    assert_eq!(clusters, env.cluster_names().iter().map(String::as_str).collect::<BTreeSet<_>>());
    assert!(up.iter().all(|s| s.labels["__name__"] == "up" && (s.value == 0.0 || s.value == 1.0)), "{up:?}");

    match prom.query("sum(rate(").await {
        Err(PromError::Api { error_type, .. }) => assert_eq!(error_type, "bad_data"),
        other => panic!("expected a bad_data error, got {other:?}"),
    }
    match prom.query("1 + 1").await {
        Err(PromError::NotAVector { got, .. }) => assert_eq!(got, "scalar"),
        other => panic!("expected a scalar-result error, got {other:?}"),
    }
    match prom.query("up[1m]").await {
        Err(PromError::NotAVector { got, .. }) => assert_eq!(got, "matrix"),
        other => panic!("expected a matrix-result error, got {other:?}"),
    }
    // A label value that tries to break out of its string literal stays a literal.
    let hostile = prom.app_traffic(r#"x"} or vector(1) or {a=""#, "app").await.unwrap();
    assert!(hostile.is_empty(), "{hostile:?}");

    // Wrong path on the right server: HTTP 404 from Prometheus.
    let wrong = Prometheus::new(&format!("{url}/no/such/prefix"), Duration::from_secs(10)).unwrap();
    match wrong.query("up").await {
        Err(PromError::Status { status, .. }) => assert_eq!(status, 404),
        other => panic!("expected HTTP 404, got {other:?}"),
    }
    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let unreachable = Prometheus::new(&format!("http://user:hunter2@127.0.0.1:{closed}"), Duration::from_secs(10)).unwrap();
    match unreachable.cluster_traffic().await {
        Err(e @ PromError::Request { .. }) => assert!(!e.to_string().contains("hunter2"), "{e}"),
        other => panic!("expected a request error, got {other:?}"),
    }
}
