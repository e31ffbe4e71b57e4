//! Failover and failback on the real test environment: a workload cluster's API server
//! stopped or frozen (Unreachable) or all its nodes lost (NotReady). Its replicas are placed elsewhere
//! once the grace period has passed, ready replicas never fall below what survived, and when
//! the cluster is back the placement returns to it with no gap and no duplicate. The
//! MultiClusterService follows both moves; each move is an Event and a metric.

use crate::common::*;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::Api;
use kube::api::ListParams;
use std::time::{Duration, Instant};

const GRACE: Duration = Duration::from_secs(4);

async fn events(h: &Harness, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(h.mgmt.clone(), &h.ns.name);
    api.list(&ListParams::default()).await.unwrap().items.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).collect()
}

async fn live_pods(h: &Harness, name: &str, clusters: &[&str]) -> usize {
    let mut n = 0;
    for c in clusters {
        let pods: Api<Pod> = h.api_in(c).await;
        let l = pods.list(&ListParams::default().labels(&format!("fogguru.eu/owner={name}"))).await.unwrap();
        n += l.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count();
    }
    n
}

#[derive(Clone, Copy)]
enum Disruption {
    /// The API server stopped: Unreachable.
    StopApiServer,
    /// The API server frozen (SIGSTOP): connections open, nothing answers, so every call
    /// into it hangs until a deadline. Unreachable.
    FreezeApiServer,
    /// Both nodes lost: reachable, NotReady.
    LoseNodes,
}

