//! Against the real serf agents of the test environment (one per cluster, node name = cluster
//! name, RPC on loopback).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::common::*;
use mck8s_signals::serf::{Coordinate, SerfClient, SerfError, estimated_rtt, rtt_matrix};

/// Serf's default Vivaldi dimensionality.
const DIMENSIONS: usize = 8;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Every cluster's coordinate through one connection; `Err` names those still missing
/// (right after startup an agent may not have measured everybody yet).
async fn all_coordinates(client: &mut SerfClient, names: &[String]) -> Result<BTreeMap<String, Coordinate>, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for n in names {
        match client.coordinate(n).await.expect("get-coordinate") {
            Some(c) => {
                out.insert(n.clone(), c);
            }
            None => missing.push(n.clone()),
        }
    }
    if missing.is_empty() { Ok(out) } else { Err(missing) }
}

/// Waits until the agent has a coordinate for every cluster.
async fn wait_all_coordinates(client: &mut SerfClient, names: &[String]) -> BTreeMap<String, Coordinate> {
    let retry = Retry::new("a coordinate for every cluster");
    loop {
        match all_coordinates(client, names).await {
            Ok(c) => return c,
            Err(missing) => retry.again(missing).await,
        }
    }
}

/// `serf rtt -rpc-addr=ADDR a b`, parsed from "Estimated a <-> b rtt: 0.552 ms".
fn serf_cli_rtt(addr: &str, a: &str, b: &str) -> String {
    let out = std::process::Command::new("serf").args(["rtt", &format!("-rpc-addr={addr}"), a, b]).output().expect("run the serf CLI");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "serf rtt {a} {b}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with("Estimated ")).unwrap_or_else(|| panic!("serf rtt output: {stdout}"));
    let rest = line.strip_prefix(&format!("Estimated {a} <-> {b} rtt: ")).unwrap_or_else(|| panic!("serf rtt output: {line}"));
    rest.strip_suffix(" ms").unwrap_or_else(|| panic!("serf rtt output: {line}")).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_list_every_cluster_alive_with_its_address_and_tags() {
    let env = env().await;
    let ports = env.fleet().ports();
    // Ask a non-first agent: membership is gossiped, every agent sees every cluster.
    let index = env.fleet().clusters.len() - 1;
    let mut client = SerfClient::connect(&serf_rpc(&env, index)).await.unwrap();
    let members: BTreeMap<String, _> = client.members().await.unwrap().into_iter().map(|m| (m.name.clone(), m)).collect();
    assert_eq!(members.keys().cloned().collect::<BTreeSet<_>>(), env.cluster_names().into_iter().collect::<BTreeSet<_>>());
    for (i, c) in env.fleet().clusters.iter().enumerate() {
        let m = &members[&c.name];
        assert_eq!(m.status, "alive", "{m:?}");
        assert_eq!(m.addr, format!("127.0.0.1:{}", ports.serf_bind(i)), "{m:?}");
        assert_eq!(m.tags.get("role"), Some(&c.role), "{m:?}");
        assert_eq!(m.tags.get("region"), c.region.as_ref(), "{m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cluster_has_a_coordinate_and_unknown_nodes_have_none() {
    let env = env().await;
    let names = env.cluster_names();
    let mut client = SerfClient::connect(&serf_rpc(&env, 0)).await.unwrap();
    let coords = wait_all_coordinates(&mut client, &names).await;
    for (name, c) in &coords {
        assert_eq!(c.vec.len(), DIMENSIONS, "{name}: {c:?}");
        assert!(c.vec.iter().chain([&c.error, &c.adjustment, &c.height]).all(|x| x.is_finite()), "{name}: {c:?}");
        assert!(c.height > 0.0, "{name}: serf keeps heights above a positive minimum: {c:?}");
    }
    assert_eq!(client.coordinate("no-such-cluster").await.unwrap(), None);
    // The connection stays usable after a miss.
    assert_eq!(client.members().await.unwrap().len(), names.len());
}

/// Proves the formula: for every pair, `serf rtt` prints exactly what [`estimated_rtt`] gives
/// for the coordinates read over RPC. Coordinates move a little with every probe, so a pair is
/// compared only when they were the same just before and just after the CLI ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimated_rtt_equals_what_the_serf_cli_prints_for_every_pair() {
    let env = env().await;
    let addr = serf_rpc(&env, 0);
    let names = env.cluster_names();
    let mut client = SerfClient::connect(&addr).await.unwrap();
    wait_all_coordinates(&mut client, &names).await;
    let mut compared = 0;
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let retry = Retry::new(format!("stable coordinates of {a} and {b} around `serf rtt`"));
            let (ours, cli) = loop {
                let before = (client.coordinate(a).await.unwrap().unwrap(), client.coordinate(b).await.unwrap().unwrap());
                let cli = tokio::task::spawn_blocking({
                    let (addr, a, b) = (addr.clone(), a.clone(), b.clone());
                    move || serf_cli_rtt(&addr, &a, &b)
                })
                .await
                .unwrap();
                let after = (client.coordinate(a).await.unwrap().unwrap(), client.coordinate(b).await.unwrap().unwrap());
                if before == after {
                    break (estimated_rtt(&before.0, &before.1), cli);
                }
                retry.again("coordinates moved").await;
            };
            assert_eq!(format!("{:.3}", ms(ours)), cli, "{a} <-> {b}");
            compared += 1;
        }
    }
    assert_eq!(compared, names.len() * (names.len() - 1) / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtt_matrix_has_every_pair_both_ways_and_the_coordinates_values() {
    let env = env().await;
    let addr = serf_rpc(&env, 0);
    let names = env.cluster_names();
    let mut client = SerfClient::connect(&addr).await.unwrap();
    wait_all_coordinates(&mut client, &names).await;

    let retry = Retry::new("stable coordinates around rtt_matrix");
    let (matrix, coords) = loop {
        let before = wait_all_coordinates(&mut client, &names).await;
        let matrix = rtt_matrix(&addr, None).await.unwrap();
        let after = wait_all_coordinates(&mut client, &names).await;
        if before == after {
            break (matrix, before);
        }
        retry.again("coordinates moved").await;
    };

    let n = names.len();
    assert_eq!(matrix.len(), n * (n - 1), "{matrix:?}");
    let map: BTreeMap<(&str, &str), f32> = matrix.iter().map(|(a, b, x)| ((a.as_str(), b.as_str()), *x)).collect();
    assert_eq!(map.len(), matrix.len(), "duplicate pairs: {matrix:?}");
    for a in &names {
        for b in &names {
            if a == b {
                assert!(!map.contains_key(&(a.as_str(), b.as_str())), "self pair {a}");
                continue;
            }
            let x = map[&(a.as_str(), b.as_str())];
            assert!(x.is_finite() && x >= 0.0, "{a} -> {b}: {x}");
            assert_eq!(x, map[&(b.as_str(), a.as_str())], "{a} <-> {b} not symmetric");
            assert_eq!(x, ms(estimated_rtt(&coords[a], &coords[b])) as f32, "{a} -> {b}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtt_matrix_of_named_clusters_skips_unknown_ones() {
    let env = env().await;
    let addr = serf_rpc(&env, env.cluster_names().len() - 1);
    let names = env.cluster_names();
    let mut client = SerfClient::connect(&addr).await.unwrap();
    wait_all_coordinates(&mut client, &names).await;
    let (first, last) = (names[0].clone(), names[names.len() - 1].clone());
    let wanted = vec![last.clone(), "no-such-cluster".to_string(), first.clone(), last.clone()];
    let matrix = rtt_matrix(&addr, Some(&wanted)).await.unwrap();
    let pairs: Vec<(&str, &str)> = matrix.iter().map(|(a, b, _)| (a.as_str(), b.as_str())).collect();
    let (lo, hi) = if first < last { (first.as_str(), last.as_str()) } else { (last.as_str(), first.as_str()) };
    assert_eq!(pairs, [(lo, hi), (hi, lo)]);
    assert!(rtt_matrix(&addr, Some(&[])).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_or_foreign_endpoints_give_typed_errors() {
    let env = env().await;
    // A port nobody listens on: bind one, note it, close it.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    match SerfClient::connect(&closed).await {
        Err(SerfError::Connect { addr, .. }) => assert_eq!(addr, closed),
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(matches!(rtt_matrix(&closed, None).await, Err(SerfError::Connect { .. })));
    // A TLS server (the cluster's kube-apiserver) is not serf: an error, never a panic.
    let apiserver = format!("127.0.0.1:{}", env.fleet().ports().apiserver(0));
    match SerfClient::connect_with_timeout(&apiserver, Duration::from_secs(10)).await {
        Err(e @ (SerfError::Protocol { .. } | SerfError::Closed { .. } | SerfError::Io { .. } | SerfError::Timeout { .. })) => {
            eprintln!("TLS port as serf: {e}");
        }
        other => panic!("expected a protocol error from a TLS port, got {other:?}"),
    }
}
