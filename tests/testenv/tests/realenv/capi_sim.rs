//! The simulated Cluster API (`testenv capi-sim`): a Cluster with a topology becomes a real
//! workload cluster (its own API server, controller-manager and scheduler) whose Nodes follow
//! the Machines; scale-in removes the annotated Machine's Node; deleting the Cluster tears
//! everything down in CAPI's order.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Node, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::conditions;
use mck8s_testenv::capi::{self, Faults, Kind};
use serde_json::{Value, json};

fn cluster_manifest(name: &str, workers: Value) -> Value {
    json!({
        "apiVersion": capi::API_VERSION, "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"topology": {
            "classRef": {"name": capi::CLASS_NAME, "namespace": capi::SIM_NAMESPACE},
            "version": "v1.20.2",
            "variables": [{"name": "workerFlavor", "value": "k8s.small"}],
            "workers": {"machineDeployments": workers},
        }},
    })
}

/// `common::wait_for` for Cluster API objects (whose `DynamicType` has no `Default`).
async fn wait_dyn(api: Api<DynamicObject>, name: &str, cond: impl kube::runtime::wait::Condition<DynamicObject>, what: &str) -> DynamicObject {
    match tokio::time::timeout(WAIT, kube::runtime::wait::await_condition(api, name, cond)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => DynamicObject { types: None, metadata: Default::default(), data: Value::Null },
        Ok(Err(e)) => panic!("{what}: watch failed: {e}"),
        Err(_) => panic!("{what}: not reached within {WAIT:?}"),
    }
}

fn apply() -> PatchParams {
    PatchParams::apply("capi-sim-test").force()
}

