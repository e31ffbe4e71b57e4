//! Leader election with a `coordination.k8s.io/v1` Lease (`mck8s-leader` in the controller's
//! namespace), so that of several replicas exactly one reconciles.
//!
//! The algorithm is client-go's: every write to the Lease carries the `resourceVersion` read
//! before it (optimistic concurrency), so of two candidates racing for a free or expired Lease
//! exactly one write succeeds and the other gets 409 Conflict. Expiry is judged on the local
//! clock: a candidate remembers when it last saw the Lease record change and considers it
//! expired once it has not changed for `lease_duration` (no clock comparison between hosts).
//! The leader renews every `renew_every`; when it could not renew for `renew_deadline`
//! (shorter than the lease duration), or finds another holder, it has lost the lease and must
//! stop reconciling at once ([`Leadership::hold`] returns; `mck8s run` then exits and its
//! Deployment restarts it as a standby).
//!
//! The deadline is a clock, not a count of failed calls: a renewal that hangs (a frozen API
//! server, a black-holed network) is abandoned when the deadline passes, and the deadline is
//! counted from when the last successful renewal was *sent*. A standby counts the lease
//! duration from when it *saw* that renewal, which is later, so the leader always stops at
//! least `lease_duration - renew_deadline` (3 s by default) before a standby may take over.
//!
//! Timings by default: lease 10 s, renew every 3 s, give up after 7 s without a renewal,
//! candidates retry every 2 s. A standby takes over at most lease + retry (≈ 12 s) after the
//! leader's last renewal, i.e. within 15 s of the leader dying. A leader shutting down
//! cleanly releases the Lease so that a standby takes over at its next retry.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use std::time::Duration;
use tokio::time::Instant;

/// The Lease's name.
pub const LEASE_NAME: &str = "mck8s-leader";

#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    /// This candidate's identity (the pod name).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_every: Duration,
    pub renew_deadline: Duration,
    pub retry_every: Duration,
}

impl LeaderConfig {
    pub fn new(namespace: &str, identity: &str) -> Self {
        LeaderConfig {
            namespace: namespace.into(),
            lease_name: LEASE_NAME.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(10),
            renew_every: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(7),
            retry_every: Duration::from_secs(2),
        }
    }
}

/// What a candidate saw of the Lease, and when (local clock).
struct Observed {
    record: (Option<String>, Option<MicroTime>, Option<i32>),
    at: Instant,
}

fn record_of(l: &Lease) -> (Option<String>, Option<MicroTime>, Option<i32>) {
    let s = l.spec.as_ref();
    (s.and_then(|s| s.holder_identity.clone()), s.and_then(|s| s.renew_time.clone()), s.and_then(|s| s.lease_transitions))
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// The lease, held. Dropping it without [`Leadership::release`] leaves the Lease to expire.
pub struct Leadership {
    api: Api<Lease>,
    config: LeaderConfig,
    /// The Lease as last written by us.
    lease: tokio::sync::Mutex<Lease>,
    /// When the write that acquired it was sent: the renew deadline counts from here.
    acquired_at: Instant,
}

/// Waits until this candidate holds the Lease.
pub async fn acquire(client: Client, config: LeaderConfig) -> Leadership {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut observed: Option<Observed> = None;
    let mut logged_holder: Option<String> = None;
    loop {
        let sent = Instant::now();
        // A hung attempt must not pin a candidate: the next one starts afresh.
        let attempt = tokio::time::timeout(config.renew_deadline, try_acquire(&api, &config, &mut observed)).await;
        match attempt.unwrap_or_else(|_| Err(kube::Error::Service(format!("no answer within {:?}", config.renew_deadline).into()))) {
            Ok(Ok(lease)) => {
                tracing::info!(lease = %config.lease_name, namespace = %config.namespace, identity = %config.identity, "became the leader");
                return Leadership { api, config, lease: tokio::sync::Mutex::new(lease), acquired_at: sent };
            }
            Ok(Err(holder)) => {
                if logged_holder.as_deref() != Some(holder.as_str()) {
                    tracing::info!(lease = %config.lease_name, %holder, "standing by: another instance leads");
                    logged_holder = Some(holder);
                }
            }
            Err(e) => tracing::warn!(lease = %config.lease_name, error = %e, "leader election"),
        }
        tokio::time::sleep(config.retry_every).await;
    }
}

/// One attempt: Ok(Ok(lease)) when acquired, Ok(Err(holder)) when someone else holds it.
async fn try_acquire(api: &Api<Lease>, config: &LeaderConfig, observed: &mut Option<Observed>) -> Result<Result<Lease, String>, kube::Error> {
    let Some(current) = api.get_opt(&config.lease_name).await? else {
        let mut lease = Lease::default();
        lease.metadata.name = Some(config.lease_name.clone());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(config.identity.clone()),
            lease_duration_seconds: Some(config.lease_duration.as_secs() as i32),
            acquire_time: Some(now()),
            renew_time: Some(now()),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        });
        return match api.create(&PostParams::default(), &lease).await {
            Ok(l) => Ok(Ok(l)),
            // Another candidate created it first.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Err("(just created by another instance)".into())),
            Err(e) => Err(e),
        };
    };
    let record = record_of(&current);
    let holder = record.0.clone().unwrap_or_default();
    let changed = observed.as_ref().is_none_or(|o| o.record != record);
    if changed {
        *observed = Some(Observed { record: record.clone(), at: Instant::now() });
    }
    let duration = current.spec.as_ref().and_then(|s| s.lease_duration_seconds).map(|s| Duration::from_secs(s.max(1) as u64)).unwrap_or(config.lease_duration);
    let expired = observed.as_ref().is_some_and(|o| o.at.elapsed() >= duration);
    if !(holder.is_empty() || holder == config.identity || expired) {
        return Ok(Err(holder));
    }
    let mut lease = current.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if holder != config.identity {
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.lease_duration_seconds = Some(config.lease_duration.as_secs() as i32);
    spec.renew_time = Some(now());
    // `lease.metadata.resource_version` is the one read: a concurrent writer makes this 409.
    match api.replace(&config.lease_name, &PostParams::default(), &lease).await {
        Ok(l) => Ok(Ok(l)),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(Err("(taken over concurrently)".into())),
        Err(e) => Err(e),
    }
}

