//! `mck8s simulate [SCENARIO.yaml] [--policy FILE.wasm]... [--json OUT] [--charts DIR]`:
//! runs a scenario (the embedded default without a file) once per placement policy and
//! prints the comparison table.
//!
//! Given a snapshot of the live fleet (`mck8s snapshot`) instead, it is a what-if: every
//! object decided again by its own policy and by `--policy FILE.wasm` (in place of
//! `--replacing NAME`, or of every object's policy), per object and over the fleet.

use anyhow::{Context, Result, bail};
use clap::Args;
use mck8s_scheduler::whatif::{self, Snapshot};
use mck8s_sim::{EVEN_SPLIT, Scenario, policies};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct SimulateArgs {
    /// Scenario file (YAML); the embedded paper-like default without one.
    scenario: Option<PathBuf>,
    /// Also compare this placement component (repeatable).
    #[arg(long = "policy")]
    policy_files: Vec<PathBuf>,
    /// Only these policies (comma-separated names; `kubefed-even` is the baseline).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Directory of the built-in components (default: where scripts/build-policies.sh puts them).
    #[arg(long, env = "MCK8S_POLICY_DIR")]
    policies: Option<PathBuf>,
    /// Write the full results (summary and time series) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write SVG charts (utilisation and Pending pods per cluster, pending fraction per policy).
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Print the embedded default scenario and exit.
    #[arg(long)]
    print_default: bool,
    /// With a snapshot: the policy `--policy` stands in for (default: every object's).
    #[arg(long)]
    replacing: Option<String>,
}

pub fn run(args: SimulateArgs) -> Result<()> {
    if args.print_default {
        print!("{}", mck8s_sim::DEFAULT_SCENARIO);
        return Ok(());
    }
    let scenario = match &args.scenario {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            if is_snapshot(&text) {
                return what_if(&args, &text).with_context(|| format!("in {}", p.display()));
            }
            Scenario::parse(&text).with_context(|| format!("in {}", p.display()))?
        }
        None => Scenario::default_scenario(),
    };
    let registry = policies::new_registry()?;
    let dir = args.policies.clone().unwrap_or_else(policies::builtin_dir);
    let builtins = policies::load_dir(&registry, &dir)?;
    let mut users = Vec::new();
    for f in &args.policy_files {
        users.push(policies::load_file(&registry, f).with_context(|| format!("loading {}", f.display()))?);
    }
    let registry = Arc::new(registry);
    let mut names: Vec<String> = if !args.only.is_empty() {
        args.only.clone()
    } else if !scenario.policies.is_empty() {
        scenario.policies.clone()
    } else {
        builtins.iter().cloned().chain([EVEN_SPLIT.to_string()]).collect()
    };
    for u in users {
        if !names.contains(&u) {
            names.push(u);
        }
    }
    if names.is_empty() {
        bail!("no placement policy to run");
    }
    for n in &names {
        if n != EVEN_SPLIT && registry.get(n).is_err() {
            let loaded: Vec<String> = registry.list().iter().map(|p| p.name.clone()).collect();
            bail!("no policy named {n:?}; loaded from {}: {}, and the baseline {EVEN_SPLIT}", dir.display(), loaded.join(", "));
        }
    }
    let workloads = scenario.expanded_workloads().len();
    eprintln!(
        "scenario {:?}: {} clusters, {} workloads, {} s of virtual time; policies: {}",
        scenario.name,
        scenario.clusters.len(),
        workloads,
        scenario.duration_seconds,
        names.join(", ")
    );
    let tty = std::io::stderr().is_terminal();
    let mut results = Vec::new();
    for name in &names {
        let mut last = -1i64;
        let mut progress = |f: f64| {
            let pct = (f * 100.0) as i64;
            if tty && pct != last {
                last = pct;
                let bar = (f * 30.0) as usize;
                eprint!("\r{name:<16} [{}{}] {pct:>3}%", "#".repeat(bar), " ".repeat(30 - bar.min(30)));
                let _ = std::io::stderr().flush();
            }
        };
        let r = mck8s_sim::run(&scenario, registry.clone(), name, &mut progress).with_context(|| format!("simulating with {name}"))?;
        if tty {
            eprint!("\r{:<60}\r", "");
        }
        eprintln!("{name}: {} decisions in {:.2} s wall", r.decisions, r.wall_seconds);
        for e in &r.first_errors {
            eprintln!("  error: {e}");
        }
        results.push(r);
    }
    println!("{}", mck8s_sim::table(&results));
    if let Some(path) = &args.json {
        let doc = serde_json::json!({ "scenario": scenario, "results": results });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = &args.charts {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (file, svg) in mck8s_sim::charts(&results) {
            let p = dir.join(file);
            std::fs::write(&p, svg).with_context(|| format!("writing {}", p.display()))?;
        }
        eprintln!("wrote charts to {}", dir.display());
    }
    Ok(())
}

