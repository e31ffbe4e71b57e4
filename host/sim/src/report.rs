//! What a run measured, and its presentations: a summary table (Markdown), JSON, and SVG
//! line charts written by hand (no plotting dependency).

use crate::fleet::{Fleet, Usage};
use crate::scenario::Scenario;
use serde::Serialize;
use std::fmt::Write as _;

/// One sample, taken every period after the instant's decisions and bindings.
#[derive(Clone, Debug)]
pub struct Sample {
    pub t: u64,
    /// Replicas no cluster took (the bursting signal), over active workloads.
    pub unplaced: u32,
    /// Indexed like the fleet's clusters.
    pub clusters: Vec<Usage>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSeries {
    pub name: String,
    pub cloud: bool,
    /// Requested CPU (system and workload pods) over allocatable, %.
    pub utilisation: Vec<f32>,
    pub pending: Vec<u32>,
    pub running: Vec<u32>,
    pub nodes: Vec<u32>,
    /// Part of the fleet (false while an on-demand cluster is absent or being provisioned).
    pub present: Vec<bool>,
}

/// A step in an on-demand cluster's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Lifecycle {
    /// Replicas were unplaced: it is being created (with `nodes` workers to come).
    Provisioning,
    /// It joined the fleet with `nodes` workers.
    Joined,
    /// It was idle for its window and was removed.
    Removed,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEvent {
    pub t: u64,
    pub cluster: String,
    pub event: Lifecycle,
    pub nodes: u32,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Pod-time Pending over pod-time of all pods created in clusters.
    pub pending_fraction: f64,
    /// Pending pods plus unplaced replicas over everything asked for: demand not running.
    pub not_running_fraction: f64,
    /// Time-averaged CPU utilisation (of requests) per cluster, %.
    pub mean_utilisation: Vec<f64>,
    /// Over all fog clusters together, %.
    pub fog_utilisation: f64,
    pub cloud_replica_hours: f64,
    pub peak_pending: u32,
    pub peak_cloud_nodes: u32,
    /// Time with at least one cloud cluster in the fleet.
    pub cloud_present_hours: f64,
    /// Decisions per second of wall time spent deciding (fleet cycle build included).
    pub decisions_per_second: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub policy: String,
    pub scenario: String,
    pub period_seconds: u64,
    pub decisions: u64,
    /// Wall time deciding: fleet cycles built plus policy calls.
    pub decision_seconds: f64,
    /// Fleet cycles built (one per instant with decisions) and the time building them.
    pub cycles: u64,
    pub cycle_seconds: f64,
    /// Of which lowering the virtual clusters into `ClusterState`s.
    pub state_seconds: f64,
    pub wall_seconds: f64,
    pub scaling_calls: u64,
    /// Decisions that put replicas on a cloud cluster where the workload had none.
    pub bursts: u64,
    /// Decisions that left replicas unplaced.
    pub unplaced_decisions: u64,
    /// On-demand cloud clusters provisioned and removed.
    pub cloud_provisions: u64,
    pub cloud_deprovisions: u64,
    /// Their life, in time order.
    pub cluster_events: Vec<ClusterEvent>,
    pub errors: u64,
    pub first_errors: Vec<String>,
    pub summary: Summary,
    pub times: Vec<u64>,
    pub unplaced: Vec<u32>,
    pub clusters: Vec<ClusterSeries>,
    /// Σ fog requested and allocatable CPU over samples.
    #[serde(skip)]
    fog_alloc: (f64, f64),
}

impl RunResult {
    pub fn new(policy: &str, scenario: &Scenario, fleet: &Fleet) -> Self {
        RunResult {
            policy: policy.to_string(),
            scenario: scenario.name.clone(),
            period_seconds: scenario.period_seconds,
            decisions: 0,
            decision_seconds: 0.0,
            cycles: 0,
            cycle_seconds: 0.0,
            state_seconds: 0.0,
            wall_seconds: 0.0,
            scaling_calls: 0,
            bursts: 0,
            unplaced_decisions: 0,
            cloud_provisions: 0,
            cloud_deprovisions: 0,
            cluster_events: Vec::new(),
            errors: 0,
            first_errors: Vec::new(),
            summary: Summary::default(),
            times: Vec::new(),
            unplaced: Vec::new(),
            clusters: fleet
                .clusters
                .iter()
                .map(|c| ClusterSeries {
                    name: c.name.clone(),
                    cloud: c.cloud,
                    utilisation: Vec::new(),
                    pending: Vec::new(),
                    running: Vec::new(),
                    nodes: Vec::new(),
                    present: Vec::new(),
                })
                .collect(),
            fog_alloc: (0.0, 0.0),
        }
    }

