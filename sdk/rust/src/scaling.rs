//! The `scaling` world: bindings and the adapter behind [`export_scaling!`].

use crate::Info;
use mck8s_policies::scaling::{Sample, ScaleInput, ScaleOutput};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "scaling",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_scaling_world",
        default_bindings_module: "mck8s_policy_sdk::scaling::bindings",
        with: {
            "mck8s:policy/types@0.1.2": mck8s_policy_sdk::placement::bindings::mck8s::policy::types,
            "mck8s:policy/log@0.1.2": mck8s_policy_sdk::placement::bindings::mck8s::policy::log,
        },
    });
}

use crate::placement::bindings::mck8s::policy::types as t;
use bindings::mck8s::policy::scaling_types as s;

/// A scaling policy: per-cluster samples in, desired replicas out. State it returns comes
/// back on the next call, across controller restarts and policy reloads.
pub trait ScalingPolicy {
    fn info() -> Info;
    fn scale(input: &ScaleInput) -> Result<ScaleOutput, String>;
}

#[doc(hidden)]
pub fn info<P: ScalingPolicy>() -> t::PolicyInfo {
    P::info().into()
}

#[doc(hidden)]
pub fn scale<P: ScalingPolicy>(r: s::ScalingRequest) -> Result<s::ScalingDecision, String> {
    let samples: Vec<Sample> = r.samples.into_iter().map(|x| Sample { cluster: x.cluster, replicas: x.replicas, utilization: x.utilization, traffic: x.traffic }).collect();
    let input = ScaleInput {
        samples: &samples,
        target_utilization: r.target_utilization,
        min_replicas: r.min_replicas,
        max_replicas: r.max_replicas,
        elapsed_seconds: r.elapsed_seconds,
        params: &r.params,
        state: &r.state,
    };
    let out = P::scale(&input)?;
    Ok(s::ScalingDecision { desired: out.desired, total: out.total, reason: out.reason, state: out.state })
}

/// Export `$policy` (a [`ScalingPolicy`]) as this component's `scaler`.
// rustfmt re-indents the world-export call inside this macro differently on every pass.
#[rustfmt::skip]
#[macro_export]
macro_rules! export_scaling {
    ($policy:ty) => {
        // Components only: the export names are no valid native symbols, and a native build
        // (unit tests, the `testing` harness) has no host to export to.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __Mck8sScaler;
            impl $crate::scaling::bindings::exports::mck8s::policy::scaler::Guest for __Mck8sScaler {
                fn info() -> $crate::placement::bindings::mck8s::policy::types::PolicyInfo {
                    $crate::scaling::info::<$policy>()
                }
                fn scale(
                    request: $crate::scaling::bindings::mck8s::policy::scaling_types::ScalingRequest,
                ) -> ::core::result::Result<
                    $crate::scaling::bindings::mck8s::policy::scaling_types::ScalingDecision,
                    ::std::string::String,
                > {
                    $crate::scaling::scale::<$policy>(request)
                }
            }
            $crate::scaling::bindings::__export_scaling_world!(__Mck8sScaler with_types_in $crate::scaling::bindings);
        };
    };
}
