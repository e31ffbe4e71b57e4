//! Demand sizing: how many new cloud worker nodes, of which flavor, the pending `to_cloud`
//! demand needs. Pure and deterministic: the caller expands every pending application into one
//! [`Resources`] per replica and passes the nodes it has already asked for.
//!
//! mck8s 1.x always picked `k8s.large` and divided the summed demand by it, after truncating
//! the pending CPU to whole cores (so three 300m pods needed no node at all). [`SizingMode::Legacy`]
//! keeps that formula in millicores; [`SizingMode::BinPack`] packs the pods onto each flavor
//! and takes the cheapest. Both deduct capacity already requested, so the same pods are never
//! provisioned for twice.

use std::fmt;
use thiserror::Error;

const MI: u64 = 1024 * 1024;
/// Legacy sizing takes the first flavor with at least this much CPU (mck8s's `k8s.large` rule).
pub const LEGACY_MIN_CPU_MILLI: u64 = 8000;
/// Legacy sizing takes the first flavor with at least this much memory.
pub const LEGACY_MIN_MEMORY_BYTES: u64 = 32768 * MI;

/// CPU and memory as plain integers, so sizing never rounds (1.x truncated CPU to cores).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Resources {
    pub cpu_milli: u64,
    pub memory_bytes: u64,
}

impl Resources {
    pub const ZERO: Resources = Resources::new(0, 0);

    pub const fn new(cpu_milli: u64, memory_bytes: u64) -> Self {
        Resources { cpu_milli, memory_bytes }
    }

    pub const fn saturating_add(self, other: Resources) -> Resources {
        Resources::new(self.cpu_milli.saturating_add(other.cpu_milli), self.memory_bytes.saturating_add(other.memory_bytes))
    }

    pub const fn saturating_sub(self, other: Resources) -> Resources {
        Resources::new(self.cpu_milli.saturating_sub(other.cpu_milli), self.memory_bytes.saturating_sub(other.memory_bytes))
    }

    /// Whether `self` fits in `room` in both dimensions.
    pub const fn fits_in(self, room: Resources) -> bool {
        self.cpu_milli <= room.cpu_milli && self.memory_bytes <= room.memory_bytes
    }
}

impl std::iter::Sum for Resources {
    fn sum<I: Iterator<Item = Resources>>(iter: I) -> Resources {
        iter.fold(Resources::ZERO, Resources::saturating_add)
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.memory_bytes.is_multiple_of(MI) {
            write!(f, "{}m CPU, {}Mi memory", self.cpu_milli, self.memory_bytes / MI)
        } else {
            write!(f, "{}m CPU, {} bytes memory", self.cpu_milli, self.memory_bytes)
        }
    }
}

/// One machine size the infrastructure offers: its full capacity and its pod cap.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flavor {
    pub name: String,
    pub cpu_milli: u64,
    pub memory_bytes: u64,
    /// Pods per node (0: no cap).
    pub pods: u32,
}

impl Flavor {
    pub fn new(name: impl Into<String>, cpu_milli: u64, memory_bytes: u64, pods: u32) -> Self {
        Flavor { name: name.into(), cpu_milli, memory_bytes, pods }
    }

    pub const fn capacity(&self) -> Resources {
        Resources::new(self.cpu_milli, self.memory_bytes)
    }

    /// What pods can use on a node of this flavor once `overhead` (system reservations,
    /// DaemonSets) is taken out.
    pub const fn allocatable(&self, overhead: Resources) -> Resources {
        self.capacity().saturating_sub(overhead)
    }
}

/// The mck8s 1.x flavor table (OpenStack names), 110 pods each.
pub fn default_flavors() -> Vec<Flavor> {
    let table = [("k8s.small", 2000, 8192), ("k8s.medium", 4000, 16384), ("k8s.large", 8000, 32768), ("k8s.xlarge", 16000, 65536)];
    table.into_iter().map(|(name, cpu, mem_mi)| Flavor::new(name, cpu, mem_mi * MI, 110)).collect()
}

