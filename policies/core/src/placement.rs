//! Placement algorithms: mck8s's automatic ranking mode (§3.3–3.4), its preferred-clusters
//! mode (§3.5) and Karmada-style division, with the bugs of §9.1 fixed. Every function
//! returns a [`Placement`] that accounts for exactly `req.total` replicas.

use crate::model::{Fleet, Ledger, Placement, Request, Role, Verdict};
use crate::params;

/// How automatic mode orders the eligible fog clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    /// Most ingress first (the app's own ingress when known, else the cluster's).
    MostTraffic,
    /// Most free slots for this pod shape first.
    WorstFit,
    /// Fewest free slots (but at least one) first.
    BestFit,
}

impl Ranking {
    pub fn name(self) -> &'static str {
        match self {
            Ranking::MostTraffic => "most-traffic",
            Ranking::WorstFit => "worst-fit",
            Ranking::BestFit => "best-fit",
        }
    }
}

/// A ranking policy: preferred-clusters mode when `locations` are given (mck8s ignores the
/// ranking then), else automatic mode.
pub fn rank_and_place(fleet: &Fleet, req: &Request, ranking: Ranking) -> Placement {
    if req.preferred.is_empty() { automatic(fleet, req, ranking) } else { preferred(fleet, req) }
}

fn usable_fog(fleet: &Fleet, req: &Request, c: u32) -> bool {
    let cl = &fleet.clusters[c as usize];
    cl.role == Role::Fog && cl.ready && req.slots(c) > 0
}

fn ready_clouds(fleet: &Fleet) -> impl Iterator<Item = u32> + '_ {
    (0..fleet.len() as u32).filter(|&c| fleet.is_cloud(c) && fleet.is_ready(c))
}

/// The cloud cluster that absorbs leftovers: a ready one the user listed, else the cheapest
/// ready one (fleet order breaks ties). mck8s took the *last* cloud-named cluster.
fn leftover_cloud(fleet: &Fleet, listed: impl Iterator<Item = u32>) -> Option<u32> {
    let mut listed = listed.filter(|&c| fleet.is_cloud(c) && fleet.is_ready(c));
    listed.next().or_else(|| ready_clouds(fleet).min_by(|&a, &b| fleet.clusters[a as usize].cost.total_cmp(&fleet.clusters[b as usize].cost).then(a.cmp(&b))))
}

/// §3.3–3.4: the top `numberOfLocations` ranked fog clusters each take `replicas` up to
/// their slots; overflow spills down the ranking, then a cloud cluster absorbs it uncapped.
pub fn automatic(fleet: &Fleet, req: &Request, ranking: Ranking) -> Placement {
    let r = req.replicas;
    let n = req.number_of_locations.max(1) as usize;
    let (ranked, fog_eligible) = ranked(fleet, req, ranking);
    if ranked.is_empty() {
        return Placement { unplaced: req.total, summary: format!("no ready cluster can take a replica: {} unplaced", req.total), ..Placement::default() };
    }

    let mut ledger = Ledger::default();
    let mut chosen: Vec<u32> = Vec::new();
    let mut overflow = 0u32;
    for (rank, &(c, max)) in ranked.iter().take(n).enumerate() {
        let give = r.min(max);
        ledger.grant(c, give, || format!("ranked #{} by {} ({} free slots)", rank + 1, ranking.name(), slots_text(fleet, req, c)));
        chosen.push(c);
        overflow += r - give;
    }
    // Fewer ranked clusters than locations: mck8s silently dropped the missing locations' replicas.
    overflow += r * n.saturating_sub(ranked.len()) as u32;
    let mut spilled = 0;
    for &(c, max) in ranked.iter().skip(n) {
        if overflow == 0 {
            break;
        }
        let give = overflow.min(max);
        ledger.grant(c, give, || format!("takes overflow as next ranked ({} free slots)", slots_text(fleet, req, c)));
        chosen.push(c);
        overflow -= give;
        spilled += give;
    }
    let mut absorbed = 0;
    if overflow > 0
        && let Some(&cloud) = chosen.iter().find(|&&c| fleet.is_cloud(c))
    {
        ledger.grant(cloud, overflow, || format!("cloud absorbs {overflow} replicas beyond fog capacity"));
        absorbed = overflow;
        overflow = 0;
    }
    let summary = format!(
        "{}: {} locations × {} replicas; {} eligible fog clusters; {} spilled down the ranking, {} absorbed by cloud, {} unplaced",
        ranking.name(),
        n,
        r,
        fog_eligible,
        spilled,
        absorbed,
        overflow
    );
    ledger.finish(overflow, summary)
}

