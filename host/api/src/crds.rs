//! The CRDs as YAML, generated from the types (`mck8s crd print`, `deploy/crds/`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::*;

/// All six CRDs, in the original's file order.
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut all = vec![
        MultiClusterDeployment::crd(),
        MultiClusterJob::crd(),
        MultiClusterService::crd(),
        MultiClusterHorizontalPodAutoscaler::crd(),
        CloudProvisioner::crd(),
        AppRescheduler::crd(),
    ];
    // `kubectl get mck8s` lists every kind at once.
    for crd in &mut all {
        crd.spec.names.categories = Some(vec![CATEGORY.to_string()]);
    }
    all
}

/// The category every mck8s CRD is in.
pub const CATEGORY: &str = "mck8s";

/// File name in `deploy/crds/` for a CRD.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("crd"))
}

/// One CRD as YAML, with a header saying it is generated.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    let body = serde_yaml_ng::to_string(crd).expect("a CRD serialises");
    format!("# Generated from host/api by `mck8s crd write deploy/crds`; do not edit.\n{body}")
}

/// All CRDs as one multi-document YAML stream.
pub fn all_yaml() -> String {
    all().iter().map(|c| format!("---\n{}", to_yaml(c))).collect()
}
