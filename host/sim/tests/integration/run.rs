//! Whole runs: capacity-aware placement with cloud bursting against the even split, the
//! autoscaler loop, failures, a cloud cluster provisioned on demand, determinism, and the
//! embedded default scenario.

use crate::common;
use mck8s_sim::report::Lifecycle::{self, Joined, Provisioning, Removed};
use mck8s_sim::{EVEN_SPLIT, RunResult, Scenario};

/// Two small fog clusters (6 and 4 one-CPU slots after system pods) and an autoscaled cloud;
/// 4 apps of 4 × 1 CPU arrive, then one scales with load; fog2 fails for a while.
const SMALL: &str = r#"
name: small
durationSeconds: 1800
clusters:
  - {name: fog1, nodes: [{count: 2, cpu: 3500m, memory: 8Gi, usedCpu: 500m}]}
  - {name: fog2, nodes: [{count: 2, cpu: 2500m, memory: 8Gi, usedCpu: 500m}]}
  - name: cloud1
    nodes: [{cpu: 4, memory: 16Gi}]
    autoscaling: {minNodes: 1, maxNodes: 6, provisionSeconds: 60, scaleDownSeconds: 120}
rtt: [[fog1, fog2, 3], [fog1, cloud1, 30], [fog2, cloud1, 30]]
workloads:
  - {name: app, replicas: 4, requests: {cpu: "1", memory: 1Gi}, repeat: {count: 4, every: 10}}
  - name: shop
    at: 60
    replicas: 2
    requests: {cpu: "1", memory: 1Gi}
    autoscale: {policy: mchpa, targetUtilization: 50, minReplicas: 2, maxReplicas: 12, params: {scaleDownStabilizationSeconds: "60"}}
    load: [[0, 1], [300, 5], [900, 5], [1000, 0.5]]
failures:
  - {cluster: fog2, at: 1200, until: 1500}
"#;

/// One fog cluster of 4 one-CPU slots and a cloud created on demand (2 minutes to provision,
/// removed after 5 idle minutes). `base` fits the fog; `burst` leaves 2 replicas unplaced at
/// t=60, which starts the cloud; `more` arrives unplaced while it is being provisioned; both
/// leave at t=600, so the cloud is idle from then; `again` needs it once more at t=1500.
const ON_DEMAND: &str = r#"
name: on-demand
durationSeconds: 1800
clusters:
  - {name: fog1, nodes: [{count: 2, cpu: 2500m, memory: 8Gi, usedCpu: 500m}]}
  - name: cloud1
    nodes: [{cpu: 4, memory: 16Gi}]
    autoscaling: {minNodes: 1, maxNodes: 4, provisionSeconds: 60, scaleDownSeconds: 120}
    provisioning: {delaySeconds: 120, deprovisionAfterIdleSeconds: 300, initialNodes: fromDemand}
rtt: [[fog1, cloud1, 30]]
workloads:
  - {name: base, replicas: 3, requests: {cpu: "1", memory: 1Gi}, lifetime: 900}
  - {name: burst, at: 60, replicas: 3, requests: {cpu: "1", memory: 1Gi}, lifetime: 540}
  - {name: more, at: 90, replicas: 2, requests: {cpu: "1", memory: 1Gi}, lifetime: 510}
  - {name: again, at: 1500, replicas: 10, requests: {cpu: "1", memory: 1Gi}}
"#;

fn run(scenario: &Scenario, policy: &str) -> RunResult {
    let r = mck8s_sim::run(scenario, common::registry(), policy, &mut |_| {}).unwrap();
    assert_eq!(r.errors, 0, "{policy}: {:?}", r.first_errors);
    r
}

fn series<'a>(r: &'a RunResult, cluster: &str) -> &'a mck8s_sim::report::ClusterSeries {
    r.clusters.iter().find(|c| c.name == cluster).unwrap()
}

