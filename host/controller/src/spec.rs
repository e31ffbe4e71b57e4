//! Reading a MultiClusterDeployment's spec the way mck8s did (§2.1), with every Kubernetes
//! form accepted and every problem a clear InvalidSpec message instead of a crash or a retry
//! loop. Pure: tested without an API server.

use k8s_openapi::api::apps::v1::DeploymentSpec;
use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use mck8s_api::{MultiClusterDeploymentSpec, MultiClusterJobSpec};
use mck8s_capacity::Resources;
use mck8s_fleet::inventory::pod_requests;
use mck8s_policy::input::{ListOrCsv, Qty, RequestsDoc, WorkloadDoc};
use std::collections::BTreeMap;

pub const DEFAULT_POLICY: &str = "most-traffic";

/// What the controller needs from a valid spec.
#[derive(Clone, Debug)]
pub struct ParsedSpec {
    pub policy: String,
    pub workload: WorkloadDoc,
    /// Per-replica requests as the Kubernetes scheduler counts them.
    pub request: Resources,
    /// The DeploymentSpec (without the mck8s keys) copied to the children.
    pub deployment: serde_json::Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct InvalidSpec(pub String);

fn invalid(msg: impl Into<String>) -> InvalidSpec {
    InvalidSpec(msg.into())
}

fn list(v: &serde_json::Value, field: &str) -> Result<ListOrCsv, InvalidSpec> {
    serde_json::from_value::<serde_yaml_ng::Value>(v.clone())
        .ok()
        .and_then(|y| serde_yaml_ng::from_value::<ListOrCsv>(y).ok())
        .ok_or_else(|| invalid(format!("spec.{field} must be a comma-separated string or a list")))
}

/// The mck8s placement keys, as the MCD and the MCJ both carry them.
pub struct PlacementKeys<'a> {
    pub replicas: i32,
    pub placement_policy: Option<&'a String>,
    pub number_of_locations: Option<i32>,
    pub locations: Option<&'a serde_json::Value>,
    pub replica_overrides: Option<&'a serde_json::Value>,
    pub placement_params: &'a BTreeMap<String, String>,
}

/// `locations`-like fields: a comma-separated string or a list.
pub fn cluster_list(v: &serde_json::Value, field: &str) -> Result<Vec<String>, InvalidSpec> {
    Ok(list(v, field)?.items())
}

pub fn parse(name: &str, namespace: &str, spec: &MultiClusterDeploymentSpec) -> Result<ParsedSpec, InvalidSpec> {
    let replicas = spec.replicas.unwrap_or(1);
    if replicas < 0 {
        return Err(invalid(format!("spec.replicas is {replicas}; it must be at least 1")));
    }
    if replicas == 0 && spec.replica_overrides.is_none() {
        return Err(invalid("spec.replicas is 0: nothing to place (delete the MultiClusterDeployment to remove it)"));
    }
    // The rest must be a DeploymentSpec (the API server would refuse the children otherwise).
    let mut deployment = serde_json::Value::Object(spec.deployment.clone().into_iter().collect());
    deployment["replicas"] = serde_json::json!(replicas.max(1));
    let parsed: DeploymentSpec = serde_json::from_value(deployment.clone()).map_err(|e| invalid(format!("spec is not a valid DeploymentSpec: {e}")))?;
    deployment.as_object_mut().expect("object").remove("replicas");
    if parsed.selector.match_labels.as_ref().is_none_or(|m| m.is_empty()) && parsed.selector.match_expressions.as_ref().is_none_or(|m| m.is_empty()) {
        return Err(invalid("spec.selector is required (as for a Deployment)"));
    }
    let keys = PlacementKeys {
        replicas,
        placement_policy: spec.placement_policy.as_ref(),
        number_of_locations: spec.number_of_locations,
        locations: spec.locations.as_ref(),
        replica_overrides: spec.replica_overrides.as_ref(),
        placement_params: &spec.placement_params,
    };
    let pod_spec = parsed.template.spec.as_ref().ok_or_else(|| invalid("spec.template.spec is required"))?;
    let (policy, workload, request) = placement(name, namespace, &keys, pod_spec)?;
    Ok(ParsedSpec { policy, workload, request, deployment })
}

