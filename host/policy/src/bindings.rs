//! Host bindings for the worlds of `wit/`. This is the only `bindgen!` in the host.

pub mod placement {
    wasmtime::component::bindgen!({
        world: "placement",
        path: "../../wit",
        additional_derives: [PartialEq],
    });
}

/// `placement` plus the optional `fleet-updates` export (0.1.1). Only the export's indices are
/// used: a component may lack it, so it is looked up beside the `placement` world.
pub mod incremental {
    wasmtime::component::bindgen!({
        world: "incremental-placement",
        path: "../../wit",
        with: {
            "mck8s:policy/log": super::placement::mck8s::policy::log,
            "mck8s:policy/types": super::placement::mck8s::policy::types,
        },
    });
}

/// `incremental-placement` plus the optional `explanations` export (0.1.2), looked up the
/// same way.
pub mod explained {
    wasmtime::component::bindgen!({
        world: "explained-placement",
        path: "../../wit",
        with: {
            "mck8s:policy/log": super::placement::mck8s::policy::log,
            "mck8s:policy/types": super::placement::mck8s::policy::types,
        },
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

pub use explained::exports::mck8s::policy::explanations as wit_explain;
pub use incremental::exports::mck8s::policy::fleet_updates as wit_updates;
pub use placement::mck8s::policy::types as wit;
pub use scaling::mck8s::policy::scaling_types as wit_scaling;