fn condition(o: &DynamicObject, type_: &str) -> Option<(String, String, String)> {
    let c = o.data["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?;
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message")))
}

fn is_true(o: &DynamicObject, type_: &str) -> bool {
    condition(o, type_).is_some_and(|c| c.0 == "True")
}

fn workers(o: Option<&DynamicObject>, field: &str) -> i64 {
    o.and_then(|o| o.data["status"]["workers"][field].as_i64()).unwrap_or(-1)
}

/// The Events the simulator recorded for a Cluster, in order.
async fn event_reasons(events: &Api<Event>, cluster: &str) -> Vec<String> {
    let mut list: Vec<Event> = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={cluster}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.source.as_ref().and_then(|s| s.component.as_deref()) == Some(capi::COMPONENT))
        .collect();
    list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    list.into_iter().filter_map(|e| e.reason).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_cluster_provisions_scales_in_by_annotation_and_deletes_in_order() {
    let env = env().await;
    assert!(env.has_capi(), "the fleet runs the simulated Cluster API");
    let ns = env.namespace(env.management_cluster(), "capi").await.unwrap();
    let mgmt = ns.client.clone();
    let clusters: Api<DynamicObject> = Api::namespaced_with(mgmt.clone(), &ns.name, &Kind::Cluster.resource());
    let mds: Api<DynamicObject> = Api::namespaced_with(mgmt.clone(), &ns.name, &Kind::MachineDeployment.resource());
    let machines: Api<DynamicObject> = Api::namespaced_with(mgmt.clone(), &ns.name, &Kind::Machine.resource());
    let name = "sim1";
    clusters.patch(name, &apply(), &Patch::Apply(cluster_manifest(name, json!([{"class": "default-worker", "name": "md-0", "replicas": 2}])))).await.unwrap();

    let ready = |o: Option<&DynamicObject>| workers(o, "readyReplicas") == 2 && o.is_some_and(|o| is_true(o, "Available"));
    let c = wait_dyn(clusters.clone(), name, ready, "2 ready workers, Available").await;
    assert_eq!(c.data["status"]["phase"], "Provisioned");
    assert_eq!(c.data["status"]["initialization"], json!({"infrastructureProvisioned": true, "controlPlaneInitialized": true}));
    for t in ["TopologyReconciled", "InfrastructureReady", "ControlPlaneInitialized", "ControlPlaneAvailable", "WorkersAvailable", "RemoteConnectionProbe"] {
        assert!(is_true(&c, t), "{t}: {:?}", condition(&c, t));
    }
    assert!(c.metadata.finalizers.unwrap_or_default().contains(&capi::FINALIZER_CLUSTER.to_string()));
    let port = c.data["spec"]["controlPlaneEndpoint"]["port"].as_u64().expect("endpoint");
    assert_eq!(c.data["status"]["controlPlane"]["readyReplicas"], 1);

    // One MachineDeployment, named and labelled as the topology controller does.
    let md_list = mds.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(md_list.len(), 1);
    let md = &md_list[0];
    let md_name = md.metadata.name.clone().unwrap();
    assert!(md_name.starts_with("sim1-md-0-") && md_name.len() == "sim1-md-0-".len() + 5, "{md_name}");
    let labels = md.metadata.labels.clone().unwrap();
    assert_eq!(labels.get(capi::LABEL_TOPOLOGY_DEPLOYMENT).map(String::as_str), Some("md-0"));
    assert_eq!(labels.get(capi::LABEL_TOPOLOGY_OWNED).map(String::as_str), Some(""));
    assert_eq!(md.metadata.owner_references.as_ref().unwrap()[0].name, name);
    assert_eq!(md.data["status"]["readyReplicas"], 2);

    // Worker Machines Running, each with a Node of the flavor's capacity in the workload cluster.
    let worker_machines: Vec<DynamicObject> = machines.list(&ListParams::default().labels(&format!("{}={md_name}", capi::LABEL_DEPLOYMENT_NAME))).await.unwrap().items;
    assert_eq!(worker_machines.len(), 2);
    let secret: Secret = Api::<Secret>::namespaced(mgmt.clone(), &ns.name).get("sim1-kubeconfig").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some(capi::SECRET_TYPE));
    assert_eq!(secret.metadata.labels.unwrap().get(capi::LABEL_CLUSTER_NAME).map(String::as_str), Some(name));
    let kubeconfig = capi::access::kubeconfig_from_secret(&Api::<Secret>::namespaced(mgmt.clone(), &ns.name).get("sim1-kubeconfig").await.unwrap()).unwrap();
    assert!(kubeconfig.contains(&format!("https://127.0.0.1:{port}")) && kubeconfig.contains("sim1-admin@sim1"));
    let wl = env.capi_workload_client(&ns.name, name).await.unwrap();
    let nodes: Api<Node> = Api::all(wl.clone());
    for m in &worker_machines {
        let mname = m.metadata.name.clone().unwrap();
        assert_eq!(m.data["status"]["phase"], "Running");
        assert_eq!(m.data["status"]["nodeRef"]["name"], mname.as_str());
        let node = nodes.get(&mname).await.unwrap();
        assert!(mck8s_testenv::kubelet::node_is_ready(Some(&node)));
        assert_eq!(node.spec.as_ref().unwrap().provider_id.as_deref(), Some(format!("sim://{}/{mname}", ns.name).as_str()));
        let alloc = node.status.as_ref().unwrap().allocatable.clone().unwrap();
        assert_eq!((alloc["cpu"].clone(), alloc["memory"].clone(), alloc["pods"].clone()), (Quantity("2".into()), Quantity("8Gi".into()), Quantity("110".into())));
        assert_eq!(node.metadata.labels.as_ref().unwrap()["node.kubernetes.io/instance-type"], "k8s.small");
        assert_eq!(node.metadata.annotations.as_ref().unwrap()["cluster.x-k8s.io/machine"], mname);
    }

    // Pods run on the workload cluster's simulated Nodes (real scheduler, real controllers).
    let sas: Api<ServiceAccount> = Api::namespaced(wl.clone(), "default");
    wait_for(sas, "default", |sa: Option<&ServiceAccount>| sa.is_some_and(|s| s.secrets.as_ref().is_some_and(|s| !s.is_empty())), "default SA token").await;
    let deployments: Api<Deployment> = Api::namespaced(wl.clone(), "default");
    let deploy: Deployment = serde_yaml_ng::from_str(&deployment_yaml("web", 2, Some("100m"), &[])).unwrap();
    deployments.create(&PostParams::default(), &deploy).await.unwrap();
    wait_for(deployments.clone(), "web", ready_replicas(2), "workload Deployment ready").await;

    // Scale in by one, choosing the Machine: annotate it, then lower the topology's replicas.
    let victim = worker_machines[0].metadata.name.clone().unwrap();
    let keep = worker_machines[1].metadata.name.clone().unwrap();
    let ann = json!({"metadata": {"annotations": {capi::ANN_DELETE_MACHINE: "yes"}}});
    machines.patch(&victim, &PatchParams::default(), &Patch::Merge(&ann)).await.unwrap();
    clusters.patch(name, &apply(), &Patch::Apply(cluster_manifest(name, json!([{"class": "default-worker", "name": "md-0", "replicas": 1}])))).await.unwrap();
    wait_dyn(machines.clone(), &victim, conditions::is_deleted(worker_machines[0].metadata.uid.as_deref().unwrap()), "annotated Machine deleted").await;
    let one = |o: Option<&DynamicObject>| workers(o, "replicas") == 1 && workers(o, "readyReplicas") == 1;
    wait_dyn(clusters.clone(), name, one, "1 worker").await;
    assert!(nodes.get_opt(&victim).await.unwrap().is_none(), "the annotated Machine's Node is gone");
    assert!(nodes.get_opt(&keep).await.unwrap().is_some(), "the other Node stays");
    // The drained pods' ReplicaSet recreated them on the remaining Node.
    wait_for(deployments.clone(), "web", ready_replicas(2), "Deployment ready again").await;

    // The CAPI webhook rule, reported as a condition: replicas with autoscaler annotations.
    let both = json!([{"class": "default-worker", "name": "md-0", "replicas": 1,
        "metadata": {"annotations": {capi::ANN_AUTOSCALER_MIN: "1", capi::ANN_AUTOSCALER_MAX: "3"}}}]);
    clusters.patch(name, &apply(), &Patch::Apply(cluster_manifest(name, both))).await.unwrap();
    let rejected = |o: Option<&DynamicObject>| o.and_then(|o| condition(o, "TopologyReconciled")).is_some_and(|c| c.1 == "ReconcileFailed");
    let c = wait_dyn(clusters.clone(), name, rejected, "TopologyReconciled=False/ReconcileFailed").await;
    assert!(condition(&c, "TopologyReconciled").unwrap().2.contains("replicas"));
    clusters.patch(name, &apply(), &Patch::Apply(cluster_manifest(name, json!([{"class": "default-worker", "name": "md-0", "replicas": 1}])))).await.unwrap();
    wait_dyn(clusters.clone(), name, |o: Option<&DynamicObject>| o.is_some_and(|o| is_true(o, "TopologyReconciled")), "topology valid again").await;

    // Delete the Cluster: everything goes, in CAPI's order.
    let procs = env.capi_processes(&ns.name, name);
    assert_eq!(procs.len(), 3, "apiserver, controller-manager, scheduler: {procs:?}");
    assert!(procs.iter().all(|p| p.alive()));
    let uid = c.metadata.uid.clone().unwrap();
    clusters.delete(name, &Default::default()).await.unwrap();
    wait_dyn(clusters.clone(), name, conditions::is_deleted(&uid), "Cluster deleted").await;
    assert!(Api::<Secret>::namespaced(mgmt.clone(), &ns.name).get_opt("sim1-kubeconfig").await.unwrap().is_none());
    assert!(mds.list(&ListParams::default()).await.unwrap().items.is_empty());
    assert!(machines.list(&ListParams::default()).await.unwrap().items.is_empty());
    assert!(env.capi_processes(&ns.name, name).is_empty());
    assert!(procs.iter().all(|p| !p.alive()), "workload processes stopped");

    let reasons = event_reasons(&Api::namespaced(mgmt.clone(), &ns.name), name).await;
    let expected = [
        "Provisioning",
        "InfrastructureReady",
        "ControlPlaneInitialized",
        "MachineDeleted", // the scale-in
        "WaitingForWorkersDeletion",
        "MachineDeleted", // the last worker
        "WaitingForControlPlaneDeletion",
        "MachineDeleted", // the control-plane Machine
        "WaitingForInfrastructureDeletion",
        "DeletionCompleted",
    ];
    let lifecycle: Vec<&str> = reasons.iter().map(String::as_str).filter(|r| *r != "MachineRunning").collect();
    assert_eq!(lifecycle, expected, "all events: {reasons:?}");
    let running = reasons.iter().filter(|r| *r == "MachineRunning").count();
    assert_eq!(running, 3, "control plane + 2 workers: {reasons:?}");
    let last_running = reasons.iter().rposition(|r| r == "MachineRunning").unwrap();
    let cp_init = reasons.iter().position(|r| r == "ControlPlaneInitialized").unwrap();
    assert!(last_running > cp_init, "workers start after the control plane: {reasons:?}");
    ns.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_cluster_class_blocks_provisioning_and_deletion_still_completes() {
    let env = env().await;
    let ns = env.namespace(env.management_cluster(), "capi-noclass").await.unwrap();
    let clusters: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &Kind::Cluster.resource());
    let mut manifest = cluster_manifest("lost", json!([{"class": "default-worker", "name": "md-0", "replicas": 1}]));
    manifest["spec"]["topology"]["classRef"] = json!({"name": "no-such-class"});
    clusters.patch("lost", &apply(), &Patch::Apply(manifest)).await.unwrap();
    let not_found = |o: Option<&DynamicObject>| o.and_then(|o| condition(o, "TopologyReconciled")).is_some_and(|c| c.1 == "ClusterClassNotFound");
    let c = wait_dyn(clusters.clone(), "lost", not_found, "TopologyReconciled=False/ClusterClassNotFound").await;
    assert!(condition(&c, "TopologyReconciled").unwrap().2.contains(&format!("{}/no-such-class", ns.name)));
    // Nothing else happened: no MachineDeployment, no endpoint, no Secret, no processes.
    let mds: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &Kind::MachineDeployment.resource());
    assert!(mds.list(&ListParams::default()).await.unwrap().items.is_empty());
    assert!(c.data["spec"]["controlPlaneEndpoint"].is_null());
    assert!(env.capi_processes(&ns.name, "lost").is_empty());

    // Faults are per Cluster and do not block deleting what never provisioned.
    env.set_capi_faults(&ns.name, "lost", Some(&Faults { slow_factor: Some(2.0), ..Default::default() })).await.unwrap();
    clusters.delete("lost", &Default::default()).await.unwrap();
    wait_dyn(clusters.clone(), "lost", conditions::is_deleted(c.metadata.uid.as_deref().unwrap()), "Cluster deleted").await;
    env.set_capi_faults(&ns.name, "lost", None).await.unwrap();
    let reasons = event_reasons(&Api::namespaced(ns.client.clone(), &ns.name), "lost").await;
    assert_eq!(reasons, ["WaitingForWorkersDeletion", "WaitingForControlPlaneDeletion", "WaitingForInfrastructureDeletion", "DeletionCompleted"]);
    ns.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_quota_and_stuck_deletion_show_as_cluster_api_does() {
    let env = env().await;
    let ns = env.namespace(env.management_cluster(), "capi-faults").await.unwrap();
    let clusters: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &Kind::Cluster.resource());
    let machines: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &Kind::Machine.resource());
    let faults = Faults::parse("{worker_quota: 1, deletion: stuck}").unwrap();
    env.set_capi_faults(&ns.name, "quota", Some(&faults)).await.unwrap();
    clusters.patch("quota", &apply(), &Patch::Apply(cluster_manifest("quota", json!([{"class": "default-worker", "name": "md-0", "replicas": 2}])))).await.unwrap();

    // One worker gets an instance; the other stays Provisioning with the provider's error.
    let partial = |o: Option<&DynamicObject>| workers(o, "replicas") == 2 && workers(o, "readyReplicas") == 1;
    wait_dyn(clusters.clone(), "quota", partial, "1 of 2 workers ready").await;
    let quota_failed = |m: &DynamicObject| condition(m, "InfrastructureReady").is_some_and(|c| c.1 == "InstanceCreateFailed" && c.2 == "Quota exceeded for instances");
    let mut blocked = None;
    for _ in 0..600 {
        let list = machines.list(&ListParams::default().labels(&format!("{}=quota", capi::LABEL_CLUSTER_NAME))).await.unwrap().items;
        blocked = list.into_iter().find(|m| quota_failed(m));
        if blocked.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let blocked = blocked.expect("a worker Machine with InfrastructureReady=False/InstanceCreateFailed");
    assert_eq!(blocked.data["status"]["phase"], "Provisioning");
    let c = clusters.get("quota").await.unwrap();
    assert!(!is_true(&c, "WorkersAvailable") && !is_true(&c, "Available"));
    assert!(is_true(&c, "ControlPlaneAvailable"), "a partial quota does not affect the control plane");

    // Stuck deletion: the workers show Deleting and keep their finalizer, so the Cluster stays.
    clusters.delete("quota", &Default::default()).await.unwrap();
    let worker_sel = format!("{}=quota,!{}", capi::LABEL_CLUSTER_NAME, capi::LABEL_CONTROL_PLANE);
    let mut all_deleting = false;
    for _ in 0..600 {
        let list = machines.list(&ListParams::default().labels(&worker_sel)).await.unwrap().items;
        all_deleting = list.len() == 2 && list.iter().all(|m| m.data["status"]["phase"] == "Deleting");
        if all_deleting {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(all_deleting, "both workers in phase Deleting");
    let c = clusters.get("quota").await.unwrap();
    assert_eq!(condition(&c, "Deleting").map(|c| c.1), Some("WaitingForWorkersDeletion".to_string()));
    assert_eq!(c.data["status"]["phase"], "Deleting");

    // Clearing the fault lets the deletion finish.
    env.set_capi_faults(&ns.name, "quota", None).await.unwrap();
    wait_dyn(clusters.clone(), "quota", conditions::is_deleted(c.metadata.uid.as_deref().unwrap()), "Cluster deleted").await;
    assert!(env.capi_processes(&ns.name, "quota").is_empty());
    ns.delete().await.unwrap();
}
