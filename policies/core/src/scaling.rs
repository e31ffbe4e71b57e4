//! The mck8s multi-cluster HPA (§4): per cluster `ceil(replicas × utilisation / target)`,
//! immediate scale-out, scale-in only after the recommendation has stayed below the current
//! count for a stabilisation window; the sum is clamped to [min, max].
//!
//! Fixes over mck8s (§9.2): the window is measured in seconds the host reports, not in
//! cycles; a missing metric holds the cluster's replicas instead of reading as 0 % (which
//! scaled in); a cluster with 0 replicas no longer stalls the loop; and the per-cluster hints
//! are rescaled to the clamped total without losing a remainder.

use crate::params;
use crate::placement::split_proportionally;

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub cluster: String,
    pub replicas: u32,
    /// Percent of the CPU requests; `None` when the metric is missing.
    pub utilization: Option<f64>,
    pub traffic: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct ScaleInput<'a> {
    pub samples: &'a [Sample],
    pub target_utilization: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub elapsed_seconds: u32,
    pub params: &'a [(String, String)],
    pub state: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleOutput {
    pub desired: Vec<(String, u32)>,
    pub total: u32,
    pub reason: String,
    pub state: Vec<u8>,
}

/// Which flavour of the mck8s autoscaler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `mchpa.py`: 11 cycles of 30 s below target before scaling in.
    Classic,
    /// `mchpa-traffic-aware.py`: 3 cycles; per-cluster hints follow each cluster's ingress.
    TrafficAware,
}

impl Flavour {
    pub fn default_window_seconds(self) -> u32 {
        match self {
            Flavour::Classic => 330,
            Flavour::TrafficAware => 90,
        }
    }
}

/// Seconds each cluster's recommendation has been continuously below its replicas.
/// Encoded as `cluster=seconds` lines: readable in the MCHPA status, and an unreadable
/// state only restarts the window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stabilisation(pub Vec<(String, u32)>);

impl Stabilisation {
    pub fn decode(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        Stabilisation(text.lines().filter_map(|l| l.split_once('=')).filter_map(|(c, s)| Some((c.to_string(), s.parse().ok()?))).collect())
    }

    pub fn encode(&self) -> Vec<u8> {
        self.0.iter().map(|(c, s)| format!("{c}={s}\n")).collect::<String>().into_bytes()
    }

    fn below_for(&self, cluster: &str) -> u32 {
        self.0.iter().find(|e| e.0 == cluster).map_or(0, |e| e.1)
    }
}

pub fn scale(input: &ScaleInput, flavour: Flavour) -> Result<ScaleOutput, String> {
    if input.target_utilization == 0 {
        return Err("target utilisation must be above 0 %".into());
    }
    if input.min_replicas > input.max_replicas {
        return Err(format!("minReplicas {} exceeds maxReplicas {}", input.min_replicas, input.max_replicas));
    }
    let window = params::seconds(
        input.params.iter().find(|p| p.0 == "scaleDownStabilizationSeconds").map(|p| p.1.as_str()),
        flavour.default_window_seconds(),
        "scaleDownStabilizationSeconds",
    )?;
    let before = Stabilisation::decode(input.state);
    let mut after = Stabilisation::default();
    let mut wants: Vec<(String, u32)> = Vec::with_capacity(input.samples.len());
    let mut notes: Vec<String> = Vec::new();
    for s in input.samples {
        let n = s.replicas;
        let Some(util) = s.utilization.filter(|u| u.is_finite() && *u >= 0.0) else {
            notes.push(format!("{}: metric missing, holding {n}", s.cluster));
            wants.push((s.cluster.clone(), n));
            continue;
        };
        let d = (f64::from(n) * util / f64::from(input.target_utilization)).ceil() as u32;
        let want = if d >= n {
            if d > n {
                notes.push(format!("{}: {util:.0}% → scale out {n}→{d}", s.cluster));
            }
            d
        } else {
            let below = before.below_for(&s.cluster).saturating_add(input.elapsed_seconds);
            if below >= window {
                notes.push(format!("{}: {util:.0}% below target for {below}s ≥ {window}s → scale in {n}→{d}", s.cluster));
                d
            } else {
                notes.push(format!("{}: {util:.0}% wants {d}, stabilising ({below}/{window}s)", s.cluster));
                after.0.push((s.cluster.clone(), below));
                n
            }
        };
        wants.push((s.cluster.clone(), want));
    }
    let sum: u32 = wants.iter().map(|w| w.1).sum();
    let total = sum.clamp(input.min_replicas, input.max_replicas);
    let weights: Vec<(u32, u64)> = match flavour {
        Flavour::TrafficAware if input.samples.iter().any(|s| s.traffic.unwrap_or(0.0) > 0.0) => {
            input.samples.iter().enumerate().map(|(i, s)| (i as u32, (s.traffic.unwrap_or(0.0).max(0.0) * 1000.0) as u64)).collect()
        }
        _ if sum == total => Vec::new(),
        _ => wants.iter().enumerate().map(|(i, w)| (i as u32, u64::from(w.1).max(1))).collect(),
    };
    let desired = if weights.is_empty() {
        wants
    } else {
        let shares = split_proportionally(total, &weights);
        shares.into_iter().map(|(i, n)| (input.samples[i as usize].cluster.clone(), n)).collect()
    };
    if sum != total {
        notes.push(format!("sum {sum} clamped to [{}, {}]", input.min_replicas, input.max_replicas));
    }
    let reason = if notes.is_empty() { format!("steady at {total}") } else { notes.join("; ") };
    Ok(ScaleOutput { desired, total, reason, state: after.encode() })
}
