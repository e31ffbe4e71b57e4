//! worst-fit as a component built against `mck8s:policy@0.1.0` (the WIT as released, frozen
//! in `wit/`), with its own bindings rather than the SDK's. The host must keep loading it and
//! deciding the same as the built-in: it exports no `fleet-updates`, so it gets the whole
//! fleet every cycle.

wit_bindgen::generate!({ world: "placement", path: "wit" });

use exports::mck8s::policy::placer::Guest;
use mck8s::policy::types as t;
use mck8s_policies::model::{Cluster, Fleet, Preference, Request, Role};
use mck8s_policies::placement::{Ranking, rank_and_place};
use std::cell::RefCell;

thread_local! {
    static FLEET: RefCell<Option<Fleet>> = const { RefCell::new(None) };
}

struct Old;

impl Guest for Old {
    fn info() -> t::PolicyInfo {
        t::PolicyInfo { name: "worst-fit-0.1.0".into(), description: "worst-fit, built against mck8s:policy@0.1.0".into(), parameters: vec![] }
    }

    fn set_fleet(f: t::Fleet) -> Result<(), String> {
        let mut strings = Vec::with_capacity(f.ends.len());
        let mut start = 0usize;
        for &end in &f.ends {
            strings.push(f.text.get(start..end as usize).ok_or("string end out of range")?.to_string());
            start = end as usize;
        }
        let mut clusters = Vec::with_capacity(f.clusters.len());
        for c in &f.clusters {
            let labels = f.labels.get(c.labels_start as usize..(c.labels_start + c.labels_len) as usize).ok_or("label range out of bounds")?;
            clusters.push(Cluster {
                name: strings.get(c.name as usize).ok_or("name out of range")?.clone(),
                role: if c.role == t::Role::Cloud { Role::Cloud } else { Role::Fog },
                ready: c.health == t::Health::Ready,
                traffic: c.traffic,
                cost: c.cost,
                labels: labels.iter().map(|l| (l.key, l.value)).collect(),
            });
        }
        let fleet = Fleet::with_strings(clusters, f.rtts.iter().map(|r| (r.a, r.b, r.millis)), strings);
        FLEET.with(|slot| *slot.borrow_mut() = Some(fleet));
        Ok(())
    }

    fn place(w: t::Workload) -> Result<t::Decision, String> {
        FLEET.with(|slot| {
            let fleet = slot.borrow();
            let fleet = fleet.as_ref().ok_or("place called before set-fleet")?;
            let preferred: Vec<Preference> = w.preferred.iter().map(|p| Preference { cluster: p.cluster, replicas: p.replicas }).collect();
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
            let p = rank_and_place(fleet, &req, Ranking::WorstFit);
            Ok(t::Decision {
                choices: p.choices.into_iter().map(|c| t::Choice { cluster: c.cluster, replicas: c.replicas, reason: c.reason }).collect(),
                unplaced: p.unplaced,
                summary: p.summary,
            })
        })
    }
}

export!(Old);
