//! mck8s-soak (run by `scripts/soak.sh`): on the real test environment, a steady stream of
//! MultiClusterDeployment, Service and Job operations for a fixed time while faults are
//! injected one after another, with the invariants of `invariants` checked every few
//! seconds; then the faults stop and everything must converge within a bound. Prints a
//! table and exits non-zero on any violation.
//!
//! Usage: mck8s-soak MINUTES [SEED]   (environment: MCK8S_BIN, MCK8S_WASM_DIR)

mod controllers;
mod faults;
mod invariants;
mod workload;

use anyhow::Context as _;
use controllers::Controller;
use faults::Fault;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A small deterministic generator: a seed gives the same stream of choices (how they
/// interleave with faults still depends on timing).
pub struct Rng(u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// How long after the last fault everything must have converged.
const CONVERGE_WITHIN: Duration = Duration::from_secs(180);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let minutes: f64 = args.get(1).map(|m| m.parse()).transpose().context("MINUTES")?.unwrap_or(20.0);
    let seed: u64 = args.get(2).map(|s| s.parse()).transpose().context("SEED")?.unwrap_or(0x5eed);
    let bin = PathBuf::from(std::env::var("MCK8S_BIN").context("MCK8S_BIN: the mck8s binary")?);
    let wasm = PathBuf::from(std::env::var("MCK8S_WASM_DIR").context("MCK8S_WASM_DIR: the built policies")?);
    let mut rng = Rng(seed.max(1));

    let env = mck8s_testenv::TestEnv::shared().await?;
    // The soak owns the environment: every cluster it disrupts, held exclusively throughout.
    let mut guards = std::collections::BTreeMap::new();
    for c in faults::WORKLOAD_CLUSTERS.iter().chain([faults::MANAGEMENT].iter()) {
        guards.insert(*c, env.exclusive(c).await?);
    }
    let ns = guards[faults::MANAGEMENT].namespace("soak").await?;
    let out = env.kubectl(faults::MANAGEMENT).args(["apply", "-f"]).arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds")).output()?;
    anyhow::ensure!(out.status.success(), "kubectl apply deploy/crds: {}", String::from_utf8_lossy(&out.stderr));
    for c in faults::WORKLOAD_CLUSTERS.iter().chain(["cloud1"].iter()) {
        let _ = env.kubectl(c).args(["create", "namespace", &ns.name]).output()?;
    }

    // Policies: the built-ins, plus `house` (worst-fit) that the soak breaks and restores.
    let dir = std::env::temp_dir().join(format!("mck8s-soak-{}", std::process::id()));
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    let good = wasm.join("builtin/worst-fit.wasm");
    let broken = wasm.join("mck8s_guest_broken.wasm");
    let house = policies.join("house.wasm");
    faults::copy_over(&good, &house)?;
    let policy = faults::PolicyFiles { house: &house, good: &good, broken: &broken };

    let kubeconfig = env.state_dir().join("kubeconfig/all.yaml");
    let run_args = |port: u16| -> Vec<String> {
        [
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            "--context",
            faults::MANAGEMENT,
            "--namespace",
            &ns.name,
            "--watch-namespace",
            &ns.name,
            "--clusters",
            &kubeconfig.to_string_lossy(),
            "--exclude-cluster",
            faults::MANAGEMENT,
            "--no-cluster-secrets",
            "--no-policy-configmaps",
            "--no-cloud-provisioning",
            "--policy-dir",
            &wasm.join("builtin").to_string_lossy(),
            "--policy-dir",
            &policies.to_string_lossy(),
            "--leader-elect",
            "--failover-grace-seconds",
            "10",
            "--burst-retry-seconds",
            "5",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ]
        .map(String::from)
        .to_vec()
    };
    let mut controllers = vec![Controller::new("soak-a", &dir, run_args(19471)), Controller::new("soak-b", &dir, run_args(19472))];
    for c in &mut controllers {
        c.start(&bin)?;
    }

    let management = env.client(faults::MANAGEMENT).await?;
    let mut clusters = Vec::new();
    for c in faults::WORKLOAD_CLUSTERS.iter().chain(["cloud1"].iter()) {
        clusters.push((c.to_string(), env.client(c).await?));
    }
    let fleet = invariants::Fleet { management: &management, clusters: &clusters, namespace: &ns.name };
    let mut work = workload::Workload::new(management.clone(), &ns.name);
    let mut tracker = invariants::Tracker::default();
    let mut fault_counts: BTreeMap<Fault, u64> = BTreeMap::new();
    let mut restarts = 0u64;
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> = kube::Api::namespaced(management.clone(), &ns.name);

    let started = Instant::now();
    let total = Duration::from_secs_f64(minutes * 60.0);
    let faults_until = total.saturating_sub(CONVERGE_WITHIN);
    println!("soak: {minutes} min, seed {seed:#x}, namespace {}, logs in {}", ns.name, dir.display());
    // One task drives the faults; this one drives the workload and the checks.
    let mut next_fault = Instant::now() + Duration::from_secs(20);
    let mut last_check = Instant::now();
    while started.elapsed() < faults_until {
        if Instant::now() >= next_fault {
            let fault = faults::ALL[rng.below(faults::ALL.len() as u64) as usize];
            let hold = Duration::from_secs(8 + rng.below(13));
            let holder = tokio::time::timeout(Duration::from_secs(3), leases.get_opt("mck8s-leader"))
                .await
                .ok()
                .and_then(|r| r.ok())
                .flatten()
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity);
            // The workload and the checks go on while the fault is held.
            let mut fault_rng = Rng(rng.below(u64::MAX) | 1);
            let cluster = faults::WORKLOAD_CLUSTERS[rng.below(faults::WORKLOAD_CLUSTERS.len() as u64) as usize];
            let surviving: Vec<String> = clusters.iter().map(|(c, _)| c.clone()).filter(|c| Some(c.as_str()) != faults::spares_not(fault, cluster)).collect();
            let mut floor = invariants::ReadyFloor::start(&fleet, format!("{fault:?} {cluster}"), surviving).await;
            let inject = faults::inject(fault, &env, &guards, cluster, &mut fault_rng, hold, &mut controllers, &bin, holder, &policy);
            tokio::pin!(inject);
            let what = loop {
                tokio::select! {
                    r = &mut inject => break r,
                    () = tokio::time::sleep(Duration::from_millis(1500)) => {
                        work.step(&mut rng).await;
                        if last_check.elapsed() >= Duration::from_secs(5) {
                            tracker.check(&fleet).await;
                            floor.check(&fleet, &work.touched, &mut tracker).await;
                            last_check = Instant::now();
                        }
                    }
                }
            };
            let what = what.with_context(|| format!("injecting {fault:?}"))?;
            *fault_counts.entry(fault).or_default() += 1;
            println!("[{:>5.0} s] {what}", started.elapsed().as_secs_f64());
            // Room for the last fault's failback to finish before the next one.
            next_fault = Instant::now() + Duration::from_secs(20 + rng.below(15));
        }
        for c in &mut controllers {
            if c.keep_running(&bin)? {
                restarts += 1;
            }
        }
        work.step(&mut rng).await;
        if last_check.elapsed() >= Duration::from_secs(5) {
            tracker.check(&fleet).await;
            last_check = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }

    // Faults over: converge.
    println!("[{:>5.0} s] faults stopped; waiting up to {CONVERGE_WITHIN:?} for convergence", started.elapsed().as_secs_f64());
    let quiet = Instant::now();
    let mut pending = Vec::new();
    while quiet.elapsed() < CONVERGE_WITHIN {
        for c in &mut controllers {
            if c.keep_running(&bin)? {
                restarts += 1;
            }
        }
        pending = invariants::converged(&fleet).await;
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let converged_after = quiet.elapsed();
    let mut violations = tracker.violations.clone();
    violations.extend(controllers::overlapping(&controllers).into_iter().map(|o| format!("two leaders: {o}")));
    if !pending.is_empty() {
        violations.push(format!("not converged {CONVERGE_WITHIN:?} after the faults stopped: {}", pending.join("; ")));
    }

    println!();
    println!("| what | count |");
    println!("|---|---|");
    println!("| duration | {:.1} min (faults for {:.1} min) |", started.elapsed().as_secs_f64() / 60.0, faults_until.as_secs_f64() / 60.0);
    for (op, n) in &work.ops.done {
        println!("| operation: {op} | {n} |");
    }
    println!("| operations refused or timed out (management API server down) | {} |", work.ops.failed);
    for f in faults::ALL {
        println!("| fault: {f:?} | {} |", fault_counts.get(&f).copied().unwrap_or(0));
    }
    println!("| controller restarts after exiting by itself | {restarts} |");
    let leaderships: usize = controllers.iter().map(|c| c.leaderships().len()).sum();
    println!("| leaderships | {leaderships} |");
    println!("| invariant checks (orphans, strays) | {} (+{} skipped: management API server down) |", tracker.checks, tracker.skipped);
    println!("| ready-floor checks during faults | {} |", tracker.floor_checks);
    println!("| converged after the faults stopped | {} |", if pending.is_empty() { format!("{:.0} s", converged_after.as_secs_f64()) } else { "no".into() });
    println!("| violations | {} |", violations.len());
    for v in &violations {
        println!("VIOLATION: {v}");
    }
    drop(controllers);
    if violations.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        ns.delete().await?;
        Ok(())
    } else {
        anyhow::bail!("{} invariant violations (logs kept in {})", violations.len(), dir.display())
    }
}
