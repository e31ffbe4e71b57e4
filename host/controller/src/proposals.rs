//! Moves from cloud to fog that the rescheduler proposes and the MultiClusterDeployment
//! controller carries out: handed over by owner, with a wake-up for each. Its own module so
//! the two controllers share it without importing each other.

use mck8s_fleet::OwnerKey;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// A move the rescheduler proposed and the MCD controller has not carried out yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// The MCD generation it was computed for; a spec change since makes it void.
    pub generation: Option<i64>,
    /// The placement after the step.
    pub placement: BTreeMap<String, u32>,
    /// `cloud1=2 → cluster1=+2`.
    pub note: String,
    pub moved: u32,
}

/// Proposals by owner, and the channel that wakes the MCD controller for them.
pub struct Proposals {
    map: Mutex<HashMap<OwnerKey, Proposal>>,
    tx: UnboundedSender<OwnerKey>,
    rx: Mutex<Option<UnboundedReceiver<OwnerKey>>>,
}

impl Default for Proposals {
    fn default() -> Self {
        let (tx, rx) = unbounded_channel();
        Proposals { map: Mutex::default(), tx, rx: Mutex::new(Some(rx)) }
    }
}

impl Proposals {
    pub fn propose(&self, owner: OwnerKey, p: Proposal) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(owner.clone(), p);
        let _ = self.tx.send(owner);
    }

    pub fn take(&self, owner: &OwnerKey) -> Option<Proposal> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(owner)
    }

    /// The wake-ups, for the one MCD controller (None the second time).
    pub fn triggers(&self) -> Option<UnboundedReceiver<OwnerKey>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
