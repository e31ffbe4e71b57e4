//! core/v1 Events on the Cluster at every lifecycle step (reason = the step), so tests can
//! assert the order: `eventTime` has microseconds, and one task per Cluster emits them in order.

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;

use super::{API_VERSION, COMPONENT};

fn micro_now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// Best effort, like a recorder: a failed Event is logged, never fatal.
pub(super) async fn emit(mgmt: &kube::Client, cluster: &DynamicObject, reason: &str, message: &str) {
    let ns = cluster.metadata.namespace.clone().unwrap_or_default();
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let now = super::conditions::now();
    let event = json!({
        "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": ns},
        "involvedObject": {"apiVersion": API_VERSION, "kind": "Cluster", "name": name, "namespace": ns,
            "uid": cluster.metadata.uid, "resourceVersion": cluster.metadata.resource_version},
        "reason": reason, "message": message, "type": "Normal", "action": reason,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT, "reportingInstance": COMPONENT,
        "firstTimestamp": now, "lastTimestamp": now, "eventTime": micro_now(), "count": 1,
    });
    let event: Event = serde_json::from_value(event).expect("event shape");
    let api: Api<Event> = Api::namespaced(mgmt.clone(), &ns);
    match api.create(&PostParams::default(), &event).await {
        Ok(_) => tracing::info!(cluster = %super::names::key(&ns, &name), reason, "{message}"),
        Err(e) => {
            tracing::warn!(cluster = %super::names::key(&ns, &name), reason, error = %e, "event not recorded")
        }
    }
}