/// `web`: 2 replicas preferred on cluster2 and cluster3; cluster1 is cluster3's nearest
/// neighbour by RTT, so a failover of cluster3's share goes to cluster1.
async fn fail_over_and_back(prefix: &str, how: Disruption) {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let c3 = env.exclusive("cluster3").await.unwrap();
    let ns = env.namespace("cluster0", prefix).await.unwrap();
    let rtt = "rtt:\n- [cluster1, cluster3, 5]\n- [cluster2, cluster3, 60]\n- [cluster1, cluster2, 60]\n";
    let port = free_port();
    let h = Harness::start_tuned(env.clone(), ns, &FOG, Some(rtt), |c| {
        c.timing.failover_grace = GRACE;
        // No periodic resync inside the test: a move can only come from the grace timer.
        c.timing.resync = Duration::from_secs(3600);
        c.metrics_addr = Some(([127, 0, 0, 1], port).into());
    })
    .await;
    h.apply_yaml(&mcd("web", "  locations: cluster2, cluster3\n  replicas: 2"));
    h.apply_yaml("apiVersion: fogguru.eu/v1\nkind: MultiClusterService\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n");
    h.wait_children("web", &[("cluster2", 2), ("cluster3", 2)]).await;
    h.wait_condition("web", "Ready", "True").await;
    h.wait_present::<Service>("web", &FOG, &["cluster2", "cluster3"]).await;
    let updates = r#"mck8s_policy_fleets_sent_total{how="update"}"#;
    let updates_before = sample(&metrics(port).await, updates);

    // Failover.
    let visible: &[&str] = match how {
        Disruption::StopApiServer | Disruption::FreezeApiServer => &["cluster1", "cluster2"],
        Disruption::LoseNodes => &FOG,
    };
    let monitor = ReadyMonitor::start(&h, "web", visible).await;
    let broken = Instant::now();
    let mut frozen = None;
    match how {
        Disruption::StopApiServer => env.stop_cluster(&c3).await.unwrap(),
        Disruption::FreezeApiServer => frozen = Some(env.freeze_cluster(&c3).unwrap()),
        Disruption::LoseNodes => {
            for n in ["cluster3-node0", "cluster3-node1"] {
                env.set_node_lost(&c3, n, true).await.unwrap();
            }
        }
    }
    h.wait_children_in("web", &["cluster1", "cluster2"], &[("cluster1", 2), ("cluster2", 2)]).await;
    let moved_after = broken.elapsed();
    h.wait_condition("web", "Ready", "True").await;
    let (lowest, samples) = monitor.finish().await;
    println!("failover: re-placed {:.1} s after the disruption (grace {} s); lowest ready sum {lowest} over {samples} samples", moved_after.as_secs_f64(), GRACE.as_secs());
    assert!(moved_after >= GRACE, "moved after {moved_after:?}, before the grace period");
    assert!(samples > 0);
    assert!(lowest >= 2, "ready replicas fell to {lowest}, below the 2 that survived on cluster2");
    let s = h.status("web").await;
    assert_eq!(s.failed_over, vec!["cluster3"]);
    assert_eq!(s.summary.as_deref(), Some("cluster1=2,cluster2=2"));
    let failed_over = events(&h, "FailedOver").await;
    assert_eq!(failed_over.len(), 1, "{failed_over:?}");
    assert!(failed_over[0].message.as_deref().unwrap_or("").starts_with("cluster3 "), "{:?}", failed_over[0].message);
    assert_eq!(sample(&metrics(port).await, r#"mck8s_moves_total{kind="MultiClusterDeployment",reason="failover"}"#), 1.0);
    // The Service followed to cluster1.
    h.wait_present::<Service>("web", &["cluster1", "cluster2"], &["cluster1", "cluster2"]).await;
    match how {
        // An unreachable cluster's child stays (it cannot be removed, and may still serve).
        Disruption::StopApiServer | Disruption::FreezeApiServer => assert_eq!(s.draining.iter().map(|d| d.reason.as_str()).collect::<Vec<_>>(), ["ClusterUnreachable"]),
        // A reachable NotReady cluster's child is removed once the replacements are ready.
        Disruption::LoseNodes => h.wait_children("web", &[("cluster1", 2), ("cluster2", 2)]).await,
    }

    if let Disruption::FreezeApiServer = how {
        // A new workload while cluster3 hangs: placed on the others, not held by the hung
        // cluster (every call into it would wait for a deadline).
        let applied = Instant::now();
        h.apply_yaml(&mcd("fresh", "  replicas: 2"));
        h.wait_condition("fresh", "Placed", "True").await;
        let placed_after = applied.elapsed();
        let s = h.status("fresh").await;
        assert!(!s.summary.as_deref().unwrap_or("").contains("cluster3"), "placed on the frozen cluster: {s:?}");
        h.eventually("fresh's 2 replicas on cluster1 and cluster2", || async {
            let got: i32 = h.children_in("fresh", &["cluster1", "cluster2"]).await.values().sum();
            if got == 2 { Ok(()) } else { Err(format!("{got} replicas")) }
        })
        .await;
        println!("with cluster3 frozen, a new MCD was placed {:.1} s after it was applied", placed_after.as_secs_f64());
    }

    // Failback.
    let monitor = ReadyMonitor::start(&h, "web", &FOG).await;
    match how {
        Disruption::StopApiServer => env.start_cluster(&c3).await.unwrap(),
        Disruption::FreezeApiServer => drop(frozen.take()),
        Disruption::LoseNodes => {
            for n in ["cluster3-node0", "cluster3-node1"] {
                env.set_node_lost(&c3, n, false).await.unwrap();
            }
        }
    }
    h.wait_children("web", &[("cluster2", 2), ("cluster3", 2)]).await;
    h.wait_condition("web", "Ready", "True").await;
    let (lowest, samples) = monitor.finish().await;
    println!("failback: lowest ready sum {lowest} over {samples} samples");
    assert!(samples > 0);
    assert!(lowest >= 4, "ready replicas fell to {lowest} during failback");
    let s = h.status("web").await;
    assert!(s.failed_over.is_empty() && s.draining.is_empty(), "{s:?}");
    assert_eq!(s.summary.as_deref(), Some("cluster2=2,cluster3=2"));
    assert_eq!(events(&h, "FailedBack").await.len(), 1);
    assert_eq!(sample(&metrics(port).await, r#"mck8s_moves_total{kind="MultiClusterDeployment",reason="failback"}"#), 1.0);
    // The fleet changed between the decisions (health, pods): the pooled policy instance that
    // made an earlier one was sent only what changed for the failover and failback decisions
    // (WIT 0.1.1 updates).
    let m = metrics(port).await;
    let sent = (sample(&m, r#"mck8s_policy_fleets_sent_total{how="whole"}"#), sample(&m, updates) - updates_before);
    println!("fleets sent to policy instances: {} whole in this process, {} updates in this test", sent.0, sent.1);
    assert!(sent.1 >= 1.0, "no fleet update reached a policy instance: {sent:?}");
    // No duplicates: exactly the 4 replicas, and the Service where they run.
    h.eventually("4 live pods", || async {
        let n = live_pods(&h, "web", &FOG).await;
        if n == 4 { Ok(()) } else { Err(format!("{n} pods")) }
    })
    .await;
    h.wait_present::<Service>("web", &FOG, &["cluster2", "cluster3"]).await;
    h.finish().await;
    drop(c3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_fails_over_after_the_grace_period_and_back_without_a_gap() {
    fail_over_and_back("failover-stop", Disruption::StopApiServer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_api_server_fails_over_after_the_grace_period_and_back_without_a_gap() {
    fail_over_and_back("failover-freeze", Disruption::FreezeApiServer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_no_ready_node_fails_over_and_back_without_a_gap() {
    fail_over_and_back("failover-nodes", Disruption::LoseNodes).await;
}