/// The ranked fog clusters with free slots, then the ready cloud clusters, each with the most
/// replicas it may take; and how many fog clusters were eligible.
fn ranked(fleet: &Fleet, req: &Request, ranking: Ranking) -> (Vec<(u32, u32)>, usize) {
    let r = req.replicas;
    let n = req.number_of_locations.max(1);
    let mut ranked: Vec<(u32, u32)> = (0..fleet.len() as u32).filter(|&c| usable_fog(fleet, req, c)).map(|c| (c, req.slots(c))).collect();
    let fog_eligible = ranked.len();
    match ranking {
        // Stable sorts: ties keep fleet (name) order, as mck8s's sorted() over the KubeFed list.
        Ranking::WorstFit => ranked.sort_by_key(|a| std::cmp::Reverse(a.1)),
        Ranking::BestFit => ranked.sort_by_key(|a| a.1),
        // The sort key read once per cluster, beside the entry, not twice per comparison.
        Ranking::MostTraffic => {
            let mut keyed: Vec<(f64, (u32, u32))> = ranked.iter().map(|&e| (traffic(fleet, req, e.0), e)).collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            ranked = keyed.into_iter().map(|k| k.1).collect();
        }
    }
    // Cloud clusters are not capacity-checked (they scale out); mck8s gives them a notional
    // R slots, or R×N when no fog cluster is eligible.
    let cloud_max = if fog_eligible == 0 { r.saturating_mul(n) } else { r };
    ranked.extend(ready_clouds(fleet).map(|c| (c, cloud_max)));
    (ranked, fog_eligible)
}

/// The ingress `most-traffic` ranks by: the app's own when known, else the cluster's.
fn traffic(fleet: &Fleet, req: &Request, c: u32) -> f64 {
    match req.app_traffic.get(c as usize) {
        Some(t) => *t,
        None => fleet.clusters[c as usize].traffic,
    }
}

/// Why each ranked cluster got what it got ([`rank_and_place`]'s account, for `mck8s
/// explain`). Clusters it never ranked (not ready, no slots, too small) are left to the
/// host, which knows why.
pub fn explain_ranking(fleet: &Fleet, req: &Request, ranking: Ranking) -> Vec<Verdict> {
    if !req.preferred.is_empty() {
        return explain_preferred(fleet, req);
    }
    let n = req.number_of_locations.max(1) as usize;
    let (ranked, fog) = ranked(fleet, req, ranking);
    let placement = automatic(fleet, req, ranking);
    let cloud_taker = ranked.iter().map(|r| r.0).find(|&c| fleet.is_cloud(c) && placement.replicas_on(c) > 0);
    ranked
        .iter()
        .enumerate()
        .map(|(i, &(c, _))| {
            let rank = i as u32 + 1;
            let score = match ranking {
                _ if fleet.is_cloud(c) => None,
                Ranking::MostTraffic => Some(traffic(fleet, req, c)),
                Ranking::WorstFit | Ranking::BestFit => Some(f64::from(req.slots(c))),
            };
            let reason = if placement.replicas_on(c) > 0 {
                format!("ranked #{rank} by {}", ranking.name())
            } else if fleet.is_cloud(c) {
                match cloud_taker {
                    Some(t) => format!("cloud: {} took the overflow", fleet.name(t)),
                    None => "cloud: takes only what the fog clusters cannot, and they took every replica".to_string(),
                }
            } else {
                let key = if ranking == Ranking::MostTraffic { "ingress" } else { "free slots" };
                format!("ranked #{rank} of {fog} fog clusters by {key}: the top {n} take the replicas, and the clusters ranked above had room for all of them")
            };
            Verdict { cluster: c, rank: Some(rank), score, reason }
        })
        .collect()
}

/// Preferred-clusters mode: listed clusters ranked in the user's order; the rest serve only
/// as replacements or overflow, nearest first.
fn explain_preferred(fleet: &Fleet, req: &Request) -> Vec<Verdict> {
    let placement = preferred(fleet, req);
    (0..fleet.len() as u32)
        .filter(|&c| placement.replicas_on(c) == 0 && fleet.is_ready(c))
        .map(|c| match req.preferred.iter().position(|p| p.cluster == c) {
            Some(i) => Verdict { cluster: c, rank: Some(i as u32 + 1), score: None, reason: format!("listed #{} in locations, but it took none (replaced or full)", i + 1) },
            None if fleet.is_cloud(c) => {
                Verdict { cluster: c, rank: None, score: None, reason: "cloud: takes only what the preferred fog clusters and their neighbours cannot".into() }
            }
            None => Verdict {
                cluster: c,
                rank: None,
                score: None,
                reason: "not in locations: used only to replace a listed cluster or take its overflow, nearest first, and none was needed".into(),
            },
        })
        .collect()
}

