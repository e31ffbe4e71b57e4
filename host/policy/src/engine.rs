//! The process-wide wasmtime engine: compilation settings, the pooling allocator, the epoch
//! ticker that enforces deadlines, the compiled-component cache and the two linkers.

use crate::bindings::{placement, scaling};
use crate::cache::ComponentCache;
use crate::error::PolicyErrorKind;
use crate::limits::Limits;
use crate::state::GuestState;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Where compiled components (`.cwasm`) are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Most bytes the cache may hold; least recently used files go first.
    pub cache_max_bytes: u64,
    /// Epoch tick: deadlines are enforced to within about one tick.
    pub epoch_tick: Duration,
    /// Largest linear memory any policy may be granted (a pool slot's size).
    pub max_memory_bytes: usize,
    /// How many policy instances may be alive at once.
    pub max_instances: u32,
    /// Limits for policies that do not set their own.
    pub default_limits: Limits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cache_dir: default_cache_dir(),
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            epoch_tick: Duration::from_millis(5),
            max_memory_bytes: 1 << 30,
            max_instances: 256,
            default_limits: Limits::default(),
        }
    }
}

/// Room for a few dozen compiled policies; under the chart's 256 MiB cache volume.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 192 << 20;

/// `$XDG_CACHE_HOME/mck8s/policies`, else `~/.cache/mck8s/policies`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("mck8s").join("policies"))
}

/// Cheap to clone; every clone shares one engine.
#[derive(Clone)]
pub struct PolicyEngine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    placement_linker: Linker<GuestState>,
    scaling_linker: Linker<GuestState>,
    cache: Option<ComponentCache>,
    config: EngineConfig,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl PolicyEngine {
    pub fn new(config: EngineConfig) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 8)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .max_memory_size(config.max_memory_bytes);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true).epoch_interruption(true).allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| anyhow::anyhow!("creating the wasmtime engine: {e:#}"))?;

        let mut placement_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut placement_linker).map_err(anyhow_from)?;
        placement::Placement::add_to_linker::<_, HasSelf<_>>(&mut placement_linker, |s| s).map_err(anyhow_from)?;
        let mut scaling_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut scaling_linker).map_err(anyhow_from)?;
        scaling::Scaling::add_to_linker::<_, HasSelf<_>>(&mut scaling_linker, |s| s).map_err(anyhow_from)?;

        let cache = match &config.cache_dir {
            Some(dir) => match ComponentCache::open(dir, &engine, config.cache_max_bytes) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "compiled-policy cache disabled");
                    None
                }
            },
            None => None,
        };

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), config.epoch_tick, ticker_stop.clone());
        Ok(PolicyEngine { inner: Arc::new(Inner { engine, placement_linker, scaling_linker, cache, config, ticker_stop }) })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub(crate) fn placement_linker(&self) -> &Linker<GuestState> {
        &self.inner.placement_linker
    }

    pub(crate) fn scaling_linker(&self) -> &Linker<GuestState> {
        &self.inner.scaling_linker
    }

    /// Epoch ticks that make up `deadline` (at least one).
    pub(crate) fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        (deadline.as_nanos().div_ceil(tick) as u64).max(1)
    }

    /// Compiles `bytes`, or loads the cached compilation for this digest and engine.
    pub fn compile(&self, bytes: &[u8], digest: &str) -> Result<Component, PolicyErrorKind> {
        if let Some(cache) = &self.inner.cache
            && let Some(component) = cache.get(&self.inner.engine, digest)
        {
            return Ok(component);
        }
        let component = Component::new(&self.inner.engine, bytes).map_err(|e| PolicyErrorKind::Compile(format!("{e:#}")))?;
        if let Some(cache) = &self.inner.cache {
            cache.put(digest, &component);
        }
        Ok(component)
    }

    pub fn cache(&self) -> Option<&ComponentCache> {
        self.inner.cache.as_ref()
    }
}

fn anyhow_from(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

/// Deadlines are counted in epochs; this thread advances them. It stops with the engine.
fn spawn_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("mck8s-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch ticker thread");
}
