//! Measures the signals' latency against running services:
//! `cargo run --release -p mck8s-signals --example latency -- [SERF_RPC] [PROMETHEUS_URL] [N]`
//! (defaults: the test environment's `127.0.0.1:26400`, `http://127.0.0.1:26090`, 200).

use std::time::{Duration, Instant};

use mck8s_signals::{Prometheus, SerfClient, rtt_matrix};

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!("n={} min={:?} median={:?} p90={:?} max={:?}", v.len(), v[0], pct(0.5), pct(0.9), v[v.len() - 1])
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let serf = args.next().unwrap_or_else(|| "127.0.0.1:26400".into());
    let prom_url = args.next().unwrap_or_else(|| "http://127.0.0.1:26090".into());
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);

    let mut client = SerfClient::connect(&serf).await?;
    let members = client.members().await?;
    println!("serf {serf}: {} members", members.len());
    for m in &members {
        if let Some(c) = client.coordinate(&m.name).await? {
            println!("  {:<10} {:<16} {} height={:.6}s adjustment={:+.6}s error={:.3}", m.name, m.addr, m.status, c.height, c.adjustment, c.error);
        }
    }
    let matrix = rtt_matrix(&serf, None).await?;
    for (a, b, ms) in matrix.iter().filter(|(a, b, _)| a < b) {
        println!("  {a} <-> {b}: {ms:.3} ms");
    }

    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        std::hint::black_box(rtt_matrix(&serf, None).await?);
        t.push(s.elapsed());
    }
    println!("rtt_matrix ({} clusters, new connection each): {}", members.len(), summary(t));

    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        std::hint::black_box(client.coordinate(&members[0].name).await?);
        t.push(s.elapsed());
    }
    println!("get-coordinate on an open connection: {}", summary(t));

    let prom = Prometheus::new(&prom_url, Duration::from_secs(10))?;
    println!("cluster_traffic: {:?}", prom.cluster_traffic().await?);
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        std::hint::black_box(prom.cluster_traffic().await?);
        t.push(s.elapsed());
    }
    println!("prometheus cluster_traffic (keep-alive client): {}", summary(t));
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        std::hint::black_box(prom.app_cpu_cores("default", "web").await?);
        t.push(s.elapsed());
    }
    println!("prometheus app_cpu_cores (empty result): {}", summary(t));
    Ok(())
}
