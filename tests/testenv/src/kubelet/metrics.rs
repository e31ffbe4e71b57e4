//! Per-pod load as cAdvisor-style Prometheus counters. Counters integrate each pod's current
//! rate every second, so changing a pod's load annotation changes the slope, never the past.

use std::fmt::Write;
use std::time::{Duration, Instant};

use super::Kubelet;

pub const CPU_METRIC: &str = "container_cpu_usage_seconds_total";
pub const RX_METRIC: &str = "container_network_receive_bytes_total";

pub(super) async fn integrate_loop(k: Kubelet) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = Instant::now();
    loop {
        tick.tick().await;
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        let mut sim = k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let lost: std::collections::HashSet<String> = sim.nodes.iter().filter(|(_, n)| n.lost).map(|(name, _)| name.clone()).collect();
        for p in sim.pods.values_mut().filter(|p| !lost.contains(&p.node)) {
            p.cpu_seconds += p.cpu_cores * dt;
            p.rx_bytes += p.rx_bytes_per_second * dt;
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Text exposition format. CPU is split evenly over a pod's containers, as series per
/// container (like cAdvisor); network is per pod (interface `eth0`). Pods on lost nodes are
/// absent, as they would be when their node's kubelet is unreachable.
pub(super) fn render(k: &Kubelet) -> String {
    let sim = k.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = String::new();
    let _ = writeln!(out, "# HELP {CPU_METRIC} Simulated cumulative CPU time consumed, in seconds.\n# TYPE {CPU_METRIC} counter");
    let mut pods: Vec<_> = sim.pods.iter().filter(|(_, p)| !sim.nodes.get(&p.node).is_some_and(|n| n.lost)).collect();
    pods.sort_by(|a, b| a.0.cmp(b.0));
    for ((ns, name), p) in &pods {
        let n = p.containers.len().max(1) as f64;
        for c in &p.containers {
            let _ = writeln!(
                out,
                "{CPU_METRIC}{{namespace=\"{}\",pod=\"{}\",container=\"{}\",node=\"{}\"}} {}",
                escape(ns),
                escape(name),
                escape(c),
                escape(&p.node),
                p.cpu_seconds / n
            );
        }
    }
    let _ = writeln!(out, "# HELP {RX_METRIC} Simulated cumulative bytes received.\n# TYPE {RX_METRIC} counter");
    for ((ns, name), p) in &pods {
        let _ = writeln!(out, "{RX_METRIC}{{namespace=\"{}\",pod=\"{}\",interface=\"eth0\",node=\"{}\"}} {}", escape(ns), escape(name), escape(&p.node), p.rx_bytes);
    }
    let _ = writeln!(out, "# HELP mck8s_sim_node_lost 1 if the simulated node is lost.\n# TYPE mck8s_sim_node_lost gauge");
    for (name, n) in &sim.nodes {
        let _ = writeln!(out, "mck8s_sim_node_lost{{node=\"{}\"}} {}", escape(name), u8::from(n.lost));
    }
    out
}
