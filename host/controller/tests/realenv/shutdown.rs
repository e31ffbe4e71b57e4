//! `mck8s run` as a process stops on SIGTERM: at once with everything in place, and within
//! its shutdown grace when a controller can never start because its CRD is missing (before
//! the grace, kube-runtime's controller waited for that store forever).

use crate::common::*;
use mck8s_testenv::TestEnv;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `mck8s run` against `mgmt` with cluster1 as its only workload cluster; stderr to `log`.
fn start(env: &TestEnv, mgmt: &str, namespace: &str, port: u16, grace_seconds: u64, log: &Path) -> Child {
    Command::new(mck8s_bin())
        .args(["run", "--allow-kubeconfig-local-files", "--no-cluster-secrets", "--no-policy-configmaps"])
        .arg("--kubeconfig")
        .arg(env.kubeconfig(mgmt))
        .arg("--clusters")
        .arg(env.kubeconfig("cluster1"))
        .arg("--policy-dir")
        .arg(builtin_dir())
        .args(["--namespace", namespace, "--watch-namespace", namespace])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .args(["--shutdown-grace-seconds", &grace_seconds.to_string()])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("mck8s run")
}

/// Waits until `/healthz` answers (startup is over and the controllers are running).
async fn wait_serving(child: &mut Child, port: u16) {
    for _ in 0..600 {
        assert!(child.try_wait().unwrap().is_none(), "mck8s run exited during startup");
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            // The controllers start right after the web server; give them a moment to watch.
            tokio::time::sleep(Duration::from_secs(2)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("mck8s run never served on {port}");
}

/// Sends SIGTERM and waits up to `limit` for the exit. Returns the exit status's success
/// and the time it took; a process still running at `limit` is killed and fails the test.
async fn terminate(child: &mut Child, limit: Duration) -> (bool, Duration) {
    let sent = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    while sent.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.success(), sent.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("mck8s run still running {limit:?} after SIGTERM");
}

#[tokio::test]
async fn mck8s_run_stops_on_sigterm_even_when_a_controller_never_started() {
    let _serial = serial().await;
    let env = TestEnv::shared().await.expect("test environment");
    install_crds(&env).await;

    // Everything in place (cluster0 has the CRDs): the controllers stop by themselves, and the
    // grace (60 s) is not what ends the process.
    let ns = env.namespace("cluster0", "sigterm").await.expect("namespace");
    let log = std::env::temp_dir().join(format!("mck8s-sigterm-{}.log", ns.name));
    let port = free_port();
    let mut child = start(&env, "cluster0", &ns.name, port, 60, &log);
    wait_serving(&mut child, port).await;
    let (ok, took) = terminate(&mut child, Duration::from_secs(50)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(ok, "exit status after SIGTERM; log:\n{text}");
    assert!(!text.contains("stopping anyway"), "stopped by the grace, not by the controllers ({took:?}); log:\n{text}");

    // cluster3 has no mck8s CRDs: no controller of ours can list, so none ever starts. The
    // watch failure is said, and the process exits once the 2-s grace has passed.
    let crd = env.kubectl("cluster3").args(["get", "crd", "multiclusterdeployments.fogguru.eu"]).output().unwrap();
    assert!(!crd.status.success(), "this test needs a cluster without the mck8s CRDs; cluster3 has them");
    let log = std::env::temp_dir().join(format!("mck8s-sigterm-nocrd-{}.log", ns.name));
    let port = free_port();
    let mut child = start(&env, "cluster3", "default", port, 2, &log);
    wait_serving(&mut child, port).await;
    let (ok, took) = terminate(&mut child, Duration::from_secs(30)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(ok, "exit status after SIGTERM; log:\n{text}");
    assert!(text.contains("watch failed") && text.contains("MultiClusterDeployment"), "the failing watch is not said; log:\n{text}");
    assert!(text.contains("stopping anyway"), "ended without the grace ({took:?})? log:\n{text}");
    ns.delete().await.ok();
}