    pub(crate) fn error(&mut self, message: String) {
        tracing::warn!(policy = %self.policy, "{message}");
        self.errors += 1;
        if self.first_errors.len() < 10 {
            self.first_errors.push(message);
        }
    }

    /// Records a step of an on-demand cluster's life.
    pub(crate) fn lifecycle(&mut self, t: u64, cluster: &str, event: Lifecycle, nodes: u32) {
        tracing::debug!(policy = %self.policy, t, cluster, ?event, nodes, "on-demand cluster");
        match event {
            Lifecycle::Provisioning => self.cloud_provisions += 1,
            Lifecycle::Removed => self.cloud_deprovisions += 1,
            Lifecycle::Joined => {}
        }
        self.cluster_events.push(ClusterEvent { t, cluster: cluster.to_string(), event, nodes });
    }

    pub(crate) fn push(&mut self, s: Sample) {
        self.times.push(s.t);
        self.unplaced.push(s.unplaced);
        for (series, u) in self.clusters.iter_mut().zip(&s.clusters) {
            let util = if u.allocatable_cpu_millis == 0 { 0.0 } else { 100.0 * u.requested_cpu_millis as f64 / u.allocatable_cpu_millis as f64 };
            series.utilisation.push(util as f32);
            series.pending.push(u.pending);
            series.running.push(u.running);
            series.nodes.push(u.nodes);
            series.present.push(u.present);
        }
        self.fog_alloc.0 += s.clusters.iter().zip(&self.clusters).filter(|(_, c)| !c.cloud).map(|(u, _)| u.requested_cpu_millis as f64).sum::<f64>();
        self.fog_alloc.1 += s.clusters.iter().zip(&self.clusters).filter(|(_, c)| !c.cloud).map(|(u, _)| u.allocatable_cpu_millis as f64).sum::<f64>();
    }

    /// Pending pods over all pods in clusters, per sample, %.
    pub fn pending_series(&self) -> Vec<f64> {
        (0..self.times.len())
            .map(|k| {
                let pending: u32 = self.clusters.iter().map(|c| c.pending[k]).sum();
                let running: u32 = self.clusters.iter().map(|c| c.running[k]).sum();
                if pending + running == 0 { 0.0 } else { 100.0 * f64::from(pending) / f64::from(pending + running) }
            })
            .collect()
    }

