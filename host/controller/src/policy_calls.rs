//! Policy calls off the async runtime. A call runs a sandboxed component for up to its CPU
//! budget; on a tokio worker it would stall every other reconcile, watch and probe sharing
//! that worker meanwhile. Each call runs on a blocking thread instead, and a semaphore keeps
//! as many running at once as there are cores (more would only share them).

use prometheus_client::metrics::histogram::Histogram;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

pub struct PolicyCalls {
    slots: Arc<Semaphore>,
    /// How long calls waited before running (for a slot, then for a blocking thread).
    waited: Option<Histogram>,
}

impl PolicyCalls {
    pub fn new(at_once: usize) -> Self {
        PolicyCalls { slots: Arc::new(Semaphore::new(at_once.max(1))), waited: None }
    }

    /// One call per core, each one's wait observed in `waited`.
    pub fn per_core(waited: Histogram) -> Self {
        PolicyCalls { waited: Some(waited), ..Self::new(std::thread::available_parallelism().map_or(2, |n| n.get())) }
    }

    /// Runs `call` on a blocking thread once a slot is free. A panic in it resumes here, as
    /// if it had been called inline.
    pub async fn run<T: Send + 'static>(&self, call: impl FnOnce() -> T + Send + 'static) -> T {
        let queued = Instant::now();
        // The semaphore is never closed.
        let permit = self.slots.clone().acquire_owned().await.ok();
        let span = tracing::Span::current();
        let waited = self.waited.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if let Some(h) = waited {
                h.observe(queued.elapsed().as_secs_f64());
            }
            span.in_scope(call)
        })
        .await;
        match joined {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// On a single-worker runtime, other tasks run while a call blocks its thread.
    #[tokio::test(flavor = "current_thread")]
    async fn the_runtime_serves_other_tasks_while_a_call_runs() {
        let calls = PolicyCalls::new(1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // The call waits until the runtime has run another task: inline, that would deadlock.
        let call = calls.run(move || rx.recv().is_ok());
        let other = async move {
            tokio::task::yield_now().await;
            tx.send(()).unwrap();
        };
        let (ok, ()) = tokio::join!(call, other);
        assert!(ok);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_calls_run_at_once_than_slots() {
        let calls = Arc::new(PolicyCalls::new(2));
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (calls, running, most) = (calls.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    calls
                        .run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn each_call_s_wait_is_observed() {
        let m = crate::metrics::Metrics::default();
        let calls = PolicyCalls::per_core(m.policy_call_wait.clone());
        assert_eq!(calls.run(|| 7).await, 7);
        calls.run(|| ()).await;
        let text = m.encode();
        assert!(text.contains("mck8s_policy_call_wait_seconds_count 2"), "{text}");
    }

    #[tokio::test]
    #[should_panic(expected = "guest bug")]
    async fn a_panic_in_a_call_resumes_in_the_caller() {
        PolicyCalls::new(1).run(|| panic!("guest bug")).await
    }
}
