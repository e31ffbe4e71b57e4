//! Why a decision went where it did, per cluster: what the host knows (health, whether one
//! replica fits a node, free slots, what other in-flight decisions hold) beside what the
//! policy says (its reasons for the clusters it chose, and for the others when it exports
//! `explanations`, WIT 0.1.2). Pure: built from the decision's own input.

use mck8s_capacity::{Reservation, Resources, Shortfall, adjusted_free, shortfall, slots_in};
use mck8s_fleet::{Health, Role};
use mck8s_policy::bindings::wit;
use mck8s_policy::session::PolicyVerdict;
use mck8s_policy::{Decision, FleetSnapshot};
use serde::Serialize;
use std::fmt;

/// The first reason a cluster got what it got, most binding first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// It was given replicas.
    Chosen,
    NotReady,
    /// One replica fits no node, even an empty one.
    TooSmall,
    /// No free slots for this shape, counting in-flight decisions.
    NoSlots,
    /// It would have slots, but other decisions in flight hold them.
    HeldInFlight,
    /// It had room; the policy placed the replicas elsewhere.
    PassedOver,
}

impl Why {
    fn label(self) -> &'static str {
        match self {
            Why::Chosen => "chosen",
            Why::NotReady => "not ready",
            Why::TooSmall => "too small for one replica",
            Why::NoSlots => "no free slots",
            Why::HeldInFlight => "slots held by decisions in flight",
            Why::PassedOver => "passed over by the policy",
        }
    }
}

/// One cluster's row.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRow {
    pub cluster: String,
    pub role: Role,
    pub health: Health,
    /// Why one replica fits no node; `None` when it fits one (or the cluster is not ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortfall: Option<Shortfall>,
    /// Free slots for this workload's shape, as the policy saw them (its own pods counted
    /// as free, in-flight decisions deducted).
    pub slots: u32,
    /// Replicas decided for other workloads and not yet bound here ...
    pub in_flight_replicas: u32,
    /// ... and the slots this workload would have without them.
    pub slots_without_in_flight: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub replicas: u32,
    pub why: Why,
    pub reason: String,
    /// Whether `reason` is the policy's words (else the host's).
    pub reason_from_policy: bool,
}

/// A whole explanation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub policy: String,
    pub digest: String,
    pub wit_version: String,
    /// Whether the policy gave reasons for the clusters it passed over (it exports
    /// `explanations`); else only the host's facts explain them.
    pub policy_explains: bool,
    /// What went wrong asking the policy for its reasons, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_explain_error: Option<String>,
    /// Per replica.
    pub request: Resources,
    pub total: u32,
    pub unplaced: u32,
    pub summary: String,
    pub clusters: Vec<ClusterRow>,
}

/// Everything [`explain`] reads: the decision's input and output.
pub struct ExplainInput<'a> {
    pub snapshot: &'a FleetSnapshot,
    pub workload: &'a wit::Workload,
    pub request: &'a Resources,
    /// Per cluster index: the workload's own bound pods (counted as free) ...
    pub freed: &'a [Vec<(usize, Resources)>],
    /// ... and other workloads' replicas in flight (deducted).
    pub reserved: &'a [Vec<Reservation>],
    pub decision: &'a Decision,
    pub verdicts: &'a [PolicyVerdict],
}

