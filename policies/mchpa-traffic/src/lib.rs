//! mchpa-traffic (mck8s §4.2): the mchpa formula with a 90 s window; per-cluster hints follow each cluster's ingress.

use mck8s_policy_sdk::policies::scaling::{Flavour, ScaleInput, ScaleOutput, scale};
use mck8s_policy_sdk::{Info, ScalingPolicy};

pub struct Policy;

impl ScalingPolicy for Policy {
    fn info() -> Info {
        Info {
            name: "mchpa-traffic",
            description: "The mck8s traffic-aware multi-cluster HPA.",
            parameters: &["scaleDownStabilizationSeconds: seconds below target before scaling in (default 90)"],
        }
    }

    fn scale(input: &ScaleInput) -> Result<ScaleOutput, String> {
        scale(input, Flavour::TrafficAware)
    }
}

mck8s_policy_sdk::export_scaling!(Policy);
