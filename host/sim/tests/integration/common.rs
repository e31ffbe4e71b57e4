use mck8s_policy::PolicyRegistry;
use std::sync::{Arc, OnceLock};

/// The built-in components (`bash scripts/build-policies.sh`), loaded once per test binary.
pub fn registry() -> Arc<PolicyRegistry> {
    static REGISTRY: OnceLock<Arc<PolicyRegistry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let registry = mck8s_sim::policies::new_registry().unwrap();
            let dir = mck8s_policy::built::ensure().unwrap_or_else(|e| panic!("{e}")).join("builtin");
            mck8s_sim::policies::load_dir(&registry, &dir).unwrap_or_else(|e| panic!("{e}; run scripts/build-policies.sh first"));
            Arc::new(registry)
        })
        .clone()
}