fn slots_text(fleet: &Fleet, req: &Request, c: u32) -> String {
    if fleet.is_cloud(c) { "elastic".to_string() } else { req.slots(c).to_string() }
}

/// §3.5 preferred-clusters mode, with the §9.1 fixes:
/// - an infeasible (or not ready) preferred cluster is replaced by the nearest feasible fog
///   cluster that is not listed, which inherits *its own* replica count; without a
///   replacement its replicas become leftover instead of vanishing;
/// - replicas asked of listed cloud clusters are folded into the fog entries evenly, the
///   remainder included, on create and update alike;
/// - overflow goes to the nearest ready fog clusters with free slots, listed ones included.
pub fn preferred(fleet: &Fleet, req: &Request) -> Placement {
    let want = |p: &crate::Preference| p.replicas.unwrap_or(req.replicas);
    let listed = |c: u32| req.preferred.iter().any(|p| p.cluster == c);
    let mut entries: Vec<(u32, u32)> = Vec::new(); // (cluster, wanted replicas)
    let mut ledger = Ledger::default();
    let mut leftover = 0u32;
    let mut cloud_req = 0u32;
    for p in req.preferred {
        if fleet.is_cloud(p.cluster) {
            cloud_req += want(p);
        } else if fleet.is_ready(p.cluster) && req.fits(p.cluster) {
            entries.push((p.cluster, want(p)));
        } else {
            let replacement = fleet.by_proximity(p.cluster).find(|&c| !fleet.is_cloud(c) && fleet.is_ready(c) && req.fits(c) && !listed(c));
            match replacement {
                Some(c) => entries.push((c, want(p))),
                None => leftover += want(p),
            }
        }
    }

    if entries.is_empty() {
        let total = leftover + cloud_req;
        return match leftover_cloud(fleet, req.preferred.iter().map(|p| p.cluster)) {
            Some(cloud) if total > 0 => {
                ledger.grant(cloud, total, || "no preferred fog cluster can run it: all to cloud".to_string());
                ledger.finish(0, format!("preferred: no feasible fog location, {total} replicas to cloud"))
            }
            _ => ledger.finish(total, format!("preferred: no feasible fog location and no ready cloud, {total} unplaced")),
        };
    }

    let k = entries.len() as u32;
    for (i, e) in entries.iter_mut().enumerate() {
        e.1 += cloud_req / k + u32::from((i as u32) < cloud_req % k);
    }

    let remaining = |ledger: &Ledger, c: u32| req.slots(c).saturating_sub(ledger.granted_to(c));
    let mut overflows: Vec<(u32, u32)> = Vec::new();
    for &(c, w) in &entries {
        let give = w.min(remaining(&ledger, c));
        let replaced = !listed(c);
        ledger.grant(c, give, || {
            if replaced {
                format!("nearest feasible replacement for an infeasible preferred location ({} slots)", req.slots(c))
            } else {
                format!("preferred location ({} slots)", req.slots(c))
            }
        });
        if w > give {
            overflows.push((c, w - give));
        }
    }
    let mut to_neighbours = 0;
    for (from, mut over) in overflows {
        for c in fleet.by_proximity(from) {
            if over == 0 {
                break;
            }
            if fleet.is_cloud(c) || !fleet.is_ready(c) {
                continue;
            }
            let give = over.min(remaining(&ledger, c));
            ledger.grant(c, give, || match fleet.rtt(from, c) {
                Some(ms) => format!("overflow from {} (nearest with free slots, rtt {ms:.1} ms)", fleet.name(from)),
                None => format!("overflow from {} (free slots, rtt unknown)", fleet.name(from)),
            });
            over -= give;
            to_neighbours += give;
        }
        leftover += over;
    }
    let mut unplaced = 0;
    let mut to_cloud = 0;
    if leftover > 0 {
        match leftover_cloud(fleet, req.preferred.iter().map(|p| p.cluster)) {
            Some(cloud) => {
                ledger.grant(cloud, leftover, || format!("cloud takes {leftover} replicas fog cannot"));
                to_cloud = leftover;
            }
            None => unplaced = leftover,
        }
    }
    let summary = format!(
        "preferred: {} locations; {cloud_req} cloud-requested replicas folded into fog; {to_neighbours} overflowed to nearest clusters, {to_cloud} to cloud, {unplaced} unplaced",
        req.preferred.len()
    );
    ledger.finish(unplaced, summary)
}

