//! Schema pieces for the original's free-form specs. The CRDs must be structural; fields that
//! take more than one shape (`locations` is a string or a list) or are copied verbatim to the
//! children (the pod template) preserve unknown fields instead of having a type.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Any value; the controller validates it and reports InvalidSpec.
pub fn any_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// `"a, b"` or `[a, b]`.
pub fn string_or_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A comma-separated string (\"cluster2, cluster3\") or a list.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// An object that keeps unknown fields (the rest of a DeploymentSpec, JobSpec or ServiceSpec)
/// beside its typed ones. Used as a `transform` on spec structs with a flattened map.
pub fn open_object(schema: &mut Schema) {
    let obj = schema.ensure_object();
    obj.remove("additionalProperties");
    obj.insert("type".into(), "object".into());
    obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
}

/// Conditions as a list-map keyed by `type`, as the Kubernetes API conventions ask: the API
/// server refuses two conditions of one type, and server-side apply merges them by type.
pub fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>();
    let obj = schema.ensure_object();
    obj.insert("x-kubernetes-list-type".into(), "map".into());
    obj.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}
