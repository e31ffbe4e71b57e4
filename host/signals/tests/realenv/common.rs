//! Helpers shared by the integration tests (real serf agents and Prometheus from
//! `mck8s-testenv`).
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use mck8s_testenv::TestEnv;

/// Liveness bound on every wait, so a broken environment fails instead of hanging; not a
/// performance assertion.
pub const WAIT: Duration = Duration::from_secs(120);

pub async fn env() -> Arc<TestEnv> {
    let _ = tracing_subscriber::fmt().with_env_filter("info,kube_client=off").with_test_writer().try_init();
    TestEnv::shared().await.expect("test environment")
}

/// The RPC address of cluster `index`'s serf agent, from the fleet's port plan (the
/// environment starts one agent per cluster, RPC on base_port + 400 + index).
pub fn serf_rpc(env: &TestEnv, index: usize) -> String {
    assert!(env.has_serf(), "environment started without --serf");
    format!("127.0.0.1:{}", env.fleet().ports().serf_rpc(index))
}

/// Polls `probe` (about once a second) until it returns `Some`, or panics after [`WAIT`]
/// with the last state `describe`d.
pub async fn poll<T, S, F, Fut>(what: &str, mut probe: F) -> T
where
    S: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) => {
                assert!(Instant::now() < deadline, "{what}: not reached within {WAIT:?}; last: {last:?}");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A Deployment of `replicas` simulated pods whose load comes from the simulated kubelet's
/// annotations (`sim.mck8s.io/rx-bytes-per-second`, `sim.mck8s.io/cpu`).
pub async fn create_deployment(client: &kube::Client, ns: &str, name: &str, replicas: i32, rx_bytes_per_second: f64, cpu: f64) {
    let app = name.replace('.', "-");
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {
                    "labels": {"app": app},
                    "annotations": {
                        "sim.mck8s.io/rx-bytes-per-second": rx_bytes_per_second.to_string(),
                        "sim.mck8s.io/cpu": cpu.to_string(),
                    }
                },
                "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}
            }
        }
    }))
    .expect("static manifest");
    Api::<Deployment>::namespaced(client.clone(), ns).create(&PostParams::default(), &d).await.unwrap_or_else(|e| panic!("create {ns}/{name}: {e}"));
}

/// Creates namespace `name` on the cluster of `client` (for a namespace that must have the
/// same name on two clusters) and waits for its default ServiceAccount token.
pub async fn create_namespace_named(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": {"mck8s.io/test": "true"}}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    poll(&format!("default ServiceAccount token in {name}"), || {
        let sa = sa.clone();
        async move {
            match sa.get_opt("default").await {
                Ok(Some(s)) if s.secrets.as_ref().is_some_and(|v| !v.is_empty()) => Ok(()),
                other => Err(format!("{:?}", other.map(|o| o.is_some()))),
            }
        }
    })
    .await;
}

pub async fn delete_namespace(client: &kube::Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone()).delete(name, &Default::default()).await;
}

/// For retry loops that hold `&mut` state across attempts (which a closure-based poll cannot
/// lend out): `again` panics once [`WAIT`] has passed, else sleeps a second.
pub struct Retry {
    what: String,
    deadline: Instant,
}

impl Retry {
    pub fn new(what: impl Into<String>) -> Retry {
        Retry { what: what.into(), deadline: Instant::now() + WAIT }
    }

    pub async fn again(&self, last: impl std::fmt::Debug) {
        assert!(Instant::now() < self.deadline, "{}: not reached within {WAIT:?}; last: {last:?}", self.what);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
