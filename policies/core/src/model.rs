//! The inputs and outputs of a placement decision, mirroring `wit/types.wit`.

/// Fog clusters are filled first; cloud clusters absorb overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Fog,
    Cloud,
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub name: String,
    pub role: Role,
    pub ready: bool,
    /// Whole-cluster ingress in bytes/s.
    pub traffic: f64,
    pub cost: f64,
    /// Interned `(key, value)` indices into [`Fleet::strings`].
    pub labels: Vec<(u32, u32)>,
}

/// The fleet as a policy keeps it between decisions of one cycle: clusters in name order
/// and, per cluster, its known neighbours sorted by RTT (built once in [`Fleet::new`], so a
/// decision never sorts RTTs).
#[derive(Clone, Debug, Default)]
pub struct Fleet {
    pub clusters: Vec<Cluster>,
    /// The interned strings label indices point into.
    pub strings: Vec<String>,
    /// Known neighbours of cluster `c`, nearest first: `neighbours[starts[c]..starts[c + 1]]`
    /// (one flat array: no allocation per cluster).
    neighbours: Vec<(u32, f32)>,
    starts: Vec<u32>,
}

impl Fleet {
    /// `rtts` are `(a, b, millis)` pairs; indices out of range are ignored.
    pub fn new(clusters: Vec<Cluster>, rtts: impl IntoIterator<Item = (u32, u32, f32)>) -> Self {
        Self::with_strings(clusters, rtts, Vec::new())
    }

    pub fn with_strings(clusters: Vec<Cluster>, rtts: impl IntoIterator<Item = (u32, u32, f32)>, strings: Vec<String>) -> Self {
        let mut fleet = Fleet { clusters, strings, neighbours: Vec::new(), starts: Vec::new() };
        fleet.set_rtts(rtts);
        fleet
    }

    /// Replaces every RTT (an update of the host's fleet carries them all when one moved).
    pub fn set_rtts(&mut self, rtts: impl IntoIterator<Item = (u32, u32, f32)>) {
        let n = self.clusters.len();
        let edges: Vec<(u32, u32, f32)> = rtts.into_iter().filter(|&(a, b, ms)| a != b && (a as usize) < n && (b as usize) < n && ms.is_finite()).collect();
        let mut starts = vec![0u32; n + 1];
        for &(a, b, _) in &edges {
            starts[a as usize + 1] += 1;
            starts[b as usize + 1] += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        let mut fill = starts.clone();
        let mut neighbours = vec![(0u32, 0f32); edges.len() * 2];
        for &(a, b, ms) in &edges {
            neighbours[fill[a as usize] as usize] = (b, ms);
            fill[a as usize] += 1;
            neighbours[fill[b as usize] as usize] = (a, ms);
            fill[b as usize] += 1;
        }
        for c in 0..n {
            let list = &mut neighbours[starts[c] as usize..starts[c + 1] as usize];
            // Nearest first; equal RTTs fall back to fleet (name) order for determinism.
            list.sort_unstable_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
        }
        self.neighbours = neighbours;
        self.starts = starts;
    }

    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    pub fn name(&self, i: u32) -> &str {
        &self.clusters[i as usize].name
    }

    pub fn is_cloud(&self, i: u32) -> bool {
        self.clusters[i as usize].role == Role::Cloud
    }

    pub fn is_ready(&self, i: u32) -> bool {
        self.clusters[i as usize].ready
    }

    /// Every other cluster, nearest first: those with a known RTT by RTT, then the rest in
    /// fleet order (mck8s gave up on proximity when serf failed; we keep them as a last resort).
    pub fn by_proximity(&self, from: u32) -> impl Iterator<Item = u32> + '_ {
        let known = self.known_neighbours(from);
        // A pair measured twice appears twice; its first (nearest) occurrence counts.
        let known_iter = known.iter().enumerate().filter(move |(i, e)| !known[..*i].iter().any(|p| p.0 == e.0)).map(|(_, e)| e.0);
        let unknown = (0..self.clusters.len() as u32).filter(move |&c| c != from && !known.iter().any(|e| e.0 == c));
        known_iter.chain(unknown)
    }

