//! Hot reload from a policies directory while several threads decide continuously: no call
//! fails, every new version is observed, a broken version is refused while the previous one
//! serves on, and removing the file removes the policy.

use crate::common;
use mck8s_policy::input::PlacementInput;
use mck8s_policy::{DirSource, FleetSnapshot, PolicyRegistry};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INPUT: &str = r#"
fleet:
  clusters:
    - {name: big, nodes: [{count: 4, cpu: "8", memory: 32Gi}]}
    - {name: small, nodes: [{cpu: "2", memory: 4Gi}]}
workload: {name: app, replicas: 1, requests: {cpu: "1", memory: 1Gi}}
"#;

/// Liveness bound only (a test must not hang); the measured latency is printed and the
/// reload benchmark records it.
const GIVE_UP: Duration = Duration::from_secs(60);

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn swaps_under_concurrent_load_without_a_failed_call() {
    let dir = tempfile::tempdir().unwrap();
    let worst = common::builtin("worst-fit");
    let best = common::builtin("best-fit");
    write_atomically(dir.path(), "p.wasm", &worst);

    let registry = Arc::new(PolicyRegistry::new(common::engine()));
    let _source = DirSource::start(registry.clone(), dir.path()).unwrap();
    assert!(registry.get("p").is_ok(), "the initial scan loads the directory");

    let input: PlacementInput = serde_yaml_ng::from_str(INPUT).unwrap();
    let fleet = Arc::new(FleetSnapshot::from_doc(&input.fleet).unwrap());
    let workload = fleet.workload(&input.workload).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    // The cluster the latest decision chose, with when that decision started.
    let latest = Arc::new(Mutex::new((String::new(), Instant::now())));

    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (registry, fleet, workload) = (registry.clone(), fleet.clone(), workload.clone());
            let (stop, calls, failures, latest) = (stop.clone(), calls.clone(), failures.clone(), latest.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // One session per "cycle", as the controller does.
                    // Stamped with the start: a decision begun before a swap is no evidence of it.
                    let started = Instant::now();
                    match registry.placement_session("p", fleet.clone()).and_then(|mut s| s.place(&workload)) {
                        Ok(d) => *latest.lock().unwrap() = (d.placements[0].cluster.clone(), started),
                        Err(e) => failures.lock().unwrap().push(e.to_string()),
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let wait_for = |cluster: &str, since: Instant| -> Duration {
        loop {
            let (c, at) = latest.lock().unwrap().clone();
            if c == cluster && at > since {
                return at - since;
            }
            assert!(since.elapsed() < GIVE_UP, "version choosing {cluster} never observed");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait_for("big", Instant::now());

    let mut latencies = Vec::new();
    for round in 0..3 {
        let t = Instant::now();
        if round == 1 {
            // A plain (non-atomic) write: a half-written file may be seen and refused first.
            std::fs::write(dir.path().join("p.wasm"), &best).unwrap();
        } else {
            write_atomically(dir.path(), "p.wasm", &best);
        }
        latencies.push(wait_for("small", t));

        // A broken version is refused; the previous one keeps serving.
        write_atomically(dir.path(), "p.wasm", b"\0asm broken");
        let broken = mck8s_policy::loaded::sha256_hex(b"\0asm broken");
        let t = Instant::now();
        while !registry.refusals().iter().any(|r| r.name == "p" && r.digest == broken) {
            assert!(t.elapsed() < GIVE_UP, "the broken version was never refused");
            std::thread::sleep(Duration::from_millis(5));
        }
        let serving = registry.get("p").unwrap();
        let label = |d: &str| match d {
            d if d == mck8s_policy::loaded::sha256_hex(&best) => "best-fit",
            d if d == mck8s_policy::loaded::sha256_hex(&worst) => "worst-fit",
            _ => "other",
        };
        assert_eq!(label(&serving.digest), "best-fit", "round {round}: refusals {:?}", registry.refusals());
        let t = Instant::now();
        write_atomically(dir.path(), "p.wasm", &worst);
        latencies.push(wait_for("big", t));
    }

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    let calls = calls.load(Ordering::Relaxed);
    eprintln!("{calls} calls, reload observed after {latencies:?}");
    assert!(failures.is_empty(), "{} of {calls} calls failed: {:?}", failures.len(), &failures[..failures.len().min(3)]);
    assert!(calls > 100, "the workers kept deciding ({calls} calls)");

    std::fs::remove_file(dir.path().join("p.wasm")).unwrap();
    let t = Instant::now();
    while registry.get("p").is_ok() {
        assert!(t.elapsed() < GIVE_UP, "removal never observed");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn names_with_underscores_and_configmap_symlinks() {
    // A ConfigMap volume: `worst_fit.wasm -> ..data/worst_fit.wasm`, updated by swapping `..data`.
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("..2026_v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("worst_fit.wasm"), common::builtin("worst-fit")).unwrap();
    std::os::unix::fs::symlink("..2026_v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/worst_fit.wasm", dir.path().join("worst_fit.wasm")).unwrap();

    let registry = Arc::new(PolicyRegistry::new(common::engine()));
    let _source = DirSource::start(registry.clone(), dir.path()).unwrap();
    let first = registry.get("worst-fit").expect("worst_fit.wasm serves as worst-fit").digest.clone();

    let v2 = dir.path().join("..2026_v2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(v2.join("worst_fit.wasm"), common::builtin("best-fit")).unwrap();
    std::os::unix::fs::symlink("..2026_v2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    let t = Instant::now();
    while registry.get("worst_fit").unwrap().digest == first {
        assert!(t.elapsed() < GIVE_UP, "the ..data swap was never picked up");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Subscribers hear of every version that starts or stops serving, once, and of nothing
/// else: not the same bytes again, not a refused version.
#[test]
fn subscribers_hear_each_serving_change_once() {
    let registry = PolicyRegistry::new(common::engine());
    let heard = Arc::new(Mutex::new(Vec::<mck8s_policy::PolicyChange>::new()));
    let sink = heard.clone();
    registry.subscribe(Box::new(move |c| sink.lock().unwrap().push(c.clone())));
    let worst = common::builtin("worst-fit");
    let best = common::builtin("best-fit");
    let v1 = registry.upsert("p", &worst, "test").unwrap().digest.clone();
    registry.upsert("p", &worst, "test").unwrap();
    assert!(registry.upsert("p", b"not wasm", "test").is_err());
    let v2 = registry.upsert("p", &best, "test").unwrap().digest.clone();
    assert!(!registry.remove("p", "another source"));
    assert!(registry.remove("p", "test"));
    let names = |d: Option<String>| mck8s_policy::PolicyChange { name: "p".into(), digest: d };
    assert_eq!(*heard.lock().unwrap(), vec![names(Some(v1)), names(Some(v2)), names(None)]);
}

/// A `<name>.shadow-of` file next to a component declares the shadow; removing the file or
/// the component ends it. A policy cannot shadow itself; a second shadow replaces the first.
#[test]
fn a_shadow_is_declared_by_a_file_beside_it_and_ends_with_it() {
    let dir = tempfile::tempdir().unwrap();
    write_atomically(dir.path(), "house.wasm", &common::builtin("worst-fit"));
    write_atomically(dir.path(), "next.wasm", &common::builtin("best-fit"));
    write_atomically(dir.path(), "next.shadow-of", b"house\n");
    let registry = Arc::new(PolicyRegistry::new(common::engine()));
    let _source = DirSource::start(registry.clone(), dir.path()).unwrap();
    let shadow = |active: &str| registry.shadow_of(active).map(|p| p.name.clone());
    assert_eq!(shadow("house").as_deref(), Some("next"));
    assert_eq!(shadow("next"), None);

    registry.set_shadow("house", Some("house"));
    assert_eq!(shadow("house").as_deref(), Some("next"), "a policy cannot shadow itself");
    registry.upsert("third", &common::builtin("worst-fit"), "test").unwrap();
    registry.set_shadow("third", Some("House"));
    assert_eq!(shadow("house").as_deref(), Some("third"), "the last declared wins");
    registry.set_shadow("third", None);
    assert_eq!(shadow("house"), None);

    // Back through the directory: the file is read at every rescan.
    write_atomically(dir.path(), "next.shadow-of", b"house");
    write_atomically(dir.path(), "house.wasm", &common::builtin("best-fit"));
    let started = Instant::now();
    while shadow("house").as_deref() != Some("next") {
        assert!(started.elapsed() < GIVE_UP, "the shadow was not declared again");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(dir.path().join("next.wasm")).unwrap();
    let started = Instant::now();
    while registry.shadows().contains_key("house") {
        assert!(started.elapsed() < GIVE_UP, "a removed shadow still shadows");
        std::thread::sleep(Duration::from_millis(20));
    }
}