fn is_snapshot(text: &str) -> bool {
    serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text)
        .ok()
        .and_then(|v| v.get("format").and_then(|f| f.as_str().map(str::to_string)))
        .is_some_and(|f| f.starts_with("mck8s/snapshot/"))
}

/// The what-if on a snapshot: one table row per object, then the fleet's figures.
fn what_if(args: &SimulateArgs, text: &str) -> Result<()> {
    let snapshot: Snapshot = serde_yaml_ng::from_str(text).context("reading the snapshot")?;
    let [file] = args.policy_files.as_slice() else { bail!("a what-if on a snapshot takes exactly one --policy FILE.wasm") };
    let registry = policies::new_registry()?;
    let dir = args.policies.clone().unwrap_or_else(policies::builtin_dir);
    policies::load_dir(&registry, &dir)?;
    let name = policies::load_file(&registry, file).with_context(|| format!("loading {}", file.display()))?;
    let registry = Arc::new(registry);
    let w = whatif::replay(&registry, &snapshot, &name, args.replacing.as_deref())?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&w)?).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    print!("{}", render_what_if(&w, snapshot.clusters.len()));
    Ok(())
}

fn placement_text(o: &whatif::Outcome) -> String {
    if let Some(e) = &o.error {
        return format!("error: {e}");
    }
    let mut s: Vec<String> = o.placement.iter().map(|(c, r)| format!("{c}={r}")).collect();
    if o.unplaced > 0 {
        s.push(format!("unplaced={}", o.unplaced));
    }
    if s.is_empty() { "-".into() } else { s.join(",") }
}

pub fn render_what_if(w: &whatif::WhatIf, clusters: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let replacing = w.replacing.as_deref().map_or("every object's policy".to_string(), str::to_string);
    let _ = writeln!(out, "what-if: {} in place of {replacing}, on the snapshot taken at {} ({clusters} clusters, {} objects)", w.policy, w.taken_at, w.objects.len());
    let rows: Vec<[String; 6]> = w
        .objects
        .iter()
        .map(|o| {
            let rec: Vec<String> = o.recorded.iter().map(|(c, r)| format!("{c}={r}")).collect();
            let changed = if o.now == o.what_if { "" } else { " *" };
            [
                format!("{}/{}", o.namespace, o.name),
                o.policy.clone(),
                if rec.is_empty() { "-".into() } else { rec.join(",") },
                placement_text(&o.now),
                format!("{}{changed}", placement_text(&o.what_if)),
                o.moved.to_string(),
            ]
        })
        .collect();
    let header = ["OBJECT", "POLICY", "RECORDED", "DECIDED NOW", "WHAT-IF", "MOVED"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut line = |cells: [&str; 6]| {
        let l: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", l.join("  ").trim_end());
    };
    line(header);
    for r in &rows {
        line(r.each_ref().map(String::as_str));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<12}  {:>7}  {:>8}  {:>8}  {:>13}  {:>6}", "FLEET", "PLACED", "UNPLACED", "ON CLOUD", "CLUSTERS USED", "FAILED");
    for (label, f) in [("now", &w.now), ("what-if", &w.what_if)] {
        let _ = writeln!(out, "{label:<12}  {:>7}  {:>8}  {:>8}  {:>13}  {:>6}", f.placed, f.unplaced, f.on_cloud, f.clusters_used, f.failed);
    }
    out
}
