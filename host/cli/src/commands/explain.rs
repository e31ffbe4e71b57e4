//! `mck8s explain [-n NS] NAME [--kind mcj] [-o json]` (also `kubectl mck8s explain`): asks
//! the running controller why an object is placed where it is, and prints one row per
//! registered cluster. The controller decides again on the live fleet with the input a real
//! decision gets and records nothing (`docs/explain.md`).

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Args)]
pub struct ExplainArgs {
    /// The object's name.
    name: String,
    /// Its namespace (default: the kubeconfig context's, else `default`).
    #[arg(short, long)]
    namespace: Option<String>,
    #[arg(long, value_enum, default_value_t = Kind::Mcd)]
    kind: Kind,
    /// The controller's HTTP address (its metrics port; e.g. through `kubectl port-forward`).
    #[arg(long, env = "MCK8S_CONTROLLER", default_value = "http://127.0.0.1:9464")]
    controller: String,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// MultiClusterDeployment
    Mcd,
    /// MultiClusterJob
    Mcj,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let namespace = args.namespace.clone().unwrap_or_else(context_namespace);
    let kind = match args.kind {
        Kind::Mcd => "mcd",
        Kind::Mcj => "mcj",
    };
    // Encoded, so a name like `../x` reaches the controller as one (refused) segment.
    let url = format!("{}/explain/{kind}/{}/{}", args.controller.trim_end_matches('/'), segment(&namespace), segment(&args.name));
    let body = get(&args.controller, &url)?;
    let v: Value = serde_json::from_str(&body).context("the controller's answer is not JSON")?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Output::Table => print!("{}", render(&v)),
    }
    Ok(())
}

/// GET `url` from the controller at `controller`: the body of a 2xx answer, else an error
/// with the controller's words.
pub fn get(controller: &str, url: &str) -> Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (status, body) = rt.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let resp = client.get(url).send().await.with_context(|| format!("asking the controller at {controller}"))?;
        let status = resp.status();
        anyhow::Ok((status, resp.text().await?))
    })?;
    if !status.is_success() {
        bail!("the controller answered {status}: {}", body.trim());
    }
    Ok(body)
}

