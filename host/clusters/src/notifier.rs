//! The registry's change signals: a fleet version that moves on every observed change, owner
//! triggers when a child changes what its owner reads back, and health changes. Members raise them;
//! controllers subscribe through the registry.

use mck8s_fleet::OwnerKey;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Fan-out of change signals.
#[derive(Default)]
pub struct Notifier {
    version: AtomicU64,
    owners: Mutex<Vec<mpsc::UnboundedSender<OwnerKey>>>,
    health: Mutex<Vec<mpsc::UnboundedSender<String>>>,
}

impl Notifier {
    pub fn changed(&self) {
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    pub fn trigger(&self, owner: OwnerKey) {
        self.owners.lock().unwrap_or_else(|p| p.into_inner()).retain(|tx| tx.send(owner.clone()).is_ok());
    }

    pub fn subscribe_owners(&self) -> mpsc::UnboundedReceiver<OwnerKey> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.owners.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    pub fn subscribe_health(&self) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.health.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    pub fn health_changed(&self, cluster: &str) {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).retain(|tx| tx.send(cluster.to_string()).is_ok());
    }
}
