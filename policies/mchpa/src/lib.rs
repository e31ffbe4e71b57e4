//! mchpa (mck8s §4.1): ceil(replicas × utilisation / target) per cluster, immediate scale-out, scale-in after the window.

use mck8s_policy_sdk::policies::scaling::{Flavour, ScaleInput, ScaleOutput, scale};
use mck8s_policy_sdk::{Info, ScalingPolicy};

pub struct Policy;

impl ScalingPolicy for Policy {
    fn info() -> Info {
        Info {
            name: "mchpa",
            description: "The mck8s multi-cluster HPA formula; scale-in after the stabilisation window.",
            parameters: &["scaleDownStabilizationSeconds: seconds below target before scaling in (default 330)"],
        }
    }

    fn scale(input: &ScaleInput) -> Result<ScaleOutput, String> {
        scale(input, Flavour::Classic)
    }
}

mck8s_policy_sdk::export_scaling!(Policy);
