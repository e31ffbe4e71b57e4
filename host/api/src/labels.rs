//! Labels and annotations mck8s puts on what it creates in workload clusters. Children are
//! found by these (there are no cross-cluster ownerReferences).

/// `app.kubernetes.io/managed-by` value on every child.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "mck8s";
pub use mck8s_fleet::owner_labels::{LABEL_VALUE_MAX, OWNER_KIND, OWNER_NAME, OWNER_REF, labelled_owner, owner_of, owner_value};
pub const OWNER_UID: &str = "fogguru.eu/owner-uid";
/// Server-side apply field manager.
pub const FIELD_MANAGER: &str = "mck8s";

/// On what a CloudProvisioner made (its Cluster API objects, the cloud namespace, the
/// kubeconfig Secret, the RoleBinding): the CloudProvisioner's name. It only ever deletes or
/// re-applies objects that carry it.
pub const MADE_BY_PROVISIONER: &str = "fogguru.eu/cloud-provisioner";
/// Kubeconfig Secrets in the management cluster that register workload clusters.
pub const CLUSTER_SECRET: &str = "fogguru.eu/cluster";
/// Role (`fog` or `cloud`) of a registered cluster, on its Secret.
pub const CLUSTER_ROLE: &str = "fogguru.eu/role";
/// Region of a registered cluster, on its Secret.
pub const CLUSTER_REGION: &str = "topology.kubernetes.io/region";
/// On a cluster Secret: `true` while the cluster takes no new placements (a cloud cluster
/// draining before it is removed). The registry reports it NotReady.
pub const CLUSTER_CORDONED: &str = "fogguru.eu/cordoned";
/// ConfigMaps holding policies (`binaryData` keys `<name>.wasm`).
pub const POLICY_CONFIGMAP: &str = "fogguru.eu/policy";
/// Annotation on a policy ConfigMap: its policies shadow the policy it names (evaluated
/// beside it on every real decision, never applied).
pub const SHADOW_OF: &str = "fogguru.eu/shadow-of";
/// Annotation `mck8s policy promote` leaves on the ConfigMap it changed: `<shadow>@<sha256>`.
pub const PROMOTED_FROM: &str = "fogguru.eu/promoted-from";
