//! Stopping on SIGTERM/SIGINT within a bounded time.
//!
//! Each kube-runtime controller stops gracefully on the signal by itself, but one whose
//! store never became ready (its CRD is not installed, its list is refused) waits for that
//! store forever: kube-runtime 5's runner holds its tasks until the store is ready and does
//! not end while it waits. The kubelet would SIGKILL such a pod after its grace period; a
//! process run by hand would hang. [`bounded`] gives the graceful stop `grace` and then
//! returns anyway.

use std::future::Future;
use std::time::Duration;

/// Resolves at the first SIGTERM or SIGINT.
pub async fn requested() {
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
