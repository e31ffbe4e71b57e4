//! Clients with deadlines. kube leaves the read timeout unset, so a frozen API server (a
//! stopped process, a black-holed network) holds a request forever. Every connection here
//! has a connect timeout and every request a read timeout; watches get their own client,
//! because a quiet watch is silent for minutes by design, and the server is asked to end
//! each watch well before that client's read timeout fires.

use kube::runtime::watcher;
use std::time::Duration;

/// Connecting (TCP and TLS) to an API server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Silence allowed between sending a request and each read of its response. An API server
/// answers in milliseconds, and a slow list still streams; 15 s of silence means it hangs.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the API server keeps one watch open before ending it cleanly (the watcher then
/// resumes from its last resourceVersion, without a new list).
pub const WATCH_SERVER_TIMEOUT_SECS: u32 = 55;
/// Silence allowed on a watch: longer than [`WATCH_SERVER_TIMEOUT_SECS`], so only a server
/// that stopped answering trips it.
pub const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(70);

/// One API server's two clients, from the same configuration.
#[derive(Clone)]
pub struct Clients {
    /// Requests: gets, lists, applies, status writes, the Lease.
    pub requests: kube::Client,
    /// Long-lived watches (use [`watch_config`] with it).
    pub watches: kube::Client,
}

impl Clients {
    pub fn new(mut config: kube::Config) -> Result<Self, kube::Error> {
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        // Count the read timeout from the request, not from when a pooled connection went idle.
        config.reset_reader_on_write = true;
        let mut watches = config.clone();
        config.read_timeout = Some(REQUEST_TIMEOUT);
        watches.read_timeout = Some(WATCH_READ_TIMEOUT);
        Ok(Clients { requests: kube::Client::try_from(config)?, watches: kube::Client::try_from(watches)? })
    }
}

/// A client someone else built (tests, embedding) serves both purposes, with whatever
/// deadlines it has.
impl From<kube::Client> for Clients {
    fn from(client: kube::Client) -> Self {
        Clients { requests: client.clone(), watches: client }
    }
}

/// The watcher configuration for [`Clients::watches`]: the server ends each watch before the
/// client's read timeout could.
pub fn watch_config() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_SERVER_TIMEOUT_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_watch_ends_on_the_server_before_the_client_gives_up() {
        assert!(Duration::from_secs(WATCH_SERVER_TIMEOUT_SECS.into()) + Duration::from_secs(10) <= WATCH_READ_TIMEOUT);
        assert_eq!(watch_config().timeout, Some(WATCH_SERVER_TIMEOUT_SECS));
    }
}
