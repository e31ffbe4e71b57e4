//! Host bindings for the two worlds of `wit/`. This is the only `bindgen!` in the host.

pub mod placement {
    wasmtime::component::bindgen!({
        world: "placement",
        path: "../../wit",
    });
}

pub mod scaling {
    // The shared interfaces are generated once (in `placement`) so one host implementation
    // serves both worlds.
    wasmtime::component::bindgen!({
        world: "scaling",
        path: "../../wit",
        with: {
            "mck8s:policy/log": super::placement::mck8s::policy::log,
            "mck8s:policy/types": super::placement::mck8s::policy::types,
        },
    });
}

pub use placement::mck8s::policy::types as wit;
pub use scaling::mck8s::policy::scaling_types as wit_scaling;
