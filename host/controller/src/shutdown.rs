//! Stopping on SIGTERM/SIGINT within a bounded time.
//!
//! Each kube-runtime controller stops gracefully on the signal by itself, but one whose
//! store never became ready (its CRD is not installed, its list is refused) waits for that
//! store forever: kube-runtime 5's runner holds its tasks until the store is ready and does
//! not end while it waits. The kubelet would SIGKILL such a pod after its grace period; a
//! process run by hand would hang. [`bounded`] gives the graceful stop `grace` and then
//! returns anyway.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::future::Future;
use std::time::Duration;

/// The process's one stop signal: every controller, the leader's standby wait and the grace
/// timer wait on clones of it. kube-runtime's `shutdown_on_signal` would register a handler
/// per controller instead (five, plus ours).
#[derive(Clone)]
pub struct Signal(Shared<BoxFuture<'static, ()>>);

impl Signal {
    /// Listens for SIGTERM/SIGINT (from the first poll of any clone on).
    pub fn listen() -> Self {
        Signal(requested().boxed().shared())
    }

    /// A signal that resolves when `stop` does.
    #[cfg(test)]
    fn on(stop: impl Future<Output = ()> + Send + 'static) -> Self {
        Signal(stop.boxed().shared())
    }

    /// Resolves once the signal has come (at once if it already has).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        self.0.clone()
    }
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.peek().is_some() { "Signal(received)" } else { "Signal(waiting)" })
    }
}

/// Resolves at the first SIGTERM or SIGINT.
async fn requested() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// How a [`bounded`] run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `work` finished (by itself or after the signal).
    Finished,
    /// The signal came and `work` had not finished `grace` later: it was dropped.
    GraceElapsed,
}

/// Runs `work` until it finishes, or until `grace` has passed since `stop` resolved.
pub async fn bounded(work: impl Future<Output = ()>, stop: impl Future<Output = ()>, grace: Duration) -> Stopped {
    let deadline = async {
        stop.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = work => Stopped::Finished,
        () = deadline => Stopped::GraceElapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test]
    async fn every_clone_of_the_signal_wakes_and_a_late_waiter_wakes_at_once() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let signal = Signal::on(async move {
            let _ = rx.await;
        });
        let waiters: Vec<_> = (0..3).map(|_| tokio::spawn(signal.wait())).collect();
        tokio::time::sleep(ms(10)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()), "nobody wakes before the signal");
        tx.send(()).unwrap();
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w).await.expect("woken").unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), signal.wait()).await.expect("a waiter after the signal wakes at once");
    }

    #[tokio::test]
    async fn work_that_ignores_the_signal_is_dropped_after_the_grace() {
        let stopped = bounded(std::future::pending(), tokio::time::sleep(ms(20)), ms(20)).await;
        assert_eq!(stopped, Stopped::GraceElapsed);
    }

    #[tokio::test]
    async fn work_that_stops_within_the_grace_finishes() {
        let stopped = bounded(tokio::time::sleep(ms(50)), tokio::time::sleep(ms(10)), Duration::from_secs(30)).await;
        assert_eq!(stopped, Stopped::Finished);
    }

    #[tokio::test]
    async fn without_a_signal_work_runs_as_long_as_it_needs() {
        let stopped = bounded(tokio::time::sleep(ms(50)), std::future::pending(), Duration::ZERO).await;
        assert_eq!(stopped, Stopped::Finished);
    }
}