#[test]
fn capacity_aware_placement_bursts_to_cloud_where_the_even_split_leaves_pods_pending() {
    let s = Scenario::parse(SMALL).unwrap();
    let mck8s = run(&s, "worst-fit");
    let even = run(&s, EVEN_SPLIT);
    // 22+ CPU asked of 10 fog slots: worst-fit fills fog and bursts the rest to the cloud,
    // whose nodes arrive after 60 s; the even split gives every cluster a third, blind to
    // the fog clusters being full.
    assert!(mck8s.bursts > 0 && mck8s.summary.cloud_replica_hours > 0.0);
    assert!(mck8s.summary.pending_fraction < even.summary.pending_fraction, "worst-fit {} vs even {}", mck8s.summary.pending_fraction, even.summary.pending_fraction);
    assert!(even.summary.pending_fraction > 0.0);
    // The cloud autoscaler added nodes and later removed them.
    let cloud = series(&mck8s, "cloud1");
    let peak = *cloud.nodes.iter().max().unwrap();
    assert!(peak > 1 && peak <= 6);
    assert!(*cloud.nodes.last().unwrap() < peak, "idle cloud nodes are removed: {:?}", cloud.nodes);
    // Fog never holds more than it has.
    for c in ["fog1", "fog2"] {
        assert!(series(&mck8s, c).utilisation.iter().all(|&u| u <= 100.0));
    }
}

#[test]
fn the_autoscaler_follows_the_load_and_a_failed_cluster_holds_nothing() {
    let s = Scenario::parse(SMALL).unwrap();
    let r = run(&s, "worst-fit");
    assert!(r.scaling_calls > 0);
    let running = |k: usize| r.clusters.iter().map(|c| c.running[k]).sum::<u32>();
    let at = |t: u64| r.times.iter().position(|&x| x == t).unwrap();
    // 16 app replicas + shop: 2 at first; 5 cores at 50 % of 1-CPU pods is 10 by t=900.
    assert_eq!(running(at(120)), 16 + 2, "{:?}", r.clusters);
    assert_eq!(running(at(900)), 16 + 10);
    // Load back at 0.5 cores: after the 60 s window it scales in to its minimum.
    assert_eq!(running(at(1170)), 16 + 2);
    let fog2 = series(&r, "fog2");
    for t in [1230, 1470] {
        assert_eq!((fog2.running[at(t)], fog2.pending[at(t)]), (0, 0), "t={t}");
    }
    // Its replicas were re-placed: nothing is lost while it is down.
    assert_eq!(running(at(1470)) + r.clusters.iter().map(|c| c.pending[at(1470)]).sum::<u32>(), 16 + 2);
}

fn lifecycle(r: &RunResult) -> Vec<(u64, Lifecycle, u32)> {
    r.cluster_events.iter().map(|e| (e.t, e.event, e.nodes)).collect()
}

#[test]
fn an_on_demand_cloud_is_absent_until_demand_then_joins_after_its_delay() {
    let s = Scenario::parse(ON_DEMAND).unwrap();
    let r = run(&s, "worst-fit");
    let at = |t: u64| r.times.iter().position(|&x| x == t).unwrap();
    let cloud = series(&r, "cloud1");
    // Absent before the demand and while provisioning: no node, and the policy cannot use it,
    // so the replicas it would take stay unplaced (2 of burst, then both of more).
    for t in [0, 30, 60, 150] {
        assert!(!cloud.present[at(t)] && cloud.nodes[at(t)] == 0, "t={t}");
    }
    assert_eq!(r.unplaced[at(150)], 4);
    // Sized from the demand at t=60 (2 CPU on 4-CPU nodes: one), joined 120 s later, and the
    // waiting replicas placed on it at once.
    assert_eq!(lifecycle(&r)[..2], [(60, Provisioning, 1), (180, Joined, 1)]);
    assert!(cloud.present[at(180)]);
    assert_eq!((r.unplaced[at(180)], cloud.running[at(180)] + cloud.pending[at(180)]), (0, 4));
    assert!(r.summary.not_running_fraction > r.summary.pending_fraction, "the unplaced wait counts");
}

#[test]
fn a_provision_in_flight_is_not_started_again() {
    let s = Scenario::parse(ON_DEMAND).unwrap();
    let r = run(&s, "worst-fit");
    // more's arrival and the retries every 30 s find replicas unplaced while it boots.
    let before_join: Vec<_> = lifecycle(&r).into_iter().filter(|e| e.0 < 180).collect();
    assert_eq!(before_join, [(60, Provisioning, 1)]);
}

