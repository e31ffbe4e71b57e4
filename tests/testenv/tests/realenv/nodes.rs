//! The simulated kubelets register the fleet's nodes as configured and keep them fresh.

use crate::common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams};

fn ready_heartbeat(n: &Node) -> Option<String> {
    let c = n.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    Some(format!("{:?}", c.last_heartbeat_time))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_match_the_fleet_and_heartbeats_advance() {
    let env = env().await;
    let mut heartbeats = Vec::new();
    for spec in env.fleet().clusters.clone() {
        // A namespace is not needed, but its shared lock keeps disruptive tests off this cluster.
        let ns = env.namespace(&spec.name, "nodes").await.unwrap();
        let nodes: Api<Node> = Api::all(ns.client.clone());
        let list = nodes.list(&ListParams::default().labels(&format!("mck8s.io/cluster={}", spec.name))).await.unwrap();
        let mut names: Vec<String> = list.items.iter().filter_map(|n| n.metadata.name.clone()).collect();
        names.sort();
        assert_eq!(names, spec.node_names(), "{}", spec.name);
        for n in &list.items {
            let labels = n.metadata.labels.clone().unwrap_or_default();
            assert_eq!(labels.get("mck8s.io/role"), Some(&spec.role));
            assert_eq!(labels.get("topology.kubernetes.io/region"), spec.region.as_ref());
            for (k, v) in &spec.labels {
                assert_eq!(labels.get(k), Some(v));
            }
            let alloc = n.status.as_ref().unwrap().allocatable.clone().unwrap();
            assert_eq!(alloc.get("cpu"), Some(&Quantity(spec.capacity.cpu.clone())));
            assert_eq!(alloc.get("memory"), Some(&Quantity(spec.capacity.memory.clone())));
            assert_eq!(alloc.get("pods"), Some(&Quantity(spec.capacity.pods.clone())));
            assert!(n.spec.as_ref().unwrap().taints.as_deref().unwrap_or_default().is_empty(), "taints on {:?}", n.metadata.name);
            assert!(mck8s_testenv::kubelet::node_is_ready(Some(n)));
        }
        let leases: Api<Lease> = Api::namespaced(ns.client.clone(), "kube-node-lease");
        for name in spec.node_names() {
            let lease = leases.get(&name).await.unwrap();
            assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some(name.as_str()));
        }

        // Heartbeats: the Ready condition's lastHeartbeatTime moves on without any action
        // (all clusters at once: a beat is every 10 s).
        let first = spec.node_names()[0].clone();
        let before = ready_heartbeat(&nodes.get(&first).await.unwrap());
        heartbeats.push(async move {
            wait_for(nodes, &first, move |n: Option<&Node>| n.and_then(ready_heartbeat) != before, "next heartbeat").await;
            ns.delete().await.unwrap();
        });
    }
    futures::future::join_all(heartbeats).await;
}
