//! The compiled-component cache: a second engine (a restart) loads from disk instead of
//! compiling, and an unreadable cache file is discarded, not trusted.

mod common;

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