    fn known_neighbours(&self, c: u32) -> &[(u32, f32)] {
        &self.neighbours[self.starts[c as usize] as usize..self.starts[c as usize + 1] as usize]
    }

    /// The value of label `key` on cluster `c`.
    pub fn label(&self, c: u32, key: &str) -> Option<&str> {
        let s = |i: u32| self.strings.get(i as usize).map(String::as_str);
        self.clusters[c as usize].labels.iter().find(|l| s(l.0) == Some(key)).and_then(|l| s(l.1))
    }

    pub fn rtt(&self, a: u32, b: u32) -> Option<f32> {
        self.known_neighbours(a).iter().find(|e| e.0 == b).map(|e| e.1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preference {
    pub cluster: u32,
    pub replicas: Option<u32>,
}

/// One decision's input. Per-cluster slices are indexed like `Fleet::clusters`.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub replicas: u32,
    pub number_of_locations: u32,
    pub total: u32,
    pub preferred: &'a [Preference],
    pub current: &'a [(u32, u32)],
    pub params: &'a [(String, String)],
    /// mck8s slots for this pod shape (0 when not ready or full).
    pub slots: &'a [u32],
    /// Ascending indices of ready clusters where one pod fits no empty node.
    pub unfit: &'a [u32],
    /// This workload's ingress per cluster; empty when unknown.
    pub app_traffic: &'a [f64],
}

impl Request<'_> {
    pub fn slots(&self, c: u32) -> u32 {
        self.slots.get(c as usize).copied().unwrap_or(0)
    }

    /// Whether one pod fits some node of cluster `c` when that node is empty.
    pub fn fits(&self, c: u32) -> bool {
        self.unfit.binary_search(&c).is_err()
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub cluster: u32,
    pub replicas: u32,
    pub reason: String,
}

/// A policy's account of one cluster, for `mck8s explain` (WIT 0.1.2 `explanations`).
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub cluster: u32,
    /// Position in the policy's ranking, 1 first.
    pub rank: Option<u32>,
    /// What the ranking sorted by.
    pub score: Option<f64>,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// At most one entry per cluster, none with zero replicas, in fleet order.
    pub choices: Vec<Choice>,
    pub unplaced: u32,
    pub summary: String,
}

impl Placement {
    pub fn placed(&self) -> u32 {
        self.choices.iter().map(|c| c.replicas).sum()
    }

    pub fn replicas_on(&self, cluster: u32) -> u32 {
        self.choices.iter().filter(|c| c.cluster == cluster).map(|c| c.replicas).sum()
    }
}

/// Accumulates `(cluster, replicas, reason)` grants and folds them into a [`Placement`]:
/// grants to the same cluster are summed (mck8s's pandas `groupby`), zero grants dropped
/// (mck8s left consecutive zeros in, §9.1).
#[derive(Debug, Default)]
pub struct Ledger {
    grants: Vec<(u32, u32, String)>,
}

impl Ledger {
    pub fn grant(&mut self, cluster: u32, replicas: u32, reason: impl FnOnce() -> String) {
        if replicas > 0 {
            self.grants.push((cluster, replicas, reason()));
        }
    }

    pub fn granted_to(&self, cluster: u32) -> u32 {
        self.grants.iter().filter(|g| g.0 == cluster).map(|g| g.1).sum()
    }

    pub fn finish(mut self, unplaced: u32, summary: String) -> Placement {
        self.grants.sort_by_key(|g| g.0);
        let mut choices: Vec<Choice> = Vec::with_capacity(self.grants.len());
        for (cluster, replicas, reason) in self.grants {
            match choices.last_mut() {
                Some(last) if last.cluster == cluster => {
                    last.replicas += replicas;
                    last.reason.push_str("; ");
                    last.reason.push_str(&reason);
                }
                _ => choices.push(Choice { cluster, replicas, reason }),
            }
        }
        Placement { choices, unplaced, summary }
    }
}
