//! A policy's decision with arbitrary field values (any cluster index, any replica count,
//! megabytes of text), as the host turns it into a placement: refused with a reason, or a
//! placement that adds up, names only ready clusters of the fleet once each, and carries
//! bounded text. Never a panic.
#![no_main]

mod fleet;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use mck8s_policy::bindings::wit;
use mck8s_policy::input::WorkloadDoc;
use mck8s_policy::session::Decision;
use mck8s_policy::{FleetSnapshot, validate};
use std::collections::BTreeSet;
use std::sync::OnceLock;

fn fleet() -> &'static FleetSnapshot {
    static FLEET: OnceLock<FleetSnapshot> = OnceLock::new();
    FLEET.get_or_init(|| fleet::from_yaml(
        "clusters:\n- {name: cluster1, nodes: [{count: 2, cpu: '4', memory: 8Gi}]}\n- {name: cluster2, health: not-ready, nodes: [{cpu: '2', memory: 4Gi}]}\n- {name: cloud1, nodes: [{cpu: '16', memory: 64Gi}]}\n",
    ))
}

/// Text of any size: mostly short, sometimes up to a few hundred KiB.
fn text(u: &mut Unstructured) -> arbitrary::Result<String> {
    let s = String::arbitrary(u)?;
    let repeat = if bool::arbitrary(u)? { u.int_in_range(1..=20_000u32)? } else { 1 };
    Ok(s.repeat(repeat as usize))
}

fn input(u: &mut Unstructured) -> arbitrary::Result<(u32, wit::Decision)> {
    let total = u.int_in_range(0..=40u32)?;
    let n = u.int_in_range(0..=6u32)?;
    let mut choices = Vec::new();
    for _ in 0..n {
        // Mostly indices in the fleet, sometimes anything.
        let cluster = if bool::arbitrary(u)? { u.int_in_range(0..=3u32)? } else { u32::arbitrary(u)? };
        let replicas = if bool::arbitrary(u)? { u.int_in_range(0..=40u32)? } else { u32::arbitrary(u)? };
        choices.push(wit::Choice { cluster, replicas, reason: text(u)? });
    }
    let unplaced = if bool::arbitrary(u)? { u.int_in_range(0..=40u32)? } else { u32::arbitrary(u)? };
    Ok((total, wit::Decision { choices, unplaced, summary: text(u)? }))
}

fuzz_target!(|data: &[u8]| {
    let Ok((total, raw)) = input(&mut Unstructured::new(data)) else { return };
    let fleet = fleet();
    let doc: WorkloadDoc = serde_yaml_ng::from_str(&format!("{{name: w, replicas: {total}, requests: {{cpu: 500m, memory: 256Mi}}}}")).unwrap();
    let Ok(workload) = fleet.workload(&doc) else { return };
    let Ok(d) = Decision::from_raw("fuzz", "digest", fleet, &workload, raw) else { return };
    let placed: u64 = d.placements.iter().map(|p| u64::from(p.replicas)).sum();
    assert_eq!(placed + u64::from(d.unplaced), u64::from(total));
    let mut seen = BTreeSet::new();
    for p in &d.placements {
        assert!(p.replicas > 0);
        assert!(p.cluster == "cluster1" || p.cluster == "cloud1", "{} is not a ready cluster", p.cluster);
        assert!(seen.insert(p.cluster.clone()), "{} twice", p.cluster);
        assert!(p.reason.len() <= validate::REASON_MAX);
    }
    assert!(d.summary.len() <= validate::SUMMARY_MAX);
});
