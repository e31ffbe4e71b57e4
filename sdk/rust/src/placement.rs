//! The `explained-placement` world (`placement` plus `fleet-updates` and `explanations`):
//! bindings and the adapter behind [`export_placement!`].

use crate::{Fleet, Info, Placement, Request, Verdict};
use std::cell::RefCell;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "explained-placement",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_explained_placement_world",
        default_bindings_module: "mck8s_policy_sdk::placement::bindings",
    });
}

use bindings::mck8s::policy::types as t;

/// A placement policy. `place` must account for exactly `req.total` replicas: the sum of
/// its choices plus `unplaced` (the host refuses anything else).
pub trait PlacementPolicy {
    fn info() -> Info;
    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String>;

    /// Why each cluster got what it got for `req`, for `mck8s explain`: the host calls it
    /// only when someone asks, after `place` with the same request. Verdicts for the
    /// clusters the policy ranked or passed over are what the host cannot know; the default
    /// gives none, and the host explains with its own facts (health, node sizes, slots).
    fn explain(fleet: &Fleet, req: &Request) -> Vec<Verdict> {
        let _ = (fleet, req);
        Vec::new()
    }
}

thread_local! {
    static FLEET: RefCell<Option<Fleet>> = const { RefCell::new(None) };
}

#[doc(hidden)]
pub fn info<P: PlacementPolicy>() -> t::PolicyInfo {
    P::info().into()
}

#[doc(hidden)]
pub fn set_fleet(fleet: t::Fleet) -> Result<(), String> {
    let t::Fleet { text, ends, clusters, labels, extended: _, rtts } = fleet;
    let mut strings = Vec::with_capacity(ends.len());
    let mut start = 0usize;
    for &end in &ends {
        let s = text.get(start..end as usize).ok_or_else(|| format!("string end {end} out of range"))?;
        strings.push(s.to_string());
        start = end as usize;
    }
    let sym = |i: u32| strings.get(i as usize).cloned().ok_or_else(|| format!("string index {i} out of range"));
    let mut out = Vec::with_capacity(clusters.len());
    for c in clusters {
        let range = c.labels_start as usize..(c.labels_start + c.labels_len) as usize;
        let cluster_labels = labels.get(range).ok_or("label range out of bounds")?;
        out.push(crate::Cluster {
            name: sym(c.name)?,
            role: match c.role {
                t::Role::Fog => crate::Role::Fog,
                t::Role::Cloud => crate::Role::Cloud,
            },
            ready: c.health == t::Health::Ready,
            traffic: c.traffic,
            cost: c.cost,
            labels: cluster_labels.iter().map(|l| (l.key, l.value)).collect(),
        });
    }
    let fleet = Fleet::with_strings(out, rtts.into_iter().map(|r| (r.a, r.b, r.millis)), strings);
    FLEET.with(|f| *f.borrow_mut() = Some(fleet));
    Ok(())
}

#[doc(hidden)]
pub fn update_fleet(update: bindings::exports::mck8s::policy::fleet_updates::FleetUpdate) -> Result<(), String> {
    FLEET.with(|f| {
        let mut fleet = f.borrow_mut();
        let fleet = fleet.as_mut().ok_or("update-fleet called before set-fleet")?;
        for u in update.clusters {
            let c = fleet.clusters.get_mut(u.index as usize).ok_or_else(|| format!("cluster index {} out of range", u.index))?;
            // Name and labels never change in an update (the host sends the whole fleet then).
            c.role = match u.cluster.role {
                t::Role::Fog => crate::Role::Fog,
                t::Role::Cloud => crate::Role::Cloud,
            };
            c.ready = u.cluster.health == t::Health::Ready;
            c.traffic = u.cluster.traffic;
            c.cost = u.cluster.cost;
        }
        // Extended resources are not part of the SDK's view (slots already account for them).
        if let Some(rtts) = update.rtts {
            fleet.set_rtts(rtts.into_iter().map(|r| (r.a, r.b, r.millis)));
        }
        Ok(())
    })
}

