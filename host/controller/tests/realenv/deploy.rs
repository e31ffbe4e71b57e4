//! The Helm chart (deploy/helm/mck8s) on the real test environment with real Helm: lint,
//! install/upgrade/uninstall on the management cluster (cluster0), the chart's ServiceAccount
//! as the controller's identity (RBAC enforced: sufficient to place an MCD, refused outside its
//! role), a user policy added with `helm upgrade --set-file` taking effect without a restart,
//! and leader failover between two controllers.
//!
//! The chart's own pods do not run the controller (the simulated kubelets run no containers),
//! so the controller runs in-process here with the chart's ServiceAccount token, as a pod
//! would with its mounted token.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use mck8s_api::MultiClusterDeployment;
use mck8s_controller::Config;
use mck8s_controller::context::Timing;
use mck8s_testenv::{TestEnv, TestNamespace};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const RELEASE: &str = "mck8s";
/// The built-ins scripts/package-chart.sh puts in the chart by default.
const PACKAGED: [&str; 4] = ["best-fit", "most-traffic", "preferred", "worst-fit"];

/// Controller logs in the test output when RUST_LOG is set (e.g. RUST_LOG=mck8s_controller=debug).
fn logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    }
}

fn chart_src() -> PathBuf {
    repo().join("deploy/helm/mck8s")
}

fn helm() -> Command {
    Command::new(mck8s_testenv::paths::tool_bin("helm"))
}