/// How the flavor and node count are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SizingMode {
    /// Parity with 1.x: the first flavor of at least 8000m/32768Mi, `ceil(max(Σcpu/cpu,
    /// Σmem/mem))` nodes over its full capacity, no overhead and no pod cap (CPU in millicores).
    Legacy,
    /// First-fit-decreasing packing onto every flavor that fits the largest pod; the cheapest
    /// wins. It never asks for a node that the pods would not use.
    #[default]
    BinPack,
}

/// Everything one sizing decision looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SizingRequest {
    pub flavors: Vec<Flavor>,
    pub mode: SizingMode,
    /// Subtracted from each flavor's capacity to get its allocatable (BinPack only).
    pub node_overhead: Resources,
    /// Pods per node; the lower of this and the flavor's `pods` applies. 0: no cap of its own.
    pub max_pods_per_node: u32,
    /// One entry per pending replica.
    pub pods: Vec<Resources>,
    /// Allocatable of nodes already requested but not Ready yet: their capacity is deducted
    /// first, so repeated calls for the same pods do not add nodes again.
    pub in_flight: Vec<Resources>,
    /// The cluster's flavor once provisioned: changing it would roll every machine, so later
    /// scale-outs use it and nothing else. It need not be in `flavors`.
    pub fixed_flavor: Option<Flavor>,
}

/// The answer: `nodes` NEW nodes of `flavor` (0 when nothing more is needed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizing {
    pub flavor: Flavor,
    pub nodes: u32,
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SizingError {
    #[error("the flavor table is empty")]
    NoFlavors,
    #[error("legacy sizing needs a flavor with at least 8000m CPU and 32768Mi memory; none has")]
    NoLegacyFlavor,
    #[error("no flavor fits a pod requesting {pod}: the largest, {flavor}, offers {allocatable}")]
    PodTooLarge { pod: Resources, flavor: String, allocatable: Resources },
}

/// Sizes the demand in `request`: the flavor and how many new nodes of it to add.
pub fn size(request: &SizingRequest) -> Result<Sizing, SizingError> {
    match request.mode {
        SizingMode::Legacy => size_legacy(request),
        SizingMode::BinPack => size_bin_pack(request),
    }
}

fn size_legacy(req: &SizingRequest) -> Result<Sizing, SizingError> {
    let flavor = match &req.fixed_flavor {
        Some(fixed) => fixed.clone(),
        None if req.flavors.is_empty() => return Err(SizingError::NoFlavors),
        None => req.flavors.iter().find(|f| f.cpu_milli >= LEGACY_MIN_CPU_MILLI && f.memory_bytes >= LEGACY_MIN_MEMORY_BYTES).cloned().ok_or(SizingError::NoLegacyFlavor)?,
    };
    let capacity = flavor.capacity();
    if let Some(pod) = req.pods.iter().filter(|p| !p.fits_in(capacity)).max() {
        return Err(too_large(*pod, &flavor, capacity));
    }
    let demand: Resources = req.pods.iter().copied().sum();
    let rest = demand.saturating_sub(req.in_flight.iter().copied().sum());
    // Every pod fits the flavor, so a zero dimension of the flavor has zero demand.
    let ceil = |need: u64, per: u64| if per == 0 { 0 } else { need.div_ceil(per) };
    let nodes = ceil(rest.cpu_milli, capacity.cpu_milli).max(ceil(rest.memory_bytes, capacity.memory_bytes));
    Ok(Sizing { flavor, nodes: u32::try_from(nodes).unwrap_or(u32::MAX) })
}

