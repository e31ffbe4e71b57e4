//! The compiled-component cache: a second engine (a restart) loads from disk instead of
//! compiling, and an unreadable cache file is discarded, not trusted.

use crate::common;
use mck8s_policy::loaded::sha256_hex;
use mck8s_policy::{EngineConfig, Limits, LoadedPolicy, PolicyEngine};

fn engine(dir: &std::path::Path) -> PolicyEngine {
    PolicyEngine::new(EngineConfig { cache_dir: Some(dir.to_path_buf()), ..EngineConfig::default() }).unwrap()
}

#[test]
fn restart_loads_from_cache_and_survives_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::builtin("worst-fit");
    let digest = sha256_hex(&bytes);

    let first = engine(dir.path());
    let cache = first.cache().expect("cache enabled");
    assert!(cache.get(first.engine(), &digest).is_none(), "cold cache");
    LoadedPolicy::load(&first, "worst-fit", &bytes, "test", Limits::default()).unwrap();
    let path = cache.path_for(&digest);
    assert!(path.exists(), "compiled artifact written to {}", path.display());

    let second = engine(dir.path());
    assert!(second.cache().unwrap().get(second.engine(), &digest).is_some(), "warm cache after restart");
    let p = LoadedPolicy::load(&second, "worst-fit", &bytes, "test", Limits::default()).unwrap();
    assert_eq!(p.info.name, "worst-fit");

    // Components map their artifact: corrupt it the way a crash would (a new file), never
    // by truncating a file something maps.
    drop(p);
    drop(second);
    let tmp = path.with_extension("corrupt");
    std::fs::write(&tmp, b"garbage").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let third = engine(dir.path());
    let p = LoadedPolicy::load(&third, "worst-fit", &bytes, "test", Limits::default()).expect("recompiled");
    assert_eq!(p.digest, digest);
    assert!(third.cache().unwrap().get(third.engine(), &digest).is_some(), "rewritten after corruption");
}

fn engine_within(dir: &std::path::Path, max_bytes: u64) -> PolicyEngine {
    PolicyEngine::new(EngineConfig { cache_dir: Some(dir.to_path_buf()), cache_max_bytes: max_bytes, ..EngineConfig::default() }).unwrap()
}

/// Every new policy version adds a compiled file; the cache stays within its size by
/// evicting the least recently used file, not the oldest written.
#[test]
fn the_cache_stays_within_its_size_evicting_the_least_recently_used() {
    let names = ["worst-fit", "best-fit", "most-traffic"];
    let bytes: Vec<Vec<u8>> = names.iter().map(|n| common::builtin(n)).collect();
    let digests: Vec<String> = bytes.iter().map(|b| sha256_hex(b)).collect();
    // Each compiled file's size, from an unbounded cache.
    let sizing = tempfile::tempdir().unwrap();
    let unbounded = engine(sizing.path());
    let size: Vec<u64> = (0..3)
        .map(|i| {
            LoadedPolicy::load(&unbounded, names[i], &bytes[i], "test", Limits::default()).unwrap();
            std::fs::metadata(unbounded.cache().unwrap().path_for(&digests[i])).unwrap().len()
        })
        .collect();

    // Room for the first and the third, not for all three.
    let max = size[0] + size[2] + size[1] / 2;
    let dir = tempfile::tempdir().unwrap();
    let e = engine_within(dir.path(), max);
    let cache = e.cache().unwrap();
    let step = || std::thread::sleep(std::time::Duration::from_millis(20));
    LoadedPolicy::load(&e, names[0], &bytes[0], "test", Limits::default()).unwrap();
    step();
    LoadedPolicy::load(&e, names[1], &bytes[1], "test", Limits::default()).unwrap();
    step();
    // The first is used again (a restart loading it): now the second is the least recent.
    assert!(cache.get(e.engine(), &digests[0]).is_some());
    step();
    LoadedPolicy::load(&e, names[2], &bytes[2], "test", Limits::default()).unwrap();

    let present: Vec<bool> = digests.iter().map(|d| cache.path_for(d).exists()).collect();
    assert_eq!(present, [true, false, true], "the least recently used (best-fit) evicted");
    assert!(cache.size_bytes() <= max, "{} bytes in a cache of {max}", cache.size_bytes());

    // A cache smaller than one file keeps just the newest: it still serves a restart.
    let tiny = tempfile::tempdir().unwrap();
    let e = engine_within(tiny.path(), 1);
    for i in 0..3 {
        LoadedPolicy::load(&e, names[i], &bytes[i], "test", Limits::default()).unwrap();
    }
    let present: Vec<bool> = digests.iter().map(|d| e.cache().unwrap().path_for(d).exists()).collect();
    assert_eq!(present, [false, false, true]);
}