impl Leadership {
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Renews the Lease until it is lost; returns why, at the latest `renew_deadline` after
    /// the last renewal that succeeded was sent. Never returns while the lease is held.
    pub async fn hold(&self) -> anyhow::Error {
        let (every, retry, within) = (self.config.renew_every, self.config.retry_every, self.config.renew_deadline);
        let mut renewed = self.acquired_at;
        let mut last_error: Option<kube::Error> = None;
        loop {
            let deadline = renewed + within;
            let pause = if last_error.is_some() { retry } else { every };
            tokio::time::sleep_until((Instant::now() + pause).min(deadline)).await;
            let sent = Instant::now();
            let why = match tokio::time::timeout_at(deadline, self.renew()).await {
                Ok(Ok(true)) => {
                    renewed = sent;
                    last_error = None;
                    continue;
                }
                Ok(Ok(false)) => "another instance holds it".to_string(),
                Ok(Err(err)) if Instant::now() < deadline => {
                    tracing::warn!(error = %err, "renewing the leader lease");
                    last_error = Some(err);
                    continue;
                }
                Ok(Err(err)) => format!("not renewed within {within:?} ({err})"),
                Err(_) => match &last_error {
                    Some(err) => format!("not renewed within {within:?} (last error: {err})"),
                    None => format!("not renewed within {within:?} (the API server did not answer)"),
                },
            };
            let e = anyhow::anyhow!("lost the leader lease {}: {why}", self.config.lease_name);
            tracing::error!(error = %e, "leader election: stopping reconciles");
            return e;
        }
    }

    /// Ok(false): another holder.
    async fn renew(&self) -> Result<bool, kube::Error> {
        let mut lease = self.lease.lock().await;
        let mut next = lease.clone();
        next.spec.get_or_insert_with(LeaseSpec::default).renew_time = Some(now());
        match self.api.replace(&self.config.lease_name, &PostParams::default(), &next).await {
            Ok(l) => {
                *lease = l;
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {
                // Changed or removed behind our back: still ours only if it still names us.
                match self.api.get_opt(&self.config.lease_name).await? {
                    Some(cur) if record_of(&cur).0.as_deref() == Some(self.config.identity.as_str()) => {
                        *lease = cur;
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (clean shutdown): a standby takes over at its next retry.
    pub async fn release(self) {
        let mut lease = self.lease.into_inner();
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(now());
        }
        match self.api.replace(&self.config.lease_name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.config.lease_name, "released the leader lease"),
            Err(e) => tracing::warn!(error = %e, "releasing the leader lease"),
        }
    }
}

/// [`acquire`], or None when `stop` (SIGTERM/SIGINT) comes first (a standby being stopped).
pub async fn acquire_or_shutdown(client: Client, config: LeaderConfig, stop: impl std::future::Future<Output = ()>) -> Option<Leadership> {
    tokio::select! {
        l = acquire(client, config) => Some(l),
        () = stop => {
            tracing::info!("stopped while standing by");
            None
        }
    }
}