fn size_bin_pack(req: &SizingRequest) -> Result<Sizing, SizingError> {
    let flavors: Vec<&Flavor> = match &req.fixed_flavor {
        Some(fixed) => vec![fixed],
        None => req.flavors.iter().collect(),
    };
    let best = flavors
        .iter()
        .filter(|f| req.pods.iter().all(|p| p.fits_in(f.allocatable(req.node_overhead))))
        .map(|&f| (f, new_nodes_needed(req, f)))
        // Cheapest (nodes × cpu), then fewer nodes, then the smaller flavor.
        .min_by_key(|&(f, nodes)| {
            let cost = u128::from(nodes) * u128::from(f.cpu_milli);
            (cost, nodes, f.capacity(), f.name.as_str())
        });
    if let Some((flavor, nodes)) = best {
        return Ok(Sizing { flavor: flavor.clone(), nodes });
    }
    let largest = flavors.iter().max_by_key(|f| (f.capacity(), &f.name)).ok_or(SizingError::NoFlavors)?;
    let allocatable = largest.allocatable(req.node_overhead);
    let pod = req.pods.iter().filter(|p| !p.fits_in(allocatable)).max();
    Err(too_large(pod.copied().unwrap_or_default(), largest, allocatable))
}

fn new_nodes_needed(req: &SizingRequest, flavor: &Flavor) -> u32 {
    let allocatable = flavor.allocatable(req.node_overhead);
    let mut in_flight = req.in_flight.clone();
    in_flight.sort_unstable_by(|a, b| b.cmp(a));
    let slots = pod_cap(req.max_pods_per_node);
    let mut bins: Vec<Bin> = in_flight.into_iter().map(|free| Bin { free, slots }).collect();
    let existing = bins.len();
    let new_bin = Bin { free: allocatable, slots: slots.min(pod_cap(flavor.pods)) };
    pack(&ffd_order(&req.pods, allocatable), &mut bins, Some(new_bin));
    u32::try_from(bins.len() - existing).unwrap_or(u32::MAX)
}

fn too_large(pod: Resources, flavor: &Flavor, allocatable: Resources) -> SizingError {
    SizingError::PodTooLarge { pod, flavor: flavor.name.clone(), allocatable }
}

/// A pods-per-node setting as a cap: 0 means none.
pub(crate) const fn pod_cap(max_pods: u32) -> u32 {
    if max_pods == 0 { u32::MAX } else { max_pods }
}

/// The room left on one node during a packing simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bin {
    pub free: Resources,
    pub slots: u32,
}

impl Bin {
    fn take(&mut self, pod: Resources) -> bool {
        let fits = self.slots > 0 && pod.fits_in(self.free);
        if fits {
            self.free = self.free.saturating_sub(pod);
            self.slots -= 1;
        }
        fits
    }
}

/// The pods in first-fit-decreasing order: largest dominant share of `shape` first, then
/// larger CPU, then larger memory. Equal keys are equal pods, so the order (and every packing
/// result) does not depend on the input order.
pub(crate) fn ffd_order(pods: &[Resources], shape: Resources) -> Vec<Resources> {
    // share = max(cpu/shape.cpu, mem/shape.mem), compared exactly over the common denominator.
    let share = |p: &Resources| (u128::from(p.cpu_milli) * u128::from(shape.memory_bytes)).max(u128::from(p.memory_bytes) * u128::from(shape.cpu_milli));
    let mut sorted = pods.to_vec();
    sorted.sort_unstable_by(|a, b| share(b).cmp(&share(a)).then_with(|| b.cmp(a)));
    sorted
}

