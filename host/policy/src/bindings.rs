//! Host bindings for the two worlds of `wit/`. This is the only `bindgen!` in the host.

pub mod placement {
    wasmtime::component::bindgen!({
        world: "placement",
        path: "../../wit",
    });
}

pub mod scaling {
    wasmtime::component::bindgen!({
        world: "scaling",
        path: "../../wit",
    });
}

pub use placement::mck8s::policy::types as wit;
pub use scaling::mck8s::policy::scaling_types as wit_scaling;