    pub(crate) fn finish(&mut self, period: u64) {
        let n = self.times.len();
        let (mut pending, mut running, mut unplaced, mut cloud, mut peak_pending, mut peak_nodes) = (0u64, 0u64, 0u64, 0u64, 0u32, 0u32);
        let mut cloud_present = 0u64;
        for k in 0..n {
            cloud_present += u64::from(self.clusters.iter().any(|c| c.cloud && c.present[k]));
            let p: u32 = self.clusters.iter().map(|c| c.pending[k]).sum();
            pending += u64::from(p);
            running += self.clusters.iter().map(|c| u64::from(c.running[k])).sum::<u64>();
            cloud += self.clusters.iter().filter(|c| c.cloud).map(|c| u64::from(c.running[k])).sum::<u64>();
            unplaced += u64::from(self.unplaced[k]);
            peak_pending = peak_pending.max(p);
            peak_nodes = peak_nodes.max(self.clusters.iter().filter(|c| c.cloud).map(|c| c.nodes[k]).sum());
        }
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        self.summary = Summary {
            pending_fraction: ratio(pending, pending + running),
            not_running_fraction: ratio(pending + unplaced, pending + running + unplaced),
            mean_utilisation: self.clusters.iter().map(ClusterSeries::mean_utilisation).collect(),
            fog_utilisation: 100.0 * ratio_f(self.fog_alloc.0, self.fog_alloc.1),
            cloud_replica_hours: cloud as f64 * period as f64 / 3600.0,
            peak_pending,
            peak_cloud_nodes: peak_nodes,
            cloud_present_hours: cloud_present as f64 * period as f64 / 3600.0,
            decisions_per_second: if self.decision_seconds > 0.0 { self.decisions as f64 / self.decision_seconds } else { 0.0 },
        };
    }
}

impl ClusterSeries {
    /// Over the samples it was in the fleet: an on-demand cluster is not "0 % used" while
    /// it does not exist.
    fn mean_utilisation(&self) -> f64 {
        let (sum, n) = self.utilisation.iter().zip(&self.present).filter(|(_, p)| **p).fold((0.0, 0u32), |(s, n), (u, _)| (s + f64::from(*u), n + 1));
        if n == 0 { 0.0 } else { sum / f64::from(n) }
    }