fn ok(mut c: Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(out.status.success(), "{c:?}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn fails(mut c: Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(!out.status.success(), "{c:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The chart with the built-in policies, made by scripts/package-chart.sh (once per process).
fn packaged_chart() -> PathBuf {
    static CHART: OnceLock<PathBuf> = OnceLock::new();
    CHART
        .get_or_init(|| {
            let out = std::env::temp_dir().join(format!("mck8s-chart-{}", std::process::id()));
            let mut c = Command::new("bash");
            c.arg(repo().join("scripts/package-chart.sh")).arg(&out);
            c.env("MCK8S_WASM_DIR", builtin_dir().parent().unwrap());
            ok(c);
            out.join("mck8s")
        })
        .clone()
}

/// A base64 file of a component, as `--set-file policies.user.NAME=` wants it.
fn base64_file(component: &Path, dir: &Path) -> PathBuf {
    let out = Command::new("base64").arg("-w0").arg(component).output().unwrap();
    assert!(out.status.success());
    let path = dir.join(format!("{}.b64", component.file_name().unwrap().to_string_lossy()));
    std::fs::write(&path, out.stdout).unwrap();
    path
}

fn rules(rules: &[PolicyRule]) -> BTreeSet<String> {
    rules
        .iter()
        .map(|r| {
            let mut verbs = r.verbs.clone();
            verbs.sort();
            format!(
                "{}/{}{} {}",
                r.api_groups.clone().unwrap_or_default().join(","),
                r.resources.clone().unwrap_or_default().join(","),
                r.resource_names.as_ref().map(|n| format!("[{}]", n.join(","))).unwrap_or_default(),
                verbs.join(",")
            )
        })
        .collect()
}

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    eventually_within(what, Duration::from_secs(120), check).await
}

async fn eventually_within<F, Fut>(what: &str, bound: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("{what}: still not true after {bound:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let names = |d: &Path| -> BTreeSet<String> { std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect() };
    let generated = repo().join("deploy/crds");
    let chart = chart_src().join("crds");
    assert_eq!(names(&generated), names(&chart), "cp deploy/crds/*.yaml deploy/helm/mck8s/crds/");
    for n in names(&generated) {
        assert_eq!(std::fs::read(generated.join(&n)).unwrap(), std::fs::read(chart.join(&n)).unwrap(), "{n} drifted: cp deploy/crds/*.yaml deploy/helm/mck8s/crds/");
    }
}

#[test]
fn helm_lint_is_clean_and_bad_values_are_refused() {
    for chart in [chart_src(), packaged_chart()] {
        let mut c = helm();
        c.args(["lint", "--strict"]).arg(&chart);
        let out = ok(c);
        assert!(!out.contains("[WARNING]") && !out.contains("[ERROR]"), "{out}");
    }
    // A user policy passed as raw bytes instead of base64 is refused with the way out (the
    // values schema refuses it first, less clearly: "control characters are not allowed").
    let mut c = helm();
    c.args(["template", "t", "--skip-schema-validation"])
        .arg(packaged_chart())
        .arg("--set-file")
        .arg(format!("policies.user.raw={}", builtin_dir().join("worst-fit.wasm").display()));
    assert!(fails(c).contains("must be the BASE64 of a .wasm component"));
    // A cluster without a kubeconfig.
    let mut c = helm();
    c.args(["template", "t"]).arg(chart_src()).args(["--set", "clusters.fog1.role=fog"]);
    assert!(fails(c).contains("clusters.fog1.kubeconfig is required"));
    // The replicas kept apart (hard here; soft by default), a disruption budget, and a digest
    // that pins the image.
    let mut c = helm();
    c.args(["template", "t"]).arg(chart_src()).args(["--show-only", "templates/deployment.yaml", "--show-only", "templates/pdb.yaml"]);
    c.args(["--set", "podAntiAffinity=hard", "--set", "image.digest=sha256:0123"]);
    let out = ok(c);
    assert!(out.contains("requiredDuringSchedulingIgnoredDuringExecution:") && out.contains("kind: PodDisruptionBudget"), "{out}");
    assert!(out.contains("image: \"registry.example/mck8s@sha256:0123\""), "{out}");
    // burstRetrySeconds reaches the controller.
    assert!(out.contains("- --burst-retry-seconds=30"), "{out}");
    // Another podAntiAffinity is refused by the values schema (below), and by the template too
    // when the schema is skipped.
    let mut c = helm();
    c.args(["template", "t"]).arg(chart_src()).args(["--skip-schema-validation", "--set", "podAntiAffinity=bogus"]);
    assert!(fails(c).contains("podAntiAffinity must be soft, hard or none, not \"bogus\""));
    // The packaged built-ins become ConfigMaps labelled fogguru.eu/policy.
    let mut c = helm();
    c.args(["template", "t"]).arg(packaged_chart()).args(["-n", "x", "--show-only", "templates/policies.yaml"]);
    let out = ok(c);
    for p in PACKAGED {
        assert!(out.contains(&format!("  {p}.wasm: AGFzbQ")), "{p} missing from\n{}", &out[..out.len().min(2000)]);
    }
}

/// values.schema.json: the chart's own values pass it, and a bad value is refused before
/// anything renders, with a message naming the field.
#[test]
fn the_values_schema_refuses_bad_values_naming_the_field() {
    let mut c = helm();
    c.args(["lint", "--strict"]).arg(chart_src());
    let out = ok(c);
    assert!(!out.contains("[ERROR]"), "{out}");
    let schema = "values don't meet the specifications of the schema(s)";
    for (set, says) in [
        ("replicaCount=0", "- replicaCount: Must be greater than or equal to 1"),
        ("podAntiAffinity=sometimes", "- podAntiAffinity: podAntiAffinity must be one of the following: \"soft\", \"hard\", \"none\""),
        ("replicaCont=2", "- (root): Additional property replicaCont is not allowed"),
        ("image.pullPolicy=Sometimes", "- image.pullPolicy: image.pullPolicy must be one of the following: \"Always\", \"IfNotPresent\", \"Never\""),
        ("metrics.port=70000", "- metrics.port: Must be less than or equal to 65535"),
    ] {
        let mut c = helm();
        c.args(["template", "t"]).arg(chart_src()).args(["--set", set]);
        let err = fails(c);
        assert!(err.contains(schema) && err.contains(says), "--set {set}: {err}");
    }
    // helm lint names every bad field at once, in its report on stdout.
    let mut c = helm();
    c.arg("lint").arg(chart_src()).args(["--set", "replicaCount=0", "--set", "podAntiAffinity=sometimes", "--set", "replicaCont=2"]);
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{c:?} succeeded: {report}");
    for says in ["- replicaCount: Must be greater than or equal to 1", "- podAntiAffinity: podAntiAffinity must be one of", "Additional property replicaCont is not allowed"] {
        assert!(report.contains(says), "{says:?} missing from {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_upgrade_uninstall_on_the_management_cluster() {
    // Serial too: it shares the binary with every controller test now.
    let _serial = serial().await;
    let env = TestEnv::shared().await.expect("test environment");
    install_crds(&env).await;
    let ns = env.namespace("cluster0", "mck8s-chart").await.unwrap();
    let admin = env.client("cluster0").await.unwrap();
    let chart = packaged_chart();

    // Install: --wait returns once both replicas are Ready (the simulated kubelet runs them).
    let mut c = env.helm("cluster0");
    // Cloud provisioning is opt-in (its ClusterRole reaches Secrets in every namespace).
    c.args(["install", RELEASE]).arg(&chart).args(["-n", &ns.name, "--wait", "--timeout", "2m", "--set", "cloudProvisioning.enabled=true"]);
    let notes = ok(c);
    assert!(notes.contains("leader election on the Lease"), "{notes}");
    let status = |rev: &str| {
        let mut c = env.helm("cluster0");
        c.args(["status", RELEASE, "-n", &ns.name, "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
        assert_eq!(v["info"]["status"], "deployed");
        assert_eq!(v["version"].to_string(), rev);
    };
    status("1");

    let deploy: Deployment = ns.api::<Deployment>().get(RELEASE).await.unwrap();
    let spec = deploy.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(deploy.status.as_ref().and_then(|s| s.ready_replicas), Some(2));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(RELEASE));
    // Preferred, not required: cluster0 has one node, and both replicas still run there.
    let anti = pod.affinity.as_ref().and_then(|a| a.pod_anti_affinity.as_ref()).and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref());
    assert_eq!(anti.map(|p| p[0].pod_affinity_term.topology_key.as_str()), Some("kubernetes.io/hostname"));
    // Kubernetes 1.20 serves PodDisruptionBudgets as policy/v1beta1 only: the chart asks discovery.
    let mut c = env.kubectl("cluster0");
    c.args(["get", "poddisruptionbudgets", RELEASE, "-n", &ns.name, "-o", "jsonpath={.apiVersion} {.spec.maxUnavailable}"]);
    assert_eq!(ok(c).trim(), "policy/v1beta1 1");
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert!(psc.run_as_user.is_some_and(|u| u != 0));
    let ctr = &pod.containers[0];
    let sc = ctr.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
    let probe = |p: Option<&k8s_openapi::api::core::v1::Probe>| {
        let h = p.and_then(|p| p.http_get.clone()).unwrap();
        (h.path.unwrap(), h.port)
    };
    let metrics_port = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("metrics".into());
    assert_eq!(probe(ctr.liveness_probe.as_ref()), ("/healthz".into(), metrics_port.clone()));
    assert_eq!(probe(ctr.readiness_probe.as_ref()), ("/readyz".into(), metrics_port));
    assert_eq!(ctr.ports.as_ref().unwrap()[0].container_port, 9464);
    let res = ctr.resources.clone().unwrap();
    assert!(res.requests.unwrap().contains_key("cpu") && res.limits.unwrap().contains_key("memory"));
    let env_of = |d: &Deployment| -> BTreeMap<String, String> {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].env.iter().flatten().filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v))).collect()
    };
    let e = env_of(&deploy);
    assert_eq!(e.get("MCK8S_LEADER_ELECT").map(String::as_str), Some("true"));
    assert_eq!(e.get("MCK8S_POLICY_DEADLINE_MS").map(String::as_str), Some("100"));
    assert_eq!(e.get("MCK8S_POLICY_MEMORY_MIB").map(String::as_str), Some("64"));
    assert!(!e.contains_key("MCK8S_PROMETHEUS_URL"));

    // Least-privilege RBAC, exactly.
    let cluster_name = format!("{RELEASE}-{}", ns.name);
    let cr = Api::<ClusterRole>::all(admin.clone()).get(&cluster_name).await.unwrap();
    let want: BTreeSet<String> = [
        "fogguru.eu/multiclusterdeployments get,list,patch,watch",
        "fogguru.eu/multiclusterservices,multiclusterjobs list,patch,watch",
        "fogguru.eu/multiclusterhorizontalpodautoscalers list,watch",
        "fogguru.eu/multiclusterdeployments/status,multiclusterservices/status,multiclusterjobs/status,multiclusterhorizontalpodautoscalers/status patch",
        "events.k8s.io/events create,patch",
    ]
    .map(String::from)
    .into();
    assert_eq!(rules(&cr.rules.unwrap_or_default()), want);
    let resched = Api::<ClusterRole>::all(admin.clone()).get(&format!("{cluster_name}-rescheduler")).await.unwrap();
    let want: BTreeSet<String> = ["fogguru.eu/appreschedulers list", "fogguru.eu/appreschedulers/status patch"].map(String::from).into();
    assert_eq!(rules(&resched.rules.unwrap_or_default()), want);
    let cloud = Api::<ClusterRole>::all(admin.clone()).get(&format!("{cluster_name}-cloud")).await.unwrap();
    let want: BTreeSet<String> = [
        "fogguru.eu/cloudprovisioners list,patch,watch",
        "fogguru.eu/cloudprovisioners/status patch",
        "cluster.x-k8s.io/clusters create,delete,get,list,patch,watch",
        "cluster.x-k8s.io/machines list,patch",
        "/namespaces create,get",
        "rbac.authorization.k8s.io/rolebindings create,patch",
        format!("rbac.authorization.k8s.io/clusterroles[{cluster_name}-cloud-namespace] bind").as_str(),
        "events.k8s.io/events create,patch",
    ]
    .map(String::from)
    .into();
    assert_eq!(rules(&cloud.rules.unwrap_or_default()), want, "no Secret right fleet-wide");
    // Secrets only through the role it binds in each cloud cluster's namespace, and its registry here.
    let per_ns = Api::<ClusterRole>::all(admin.clone()).get(&format!("{cluster_name}-cloud-namespace")).await.unwrap();
    let want: BTreeSet<String> = [
        "/secrets create,delete,get,patch",
        "/namespaces delete,get",
        "rbac.authorization.k8s.io/rolebindings delete",
        "cluster.x-k8s.io/machinedeployments create,get,patch",
        "infrastructure.cluster.x-k8s.io,controlplane.cluster.x-k8s.io,bootstrap.cluster.x-k8s.io/* create,get,patch",
    ]
    .map(String::from)
    .into();
    assert_eq!(rules(&per_ns.rules.unwrap_or_default()), want);
    let registry = ns.api::<Role>().get(&format!("{RELEASE}-cloud-registry")).await.unwrap();
    let want: BTreeSet<String> = ["/secrets create,delete,get,patch", "/configmaps get"].map(String::from).into();
    assert_eq!(rules(&registry.rules.unwrap_or_default()), want);
    let role = ns.api::<Role>().get(RELEASE).await.unwrap();
    let want: BTreeSet<String> =
        ["/configmaps,secrets list,watch", "coordination.k8s.io/leases[mck8s-leader] get,update", "coordination.k8s.io/leases create"].map(String::from).into();
    assert_eq!(rules(&role.rules.unwrap_or_default()), want);
    ns.api::<ServiceAccount>().get(RELEASE).await.unwrap();
    let svc = ns.api::<Service>().get(&format!("{RELEASE}-metrics")).await.unwrap();
    assert_eq!(svc.spec.unwrap().ports.unwrap()[0].port, 9464);

    // The built-in policies as ConfigMaps, byte for byte.
    let cms = ns.api::<ConfigMap>().list(&ListParams::default().labels("fogguru.eu/policy")).await.unwrap();
    let mut got = BTreeMap::new();
    for cm in cms.items {
        for (k, v) in cm.binary_data.unwrap_or_default() {
            got.insert(k, v.0);
        }
    }
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), PACKAGED.map(|p| format!("{p}.wasm")).to_vec());
    for p in PACKAGED {
        assert_eq!(got[&format!("{p}.wasm")], std::fs::read(builtin_dir().join(format!("{p}.wasm"))).unwrap(), "{p}");
    }

    // Upgrade: a Prometheus URL, a serf address, a workload cluster, three replicas.
    let mut c = env.helm("cluster0");
    c.args(["upgrade", RELEASE]).arg(&chart).args(["-n", &ns.name, "--reuse-values", "--wait", "--timeout", "2m"]);
    c.args(["--set", "prometheusUrl=http://prometheus.monitoring:9090", "--set", "serfRpcAddress=127.0.0.1:7373", "--set", "replicaCount=3"]);
    c.arg("--set-file").arg(format!("clusters.cluster2.kubeconfig={}", env.kubeconfig("cluster2").display()));
    c.args(["--set", "clusters.cluster2.role=fog", "--set", "clusters.cluster2.region=eu-central"]);
    ok(c);
    status("2");
    let deploy = ns.api::<Deployment>().get(RELEASE).await.unwrap();
    assert_eq!(deploy.spec.as_ref().unwrap().replicas, Some(3));
    let e = env_of(&deploy);
    assert_eq!(e.get("MCK8S_PROMETHEUS_URL").map(String::as_str), Some("http://prometheus.monitoring:9090"));
    assert_eq!(e.get("MCK8S_SERF_RPC").map(String::as_str), Some("127.0.0.1:7373"));
    let secrets = ns.api::<Secret>().list(&ListParams::default().labels("fogguru.eu/cluster")).await.unwrap().items;
    assert_eq!(secrets.len(), 1);
    let s = &secrets[0];
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(labels["fogguru.eu/cluster"], "cluster2");
    assert_eq!(labels["fogguru.eu/role"], "fog");
    assert_eq!(labels["topology.kubernetes.io/region"], "eu-central");
    assert_eq!(s.data.as_ref().unwrap()["kubeconfig"].0, std::fs::read(env.kubeconfig("cluster2")).unwrap());

    // Uninstall removes every object of the release, cluster-scoped ones included; the CRDs stay.
    let mut c = env.helm("cluster0");
    c.args(["uninstall", RELEASE, "-n", &ns.name, "--wait", "--timeout", "2m"]);
    ok(c);
    assert!(Api::<ClusterRole>::all(admin.clone()).get_opt(&cluster_name).await.unwrap().is_none());
    assert!(Api::<ClusterRole>::all(admin.clone()).get_opt(&format!("{cluster_name}-rescheduler")).await.unwrap().is_none());
    assert!(Api::<ClusterRole>::all(admin.clone()).get_opt(&format!("{cluster_name}-cloud")).await.unwrap().is_none());
    assert!(Api::<ClusterRole>::all(admin.clone()).get_opt(&format!("{cluster_name}-cloud-namespace")).await.unwrap().is_none());
    assert!(Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(admin.clone()).get_opt(&cluster_name).await.unwrap().is_none());
    assert!(ns.api::<Role>().get_opt(RELEASE).await.unwrap().is_none());
    assert!(ns.api::<ServiceAccount>().get_opt(RELEASE).await.unwrap().is_none());
    assert!(ns.api::<Deployment>().get_opt(RELEASE).await.unwrap().is_none());
    assert!(ns.api::<ConfigMap>().list(&ListParams::default().labels("fogguru.eu/policy")).await.unwrap().items.is_empty());
    assert!(ns.api::<Secret>().list(&ListParams::default().labels("fogguru.eu/cluster")).await.unwrap().items.is_empty());
    assert!(Api::<CustomResourceDefinition>::all(admin).get_opt("multiclusterdeployments.fogguru.eu").await.unwrap().is_some());
    ns.delete().await.unwrap();
}

