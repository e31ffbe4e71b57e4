//! The state machine, one transition at a time, without an API server.

use super::*;
use crate::cloud::settings::resolve;
use mck8s_api::CloudProvisioner;

const GI: u64 = 1 << 30;

fn settings() -> Settings {
    let mut cp: CloudProvisioner = serde_yaml_ng::from_str(include_str!("../../../../tests/cases/mck8s-examples/example_cloud_provisioner.yaml")).unwrap();
    cp.spec.lifecycle = Some(mck8s_api::LifecycleSpec { demand_confirm_seconds: Some(30), retry_backoff_seconds: Some(30), max_attempts: Some(2), ..Default::default() });
    resolve(&cp).unwrap()
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn observed(now: i64) -> Observed {
    Observed {
        now: t(now),
        generation: Some(1),
        deleting: false,
        retry_annotation: None,
        claim: Claim::Ours,
        demand: Demand::default(),
        cluster: None,
        machines: vec![],
        kubeconfig_version: None,
        registered: None,
        member_ready: false,
        workload: None,
        provision_slot_free: true,
    }
}

fn demand(n: usize) -> Demand {
    Demand { pods: vec![Resources { cpu_milli: 1000, memory_bytes: GI }; n], sources: vec!["ns/app ×6".into()] }
}

fn usable_cluster(ready: i32, replicas: i32) -> ClusterView {
    ClusterView {
        uid: "c".into(),
        owner_uid: Some("u".into()),
        infrastructure_provisioned: true,
        control_plane_initialized: true,
        control_plane_available: true,
        remote_probe: true,
        workers_ready: ready,
        worker_replicas: Some(replicas),
        ..Default::default()
    }
}

fn worker(name: &str, pods: usize) -> NodeView {
    NodeView {
        name: name.into(),
        machine: Some(format!("m-{name}")),
        ready: true,
        schedulable: true,
        control_plane: false,
        allocatable: Resources { cpu_milli: 7800, memory_bytes: 31 * GI },
        pods: vec![Resources { cpu_milli: 1000, memory_bytes: GI }; pods],
        pod_count: pods as u32,
    }
}

fn in_phase(phase: &str, since: i64) -> CloudProvisionerStatus {
    CloudProvisionerStatus { phase: Some(phase.into()), phase_since: Some(Time(t(since))), flavor: Some("k8s.large".into()), attempts: 1, ..Default::default() }
}

#[test]
fn demand_is_confirmed_before_one_cluster_is_sized_and_requested() {
    let s = settings();
    let mut o = observed(0);
    o.demand = demand(9);
    let p = plan(&s, None, &o);
    assert!(p.steps.is_empty(), "the first sight of demand only starts the confirmation window");
    o.now = t(31);
    let p = plan(&s, Some(&p.status), &o);
    // BinPack: 9 × (1 CPU, 1 GiB) on the cheapest flavor that holds them.
    let Some(Step::Provision { flavor, workers }) = p.steps.first().cloned() else { panic!("{:?}", p.steps) };
    assert!(workers >= 1 && !flavor.is_empty());
    assert_eq!((p.status.phase.as_deref(), p.status.attempts), (Some(PROVISIONING), 1));
    assert!(p.events.iter().any(|e| e.reason == "Provisioning"));
}

#[test]
fn legacy_sizing_reproduces_the_originals_k8s_large_and_ceil() {
    let mut cp: CloudProvisioner = serde_yaml_ng::from_str(include_str!("../../../../tests/cases/mck8s-examples/example_cloud_provisioner.yaml")).unwrap();
    cp.spec.sizing = Some(mck8s_api::SizingSpec { mode: Some("Legacy".into()), ..Default::default() });
    cp.spec.lifecycle = Some(mck8s_api::LifecycleSpec { demand_confirm_seconds: Some(0), ..Default::default() });
    let s = resolve(&cp).unwrap();
    let mut o = observed(0);
    o.demand = demand(9);
    let p = plan(&s, None, &o);
    assert_eq!(p.steps, vec![Step::Provision { flavor: "k8s.large".into(), workers: 2 }], "ceil(9 CPU / 8)");
}

#[test]
fn no_second_provision_while_one_is_in_flight_or_the_slot_is_taken() {
    let s = settings();
    let mut o = observed(100);
    o.demand = demand(3);
    o.cluster = Some(ClusterView { control_plane_initialized: false, ..usable_cluster(0, 1) });
    let p = plan(&s, Some(&in_phase(PROVISIONING, 90)), &o);
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    // Another provisioner holds the only slot: wait, do not provision.
    let mut o = observed(100);
    o.demand = demand(3);
    o.provision_slot_free = false;
    let st = CloudProvisionerStatus { phase: Some(IDLE.into()), demand_since: Some(Time(t(0))), ..Default::default() };
    let p = plan(&s, Some(&st), &o);
    assert!(p.steps.is_empty());
    assert_eq!(conditions::get(&p.status.conditions, "Provisioning").unwrap().reason, "WaitingForSlot");
}

#[test]
fn a_restart_with_a_lost_status_adopts_the_existing_cluster() {
    let s = settings();
    let mut o = observed(10);
    o.demand = demand(3);
    o.cluster = Some(ClusterView { control_plane_initialized: false, ..usable_cluster(0, 1) });
    let p = plan(&s, None, &o);
    assert!(p.steps.is_empty(), "never a second Provision: {:?}", p.steps);
    assert_eq!(p.status.phase.as_deref(), Some(PROVISIONING));
}

#[test]
fn joining_waits_for_the_gate_then_registers_then_is_ready() {
    let s = settings();
    let mut o = observed(100);
    o.cluster = Some(usable_cluster(0, 1));
    let p = plan(&s, Some(&in_phase(PROVISIONING, 50)), &o);
    assert_eq!(p.status.phase.as_deref(), Some(PROVISIONING), "no ready worker: not usable");
    o.cluster = Some(usable_cluster(1, 1));
    let p = plan(&s, Some(&p.status), &o);
    assert_eq!(p.status.phase.as_deref(), Some(JOINING));
    // A kubeconfig Secret alone is not enough: the own probe must see a Ready worker.
    o.kubeconfig_version = Some("7".into());
    o.workload = Some(Err("connection refused".into()));
    let p = plan(&s, Some(&p.status), &o);
    assert!(p.steps.is_empty());
    o.workload = Some(Ok(Workload { nodes: vec![worker("w1", 0)], ..Default::default() }));
    let p = plan(&s, Some(&p.status), &o);
    assert_eq!(p.steps, vec![Step::Register { cordoned: false }]);
    o.registered = Some(false);
    o.member_ready = true;
    let p = plan(&s, Some(&p.status), &o);
    assert_eq!(p.status.phase.as_deref(), Some(READY));
    assert_eq!(p.status.attempts, 0);
}

#[test]
fn a_timeout_deletes_backs_off_and_ends_failed_until_retried() {
    let s = settings();
    let mut o = observed(2000);
    o.cluster = Some(ClusterView { control_plane_initialized: false, ..usable_cluster(0, 1) });
    let p = plan(&s, Some(&in_phase(PROVISIONING, 0)), &o);
    assert_eq!(p.steps, vec![Step::Unregister, Step::DeleteCluster]);
    assert!(p.events.iter().any(|e| e.reason == "ControlPlaneNotInitialized" && e.warning));
    // Gone: back off before the next attempt, keeping the namespace and credentials for it.
    o.cluster = None;
    let p = plan(&s, Some(&p.status), &o);
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert_eq!(p.status.phase.as_deref(), Some(IDLE));
    let next = p.status.next_attempt_at.clone().expect("backoff");
    o.demand = demand(2);
    o.now = t(2001);
    let p = plan(&s, Some(&p.status), &o);
    assert!(p.steps.is_empty(), "backing off until {next:?}");
    // Second attempt, second timeout: Failed (maxAttempts 2).
    let mut st = in_phase(PROVISIONING, 3000);
    st.attempts = 2;
    o.now = t(5000);
    o.cluster = Some(ClusterView { control_plane_initialized: false, ..usable_cluster(0, 1) });
    let p = plan(&s, Some(&st), &o);
    o.cluster = None;
    let p = plan(&s, Some(&p.status), &o);
    assert_eq!(p.status.phase.as_deref(), Some(FAILED));
    assert_eq!(p.steps, vec![Step::CleanUp], "no attempt follows: nothing is kept");
    let p2 = plan(&s, Some(&p.status), &o);
    assert!(p2.steps.is_empty() && p2.status.phase.as_deref() == Some(FAILED), "terminal until a retry");
    o.retry_annotation = Some("1".into());
    let p3 = plan(&s, Some(&p.status), &o);
    assert_eq!((p3.status.phase.as_deref(), p3.status.attempts), (Some(IDLE), 0));
}

fn ready_status() -> CloudProvisionerStatus {
    CloudProvisionerStatus { kubeconfig_version: Some("7".into()), ..in_phase(READY, 0) }
}

fn ready_observed(now: i64, nodes: Vec<NodeView>, pending: usize) -> Observed {
    let mut o = observed(now);
    o.cluster = Some(usable_cluster(nodes.len() as i32, nodes.len() as i32));
    o.kubeconfig_version = Some("7".into());
    o.registered = Some(false);
    o.member_ready = true;
    o.workload = Some(Ok(Workload { nodes, unschedulable: vec![Resources { cpu_milli: 3000, memory_bytes: GI }; pending], children: 1 }));
    o
}

#[test]
fn pending_pods_cause_exactly_one_scale_step() {
    let s = settings();
    let full = |n| {
        let mut w = worker(n, 7);
        w.pods = vec![Resources { cpu_milli: 1100, memory_bytes: GI }; 7];
        w
    };
    let o = ready_observed(1000, vec![full("w1")], 4);
    let p = plan(&s, Some(&ready_status()), &o);
    assert!(p.steps.is_empty(), "confirmation window first");
    let o = ready_observed(1040, vec![full("w1")], 4);
    let p = plan(&s, Some(&p.status), &o);
    let [Step::SetWorkers(to)] = p.steps.as_slice() else { panic!("{:?}", p.steps) };
    assert!(*to >= 2);
    // The same pending pods, many reconciles later, machines still booting: no new step.
    let mut st = p.status.clone();
    for i in 0..10 {
        let mut o = ready_observed(1050 + i * 10, vec![full("w1")], 4);
        o.cluster = Some(usable_cluster(1, *to));
        let p = plan(&s, Some(&st), &o);
        assert!(p.steps.is_empty(), "reconcile {i}: {:?}", p.steps);
        st = p.status;
    }
}

#[test]
fn quota_gives_partial_capacity_and_no_scale_loop() {
    let s = settings();
    let mut st = ready_status();
    st.scale_step = Some(ScaleStep { kind: "ScaleOut".into(), desired: 3, started: Time(t(0)), node: None });
    let mut o = ready_observed(20, vec![worker("w1", 7)], 4);
    o.cluster = Some(usable_cluster(1, 3));
    o.machines =
        vec![MachineView { name: "m2".into(), phase: "Provisioning".into(), infrastructure_problem: Some("InstanceCreateFailed: Quota exceeded".into()), ..Default::default() }];
    let p = plan(&s, Some(&st), &o);
    assert_eq!(p.steps, vec![Step::SetWorkers(1)]);
    assert!(p.events.iter().any(|e| e.reason == "PartialCapacity"));
    // The first backoff (4 × 30 s) holds every reconcile inside it.
    let mut st = p.status;
    for i in 0..8 {
        let mut o = ready_observed(25 + i * 15, vec![worker("w1", 7)], 4);
        o.machines = vec![];
        let p = plan(&s, Some(&st), &o);
        assert!(p.steps.is_empty(), "backing off at {}: {:?}", 25 + i * 15, p.steps);
        st = p.status;
    }
    // Then one more try; short again, and the wait doubles.
    let o = ready_observed(200, vec![worker("w1", 7)], 4);
    let p = plan(&s, Some(&st), &o);
    assert_eq!(p.steps.len(), 1, "{:?}", p.steps);
    let mut o = ready_observed(210, vec![worker("w1", 7)], 4);
    o.machines = vec![MachineView { name: "m3".into(), infrastructure_problem: Some("quota".into()), ..Default::default() }];
    let p = plan(&s, Some(&p.status), &o);
    assert_eq!(p.status.partial_steps, 2);
    let wait = p.status.next_attempt_at.as_ref().unwrap().0.duration_since(t(210));
    assert_eq!(wait.as_secs(), 240);
}

#[test]
fn workers_still_missing_at_the_join_are_an_open_step_that_quota_ends() {
    let s = settings();
    let mut o = ready_observed(100, vec![worker("w1", 0)], 0);
    o.cluster = Some(usable_cluster(1, 3));
    o.registered = Some(false);
    o.member_ready = true;
    let joining = CloudProvisionerStatus { kubeconfig_version: Some("7".into()), ..in_phase(JOINING, 90) };
    let p = plan(&s, Some(&joining), &o);
    assert_eq!(p.status.phase.as_deref(), Some(READY));
    assert_eq!(p.status.scale_step.as_ref().map(|s| (s.kind.as_str(), s.desired)), Some(("Provision", 3)));
    o.now = t(110);
    o.machines = vec![MachineView { name: "m2".into(), infrastructure_problem: Some("InstanceCreateFailed: Quota exceeded".into()), ..Default::default() }];
    let p = plan(&s, Some(&p.status), &o);
    assert_eq!(p.steps, vec![Step::SetWorkers(1)]);
    let partial = |p: &Plan| conditions::get(&p.status.conditions, conditions::DEGRADED).is_some_and(|c| c.reason == "PartialCapacity" && c.status == "True");
    assert!(partial(&p));
    // Later reconciles that reach the cluster keep saying so.
    o.now = t(111);
    o.machines = vec![];
    let p = plan(&s, Some(&p.status), &o);
    assert!(partial(&p), "{:?}", p.status.conditions);
}

#[test]
fn idle_drains_then_unjoins_then_deletes_only_the_cluster() {
    let mut s = settings();
    s.idle_window = Duration::from_secs(60);
    s.drain_grace = Duration::from_secs(10);
    let mut o = ready_observed(1000, vec![worker("w1", 0)], 0);
    o.workload = Some(Ok(Workload { nodes: vec![worker("w1", 0)], unschedulable: vec![], children: 0 }));
    let p = plan(&s, Some(&ready_status()), &o);
    assert!(p.steps.is_empty() && p.status.idle_since.is_some());
    o.now = t(1061);
    let p = plan(&s, Some(&p.status), &o);
    assert_eq!(p.steps, vec![Step::Register { cordoned: true }]);
    assert_eq!(p.status.phase.as_deref(), Some(DRAINING));
    o.now = t(1072);
    let p = plan(&s, Some(&p.status), &o);
    assert_eq!(p.steps, vec![Step::Unregister, Step::DeleteCluster], "unjoin first, then the Cluster, nothing else");
    o.cluster = Some(ClusterView { deleting: true, ..usable_cluster(1, 1) });
    let p = plan(&s, Some(&p.status), &o);
    assert!(p.steps.is_empty(), "credentials stay while Cluster API deletes");
    o.cluster = None;
    let p = plan(&s, Some(&p.status), &o);
    assert_eq!(p.steps, vec![Step::CleanUp]);
    assert_eq!(p.status.phase.as_deref(), Some(IDLE));
}

#[test]
fn demand_during_the_drain_cancels_it() {
    let s = settings();
    let mut o = ready_observed(1000, vec![worker("w1", 0)], 0);
    o.demand = demand(1);
    o.registered = Some(true);
    let p = plan(&s, Some(&in_phase(DRAINING, 995)), &o);
    assert_eq!(p.steps, vec![Step::Register { cordoned: false }]);
    assert_eq!(p.status.phase.as_deref(), Some(READY));
}

#[test]
fn a_foreign_cluster_is_never_touched() {
    let s = settings();
    let mut o = observed(100);
    o.demand = demand(3);
    o.claim = Claim::ForeignCluster;
    let p = plan(&s, Some(&CloudProvisionerStatus { demand_since: Some(Time(t(0))), ..Default::default() }), &o);
    assert!(p.steps.is_empty());
    assert!(conditions::is_true(&p.status.conditions, "Conflict"));
    o.claim = Claim::OlderProvisioner("cp0".into());
    assert!(plan(&s, None, &o).steps.is_empty());
}

#[test]
fn deletion_waits_for_workloads_then_deprovisions() {
    let s = settings();
    let mut o = ready_observed(1000, vec![worker("w1", 2)], 0);
    o.deleting = true;
    let p = plan(&s, Some(&ready_status()), &o);
    assert!(conditions::is_true(&p.status.conditions, "DeletionBlocked"));
    assert!(!p.release && !p.steps.contains(&Step::DeleteCluster));
    o.workload = Some(Ok(Workload { nodes: vec![worker("w1", 0)], unschedulable: vec![], children: 0 }));
    let p = plan(&s, Some(&ready_status()), &o);
    assert_eq!(p.steps, vec![Step::Register { cordoned: true }]);
    // Idle and nothing left: the finalizer goes.
    let mut o = observed(10);
    o.deleting = true;
    let p = plan(&s, Some(&in_phase(IDLE, 0)), &o);
    assert!(p.release);
    assert_eq!(p.steps, vec![Step::CleanUp], "what a backoff kept goes with it");
}

#[test]
fn backoff_doubles_up_to_ten_minutes() {
    let b = Duration::from_secs(30);
    assert_eq!([1, 2, 3, 10].map(|a| backoff(b, a).as_secs()), [30, 60, 120, 600]);
}

#[test]
fn a_template_cut_short_is_applied_again_and_its_mode_announced_once() {
    let s = settings();
    let mut o = observed(10);
    let cluster = ClusterView { templated: true, template_incomplete: true, infrastructure_provisioned: true, ..usable_cluster(0, 0) };
    o.cluster = Some(ClusterView { worker_replicas: None, ..cluster.clone() });
    let p = plan(&s, Some(&in_phase(PROVISIONING, 0)), &o);
    assert!(matches!(p.steps.as_slice(), [Step::Provision { .. }]), "{:?}", p.steps);
    assert_eq!(p.status.provisioning_mode.as_deref(), Some("Templates"));
    assert_eq!(p.events.iter().filter(|e| e.reason == "RenderedFromTemplate").count(), 1);
    // Complete: nothing to apply, and the mode is not announced again.
    o.cluster = Some(ClusterView { template_incomplete: false, worker_replicas: Some(1), ..cluster });
    let again = plan(&s, Some(&p.status), &o);
    assert!(again.steps.is_empty(), "{:?}", again.steps);
    assert!(again.events.iter().all(|e| e.reason != "RenderedFromTemplate"));
}