    fn ever_present(&self) -> bool {
        self.present.iter().any(|&p| p)
    }
}

fn ratio_f(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// The summary table, one row per policy, and the per-cluster utilisation table (Markdown).
pub fn table(results: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str("| policy | pending pods | demand not running | fog utilisation | bursts | cloud replica-hours | peak cloud nodes | cloud provisions | cloud de-provisions | cloud present | decisions | decisions/s | errors |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let s = &r.summary;
        let _ = writeln!(
            out,
            "| {} | {:.1}% | {:.1}% | {:.1}% | {} | {:.1} | {} | {} | {} | {:.0} min | {} | {:.0} | {} |",
            r.policy,
            100.0 * s.pending_fraction,
            100.0 * s.not_running_fraction,
            s.fog_utilisation,
            r.bursts,
            s.cloud_replica_hours,
            s.peak_cloud_nodes,
            r.cloud_provisions,
            r.cloud_deprovisions,
            s.cloud_present_hours * 60.0,
            r.decisions,
            s.decisions_per_second,
            r.errors
        );
    }
    if let Some(first) = results.first()
        && first.clusters.len() <= 20
    {
        out.push_str("\nMean CPU utilisation (requests over allocatable) per cluster, while it is in the fleet:\n\n| policy |");
        for c in &first.clusters {
            let _ = write!(out, " {} |", c.name);
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(first.clusters.len()));
        out.push('\n');
        for r in results {
            let _ = write!(out, "| {} |", r.policy);
            for (u, c) in r.summary.mean_utilisation.iter().zip(&r.clusters) {
                if c.ever_present() {
                    let _ = write!(out, " {u:.0}% |");
                } else {
                    out.push_str(" – |");
                }
            }
            out.push('\n');
        }
    }
    out
}

const PALETTE: [&str; 10] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A "nice" axis maximum and tick step for data up to `max`.
fn axis(max: f64) -> (f64, f64) {
    let max = if max <= 0.0 { 1.0 } else { max };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

/// A line chart: x in minutes of virtual time, one line per series.
pub fn line_chart(title: &str, y_label: &str, times: &[u64], series: &[(String, Vec<f64>)], y_max: Option<f64>) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 380.0, 60.0, 150.0, 36.0, 44.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let t_max = times.last().copied().unwrap_or(1).max(1) as f64;
    let data_max = series.iter().flat_map(|s| s.1.iter().copied()).fold(0.0, f64::max);
    let (y_top, y_step) = axis(y_max.unwrap_or(data_max).max(data_max));
    let (x_top, x_step) = axis(t_max / 60.0);
    let x = |t: f64| left + pw * (t / 60.0) / x_top;
    let y = |v: f64| top + ph * (1.0 - v / y_top);
    let mut s = String::new();
    let _ = writeln!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#);
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#, left + pw / 2.0, esc(title));
    let mut v = 0.0;
    while v <= y_top + 1e-9 {
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            yy + 4.0,
            trim(v)
        );
        v += y_step;
    }
    let mut m = 0.0;
    while m <= x_top + 1e-9 {
        let xx = left + pw * m / x_top;
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{:.1}" stroke="#f0f0f0"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 16.0,
            trim(m)
        );
        m += x_step;
    }
    let _ = writeln!(s, r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##);
    let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">virtual time (minutes)</text>"#, left + pw / 2.0, h - 8.0);
    let _ = writeln!(s, r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#, top + ph / 2.0, esc(y_label));
    for (i, (name, values)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut pts = String::new();
        for (t, v) in times.iter().zip(values) {
            let _ = write!(pts, "{:.1},{:.1} ", x(*t as f64), y(*v));
        }
        let _ = writeln!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{}"/>"#, pts.trim_end());
        let ly = top + 14.0 + 18.0 * i as f64;
        let lx = left + pw + 12.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="{color}" stroke-width="3"/><text x="{}" y="{:.1}">{}</text>"#,
            ly - 4.0,
            lx + 18.0,
            ly - 4.0,
            lx + 24.0,
            ly,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn trim(v: f64) -> String {
    let t = format!("{v:.2}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The charts for a set of runs: per run, utilisation and Pending pods per cluster; across
/// runs, the pending fraction. Returns `(file name, SVG)` pairs.
pub fn charts(results: &[RunResult]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in results {
        // Large fleets: the 10 clusters with the most Pending pod-time, to stay readable.
        let mut idx: Vec<usize> = (0..r.clusters.len()).collect();
        if idx.len() > 10 {
            idx.sort_by_key(|&i| std::cmp::Reverse(r.clusters[i].pending.iter().map(|&p| u64::from(p)).sum::<u64>()));
            idx.truncate(10);
            idx.sort_unstable();
        }
        let util: Vec<(String, Vec<f64>)> = idx.iter().map(|&i| (r.clusters[i].name.clone(), r.clusters[i].utilisation.iter().map(|&u| f64::from(u)).collect())).collect();
        let pending: Vec<(String, Vec<f64>)> = idx.iter().map(|&i| (r.clusters[i].name.clone(), r.clusters[i].pending.iter().map(|&p| f64::from(p)).collect())).collect();
        let slug = slug(&r.policy);
        out.push((
            format!("{slug}-utilisation.svg"),
            line_chart(&format!("{}: CPU requested / allocatable per cluster", r.policy), "utilisation (%)", &r.times, &util, Some(100.0)),
        ));
        out.push((format!("{slug}-pending.svg"), line_chart(&format!("{}: Pending pods per cluster", r.policy), "Pending pods", &r.times, &pending, None)));
    }
    if let Some(first) = results.first() {
        let series: Vec<(String, Vec<f64>)> = results.iter().map(|r| (r.policy.clone(), r.pending_series())).collect();
        out.push(("pending-fraction.svg".into(), line_chart("Pending pods / pods in clusters, per policy", "pending (%)", &first.times, &series, Some(100.0))));
    }
    out
}

fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round() {
        assert_eq!(axis(100.0), (100.0, 20.0));
        assert_eq!(axis(7.0), (8.0, 2.0));
        assert_eq!(axis(0.0), (1.0, 0.2));
    }

    #[test]
    fn a_chart_is_an_svg_with_one_polyline_per_series() {
        let svg = line_chart("t <&>", "y", &[0, 60, 120], &[("a".into(), vec![0.0, 1.0, 2.0]), ("b".into(), vec![2.0, 1.0, 0.0])], None);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("t &lt;&amp;&gt;"));
    }
}