/// A MultiClusterJob's spec: the placement keys and a JobSpec, copied to every chosen
/// cluster. Each location reserves the Job's `parallelism` (default 1) replicas, where mck8s
/// reserved one.
pub fn parse_job(name: &str, namespace: &str, spec: &MultiClusterJobSpec) -> Result<ParsedJob, InvalidSpec> {
    let mut job = serde_json::Value::Object(spec.job.clone().into_iter().collect());
    let parsed: JobSpec = serde_json::from_value(job.clone()).map_err(|e| invalid(format!("spec is not a valid JobSpec: {e}")))?;
    let parallelism = parsed.parallelism.unwrap_or(1);
    if parallelism < 1 {
        return Err(invalid(format!("spec.parallelism is {parallelism}: nothing would run")));
    }
    // What each location reserves is part of the decision: the children carry it explicitly,
    // so a hand edit of it is put back like any other field mck8s set.
    job["parallelism"] = serde_json::json!(parallelism);
    let keys = PlacementKeys {
        replicas: parallelism,
        placement_policy: spec.placement_policy.as_ref(),
        number_of_locations: spec.number_of_locations,
        locations: spec.locations.as_ref(),
        replica_overrides: spec.replica_overrides.as_ref(),
        placement_params: &spec.placement_params,
    };
    let pod_spec = parsed.template.spec.as_ref().ok_or_else(|| invalid("spec.template.spec is required"))?;
    let (policy, workload, request) = placement(name, namespace, &keys, pod_spec)?;
    let wanted = match &workload.locations {
        Some(l) => l.items().len() as u32,
        None => workload.number_of_locations.unwrap_or(1),
    };
    Ok(ParsedJob { spec: ParsedSpec { policy, workload, request, deployment: job }, wanted })
}

/// A parsed MultiClusterJob: the placement request and the JobSpec (in `spec.deployment`),
/// and how many clusters should each run one Job.
#[derive(Clone, Debug)]
pub struct ParsedJob {
    pub spec: ParsedSpec,
    pub wanted: u32,
}