pub fn explain(i: &ExplainInput<'_>) -> Vec<ClusterRow> {
    let s = i.snapshot;
    (0..s.len() as u32)
        .map(|c| {
            let k = c as usize;
            let name = s.name_of(c).to_string();
            let wc = &s.clusters()[k];
            let ready = s.is_ready(c);
            let short = if ready { shortfall(s.nodes(c), i.request) } else { None };
            let slots = i.workload.slots.get(k).copied().unwrap_or(0);
            let held: u32 = i.reserved.get(k).map_or(0, |r| r.iter().map(|r| r.count).sum());
            let without = if held > 0 && ready { slots_in(&adjusted_free(s.nodes(c), i.freed.get(k).map_or(&[][..], |f| f), &[]), i.request) } else { slots };
            let replicas = i.decision.replicas_on(&name);
            let verdict = i.verdicts.iter().find(|v| v.cluster == name);
            let chosen = i.decision.placements.iter().find(|p| p.cluster == name && p.replicas > 0);
            let why = if chosen.is_some() {
                Why::Chosen
            } else if !ready {
                Why::NotReady
            } else if short.is_some() {
                Why::TooSmall
            } else if slots == 0 && without > 0 {
                Why::HeldInFlight
            } else if slots == 0 {
                Why::NoSlots
            } else {
                Why::PassedOver
            };
            let health = match wc.health {
                wit::Health::Ready => Health::Ready,
                wit::Health::NotReady => Health::NotReady,
                wit::Health::Unreachable => Health::Unreachable,
            };
            let (reason, from_policy) = match (why, chosen, verdict) {
                (Why::Chosen, Some(p), _) => (p.reason.clone(), true),
                (Why::NotReady, ..) => (format!("{}: the probes last saw it {}", why.label(), health_text(health)), false),
                (Why::TooSmall, ..) => (format!("{}: {}", why.label(), short.as_ref().map(ToString::to_string).unwrap_or_default()), false),
                (Why::HeldInFlight, ..) => (format!("no free slots: {held} replicas of other decisions in flight hold the {without} it has"), false),
                (Why::NoSlots, ..) => (format!("no free slots for {}", shape(i.request)), false),
                (_, _, Some(v)) if !v.reason.is_empty() => (v.reason.clone(), true),
                _ => (format!("{}: it had {slots} free slots (the policy gives no reason)", why.label()), false),
            };
            ClusterRow {
                cluster: name,
                role: if wc.role == wit::Role::Cloud { Role::Cloud } else { Role::Fog },
                health,
                shortfall: short,
                slots,
                in_flight_replicas: held,
                slots_without_in_flight: without,
                rank: verdict.and_then(|v| v.rank),
                score: verdict.and_then(|v| v.score),
                replicas,
                why,
                reason,
                reason_from_policy: from_policy,
            }
        })
        .collect()
}

fn health_text(h: Health) -> &'static str {
    match h {
        Health::Ready => "Ready",
        Health::NotReady => "NotReady",
        Health::Unreachable => "unreachable",
    }
}

/// `500m cpu, 256Mi memory`: one replica's requests.
pub fn shape(r: &Resources) -> String {
    let mut parts =
        vec![format!("{} cpu", mck8s_capacity::shortfall::amount("cpu", r.cpu_millis)), format!("{} memory", mck8s_capacity::shortfall::amount("memory", r.memory_bytes))];
    parts.extend(r.extended.iter().map(|(k, v)| format!("{v} {k}")));
    parts.join(", ")
}

/// The clusters a decision passed over, counted by their first reason, for an event: a few
/// names per reason, computed from the decision's input without looking at nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassedOver {
    /// In [`Why`] order; each with how many and up to [`PassedOver::NAMED`] names.
    pub groups: Vec<(Why, u32, Vec<String>)>,
}

impl PassedOver {
    pub const NAMED: usize = 3;

    pub fn of(snapshot: &FleetSnapshot, workload: &wit::Workload, decision: &Decision) -> Self {
        let order = [Why::NotReady, Why::TooSmall, Why::NoSlots, Why::PassedOver];
        let mut groups: Vec<(Why, u32, Vec<String>)> = order.iter().map(|w| (*w, 0, Vec::new())).collect();
        let mut unfit = workload.unfit.iter().peekable();
        for c in 0..snapshot.len() as u32 {
            let too_small = unfit.next_if(|&&u| u == c).is_some();
            let name = snapshot.name_of(c);
            if decision.replicas_on(name) > 0 {
                continue;
            }
            let why = if !snapshot.is_ready(c) {
                0
            } else if too_small {
                1
            } else if workload.slots.get(c as usize).copied().unwrap_or(0) == 0 {
                2
            } else {
                3
            };
            let g = &mut groups[why];
            g.1 += 1;
            if g.2.len() < Self::NAMED {
                g.2.push(name.to_string());
            }
        }
        groups.retain(|g| g.1 > 0);
        PassedOver { groups }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

impl fmt::Display for PassedOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (why, n, names)) in self.groups.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{}", names.join(", "))?;
            let more = *n as usize - names.len();
            if more > 0 {
                write!(f, " and {more} more")?;
            }
            write!(f, " {}", why.label())?;
        }
        Ok(())
    }
}
