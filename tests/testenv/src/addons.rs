//! Optional real components: one serf agent per cluster and a Prometheus scraping the
//! simulated kubelets, with a `cluster_name` label per cluster.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::fleet::Fleet;
use crate::state::StateDir;
use crate::{Error, Result};

/// (process name, program, args) for each serf agent. Every agent but the first joins the
/// first one; `-retry-join` covers the first one starting a moment later.
pub fn serf_commands(fleet: &Fleet) -> Vec<(String, PathBuf, Vec<String>)> {
    let ports = fleet.ports();
    fleet
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut args = vec![
                "agent".to_string(),
                format!("-node={}", c.name),
                format!("-bind=127.0.0.1:{}", ports.serf_bind(i)),
                format!("-advertise=127.0.0.1:{}", ports.serf_bind(i)),
                format!("-rpc-addr=127.0.0.1:{}", ports.serf_rpc(i)),
                format!("-tag=role={}", c.role),
                "-log-level=warn".into(),
            ];
            if let Some(region) = &c.region {
                args.push(format!("-tag=region={region}"));
            }
            if i > 0 {
                args.push(format!("-retry-join=127.0.0.1:{}", ports.serf_bind(0)));
                args.push("-retry-interval=1s".into());
            }
            (format!("{}/serf", c.name), PathBuf::from("serf"), args)
        })
        .collect()
}

/// `serf members` through the first agent's RPC port: (name, status) per member.
pub fn serf_members(fleet: &Fleet) -> Result<Vec<(String, String)>> {
    let out = std::process::Command::new("serf")
        .args(["members", &format!("-rpc-addr=127.0.0.1:{}", fleet.ports().serf_rpc(0))])
        .output()
        .map_err(|e| Error::Command { what: "serf members".into(), detail: e.to_string() })?;
    if !out.status.success() {
        return Err(Error::Command { what: "serf members".into(), detail: String::from_utf8_lossy(&out.stderr).into() });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let _addr = f.next()?;
            Some((name.to_string(), f.next()?.to_string()))
        })
        .collect())
}

pub async fn wait_serf(fleet: &Fleet, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let alive = serf_members(fleet).map(|m| m.iter().filter(|(_, s)| s == "alive").count()).unwrap_or(0);
        if alive == fleet.clusters.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout { what: format!("serf: {alive}/{} members alive", fleet.clusters.len()), secs: timeout.as_secs() });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn prometheus_command(sd: &StateDir, fleet: &Fleet) -> Result<(PathBuf, Vec<String>)> {
    let ports = fleet.ports();
    let dir = sd.sub("prometheus");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut cfg = String::from("global:\n  scrape_interval: 2s\n  evaluation_interval: 2s\nscrape_configs:\n  - job_name: simulated-kubelet\n    static_configs:\n");
    for (i, c) in fleet.clusters.iter().enumerate() {
        cfg += &format!("      - targets: ['127.0.0.1:{}']\n        labels: {{cluster_name: '{}', role: '{}'}}\n", ports.kubelet(i), c.name, c.role);
    }
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, cfg).map_err(|e| Error::io(&file, e))?;
    let args = vec![
        format!("--config.file={}", file.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{}", ports.prometheus()),
        "--storage.tsdb.retention.time=2h".into(),
        "--log.level=warn".into(),
    ];
    Ok((PathBuf::from("prometheus"), args))
}
