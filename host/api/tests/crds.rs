//! The CRDs keep the original's names, short names and scopes, are structural, accept every
//! field of the original's examples, and `deploy/crds/` is what the types generate.
#![allow(clippy::unwrap_used, reason = "test and bench code: a panic is a failure with its message")]

use mck8s_api::crds;
use std::path::Path;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn names_short_names_and_scopes_match_mck8s() {
    let want = [
        ("multiclusterdeployments.fogguru.eu", "MultiClusterDeployment", vec!["mcd", "mcds"], "Namespaced"),
        ("multiclusterjobs.fogguru.eu", "MultiClusterJob", vec!["mcj", "mcjs"], "Namespaced"),
        ("multiclusterservices.fogguru.eu", "MultiClusterService", vec!["mcs", "mcss"], "Namespaced"),
        ("multiclusterhorizontalpodautoscalers.fogguru.eu", "MultiClusterHorizontalPodAutoscaler", vec!["mchpa", "mchpas"], "Namespaced"),
        ("cloudprovisioners.fogguru.eu", "CloudProvisioner", vec!["cpro", "cp"], "Cluster"),
        ("appreschedulers.fogguru.eu", "AppRescheduler", vec!["appresch", "appres"], "Cluster"),
    ];
    let all = crds::all();
    assert_eq!(all.len(), want.len());
    for (crd, (name, kind, short, scope)) in all.iter().zip(want) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.names.short_names.clone().unwrap_or_default(), short);
        assert_eq!(crd.spec.scope, scope);
        assert_eq!(crd.spec.names.categories.clone().unwrap_or_default(), [crds::CATEGORY], "kubectl get mck8s");
        assert_eq!(crd.spec.versions.len(), 1);
        assert_eq!(crd.spec.versions[0].name, "v1");
    }
}

/// The rules of a structural schema that matter here: every property has a type unless it
/// preserves unknown fields, and no object mixes `properties` with `additionalProperties`.
fn check_structural(path: &str, v: &serde_json::Value, problems: &mut Vec<String>) {
    let Some(obj) = v.as_object() else { return };
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&serde_json::Value::Bool(true));
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&serde_json::Value::Bool(true));
    if !obj.contains_key("type") && !preserve && !int_or_string {
        problems.push(format!("{path}: no type"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        problems.push(format!("{path}: properties with additionalProperties"));
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if obj.contains_key(key) {
            problems.push(format!("{path}: {key}"));
        }
    }
    if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
        for (k, p) in props {
            check_structural(&format!("{path}.{k}"), p, problems);
        }
    }
    if let Some(items) = obj.get("items") {
        check_structural(&format!("{path}[]"), items, problems);
    }
}

#[test]
fn schemas_are_structural() {
    for crd in crds::all() {
        let schema = serde_json::to_value(&crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema).unwrap();
        let mut problems = Vec::new();
        for part in ["spec", "status"] {
            if let Some(p) = schema.pointer(&format!("/properties/{part}")) {
                check_structural(part, p, &mut problems);
            }
        }
        assert!(problems.is_empty(), "{}: {problems:?}", crd.metadata.name.unwrap());
    }
}

#[test]
fn every_example_of_mck8s_deserialises() {
    let dir = repo().join("../shared/mck8s/manifests/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("../shared/mck8s/manifests/examples") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let kind = doc["kind"].as_str().unwrap().to_string();
        let ok = match kind.as_str() {
            "MultiClusterDeployment" => serde_yaml_ng::from_value::<mck8s_api::MultiClusterDeployment>(doc).map(|_| ()),
            "MultiClusterService" => serde_yaml_ng::from_value::<mck8s_api::MultiClusterService>(doc).map(|_| ()),
            "MultiClusterHorizontalPodAutoscaler" => serde_yaml_ng::from_value::<mck8s_api::MultiClusterHorizontalPodAutoscaler>(doc).map(|_| ()),
            "CloudProvisioner" => serde_yaml_ng::from_value::<mck8s_api::CloudProvisioner>(doc).map(|_| ()),
            other => panic!("no type for example kind {other}"),
        };
        ok.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn deploy_crds_are_generated_from_the_types() {
    let dir = repo().join("deploy/crds");
    for crd in crds::all() {
        let file = dir.join(crds::file_name(&crd));
        let committed = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}; run `mck8s crd write deploy/crds`", file.display()));
        assert_eq!(committed, crds::to_yaml(&crd), "{} is stale; run `mck8s crd write deploy/crds`", file.display());
    }
}

#[test]
fn conditions_are_list_maps_keyed_by_type_and_each_kind_shows_its_summary_condition() {
    // The column each kind's `kubectl get` shows for its top-level condition.
    let summary = [
        ("multiclusterdeployments.fogguru.eu", "Ready"),
        ("multiclusterjobs.fogguru.eu", "Complete"),
        ("multiclusterservices.fogguru.eu", "Ready"),
        ("multiclusterhorizontalpodautoscalers.fogguru.eu", "ScalingActive"),
        ("cloudprovisioners.fogguru.eu", "Ready"),
        ("appreschedulers.fogguru.eu", "Active"),
    ];
    for (crd, (name, condition)) in crds::all().into_iter().zip(summary) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        let version = &crd.spec.versions[0];
        let schema = serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
        let conditions = schema.pointer("/properties/status/properties/conditions").unwrap_or_else(|| panic!("{name}: no status.conditions"));
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{name}");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], serde_json::json!(["type"]), "{name}");
        // A list-map key must be required in every item.
        let required = conditions.pointer("/items/required").and_then(|r| r.as_array()).unwrap_or_else(|| panic!("{name}: items without required"));
        assert!(required.contains(&serde_json::json!("type")), "{name}: {required:?}");
        let path = format!(".status.conditions[?(@.type==\"{condition}\")].status");
        let columns = version.additional_printer_columns.clone().unwrap_or_default();
        assert!(columns.iter().any(|c| c.json_path == path && c.type_ == "string"), "{name}: no column for {condition}: {columns:?}");
    }
}