/// A release of the packaged chart whose only workload cluster is cloud1, labelled fog (the
/// placement tests count the fog clusters' slots exactly; cloud1 is large).
struct Release {
    env: Arc<TestEnv>,
    ns: TestNamespace,
    apps: TestNamespace,
    admin: Client,
    /// The chart ServiceAccount's identity.
    sa: Client,
    sa_kubeconfig: PathBuf,
    dir: PathBuf,
    /// Installed with `cloudProvisioning.enabled=true`: the controller runs the
    /// CloudProvisioner loop with the chart's per-namespace role.
    cloud: bool,
}

impl Release {
    async fn install(prefix: &str) -> Release {
        Release::install_with(prefix, &[]).await
    }

    /// [`Release::install`] with extra `--set` values.
    async fn install_with(prefix: &str, sets: &[&str]) -> Release {
        let env = TestEnv::shared().await.expect("test environment");
        install_crds(&env).await;
        let ns = env.namespace("cluster0", prefix).await.unwrap();
        let apps = env.namespace("cluster0", &format!("{prefix}-apps")).await.unwrap();
        let admin = env.client("cluster0").await.unwrap();
        let dir = std::env::temp_dir().join(format!("mck8s-deploy-{}", ns.name));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = env.helm("cluster0");
        c.args(["install", RELEASE]).arg(packaged_chart()).args(["-n", &ns.name]);
        c.arg("--set-file").arg(format!("clusters.cloud1.kubeconfig={}", env.kubeconfig("cloud1").display()));
        c.args(["--set", "clusters.cloud1.role=fog"]);
        for set in sets {
            c.args(["--set", set]);
        }
        ok(c);
        // Kubernetes 1.20 makes a token Secret for the ServiceAccount.
        let sas: Api<ServiceAccount> = ns.api();
        let has_secret = |sa: Option<&ServiceAccount>| sa.is_some_and(|sa| sa.secrets.as_ref().is_some_and(|s| !s.is_empty()));
        let sa = tokio::time::timeout(Duration::from_secs(120), kube::runtime::wait::await_condition(sas, RELEASE, has_secret)).await.unwrap().unwrap().unwrap();
        let secret_name = sa.secrets.unwrap()[0].name.clone().unwrap();
        let secret = ns.api::<Secret>().get(&secret_name).await.unwrap();
        let token = String::from_utf8(secret.data.unwrap()["token"].0.clone()).unwrap();
        // cluster0's kubeconfig with the ServiceAccount's token instead of the admin's.
        let mut kc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(env.kubeconfig("cluster0")).unwrap()).unwrap();
        for u in kc["users"].as_sequence_mut().unwrap() {
            u["user"] = serde_yaml_ng::to_value(BTreeMap::from([("token", token.clone())])).unwrap();
        }
        let sa_kubeconfig = dir.join("sa.yaml");
        std::fs::write(&sa_kubeconfig, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
        let sa = mck8s_testenv::kubeconfig::client(&sa_kubeconfig, "cluster0").await.unwrap();
        let cloud = sets.contains(&"cloudProvisioning.enabled=true");
        Release { env, ns, apps, admin, sa, sa_kubeconfig, dir, cloud }
    }

