//! The built-in scaling policies through the Wasm engine: the mck8s formula, immediate
//! scale-out, scale-in after the stabilisation window, min/max, missing metrics, and the
//! opaque state surviving a host restart and a policy hot reload.

use crate::common;
use mck8s_policy::input::{SampleDoc, ScalingInput};
use mck8s_policy::{PolicyRegistry, ScalingOutcome};
use std::sync::Arc;

fn request(samples: &[(&str, u32, Option<f64>)], state: &[u8]) -> ScalingInput {
    ScalingInput {
        name: "hello".into(),
        namespace: "default".into(),
        samples: samples.iter().map(|&(c, r, u)| SampleDoc { cluster: c.into(), replicas: r, utilization: u, traffic: None }).collect(),
        target_utilization: 50,
        min_replicas: 2,
        max_replicas: 10,
        elapsed_seconds: 30,
        params: Default::default(),
        state: String::from_utf8(state.to_vec()).unwrap(),
    }
}

fn scale(registry: &PolicyRegistry, policy: &str, input: &ScalingInput) -> ScalingOutcome {
    registry.get(policy).unwrap().scale(&input.to_wit()).unwrap_or_else(|e| panic!("{e}"))
}

/// Cycles (30 s apart) of low load until the policy scales in; returns how many it took.
fn cycles_until_scale_in(registry: &dyn Fn() -> Arc<PolicyRegistry>, restart_after: Option<usize>) -> usize {
    let mut reg = registry();
    let mut state = Vec::new();
    for cycle in 1..=30 {
        if restart_after == Some(cycle - 1) {
            reg = registry(); // a new engine and registry: only the persisted state carries over
        }
        let out = scale(&reg, "mchpa", &request(&[("cluster1", 4, Some(10.0)), ("cluster2", 2, Some(50.0))], &state));
        state = out.state.clone();
        if out.total < 6 {
            return cycle;
        }
        assert_eq!(out.total, 6, "held while stabilising: {}", out.reason);
    }
    panic!("never scaled in");
}

#[test]
fn scale_out_is_immediate_and_clamped() {
    let registry = common::registry_with_builtins();
    let out = scale(&registry, "mchpa", &request(&[("cluster1", 2, Some(80.0)), ("cluster2", 1, Some(50.0))], b""));
    // ceil(2×80/50) = 4 and ceil(1×50/50) = 1.
    assert_eq!(out.desired, vec![("cluster1".into(), 4), ("cluster2".into(), 1)]);
    assert_eq!(out.total, 5);
    let out = scale(&registry, "mchpa", &request(&[("cluster1", 4, Some(400.0)), ("cluster2", 4, Some(300.0))], b""));
    assert_eq!(out.total, 10, "max respected: {}", out.reason);
    assert_eq!(out.desired.iter().map(|d| d.1).sum::<u32>(), 10);
}

#[test]
fn scale_in_waits_for_the_window_and_respects_min() {
    let registry = common::registry_with_builtins();
    // The mck8s daemon needed 11 consecutive low cycles of 30 s.
    assert_eq!(cycles_until_scale_in(&|| registry.clone(), None), 11);
    // Load below target everywhere for long enough: never below minReplicas.
    let mut state = Vec::new();
    let mut last = None;
    for _ in 0..12 {
        let out = scale(&registry, "mchpa", &request(&[("cluster1", 1, Some(1.0)), ("cluster2", 1, Some(1.0))], &state));
        state = out.state.clone();
        last = Some(out);
    }
    assert_eq!(last.unwrap().total, 2, "clamped to minReplicas");
}

#[test]
fn state_survives_a_restart() {
    // Restarting after 5 cycles must not restart the window (it would take 16 cycles).
    assert_eq!(cycles_until_scale_in(&common::registry_with_builtins, Some(5)), 11);
}

#[test]
fn state_survives_a_hot_reload() {
    let registry = common::registry_with_builtins();
    registry.upsert("autoscaler", &common::builtin("mchpa"), "test").unwrap();
    let mut state = Vec::new();
    let samples = [("cluster1", 4, Some(10.0)), ("cluster2", 2, Some(50.0))];
    for _ in 0..5 {
        state = scale(&registry, "autoscaler", &request(&samples, &state)).state;
    }
    // A new version (the traffic-aware build: 90 s window) takes over mid-window: 150 s are
    // already below target, so it scales in on its first call.
    registry.upsert("autoscaler", &common::builtin("mchpa-traffic"), "test").unwrap();
    let out = scale(&registry, "autoscaler", &request(&samples, &state));
    assert!(out.total < 6, "the reloaded policy kept the window: {}", out.reason);
    let fresh = scale(&registry, "autoscaler", &request(&samples, b""));
    assert_eq!(fresh.total, 6, "without the state it would have waited: {}", fresh.reason);
}

#[test]
fn missing_metrics_never_scale_down() {
    let registry = common::registry_with_builtins();
    let mut state = Vec::new();
    for _ in 0..20 {
        let out = scale(&registry, "mchpa", &request(&[("cluster1", 3, None), ("cluster2", 2, None)], &state));
        state = out.state.clone();
        assert_eq!(out.total, 5, "{}", out.reason);
        assert!(out.reason.contains("metric missing"), "{}", out.reason);
    }
}

#[test]
fn traffic_aware_hints_follow_ingress() {
    let registry = common::registry_with_builtins();
    let mut input = request(&[("cluster1", 2, Some(100.0)), ("cluster2", 2, Some(100.0))], b"");
    input.samples[0].traffic = Some(3000.0);
    input.samples[1].traffic = Some(1000.0);
    let out = scale(&registry, "mchpa-traffic", &input);
    assert_eq!(out.total, 8);
    assert_eq!(out.desired, vec![("cluster1".into(), 6), ("cluster2".into(), 2)]);
}
