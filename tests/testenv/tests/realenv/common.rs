//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use kube::Api;
use kube::runtime::wait::{Condition, await_condition};
use mck8s_testenv::TestEnv;

/// Upper bound on any wait: a liveness guard so a broken environment fails instead of hanging,
/// not a performance assertion.
pub const WAIT: Duration = Duration::from_secs(120);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt().with_env_filter("info,kube_client=off").with_test_writer().try_init();
}

pub async fn env() -> std::sync::Arc<TestEnv> {
    init_tracing();
    TestEnv::shared().await.expect("test environment")
}

/// Waits (by watch) until `cond` holds for the named object; returns the object.
pub async fn wait_for<K, C>(api: Api<K>, name: &str, cond: C, what: &str) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    C: Condition<K>,
{
    match tokio::time::timeout(WAIT, await_condition(api, name, cond)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => panic!("{what}: {name} disappeared"),
        Ok(Err(e)) => panic!("{what}: watch failed: {e}"),
        Err(_) => panic!("{what}: not reached within {WAIT:?}"),
    }
}

/// Runs `cmd` with `stdin` fed in; panics with its output unless it succeeds.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> String {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into()
}

pub fn run(mut cmd: Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into()
}

pub fn deployment_yaml(name: &str, replicas: u32, cpu_request: Option<&str>, annotations: &[(&str, &str)]) -> String {
    let resources = cpu_request.map(|c| format!("\n        resources:\n          requests:\n            cpu: \"{c}\"")).unwrap_or_default();
    let ann: String = annotations.iter().map(|(k, v)| format!("\n        {k}: \"{v}\"")).collect();
    let ann = if ann.is_empty() { String::new() } else { format!("\n      annotations:{ann}") };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}{ann}
    spec:
      containers:
      - name: app
        image: nginx:1.25{resources}
"
    )
}

pub fn ready_replicas(n: i32) -> impl Condition<k8s_openapi::api::apps::v1::Deployment> {
    move |d: Option<&k8s_openapi::api::apps::v1::Deployment>| d.and_then(|d| d.status.as_ref()).and_then(|s| s.ready_replicas).unwrap_or(0) == n
}

pub fn pod_ready(p: &k8s_openapi::api::core::v1::Pod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