/// `s` percent-encoded as one URL path segment.
fn segment(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// The current kubeconfig context's namespace, as kubectl picks it.
fn context_namespace() -> String {
    let ns = || {
        let kc = kube::config::Kubeconfig::read().ok()?;
        let current = kc.current_context.clone()?;
        kc.contexts.into_iter().find(|c| c.name == current)?.context?.namespace
    };
    ns().unwrap_or_else(|| "default".into())
}

/// The header and one row per cluster.
pub fn render(v: &Value) -> String {
    let e = &v["explanation"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out = String::new();
    let digest: String = s(&e["digest"]).chars().take(12).collect();
    let own = if e["policyExplains"].as_bool() == Some(true) {
        "gives its own reasons".to_string()
    } else if let Some(err) = e["policyExplainError"].as_str() {
        format!("its reasons failed: {err}")
    } else {
        "host reasons only".to_string()
    };
    let _ = writeln!(out, "{} {}/{}: policy {} (sha256 {digest}, WIT {}, {own})", s(&v["kind"]), s(&v["namespace"]), s(&v["name"]), s(&e["policy"]), s(&e["witVersion"]));
    let r = &e["request"];
    let _ = writeln!(out, "per replica: {}m cpu, {} memory; total {}, unplaced {}", r["cpu_millis"], bytes(r["memory_bytes"].as_u64().unwrap_or(0)), e["total"], e["unplaced"]);
    let recorded: Vec<String> = v["recorded"].as_object().map(|m| m.iter().map(|(c, n)| format!("{c}={n}")).collect()).unwrap_or_default();
    let same = if v["sameAsRecorded"].as_bool() == Some(true) { "deciding now gives the same" } else { "deciding now differs (the fleet changed, or a move is pending)" };
    let recorded = if recorded.is_empty() { "nothing".to_string() } else { recorded.join(",") };
    let _ = writeln!(out, "recorded: {recorded}; {same}");
    if !s(&e["summary"]).is_empty() {
        let _ = writeln!(out, "summary: {}", s(&e["summary"]));
    }
    let header = ["CLUSTER", "ROLE", "HEALTH", "FITS", "SLOTS", "IN-FLIGHT", "RANK", "SCORE", "REPLICAS", "WHY"];
    let mut rows: Vec<[String; 10]> = Vec::new();
    for c in e["clusters"].as_array().into_iter().flatten() {
        let slots = c["slots"].as_u64().unwrap_or(0);
        let without = c["slotsWithoutInFlight"].as_u64().unwrap_or(slots);
        let opt = |v: &Value| if v.is_null() { "-".to_string() } else { v.to_string() };
        let score = c["score"].as_f64().map_or("-".to_string(), |x| if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.2}") });
        let by = if c["reasonFromPolicy"].as_bool() == Some(true) { "" } else { "[host] " };
        rows.push([
            s(&c["cluster"]),
            s(&c["role"]),
            s(&c["health"]),
            if c["shortfall"].is_null() { "yes" } else { "no" }.to_string(),
            if without != slots { format!("{slots} (of {without})") } else { slots.to_string() },
            c["inFlightReplicas"].to_string(),
            opt(&c["rank"]),
            score,
            c["replicas"].to_string(),
            format!("{by}{}", s(&c["reason"])),
        ]);
    }
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: [&str; 10]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(header);
    for r in &rows {
        line(r.each_ref().map(String::as_str));
    }
    out
}

fn bytes(v: u64) -> String {
    if v >= 1 << 30 && v.is_multiple_of(1 << 30) {
        format!("{}Gi", v >> 30)
    } else if v >= 1 << 20 {
        format!("{}Mi", v >> 20)
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_name_is_one_path_segment() {
        assert_eq!(super::segment("web-1.a"), "web-1.a");
        assert_eq!(super::segment("../x y"), "..%2Fx%20y");
    }

    #[test]
    fn a_row_per_cluster_with_the_host_s_reasons_marked() {
        let v = serde_json::json!({
            "kind": "MultiClusterDeployment", "namespace": "default", "name": "web", "recorded": {"c1": 2}, "sameAsRecorded": true,
            "explanation": {
                "policy": "worst-fit", "digest": "0123456789abcdef", "witVersion": "0.1.2", "policyExplains": true,
                "request": {"cpu_millis": 500, "memory_bytes": 268435456u64, "pods": 1}, "total": 2, "unplaced": 0, "summary": "s",
                "clusters": [
                    {"cluster": "c1", "role": "fog", "health": "ready", "slots": 4, "inFlightReplicas": 0, "slotsWithoutInFlight": 4, "rank": 1, "score": 4.0, "replicas": 2, "why": "chosen", "reason": "ranked #1", "reasonFromPolicy": true},
                    {"cluster": "c2", "role": "fog", "health": "ready", "shortfall": {"kind": "resource"}, "slots": 0, "inFlightReplicas": 1, "slotsWithoutInFlight": 0, "replicas": 0, "why": "too-small", "reason": "too small", "reasonFromPolicy": false}
                ]
            }
        });
        let text = super::render(&v);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("MultiClusterDeployment default/web: policy worst-fit (sha256 0123456789ab, WIT 0.1.2, gives its own reasons)"), "{text}");
        assert!(lines[1].contains("500m cpu, 256Mi memory"), "{text}");
        let c1 = lines.iter().find(|l| l.starts_with("c1 ")).unwrap();
        let c2 = lines.iter().find(|l| l.starts_with("c2 ")).unwrap();
        assert!(c1.contains(" yes ") && c1.ends_with(" ranked #1"), "{c1}");
        assert!(c2.contains(" no ") && c2.ends_with("[host] too small"), "{c2}");
    }
}