fn placement(name: &str, namespace: &str, keys: &PlacementKeys, pod_spec: &PodSpec) -> Result<(String, WorkloadDoc, Resources), InvalidSpec> {
    let replicas = keys.replicas;
    let locations = keys.locations.map(|v| list(v, "locations")).transpose()?;
    let overrides = keys.replica_overrides.map(|v| list(v, "replicaOverrides")).transpose()?;
    if let Some(l) = &locations
        && l.items().is_empty()
    {
        return Err(invalid("spec.locations is empty"));
    }
    if overrides.is_some() && locations.is_none() {
        return Err(invalid("spec.replicaOverrides needs spec.locations"));
    }
    if pod_spec.containers.is_empty() {
        return Err(invalid("spec.template.spec.containers is empty"));
    }
    for c in &pod_spec.containers {
        if c.image.as_deref().unwrap_or("").trim().is_empty() {
            return Err(invalid(format!("container {:?} has no image", c.name)));
        }
    }
    // Quantities: report the first malformed one with its place (pod_requests would read it as 0).
    for c in pod_spec.init_containers.iter().flatten().chain(&pod_spec.containers) {
        for (kind, map) in [("requests", c.resources.as_ref().and_then(|r| r.requests.as_ref())), ("limits", c.resources.as_ref().and_then(|r| r.limits.as_ref()))] {
            for (res, q) in map.into_iter().flatten() {
                let ok = match res.as_str() {
                    "cpu" => mck8s_capacity::parse_cpu_millis(&q.0).is_ok(),
                    _ => mck8s_capacity::parse_bytes(&q.0).is_ok(),
                };
                if !ok {
                    return Err(invalid(format!("container {:?}: resources.{kind}.{res} {:?} is not a Kubernetes quantity", c.name, q.0)));
                }
            }
        }
    }
    let pod = Pod { spec: Some(pod_spec.clone()), ..Default::default() };
    let request = pod_requests(&pod);
    if request.cpu_millis == 0 && request.memory_bytes == 0 && request.extended.is_empty() {
        return Err(invalid("no container requests cpu or memory: placement counts per-node slots of the pod's requests (set resources.requests)"));
    }
    let policy = keys.placement_policy.cloned().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| DEFAULT_POLICY.to_string());
    let workload = WorkloadDoc {
        kind: Default::default(),
        name: name.to_string(),
        namespace: namespace.to_string(),
        replicas: replicas as u32,
        number_of_locations: keys.number_of_locations.map(|n| n.max(1) as u32),
        requests: RequestsDoc {
            cpu: (request.cpu_millis > 0).then(|| Qty(format!("{}m", request.cpu_millis))),
            memory: (request.memory_bytes > 0).then(|| Qty(request.memory_bytes.to_string())),
            extended: request.extended.clone(),
        },
        locations,
        replica_overrides: overrides,
        current: BTreeMap::new(),
        params: keys.placement_params.clone(),
        app_traffic: BTreeMap::new(),
    };
    Ok((policy, workload, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> MultiClusterDeploymentSpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    const POD: &str = "selector: {matchLabels: {app: a}}
template:
  metadata: {labels: {app: a}}
  spec:
    containers: [{name: a, image: img, resources: {requests: {cpu: 1000m, memory: 1024Mi}}}]";

    #[test]
    fn the_mck8s_examples_parse() {
        for ex in ["01_example_deployment_preferred_clusters.yaml", "02_example_deployment_worst_fit.yaml"] {
            let path = format!("{}/../../../shared/mck8s/manifests/examples/{ex}", env!("CARGO_MANIFEST_DIR"));
            let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let mcd: mck8s_api::MultiClusterDeployment = serde_yaml_ng::from_value(doc).unwrap();
            let p = parse("hello", "default", &mcd.spec).unwrap();
            assert_eq!(p.request.cpu_millis, 1000);
            assert_eq!(p.request.memory_bytes, 1 << 30);
            assert!(p.deployment.get("template").is_some() && p.deployment.get("locations").is_none());
        }
    }

    #[test]
    fn defaults_and_aliases() {
        let p = parse("a", "ns", &spec(POD)).unwrap();
        assert_eq!((p.policy.as_str(), p.workload.replicas), ("most-traffic", 1));
        let p = parse("a", "ns", &spec(&format!("{POD}\nplacementPolicy: worst_fit\nreplicas: 3\nlocations: [c1, c2]\nreplicaOverrides: '2,1'"))).unwrap();
        assert_eq!(p.policy, "worst_fit");
        assert_eq!(p.workload.locations.unwrap().items(), vec!["c1", "c2"]);
        assert_eq!(p.workload.replica_overrides.unwrap().items(), vec!["2", "1"]);
    }

    #[test]
    fn a_job_reserves_its_parallelism_per_location() {
        let job: MultiClusterJobSpec = serde_yaml_ng::from_str(
            "placementPolicy: worst-fit\nnumberOfLocations: 3\nparallelism: 2\ncompletions: 4\ntemplate:\n  spec:\n    restartPolicy: Never\n    containers: [{name: j, image: img, resources: {requests: {cpu: 500m}}}]",
        )
        .unwrap();
        let p = parse_job("j", "ns", &job).unwrap();
        assert_eq!((p.wanted, p.spec.workload.replicas, p.spec.request.cpu_millis), (3, 2, 500));
        assert_eq!((p.spec.deployment["completions"].as_i64(), p.spec.deployment["parallelism"].as_i64()), (Some(4), Some(2)));
        assert!(p.spec.deployment.get("placementPolicy").is_none());
        let located: MultiClusterJobSpec =
            serde_yaml_ng::from_str("locations: c1, c2\ntemplate: {spec: {containers: [{name: j, image: img, resources: {requests: {cpu: 1}}}]}}").unwrap();
        assert_eq!(parse_job("j", "ns", &located).unwrap().wanted, 2);
        let bad: MultiClusterJobSpec = serde_yaml_ng::from_str("parallelism: 0\ntemplate: {spec: {containers: [{name: j, image: img, resources: {requests: {cpu: 1}}}]}}").unwrap();
        assert!(parse_job("j", "ns", &bad).unwrap_err().0.contains("parallelism is 0"));
        let bad: MultiClusterJobSpec = serde_yaml_ng::from_str("template: {spec: {containers: [{name: j, image: img}]}}").unwrap();
        assert!(parse_job("j", "ns", &bad).unwrap_err().0.contains("no container requests"));
    }

    #[test]
    fn bad_input_is_a_clear_message() {
        let cases = [
            (format!("{POD}\nreplicas: 0"), "replicas is 0"),
            (POD.replace("cpu: 1000m, memory: 1024Mi", "cpu: lots"), "not a Kubernetes quantity"),
            (POD.replace("resources: {requests: {cpu: 1000m, memory: 1024Mi}}", "resources: {}"), "no container requests"),
            (POD.replace("image: img", "image: ''"), "has no image"),
            (POD.replace("selector: {matchLabels: {app: a}}", ""), "selector"),
            (format!("{POD}\nlocations: ''"), "locations is empty"),
            (format!("{POD}\nlocations: {{a: 1}}"), "comma-separated string or a list"),
            (format!("{POD}\nreplicaOverrides: '1'"), "needs spec.locations"),
            ("selector: {matchLabels: {app: a}}\ntemplate: 3".to_string(), "not a valid DeploymentSpec"),
        ];
        for (yaml, want) in cases {
            let err = parse("a", "ns", &spec(&yaml)).unwrap_err();
            assert!(err.0.contains(want), "{yaml}\n→ {err}, expected {want:?}");
        }
    }
}
