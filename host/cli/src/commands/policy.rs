//! `mck8s policy check | eval | test | bench | compare | new | promote | rollback`.

use super::templates::{self, Lang};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use mck8s_policy::input::{PlacementInput, ScalingInput};
use mck8s_policy::{EngineConfig, FleetSnapshot, Limits, LoadedPolicy, PlacementSession, PolicyEngine, PolicyKind, canary, synthetic};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Show a component's world, WIT version, imports, exports and sha256, and self-check it.
    Check {
        file: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Run one decision and print it as JSON, with the policy's reasons.
    Eval {
        file: PathBuf,
        /// A placement input ({fleet, workload}) or a scaling input, YAML or JSON.
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Place one workload with every placement policy in a directory and compare the
    /// decisions side by side (embedded default fleet and workload unless --input).
    Compare {
        /// Directory of policy components (default: the built-ins from scripts/build-policies.sh).
        #[arg(long, env = "MCK8S_POLICY_DIR")]
        policies: Option<PathBuf>,
        #[arg(long)]
        input: Option<PathBuf>,
        /// Also try preferred-clusters mode with these locations (comma-separated).
        #[arg(long, default_value = "cluster1,cluster4")]
        locations: String,
    },
    /// Run case files (fleet + workload → expected placement) and, with --properties, the
    /// properties every placement policy must have on generated fleets.
    Test {
        file: PathBuf,
        /// Case files or directories of them (the format of tests/cases/placement).
        cases: Vec<PathBuf>,
        /// Generated fleets to check the properties on (0: none).
        #[arg(long, default_value_t = 0)]
        properties: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Parameters for the generated workloads, `key=value` (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Make a shadow policy (ConfigMap annotated `fogguru.eu/shadow-of: POLICY`) the policy it
    /// shadows, atomically; the replaced version is kept for `rollback`.
    Promote {
        shadow: String,
        /// Where the policy ConfigMaps are: the controller's namespace.
        #[arg(short, long, env = "MCK8S_NAMESPACE", default_value = "mck8s-system")]
        namespace: String,
    },
    /// Put back the version `promote` replaced (again: redo).
    Rollback {
        policy: String,
        #[arg(short, long, env = "MCK8S_NAMESPACE", default_value = "mck8s-system")]
        namespace: String,
    },
    /// Write a ready-to-build policy project (the even-spread example) for LANG into
    /// ./NAME or --dir.
    New {
        #[arg(value_enum)]
        lang: Lang,
        name: String,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// sdk/rust of a mck8s checkout, for Rust projects (default: the checkout this
        /// binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Measure per-decision latency (percentiles) on synthetic fleets or an input file.
    Bench {
        file: PathBuf,
        /// Fleet sizes to generate (ignored with --input).
        #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
        clusters: Vec<usize>,
        #[arg(long)]
        input: Option<PathBuf>,
        /// Decisions per measurement.
        #[arg(long, default_value_t = 500)]
        iterations: usize,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Args)]
pub struct LimitArgs {
    /// Per-call deadline.
    #[arg(long, default_value_t = 100)]
    deadline_ms: u64,
    /// Linear-memory cap.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits { deadline: Duration::from_millis(self.deadline_ms), memory_bytes: self.memory_mib << 20 }
    }
}

pub fn run(cmd: PolicyCommand) -> Result<()> {
    // Built only by the commands that load components (`new` needs none).
    let engine = || PolicyEngine::new(EngineConfig::default());
    match cmd {
        PolicyCommand::Check { file, limits } => check(&engine()?, &file, limits.limits()),
        PolicyCommand::Eval { file, input, limits } => eval(&engine()?, &file, &input, limits.limits()),
        PolicyCommand::Test { file, cases, properties, seed, params, limits } => test(&engine()?, &file, &cases, properties, seed, &params.into_iter().collect(), limits.limits()),
        PolicyCommand::Compare { policies, input, locations } => compare(&engine()?, policies, input.as_deref(), &locations),
        PolicyCommand::Bench { file, clusters, input, iterations, limits } => bench(&engine()?, &file, &clusters, input.as_deref(), iterations, limits.limits()),
        PolicyCommand::New { lang, name, dir, sdk } => new(lang, &name, dir, sdk),
        PolicyCommand::Promote { shadow, namespace } => super::promote::promote(&shadow, &namespace),
        PolicyCommand::Rollback { policy, namespace } => super::promote::rollback(&policy, &namespace),
    }
}

fn load(engine: &PolicyEngine, file: &Path, limits: Limits) -> Result<Arc<LoadedPolicy>> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("policy");
    let policy = LoadedPolicy::load(engine, name, &bytes, &format!("file:{}", file.display()), limits)?;
    Ok(Arc::new(policy))
}

fn check(engine: &PolicyEngine, file: &Path, limits: Limits) -> Result<()> {
    let policy = load(engine, file, limits)?;
    let self_check = canary::self_check(&policy);
    let out = json!({
        "name": policy.name,
        "sha256": policy.digest,
        "sizeBytes": policy.size_bytes,
        "world": policy.kind,
        "witVersion": policy.wit_version,
        "hostWitVersion": mck8s_policy::WIT_VERSION,
        "fleetUpdates": policy.incremental,
        "explains": policy.explains,
        "info": policy.info,
        "imports": policy.surface.imports,
        "exports": policy.surface.exports,
        "selfCheck": match &self_check { Ok(()) => "passed".to_string(), Err(e) => e.to_string() },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let Err(e) = self_check {
        bail!("{e}");
    }
    Ok(())
}

fn read_doc<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // YAML is a superset of JSON.
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn eval(engine: &PolicyEngine, file: &Path, input: &Path, limits: Limits) -> Result<()> {
    let policy = load(engine, file, limits)?;
    let out = match policy.kind {
        PolicyKind::Placement => {
            let doc: PlacementInput = read_doc(input)?;
            let fleet = Arc::new(FleetSnapshot::from_doc(&doc.fleet)?);
            let workload = fleet.workload(&doc.workload)?;
            let decision = PlacementSession::new(policy, fleet)?.place(&workload)?;
            serde_json::to_value(decision)?
        }
        PolicyKind::Scaling => {
            let doc: ScalingInput = read_doc(input)?;
            serde_json::to_value(policy.scale(&doc.to_wit())?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn percentiles(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    json!({ "p50_us": at(0.50), "p90_us": at(0.90), "p99_us": at(0.99), "max_us": at(1.0), "n": samples.len() })
}

fn bench(engine: &PolicyEngine, file: &Path, sizes: &[usize], input: Option<&Path>, iterations: usize, limits: Limits) -> Result<()> {
    let policy = load(engine, file, limits)?;
    if policy.kind != PolicyKind::Placement {
        bail!("bench measures placement policies; {} is a scaling policy", policy.name);
    }
    let cases: Vec<(String, PlacementInput)> = match input {
        Some(path) => vec![(path.display().to_string(), read_doc(path)?)],
        None => sizes.iter().map(|&n| (format!("{n} clusters"), PlacementInput { fleet: synthetic::fleet(n, 42), workload: synthetic::workload() })).collect(),
    };
    let mut rows = Vec::new();
    for (label, doc) in cases {
        let fleet = Arc::new(FleetSnapshot::from_doc(&doc.fleet)?);
        let workload = fleet.workload(&doc.workload)?;
        let mut session = PlacementSession::new(policy.clone(), fleet.clone())?;
        let t = Instant::now();
        session.prepare()?;
        let prepare = t.elapsed();
        let mut place = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            session.place_raw(&workload)?;
            place.push(t.elapsed());
        }
        let mut fresh = Vec::with_capacity(iterations.min(100));
        for _ in 0..iterations.min(100) {
            let t = Instant::now();
            PlacementSession::new(policy.clone(), fleet.clone())?.place_raw(&workload)?;
            fresh.push(t.elapsed());
        }
        rows.push(json!({
            "case": label,
            "prepare_us": prepare.as_secs_f64() * 1e6,
            "place": percentiles(place),
            "instantiate_set_fleet_place": percentiles(fresh),
        }));
    }
    println!("{}", serde_json::to_string_pretty(&json!({ "policy": policy.name, "sha256": policy.digest, "results": rows }))?);
    Ok(())
}

const DEFAULT_INPUT: &str = include_str!("default-fleet.yaml");

fn default_policy_dir() -> PathBuf {
    mck8s_policy::built::builtin_dir()
}

fn compare(engine: &PolicyEngine, dir: Option<PathBuf>, input: Option<&Path>, locations: &str) -> Result<()> {
    let dir = dir.unwrap_or_else(default_policy_dir);
    let doc: PlacementInput = match input {
        Some(p) => read_doc(p)?,
        None => serde_yaml_ng::from_str(DEFAULT_INPUT).expect("embedded default parses"),
    };
    let fleet = Arc::new(FleetSnapshot::from_doc(&doc.fleet)?);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading policies from {} (build them with scripts/build-policies.sh)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    entries.sort();
    let mut runs: Vec<(String, mck8s_policy::input::WorkloadDoc)> = Vec::new();
    let names: Vec<String> = doc.fleet.clusters.iter().map(|c| c.name.clone()).collect();
    println!(
        "fleet: {}; workload {:?}: {} replicas × {} locations of {} / {}",
        names.join(", "),
        doc.workload.name,
        doc.workload.replicas,
        doc.workload.number_of_locations.unwrap_or(1),
        doc.workload.requests.cpu.as_deref().unwrap_or("0"),
        doc.workload.requests.memory.as_deref().unwrap_or("0")
    );
    let (slots, _) = fleet.capacity_for(&mck8s_policy::input::requests_of(&doc.workload)?);
    println!("free slots for this shape: {}\n", (0..fleet.len()).map(|i| format!("{}={}", fleet.name_of(i as u32), slots[i])).collect::<Vec<_>>().join(" "));
    for path in &entries {
        let policy = load(engine, path, Limits::default())?;
        if policy.kind != PolicyKind::Placement {
            continue;
        }
        runs.clear();
        runs.push((policy.name.clone(), doc.workload.clone()));
        if policy.name == "preferred" && !locations.is_empty() {
            let mut w = doc.workload.clone();
            w.locations = Some(mck8s_policy::input::ListOrCsv::Csv(locations.to_string()));
            w.number_of_locations = None;
            runs[0] = (format!("preferred ({locations})"), w);
        }
        for (label, w) in &runs {
            let workload = fleet.workload(w)?;
            let t = Instant::now();
            let d = PlacementSession::new(policy.clone(), fleet.clone())?.place(&workload)?;
            let took = t.elapsed();
            let placed: Vec<String> = d.placements.iter().map(|p| format!("{}={}", p.cluster, p.replicas)).collect();
            println!("{label:<28} {:<44} unplaced={:<3} ({:.2} ms incl. instantiate)", placed.join(" "), d.unplaced, took.as_secs_f64() * 1e3);
            for p in &d.placements {
                println!("    {:<10} {}", p.cluster, p.reason);
            }
            println!("    summary: {}", d.summary);
        }
    }
    Ok(())
}

fn new(lang: Lang, name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let (files, build) = templates::scaffold(lang, name, &dir, &sdk.unwrap_or_else(templates::default_sdk))?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    println!("\nnext, in {}:\n{build}\nmck8s policy test policy.wasm cases --properties 200", dir.display());
    Ok(())
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("{s:?} is not key=value"))
}

fn test(engine: &PolicyEngine, file: &Path, paths: &[PathBuf], properties: usize, seed: u64, params: &std::collections::BTreeMap<String, String>, limits: Limits) -> Result<()> {
    let policy = load(engine, file, limits)?;
    if policy.kind != PolicyKind::Placement {
        bail!("{} is a scaling policy; `policy test` runs placement cases", policy.name);
    }
    let (mut passed, mut failed) = (0, 0);
    for path in paths {
        for (name, case) in mck8s_policy::cases::load(path)? {
            match mck8s_policy::cases::run(&policy, &case) {
                Ok((decision, None)) => {
                    passed += 1;
                    println!("ok    {name}");
                    for p in &decision.placements {
                        println!("        {:<12} {:>4}  {}", p.cluster, p.replicas, p.reason);
                    }
                }
                Ok((decision, Some(diff))) => {
                    failed += 1;
                    println!("FAIL  {name}: {diff}");
                    for p in &decision.placements {
                        println!("        {:<12} {:>4}  {}", p.cluster, p.replicas, p.reason);
                    }
                    println!("        summary: {}", decision.summary);
                }
                Err(e) => {
                    failed += 1;
                    println!("FAIL  {name}: {e:#}");
                }
            }
        }
    }
    if properties > 0 {
        let violations = mck8s_policy::cases::check_properties(&policy, properties, seed, params);
        if violations.is_empty() {
            passed += 1;
            println!("ok    properties on {properties} generated fleets (seed {seed})");
        } else {
            failed += 1;
            println!("FAIL  properties: {} violation(s) on {properties} generated fleets (seed {seed})", violations.len());
            for v in violations.iter().take(10) {
                println!("        {v}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    Ok(())
}
