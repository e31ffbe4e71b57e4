//! The per-instance store data: WASI with no capabilities, the memory limiter and the log
//! import.

use crate::bindings::{placement, scaling};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Bytes of guest stdout/stderr kept per instance (a panic message fits easily).
const STDIO_CAPTURE: usize = 16 << 10;

/// The budget of the call in progress. Deadlines are in CPU time of the calling thread, so a
/// host that is descheduled or stalls in the kernel (page faults under load) does not fail
/// a good policy; a wall-clock backstop of [`WALL_FACTOR`] budgets still bounds every call.
pub(crate) struct CallClock {
    pub(crate) budget: Duration,
    cpu_start: Option<Duration>,
    wall_start: Instant,
}

pub(crate) const WALL_FACTOR: u32 = 10;

impl CallClock {
    pub(crate) fn start(budget: Duration) -> Self {
        CallClock { budget, cpu_start: thread_cpu_time(), wall_start: Instant::now() }
    }

    /// `None` when the budget is spent, else what is left.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let wall = self.wall_start.elapsed();
        let used = match (self.cpu_start, thread_cpu_time()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => wall,
        };
        if used >= self.budget || wall >= self.budget * WALL_FACTOR { None } else { Some(self.budget - used) }
    }
}

/// CPU time consumed by the calling thread.
#[allow(unsafe_code, reason = "clock_gettime into a local timespec")]
fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the call has no other effects.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

pub(crate) struct GuestState {
    pub(crate) clock: CallClock,
    /// Log lines of the call in progress (reset when a call is armed).
    pub(crate) log_lines: u32,
    pub(crate) policy: String,
    pub(crate) digest_short: String,
    pub(crate) limits: StoreLimits,
    pub(crate) stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl GuestState {
    pub(crate) fn new(policy: &str, digest: &str, memory_bytes: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE);
        // No preopens, no environment, no arguments, no network: Rust's wasip2 std links
        // against wasi:cli and wasi:io, so those exist, but they reach nothing.
        let wasi = WasiCtx::builder().stdout(stderr.clone()).stderr(stderr.clone()).build();
        GuestState {
            clock: CallClock::start(Duration::ZERO),
            log_lines: 0,
            policy: policy.to_string(),
            digest_short: crate::error::short(digest).to_string(),
            limits: StoreLimitsBuilder::new().memory_size(memory_bytes).instances(64).tables(64).memories(16).trap_on_grow_failure(true).build(),
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }

    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }

    fn log(&self, level: tracing::Level, message: &str) {
        let (policy, digest) = (self.policy.as_str(), self.digest_short.as_str());
        match level {
            tracing::Level::ERROR => tracing::error!(target: "mck8s::policy::guest", policy, digest, "{message}"),
            tracing::Level::WARN => tracing::warn!(target: "mck8s::policy::guest", policy, digest, "{message}"),
            tracing::Level::INFO => tracing::info!(target: "mck8s::policy::guest", policy, digest, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(target: "mck8s::policy::guest", policy, digest, "{message}"),
            tracing::Level::TRACE => tracing::trace!(target: "mck8s::policy::guest", policy, digest, "{message}"),
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Guest log lines are capped in size and in number per call, so a chatty policy cannot
/// flood the host's log: 32 lines of 4 KiB at most per call; the rest are dropped and counted
/// ([`guest_log_lines_dropped`], exported as a metric).
const LOG_LINE_MAX: usize = 4096;
const LOG_LINES_PER_CALL: u32 = 32;

static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Guest log lines dropped since the process started, over every policy.
pub fn guest_log_lines_dropped() -> u64 {
    DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

fn clip(message: &str) -> &str {
    &message[..message.floor_char_boundary(LOG_LINE_MAX)]
}

impl GuestState {
    /// Logs one guest line within the call's budget; says once per call when the rest go.
    fn log_bounded(&mut self, level: tracing::Level, message: &str) {
        self.log_lines = self.log_lines.saturating_add(1);
        match self.log_lines {
            n if n <= LOG_LINES_PER_CALL => self.log(level, clip(message)),
            n => {
                DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n == LOG_LINES_PER_CALL + 1 {
                    self.log(tracing::Level::WARN, &format!("more than {LOG_LINES_PER_CALL} log lines in one call: the rest of this call's are dropped"));
                }
            }
        }
    }
}

impl placement::mck8s::policy::log::Host for GuestState {
    fn log(&mut self, level: placement::mck8s::policy::log::Level, message: String) {
        use placement::mck8s::policy::log::Level as L;
        let level = match level {
            L::Trace => tracing::Level::TRACE,
            L::Debug => tracing::Level::DEBUG,
            L::Info => tracing::Level::INFO,
            L::Warn => tracing::Level::WARN,
            L::Error => tracing::Level::ERROR,
        };
        self.log_bounded(level, &message);
    }
}

// The types-only interfaces have no functions; their Host traits are empty.
impl placement::mck8s::policy::types::Host for GuestState {}
impl scaling::mck8s::policy::scaling_types::Host for GuestState {}