/// Karmada-style division of `total` replicas. With `weights` ("a:2,b:1") the split is
/// static; otherwise weights are each ready fog cluster's free slots (dynamic). With
/// `locations`, only those clusters take part, weighted by their replica overrides.
/// Fog shares are capped at free slots; the excess is re-divided dynamically among fog
/// clusters with room, then goes to the cheapest ready cloud, then is unplaced.
pub fn divided(fleet: &Fleet, req: &Request) -> Result<Placement, String> {
    let mut weights: Vec<(u32, u64)> = if let Some(text) = req.param("weights") {
        let mut w = Vec::new();
        for (name, weight) in params::weights(text)? {
            let c = fleet.clusters.iter().position(|cl| cl.name == name).ok_or_else(|| format!("weights name unknown cluster {name:?}"))?;
            w.push((c as u32, weight));
        }
        w
    } else if !req.preferred.is_empty() {
        req.preferred.iter().map(|p| (p.cluster, u64::from(p.replicas.unwrap_or(1)))).collect()
    } else {
        (0..fleet.len() as u32).filter(|&c| usable_fog(fleet, req, c)).map(|c| (c, u64::from(req.slots(c)))).collect()
    };
    let mode = if req.param("weights").is_some() || !req.preferred.is_empty() { "static" } else { "dynamic" };
    weights.retain(|&(c, w)| w > 0 && fleet.is_ready(c));

    let mut ledger = Ledger::default();
    let mut excess = 0u32;
    for (c, share) in split_proportionally(req.total, &weights) {
        let give = if fleet.is_cloud(c) { share } else { share.min(req.slots(c)) };
        ledger.grant(c, give, || format!("{mode} weight share of {share}"));
        excess += share - give;
    }
    if weights.is_empty() {
        excess = req.total;
    }
    let mut redivided = 0;
    if excess > 0 {
        let room: Vec<(u32, u64)> = (0..fleet.len() as u32)
            .filter(|&c| usable_fog(fleet, req, c))
            .map(|c| (c, u64::from(req.slots(c).saturating_sub(ledger.granted_to(c)))))
            .filter(|&(_, r)| r > 0)
            .collect();
        let room_total: u64 = room.iter().map(|r| r.1).sum();
        let target = u64::from(excess).min(room_total) as u32;
        for (c, share) in split_proportionally(target, &room) {
            let give = share.min(req.slots(c).saturating_sub(ledger.granted_to(c)));
            ledger.grant(c, give, || "re-divided excess by free slots".to_string());
            redivided += give;
        }
        excess -= redivided;
    }
    let mut to_cloud = 0;
    if excess > 0
        && let Some(cloud) = leftover_cloud(fleet, std::iter::empty())
    {
        ledger.grant(cloud, excess, || format!("cloud takes {excess} replicas fog cannot"));
        to_cloud = excess;
        excess = 0;
    }
    let summary = format!("divided ({mode}): {} replicas over {} weighted clusters; {redivided} re-divided, {to_cloud} to cloud, {excess} unplaced", req.total, weights.len());
    Ok(ledger.finish(excess, summary))
}

/// Largest-remainder split of `total` by `weights`; ties go to the larger weight, then the
/// earlier entry, so the result is deterministic and sums to `total` when any weight is > 0.
pub fn split_proportionally(total: u32, weights: &[(u32, u64)]) -> Vec<(u32, u32)> {
    let sum: u128 = weights.iter().map(|w| u128::from(w.1)).sum();
    if sum == 0 {
        return Vec::new();
    }
    let mut out: Vec<(u32, u32, u128)> = weights
        .iter()
        .map(|&(c, w)| {
            let exact = u128::from(total) * u128::from(w);
            (c, (exact / sum) as u32, exact % sum)
        })
        .collect();
    let mut left = total - out.iter().map(|o| o.1).sum::<u32>();
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| out[b].2.cmp(&out[a].2).then(weights[b].1.cmp(&weights[a].1)).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        out[i].1 += 1;
        left -= 1;
    }
    out.into_iter().map(|(c, n, _)| (c, n)).collect()
}