#[test]
fn an_idle_on_demand_cloud_is_removed_and_provisioned_again_on_new_demand() {
    let s = Scenario::parse(ON_DEMAND).unwrap();
    let r = run(&s, "worst-fit");
    let at = |t: u64| r.times.iter().position(|&x| x == t).unwrap();
    let cloud = series(&r, "cloud1");
    // Its last pods leave at t=600; 300 idle seconds later it is gone.
    assert_eq!(lifecycle(&r)[2], (900, Removed, 0));
    assert!(cloud.present[at(870)] && !cloud.present[at(900)]);
    assert!((900..1500).step_by(30).all(|t| !cloud.present[at(t)] && cloud.nodes[at(t)] == 0));
    // again: 10 replicas, 4 fit the fog, 6 CPU of demand is 2 nodes.
    assert_eq!(lifecycle(&r)[3..], [(1500, Provisioning, 2), (1620, Joined, 2)]);
    assert_eq!((r.cloud_provisions, r.cloud_deprovisions), (2, 1));
    assert!(r.summary.cloud_present_hours > 0.0 && r.summary.cloud_present_hours < 0.5);
    // The even split never leaves a replica unplaced, so nothing calls for the cloud: KubeFed
    // has no provisioner.
    let even = run(&s, EVEN_SPLIT);
    assert_eq!((even.cloud_provisions, even.summary.cloud_present_hours), (0, 0.0));
}

#[test]
fn runs_are_deterministic() {
    let s = Scenario::parse(SMALL).unwrap();
    let (a, b) = (run(&s, "best-fit"), run(&s, "best-fit"));
    assert_eq!(a.times, b.times);
    for (x, y) in a.clusters.iter().zip(&b.clusters) {
        assert_eq!((&x.running, &x.pending, &x.nodes), (&y.running, &y.pending, &y.nodes));
    }
    assert_eq!((a.decisions, a.bursts), (b.decisions, b.bursts));
}

/// Incremental cycles change nothing: reused cluster states, updated snapshots and fleet
/// updates sent to policies give the same series, decisions and cluster life as every state
/// and snapshot rebuilt at every cycle (as before), for every policy, on scenarios with
/// failures, node autoscaling and on-demand clouds.
#[test]
fn incremental_cycles_decide_exactly_as_rebuilt_ones() {
    use mck8s_sim::driver::{Cycles, Driver};
    for scenario in [Scenario::parse(SMALL).unwrap(), Scenario::parse(ON_DEMAND).unwrap(), Scenario::default_scenario()] {
        for policy in ["worst-fit", "best-fit", "preferred", "most-traffic"] {
            let run_with = |cycles: Cycles| Driver::new(&scenario, common::registry(), policy).unwrap().cycles(cycles).run(&mut |_| {}).unwrap();
            let rebuilt = run_with(Cycles::Rebuilt);
            for reused in [run_with(Cycles::StatesReused), run_with(Cycles::Incremental)] {
                let what = format!("{} / {policy}", scenario.name);
                assert_eq!(
                    (reused.decisions, reused.bursts, reused.unplaced_decisions, reused.errors),
                    (rebuilt.decisions, rebuilt.bursts, rebuilt.unplaced_decisions, rebuilt.errors),
                    "{what}"
                );
                assert_eq!((&reused.times, &reused.unplaced), (&rebuilt.times, &rebuilt.unplaced), "{what}");
                for (x, y) in reused.clusters.iter().zip(&rebuilt.clusters) {
                    assert_eq!((&x.running, &x.pending, &x.nodes), (&y.running, &y.pending, &y.nodes), "{what}");
                }
                assert_eq!(format!("{:?}", reused.cluster_events), format!("{:?}", rebuilt.cluster_events), "{what}");
            }
        }
    }
}

#[test]
fn the_default_scenario_runs_every_policy_without_errors() {
    let s = Scenario::default_scenario();
    let mut results = Vec::new();
    for p in &s.policies {
        results.push(run(&s, p));
    }
    let even = results.iter().find(|r| r.policy == EVEN_SPLIT).unwrap();
    let worst = results.iter().find(|r| r.policy == "worst-fit").unwrap();
    // The default workload exceeds fog capacity: the even split leaves pods Pending on the
    // small fog clusters; mck8s's policies burst to cloud instead.
    assert!(worst.summary.pending_fraction < even.summary.pending_fraction);
    assert!(worst.bursts > 0);
    // Its cloud is provisioned on demand, and only for mck8s.
    assert!(worst.cloud_provisions > 0);
    assert_eq!(even.cloud_provisions, 0);
    let table = mck8s_sim::table(&results);
    assert_eq!(table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| policy")).count(), 2 * results.len());
    let charts = mck8s_sim::charts(&results);
    assert_eq!(charts.len(), 2 * results.len() + 1);
}