/// Runs `f` with the fleet and the request borrowed from `w`.
fn with_request<T>(w: &t::Workload, f: impl FnOnce(&Fleet, &Request) -> T) -> Result<T, String> {
    FLEET.with(|fl| {
        let fleet = fl.borrow();
        let fleet = fleet.as_ref().ok_or("called before set-fleet")?;
        let preferred: Vec<crate::Preference> = w.preferred.iter().map(|p| crate::Preference { cluster: p.cluster, replicas: p.replicas }).collect();
        let current: Vec<(u32, u32)> = w.current.iter().map(|a| (a.cluster, a.replicas)).collect();
        let req = Request {
            replicas: w.replicas,
            number_of_locations: w.number_of_locations,
            total: w.total,
            preferred: &preferred,
            current: &current,
            params: &w.params,
            slots: &w.slots,
            unfit: &w.unfit,
            app_traffic: &w.app_traffic,
        };
        Ok(f(fleet, &req))
    })
}

#[doc(hidden)]
pub fn place<P: PlacementPolicy>(w: t::Workload) -> Result<t::Decision, String> {
    let p = with_request(&w, P::place)??;
    Ok(t::Decision {
        choices: p.choices.into_iter().map(|c| t::Choice { cluster: c.cluster, replicas: c.replicas, reason: c.reason }).collect(),
        unplaced: p.unplaced,
        summary: p.summary,
    })
}

#[doc(hidden)]
pub fn explain<P: PlacementPolicy>(w: t::Workload) -> Result<Vec<bindings::exports::mck8s::policy::explanations::Verdict>, String> {
    let verdicts = with_request(&w, P::explain)?;
    Ok(verdicts.into_iter().map(|v| bindings::exports::mck8s::policy::explanations::Verdict { cluster: v.cluster, rank: v.rank, score: v.score, reason: v.reason }).collect())
}

/// Export `$policy` (a [`PlacementPolicy`]) as this component's `placer`.
// rustfmt re-indents the world-export call inside this macro differently on every pass.
#[rustfmt::skip]
#[macro_export]
macro_rules! export_placement {
    ($policy:ty) => {
        // Components only: the export names are no valid native symbols, and a native build
        // (unit tests, the `testing` harness) has no host to export to.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __Mck8sPlacer;
            impl $crate::placement::bindings::exports::mck8s::policy::placer::Guest for __Mck8sPlacer {
                fn info() -> $crate::placement::bindings::mck8s::policy::types::PolicyInfo {
                    $crate::placement::info::<$policy>()
                }
                fn set_fleet(
                    fleet: $crate::placement::bindings::mck8s::policy::types::Fleet,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::placement::set_fleet(fleet)
                }
                fn place(
                    workload: $crate::placement::bindings::mck8s::policy::types::Workload,
                ) -> ::core::result::Result<
                    $crate::placement::bindings::mck8s::policy::types::Decision,
                    ::std::string::String,
                > {
                    $crate::placement::place::<$policy>(workload)
                }
            }
            impl $crate::placement::bindings::exports::mck8s::policy::fleet_updates::Guest for __Mck8sPlacer {
                fn update_fleet(
                    update: $crate::placement::bindings::exports::mck8s::policy::fleet_updates::FleetUpdate,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::placement::update_fleet(update)
                }
            }
            impl $crate::placement::bindings::exports::mck8s::policy::explanations::Guest for __Mck8sPlacer {
                fn explain(
                    workload: $crate::placement::bindings::mck8s::policy::types::Workload,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::placement::bindings::exports::mck8s::policy::explanations::Verdict>,
                    ::std::string::String,
                > {
                    $crate::placement::explain::<$policy>(workload)
                }
            }
            $crate::placement::bindings::__export_explained_placement_world!(__Mck8sPlacer with_types_in $crate::placement::bindings);
        };
    };
}
