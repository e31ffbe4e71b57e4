//! The `incremental-placement` world (`placement` plus `fleet-updates`): bindings and the
//! adapter behind [`export_placement!`].

use crate::{Fleet, Info, Placement, Request};
use std::cell::RefCell;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "incremental-placement",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_incremental_placement_world",
        default_bindings_module: "mck8s_policy_sdk::placement::bindings",
    });
}

use bindings::mck8s::policy::types as t;

/// A placement policy. `place` must account for exactly `req.total` replicas: the sum of
/// its choices plus `unplaced` (the host refuses anything else).
pub trait PlacementPolicy {
    fn info() -> Info;
    fn place(fleet: &Fleet, req: &Request) -> Result<Placement, String>;
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

#[doc(hidden)]
pub fn place<P: PlacementPolicy>(w: t::Workload) -> Result<t::Decision, String> {
    FLEET.with(|f| {
        let fleet = f.borrow();
        let fleet = fleet.as_ref().ok_or("place called before set-fleet")?;
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
        let p = P::place(fleet, &req)?;
        Ok(t::Decision {
            choices: p.choices.into_iter().map(|c| t::Choice { cluster: c.cluster, replicas: c.replicas, reason: c.reason }).collect(),
            unplaced: p.unplaced,
            summary: p.summary,
        })
    })
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
            $crate::placement::bindings::__export_incremental_placement_world!(__Mck8sPlacer with_types_in $crate::placement::bindings);
        };
    };
}