    /// A controller as the chart's pod would run it: the ServiceAccount's identity, clusters
    /// and policies from the release's Secrets and ConfigMaps only.
    fn controller(&self, instance: &str, leader_election: bool, metrics_port: Option<u16>) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        self.controller_as(self.sa.clone(), instance, leader_election, metrics_port)
    }

    /// [`Release::controller`] through `client` (the ServiceAccount's identity, another way).
    fn controller_as(&self, client: Client, instance: &str, leader_election: bool, metrics_port: Option<u16>) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        let config = Config {
            namespace: self.ns.name.clone(),
            watch_namespace: Some(self.apps.name.clone()),
            cluster_paths: vec![],
            exclude_clusters: vec![],
            kubeconfig_local_files: false,
            cluster_secrets: true,
            policy_dirs: vec![],
            policy_configmaps: true,
            policy_limits: Default::default(),
            policy_cache_max_bytes: mck8s_policy::DEFAULT_CACHE_MAX_BYTES,
            prometheus_url: None,
            serf_rpc: None,
            rtt_file: None,
            metrics_addr: metrics_port.map(|p| ([127, 0, 0, 1], p).into()),
            instance: instance.into(),
            timing: Timing { burst_retry: Duration::from_secs(2), error_retry: Duration::from_secs(2), resync: Duration::from_secs(60), ..Timing::default() },
            move_limit: Default::default(),
            leader_election,
            // As the chart's Deployment sets it (MCK8S_CLOUD_NAMESPACE_ROLE, MCK8S_SERVICE_ACCOUNT).
            cloud_provisioning: self.cloud,
            max_concurrent_provisions: 1,
            cloud_poll: Duration::from_secs(1),
            cloud_access: self.cloud.then(|| mck8s_controller::cloud::NamespaceAccess {
                cluster_role: format!("{RELEASE}-{}-cloud-namespace", self.ns.name),
                service_account: RELEASE.into(),
                service_account_namespace: self.ns.name.clone(),
            }),
            max_concurrent_reconciles: mck8s_controller::DEFAULT_MAX_CONCURRENT_RECONCILES,
        };
        tokio::spawn(mck8s_controller::run(client, config))
    }

    fn mcds(&self) -> Api<MultiClusterDeployment> {
        Api::namespaced(self.admin.clone(), &self.apps.name)
    }

    fn apply(&self, yaml: &str) {
        use std::io::Write;
        let mut child = self
            .env
            .kubectl("cluster0")
            .args(["-n", &self.apps.name, "apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
    }

    async fn children(&self, name: &str) -> BTreeMap<String, i32> {
        let mut out = BTreeMap::new();
        for c in ALL {
            let api: Api<Deployment> = Api::namespaced(self.env.client(c).await.unwrap(), &self.apps.name);
            if let Some(d) = api.get_opt(name).await.unwrap()
                && d.metadata.deletion_timestamp.is_none()
            {
                out.insert(c.to_string(), d.spec.and_then(|s| s.replicas).unwrap_or(1));
            }
        }
        out
    }

    async fn wait_placed(&self, name: &str, want: &[(&str, i32)]) {
        let want: BTreeMap<String, i32> = want.iter().map(|(c, r)| (c.to_string(), *r)).collect();
        eventually(&format!("{name} placed"), || async {
            let got = self.children(name).await;
            let s = self.mcds().get(name).await.unwrap().status.unwrap_or_default();
            let placed = mck8s_api::conditions::get(&s.conditions, "Placed").is_some_and(|c| c.status == "True");
            if got == want && placed { Ok(()) } else { Err(format!("children {got:?}, conditions {:?}", s.conditions)) }
        })
        .await;
    }

    async fn wait_condition(&self, name: &str, type_: &str, status: &str) {
        eventually(&format!("{name} {type_}={status}"), || async {
            let s = self.mcds().get(name).await.unwrap().status.unwrap_or_default();
            match mck8s_api::conditions::get(&s.conditions, type_) {
                Some(c) if c.status == status => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    /// The reportingInstance of every events.k8s.io Event about `name`.
    async fn event_instances(&self, name: &str) -> BTreeSet<String> {
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(self.admin.clone(), &self.apps.name);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter_map(|e| e.reporting_instance)
            .collect()
    }

    /// [`Release::event_instances`] once there is at least one.
    async fn wait_events(&self, name: &str) -> BTreeSet<String> {
        eventually(&format!("an Event about {name}"), || async { if self.event_instances(name).await.is_empty() { Err("none".to_string()) } else { Ok(()) } }).await;
        self.event_instances(name).await
    }

    async fn lease_holder(&self) -> Option<String> {
        let api: Api<Lease> = Api::namespaced(self.admin.clone(), &self.ns.name);
        api.get_opt("mck8s-leader").await.unwrap().and_then(|l| l.spec).and_then(|s| s.holder_identity)
    }

    /// Deletes the MCDs while `running` still reconciles (the finalizer removes the children,
    /// through the ServiceAccount's RBAC), then the release and the namespaces.
    async fn finish(self, running: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>) {
        let names: Vec<String> = self.mcds().list(&Default::default()).await.unwrap().items.iter().map(|m| m.metadata.name.clone().unwrap()).collect();
        for n in &names {
            self.mcds().delete(n, &DeleteParams::default()).await.unwrap();
        }
        for n in &names {
            eventually(&format!("{n} deleted with its children"), || async {
                let gone = self.mcds().get_opt(n).await.unwrap().is_none();
                let children = self.children(n).await;
                if gone && children.is_empty() { Ok(()) } else { Err(format!("mcd gone {gone}, children {children:?}")) }
            })
            .await;
        }
        for t in running {
            t.abort();
        }
        let mut c = self.env.helm("cluster0");
        c.args(["uninstall", RELEASE, "-n", &self.ns.name, "--wait", "--timeout", "2m"]);
        ok(c);
        for c in ALL {
            let _ = Api::<Namespace>::all(self.env.client(c).await.unwrap()).delete(&self.apps.name, &DeleteParams::default()).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        self.apps.delete().await.unwrap();
        self.ns.delete().await.unwrap();
    }
}

fn forbidden<T: std::fmt::Debug>(r: Result<T, kube::Error>, what: &str) {
    match r {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_identity_places_an_mcd_is_refused_outside_its_role_and_takes_a_user_policy_live() {
    let _serial = serial().await;
    logs();
    let r = Release::install("mck8s-rbac").await;

    // Outside the role: refused (least privilege).
    forbidden(Api::<Secret>::namespaced(r.sa.clone(), &r.apps.name).list(&ListParams::default()).await, "listing Secrets in another namespace");
    forbidden(Api::<Secret>::namespaced(r.sa.clone(), &r.ns.name).get("anything").await, "getting a Secret by name");
    forbidden(Api::<CustomResourceDefinition>::all(r.sa.clone()).delete("multiclusterdeployments.fogguru.eu", &DeleteParams::default()).await, "deleting the CRD");
    forbidden(Api::<MultiClusterDeployment>::namespaced(r.sa.clone(), &r.apps.name).delete("x", &DeleteParams::default()).await, "deleting an MCD");
    forbidden(Api::<Deployment>::namespaced(r.sa.clone(), &r.ns.name).list(&ListParams::default()).await, "listing Deployments");
    let mut c = Command::new(mck8s_testenv::paths::tool_bin("kubectl"));
    c.arg("--kubeconfig").arg(&r.sa_kubeconfig).args(["auth", "can-i", "create", "deployments", "-n", &r.apps.name]);
    let out = c.output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "no", "{out:?}");
    // Inside it: what the watches need.
    Api::<Secret>::namespaced(r.sa.clone(), &r.ns.name).list(&ListParams::default()).await.unwrap();
    Api::<ConfigMap>::namespaced(r.sa.clone(), &r.ns.name).list(&ListParams::default()).await.unwrap();

    // The controller with that identity, its cluster and built-in policies from the release.
    let task = r.controller("mck8s-rbac-test", true, None);
    r.apply(&mcd("web", "  placementPolicy: worst-fit\n  replicas: 3"));
    r.wait_placed("web", &[("cloud1", 3)]).await;
    let s = r.mcds().get("web").await.unwrap().status.unwrap();
    assert_eq!(s.policy.as_deref(), Some("worst-fit"));
    let events = r.wait_events("web").await;
    assert_eq!(events, BTreeSet::from(["mck8s-rbac-test".to_string()]), "Events published (events.k8s.io create)");
    assert_eq!(r.lease_holder().await.as_deref(), Some("mck8s-rbac-test"));

    // A user policy through the chart: unknown first, then `helm upgrade --set-file`.
    r.apply(&mcd("custom", "  placementPolicy: house-rules\n  replicas: 2"));
    r.wait_condition("custom", "InvalidSpec", "True").await;
    let b64 = base64_file(&builtin_dir().join("best-fit.wasm"), &r.dir);
    let mut c = r.env.helm("cluster0");
    c.args(["upgrade", RELEASE]).arg(packaged_chart()).args(["-n", &r.ns.name, "--reuse-values"]);
    c.arg("--set-file").arg(format!("policies.user.house-rules={}", b64.display()));
    ok(c);
    r.wait_placed("custom", &[("cloud1", 2)]).await;
    let s = r.mcds().get("custom").await.unwrap().status.unwrap();
    assert_eq!(s.policy.as_deref(), Some("house-rules"));
    assert!(!task.is_finished(), "the same controller, never restarted");
    r.finish(vec![task]).await;
}

/// The CloudProvisioner under the chart's narrow role: no Secret right outside the release
/// namespace, yet a cloud cluster is provisioned, joined, given the overflow and removed,
/// through the RoleBinding the controller gives itself in that cluster's namespace alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_identity_provisions_a_cloud_cluster_reaching_secrets_only_in_its_namespace() {
    let _serial = serial().await;
    logs();
    const CP: &str = "rbaccloud";
    let r = Release::install_with("mck8s-cloudrbac", &["cloudProvisioning.enabled=true"]).await;
    let _leftovers = CloudLeftovers { env: r.env.clone(), cp: CP, apps: r.apps.name.clone() };
    install_cloud_class(&r.admin).await;
    forbidden(Api::<Secret>::namespaced(r.sa.clone(), &r.apps.name).get("anything").await, "getting a Secret in another namespace");
    forbidden(Api::<Secret>::all(r.sa.clone()).list(&ListParams::default()).await, "listing Secrets everywhere");

    let task = r.controller("mck8s-cloud-rbac", false, None);
    // cloud1 (the release's only cluster, as fog) has 3 nodes of 16 CPUs: 8 pods of 6 CPUs overflow it.
    r.apply(&mcd_shaped("heavy", "  replicas: 8", "{cpu: '6', memory: 1Gi}", ""));
    r.wait_condition("heavy", "Bursting", "True").await;
    r.apply(&format!(
        "apiVersion: fogguru.eu/v1\nkind: CloudProvisioner\nmetadata: {{name: {CP}}}\nspec:\n  lifecycle: {{demandConfirmSeconds: 1, drainGraceSeconds: 2, deprovisionAfterIdleSeconds: 5, retryBackoffSeconds: 1, provisionTimeoutSeconds: 240}}\n"
    ));
    let cps: Api<mck8s_api::CloudProvisioner> = Api::all(r.admin.clone());
    eventually_within("the cloud cluster Ready and the overflow ready there", Duration::from_secs(300), || async {
        let phase = cps.get(CP).await.ok().and_then(|c| c.status).and_then(|s| s.phase);
        let status = r.mcds().get("heavy").await.ok().and_then(|m| m.status).unwrap_or_default();
        let there = status.placement.iter().find(|p| p.cluster == CP).map_or(0, |p| p.ready_replicas);
        if phase.as_deref() == Some("Ready") && there > 0 { Ok(()) } else { Err(format!("phase {phase:?}, placement {:?}, unplaced {}", status.summary, status.unplaced)) }
    })
    .await;
    r.wait_condition("heavy", "Bursting", "False").await;
    // Its Secrets were reached through one RoleBinding in that namespace, to the chart's role.
    let binding = Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(r.admin.clone(), CP).get("mck8s-cloudprovisioner").await.unwrap();
    assert_eq!(binding.role_ref.name, format!("{RELEASE}-{}-cloud-namespace", r.ns.name));
    Api::<Secret>::namespaced(r.sa.clone(), CP).get(&format!("{CP}-kubeconfig")).await.expect("the kubeconfig Secret, through the binding");
    forbidden(Api::<Secret>::namespaced(r.sa.clone(), &r.apps.name).get("anything").await, "a Secret elsewhere, while provisioned");

    // Idle once the MCD is gone: de-provisioned and cleaned up under the same role.
    r.mcds().delete("heavy", &DeleteParams::default()).await.unwrap();
    cps.delete(CP, &DeleteParams::default()).await.unwrap();
    let clusters: Api<kube::api::DynamicObject> =
        Api::namespaced_with(r.admin.clone(), CP, &kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Cluster")));
    eventually_within("the CloudProvisioner, its Cluster, registry Secret and namespace gone", Duration::from_secs(300), || async {
        let cp = cps.get_opt(CP).await.unwrap().is_some();
        let cluster = clusters.get_opt(CP).await.map(|c| c.is_some()).unwrap_or(false);
        let ns = Api::<Namespace>::all(r.admin.clone()).get_opt(CP).await.unwrap().is_some();
        let registry = Api::<Secret>::namespaced(r.admin.clone(), &r.ns.name).get_opt(&format!("mck8s-cloud-{CP}")).await.unwrap().is_some();
        if !cp && !cluster && !ns && !registry { Ok(()) } else { Err(format!("cp {cp}, cluster {cluster}, namespace {ns}, registry Secret {registry}")) }
    })
    .await;
    r.finish(vec![task]).await;
}

/// A failing cloud test's CloudProvisioner, Cluster and namespace, and its workloads'
/// namespace in every cluster (children left in cloud1 would fill it for the next run),
/// removed as it unwinds.
struct CloudLeftovers {
    env: Arc<TestEnv>,
    cp: &'static str,
    apps: String,
}

impl Drop for CloudLeftovers {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let kubectl = |args: &[&str]| {
            let _ = self.env.kubectl("cluster0").args(args).output();
        };
        kubectl(&["patch", "cloudprovisioner", self.cp, "--type", "merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
        kubectl(&["delete", "cloudprovisioner", self.cp, "--ignore-not-found", "--wait=false"]);
        kubectl(&["delete", "clusters.cluster.x-k8s.io", "--all", "-n", self.cp, "--ignore-not-found", "--timeout=120s"]);
        kubectl(&["delete", "namespace", self.cp, "--ignore-not-found", "--wait=false"]);
        for c in ALL.iter().chain(&["cluster0"]) {
            let _ = self.env.kubectl(c).args(["delete", "namespace", &self.apps, "--ignore-not-found", "--wait=false"]).output();
        }
    }
}

fn reconciled(metrics: &str) -> bool {
    metrics.lines().any(|l| l.starts_with("mck8s_reconciles_total{") && l.contains("result=\"ok\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_hands_reconciling_to_the_standby() {
    let _serial = serial().await;
    logs();
    let r = Release::install("mck8s-leader").await;
    let (pa, pb) = (free_port(), free_port());
    let mut tasks =
        BTreeMap::from([("mck8s-a".to_string(), (r.controller("mck8s-a", true, Some(pa)), pa)), ("mck8s-b".to_string(), (r.controller("mck8s-b", true, Some(pb)), pb))]);
    let mut leader = None;
    eventually("a leader", || async { r.lease_holder().await.filter(|h| !h.is_empty()).map(|_| ()).ok_or_else(|| "no holder".to_string()) }).await;
    if let Some(h) = r.lease_holder().await {
        leader = Some(h);
    }
    let leader = leader.expect("a holder");
    let standby = tasks.keys().find(|k| **k != leader).unwrap().clone();
    eprintln!("leader {leader}, standby {standby}");

    r.apply(&mcd("before", "  placementPolicy: worst-fit\n  replicas: 2"));
    r.wait_placed("before", &[("cloud1", 2)]).await;
    assert_eq!(r.wait_events("before").await, BTreeSet::from([leader.clone()]), "only the leader reconciles");
    assert!(reconciled(&metrics(tasks[&leader].1).await), "the leader reconciled");
    assert!(!reconciled(&metrics(tasks[&standby].1).await), "the standby did not reconcile");

    // The leader dies without releasing the Lease; the standby takes over when it expires.
    let (dead, _) = tasks.remove(&leader).unwrap();
    dead.abort();
    let died = std::time::Instant::now();
    eventually("the standby holds the Lease", || async {
        match r.lease_holder().await {
            Some(h) if h == standby => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eprintln!("standby took over {:?} after the leader died", died.elapsed());
    r.apply(&mcd("after", "  placementPolicy: worst-fit\n  replicas: 1"));
    r.wait_placed("after", &[("cloud1", 1)]).await;
    assert_eq!(r.wait_events("after").await, BTreeSet::from([standby.clone()]));
    assert!(reconciled(&metrics(tasks[&standby].1).await), "the new leader reconciles");
    let lease = Api::<Lease>::namespaced(r.admin.clone(), &r.ns.name).get("mck8s-leader").await.unwrap();
    assert!(lease.spec.unwrap().lease_transitions.unwrap_or(0) >= 1);
    r.finish(tasks.into_values().map(|(t, _)| t).collect()).await;
}

/// A leader that can no longer reach the management API server (its renewal hangs: no error,
/// no answer) must stop reconciling before the standby, which still reaches the server, may
/// take the Lease over; otherwise two leaders would act at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_before_the_standby_takes_over() {
    let _serial = serial().await;
    logs();
    let r = Release::install("mck8s-cutoff").await;
    let relay = relayed_kubeconfig(&r.sa_kubeconfig, &r.dir.join("relayed.yaml")).await;
    let relayed = mck8s_testenv::kubeconfig::client(&r.dir.join("relayed.yaml"), "cluster0").await.unwrap();
    let leader = r.controller_as(relayed, "mck8s-cut", true, None);
    eventually("mck8s-cut leads", || async {
        match r.lease_holder().await {
            Some(h) if h == "mck8s-cut" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let standby = r.controller("mck8s-standby", true, None);
    r.apply(&mcd("before", "  placementPolicy: worst-fit\n  replicas: 1"));
    r.wait_placed("before", &[("cloud1", 1)]).await;
    assert_eq!(r.wait_events("before").await, BTreeSet::from(["mck8s-cut".to_string()]), "only the leader reconciles");

    relay.cut();
    let cut = std::time::Instant::now();
    let (mut stopped, mut taken) = (None, None);
    while taken.is_none() && cut.elapsed() < Duration::from_secs(120) {
        if stopped.is_none() && leader.is_finished() {
            stopped = Some(cut.elapsed());
        }
        if r.lease_holder().await.as_deref() == Some("mck8s-standby") {
            taken = Some(cut.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("after the cut: the leader stopped at {stopped:?}, the standby took over at {taken:?}");
    let taken = taken.expect("the standby took the Lease over");
    let stopped = stopped.expect("the cut-off leader stopped before the standby took over");
    assert!(stopped < taken, "the leader stopped at {stopped:?}, after the standby took over at {taken:?}");
    let why = leader.await.unwrap().expect_err("a leader that lost the Lease ends with an error");
    assert!(why.to_string().contains("lost the leader lease mck8s-leader: not renewed within"), "{why}");

    // The standby reconciles from now on.
    r.apply(&mcd("after", "  placementPolicy: worst-fit\n  replicas: 1"));
    r.wait_placed("after", &[("cloud1", 1)]).await;
    assert_eq!(r.wait_events("after").await, BTreeSet::from(["mck8s-standby".to_string()]));
    drop(relay);
    r.finish(vec![standby]).await;
}

/// `deploy/apf/flowschemas.yaml` as documented: applied to the 1.20 management API server,
/// each FlowSchema is admitted and its priority level found (the server's APF controller
/// sets `Dangling` to False only when the named level exists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_priority_and_fairness_flowschemas_are_accepted_by_the_api_server() {
    let _serial = serial().await;
    let env = mck8s_testenv::TestEnv::shared().await.expect("test environment");
    let file = repo().join("deploy/apf/flowschemas.yaml");
    let out = env.kubectl("cluster0").args(["apply", "-f"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
    for (name, level) in [("mck8s-leader-election", "leader-election"), ("mck8s-controller", "workload-high")] {
        let mut seen = String::new();
        for _ in 0..100 {
            let out = env
                .kubectl("cluster0")
                .args(["get", "flowschemas.v1beta1.flowcontrol.apiserver.k8s.io", name, "-o"])
                .arg("jsonpath={.spec.priorityLevelConfiguration.name} {.status.conditions[?(@.type==\"Dangling\")].status}")
                .output()
                .unwrap();
            seen = String::from_utf8_lossy(&out.stdout).into_owned();
            if seen == format!("{level} False") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(seen, format!("{level} False"), "{name}: its level and whether it dangles");
    }
    let out = env.kubectl("cluster0").args(["delete", "-f"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "kubectl delete: {}", String::from_utf8_lossy(&out.stderr));
}