/// Packs `pods` first-fit into `bins`, appending copies of `new_bin` when no bin has room.
/// Returns each pod's bin index, or `None` for a pod that fits nowhere, not even a new bin.
pub(crate) fn pack(pods: &[Resources], bins: &mut Vec<Bin>, new_bin: Option<Bin>) -> Vec<Option<usize>> {
    pods.iter()
        .map(|&pod| {
            if let Some(index) = bins.iter_mut().position(|bin| bin.take(pod)) {
                return Some(index);
            }
            let mut bin = new_bin?;
            bin.take(pod).then(|| {
                bins.push(bin);
                bins.len() - 1
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1024 * MI;

    fn pods(n: usize, cpu_milli: u64, memory_bytes: u64) -> Vec<Resources> {
        vec![Resources::new(cpu_milli, memory_bytes); n]
    }

    fn request(mode: SizingMode, pods: Vec<Resources>) -> SizingRequest {
        SizingRequest { flavors: default_flavors(), mode, node_overhead: Resources::new(200, 512 * MI), max_pods_per_node: 110, pods, ..SizingRequest::default() }
    }

    fn sized(req: &SizingRequest) -> (String, u32) {
        let sizing = size(req).expect("sizing");
        (sizing.flavor.name, sizing.nodes)
    }

    #[test]
    fn default_table_is_the_original() {
        let table: Vec<_> = default_flavors().into_iter().map(|f| (f.name, f.cpu_milli, f.memory_bytes / MI, f.pods)).collect();
        assert_eq!(
            table,
            [
                ("k8s.small".to_string(), 2000, 8192, 110),
                ("k8s.medium".to_string(), 4000, 16384, 110),
                ("k8s.large".to_string(), 8000, 32768, 110),
                ("k8s.xlarge".to_string(), 16000, 65536, 110),
            ]
        );
    }

    #[test]
    fn legacy_matches_the_original_numbers() {
        let cases = [
            (pods(6, 1000, GI), 1),      // 6 CPU / 6Gi
            (pods(9, 1000, GI), 2),      // 9 CPU: ceil(9000/8000)
            (pods(16, 1000, GI), 2),     // exactly two nodes
            (pods(2, 500, 20 * GI), 2),  // memory-bound: ceil(40/32)
            (pods(3, 300, 100 * MI), 1), // 1.x truncated 900m to 0 cores: 0 nodes
            (vec![], 0),
        ];
        for (demand, nodes) in cases {
            assert_eq!(sized(&request(SizingMode::Legacy, demand)), ("k8s.large".into(), nodes));
        }
    }

    #[test]
    fn legacy_deducts_in_flight_capacity_and_uses_a_fixed_flavor() {
        let mut req = request(SizingMode::Legacy, pods(9, 1000, GI));
        req.in_flight = vec![Resources::new(8000, 32768 * MI)];
        assert_eq!(sized(&req), ("k8s.large".into(), 1));
        req.in_flight.push(Resources::new(8000, 32768 * MI));
        assert_eq!(sized(&req), ("k8s.large".into(), 0));
        req.in_flight.clear();
        req.fixed_flavor = default_flavors().into_iter().nth(1);
        assert_eq!(sized(&req), ("k8s.medium".into(), 3));
    }

    #[test]
    fn legacy_errors() {
        let mut req = request(SizingMode::Legacy, pods(1, 9000, GI));
        let err = size(&req).expect_err("too large");
        assert_eq!(err, SizingError::PodTooLarge { pod: Resources::new(9000, GI), flavor: "k8s.large".into(), allocatable: Resources::new(8000, 32768 * MI) });
        assert!(err.to_string().contains("9000m CPU, 1024Mi memory"), "{err}");
        req.flavors.truncate(2);
        assert_eq!(size(&req), Err(SizingError::NoLegacyFlavor));
        req.flavors.clear();
        assert_eq!(size(&req), Err(SizingError::NoFlavors));
    }

    #[test]
    fn bin_pack_keeps_millicores_and_picks_a_small_flavor() {
        let req = request(SizingMode::BinPack, pods(3, 300, 256 * MI));
        assert_eq!(sized(&req), ("k8s.small".into(), 1));
    }

    #[test]
    fn bin_pack_chooses_the_cheapest_then_fewer_nodes() {
        // Allocatable cpu: small 1800 (1 pod), medium 3800 (3), large 7800 (7), xlarge 15800.
        // Costs: 6 small = 12000, 2 medium = 8000, 1 large = 8000, 1 xlarge = 16000.
        let req = request(SizingMode::BinPack, pods(6, 1000, GI));
        assert_eq!(sized(&req), ("k8s.large".into(), 1));
        // Four pods: 4 small, 2 medium and 1 large all cost 8000: the fewest nodes win.
        let req = request(SizingMode::BinPack, pods(4, 1000, GI));
        assert_eq!(sized(&req), ("k8s.large".into(), 1));
        // Two pods: 2 small and 1 medium both cost 4000: fewer nodes, the medium.
        let req = request(SizingMode::BinPack, pods(2, 1000, GI));
        assert_eq!(sized(&req), ("k8s.medium".into(), 1));
        // Memory-bound pods: 7Gi fits a small (7680Mi allocatable) once; 2 per medium.
        let req = request(SizingMode::BinPack, pods(3, 100, 7 * GI));
        assert_eq!(sized(&req), ("k8s.small".into(), 3));
    }

    #[test]
    fn bin_pack_errors_name_the_pod_and_the_largest_flavor() {
        let mut req = request(SizingMode::BinPack, vec![Resources::new(100, GI); 3]);
        req.pods.push(Resources::new(16000, GI));
        let err = size(&req).expect_err("too large");
        assert_eq!(err, SizingError::PodTooLarge { pod: Resources::new(16000, GI), flavor: "k8s.xlarge".into(), allocatable: Resources::new(15800, 65024 * MI) });
        req.fixed_flavor = default_flavors().into_iter().next();
        req.pods = pods(1, 1900, GI);
        assert!(matches!(size(&req), Err(SizingError::PodTooLarge { flavor, .. }) if flavor == "k8s.small"));
        req.fixed_flavor = None;
        req.flavors.clear();
        assert_eq!(size(&req), Err(SizingError::NoFlavors));
    }

    #[test]
    fn bin_pack_deducts_in_flight_nodes() {
        let mut req = request(SizingMode::BinPack, pods(6, 1000, GI));
        req.fixed_flavor = default_flavors().into_iter().nth(1);
        assert_eq!(sized(&req), ("k8s.medium".into(), 2));
        req.in_flight = vec![Resources::new(3800, 15872 * MI)];
        assert_eq!(sized(&req), ("k8s.medium".into(), 1));
        req.in_flight.push(Resources::new(3800, 15872 * MI));
        assert_eq!(sized(&req), ("k8s.medium".into(), 0));
        req.pods.clear();
        assert_eq!(sized(&req), ("k8s.medium".into(), 0));
    }

    #[test]
    fn bin_pack_respects_the_pod_cap() {
        let mut req = request(SizingMode::BinPack, pods(300, 10, 10 * MI));
        assert_eq!(sized(&req), ("k8s.small".into(), 3));
        req.max_pods_per_node = 0; // the flavor's 110
        assert_eq!(sized(&req), ("k8s.small".into(), 3));
        req.max_pods_per_node = 50;
        assert_eq!(sized(&req), ("k8s.small".into(), 6));
        // 15 small (cap 20) cost 30000, 6 medium 24000: the pod cap changes the flavor.
        req.flavors[0].pods = 20;
        assert_eq!(sized(&req), ("k8s.medium".into(), 6));
    }

    #[test]
    fn results_do_not_depend_on_input_order() {
        let mut demand: Vec<Resources> = (0..40u64).map(|i| Resources::new(100 + (i * 37) % 1500, (256 + (i * 91) % 3000) * MI)).collect();
        let in_flight = vec![Resources::new(1800, 7680 * MI), Resources::new(3800, 15872 * MI)];
        for mode in [SizingMode::Legacy, SizingMode::BinPack] {
            let mut req = request(mode, demand.clone());
            req.in_flight = in_flight.clone();
            let expected = size(&req).expect("sizing");
            for step in 1..demand.len() {
                demand.rotate_left(step);
                demand.swap(0, step);
                req.pods = demand.clone();
                req.in_flight.reverse();
                assert_eq!(size(&req), Ok(expected.clone()), "{mode:?} step {step}");
            }
        }
    }

    #[test]
    fn pack_places_first_fit_and_opens_bins() {
        let mut bins = vec![Bin { free: Resources::new(1000, GI), slots: 1 }];
        let new_bin = Bin { free: Resources::new(2000, GI), slots: 2 };
        let demand = [Resources::new(500, MI), Resources::new(500, MI), Resources::new(3000, MI)];
        assert_eq!(pack(&demand, &mut bins, Some(new_bin)), [Some(0), Some(1), None]);
        assert_eq!(pack(&demand[..1], &mut bins, None), [Some(1)]);
        assert_eq!(pack(&demand[..1], &mut bins, None), [None]); // slots exhausted
    }
}
