//! The provider's objects rendered from a cluster template, for management clusters whose
//! Cluster API runs without the ClusterTopology feature gate (it refuses `spec.topology`).
//! The template is clusterctl-style YAML: `${NAME}` and `${NAME:=default}` placeholders,
//! filled with the same variables a ClusterClass would get plus clusterctl's built-ins
//! (`CLUSTER_NAME`, `NAMESPACE`, `KUBERNETES_VERSION`, `CONTROL_PLANE_MACHINE_COUNT`,
//! `WORKER_MACHINE_COUNT`). Pure.
//!
//! Placeholders are filled after the YAML is parsed, inside string scalars only, so a value
//! can never add keys or objects: a variable holding `"x\nkind: Secret"` stays one string.
//! A scalar that is nothing but one placeholder takes the variable's JSON value (a number
//! stays a number, `identityRef` stays an object); `${NAME:=}` with `NAME` unset drops the
//! field (or list item), as an unset optional variable leaves a ClusterClass patch out.

use super::capi::{self, ClusterShape};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// A ConfigMap value is at most 1 MiB; a template past this is not one.
const MAX_TEMPLATE_BYTES: usize = 512 * 1024;
const MAX_OBJECTS: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    #[error("the cluster template is {0} bytes; at most {MAX_TEMPLATE_BYTES} are read")]
    TooLarge(usize),
    #[error("the cluster template is not YAML: {0}")]
    Yaml(String),
    #[error("cluster template variables not set (spec fields or spec.variables): {}", .0.join(", "))]
    Missing(Vec<String>),
    #[error("the cluster template is refused: {0}")]
    Refused(String),
}

/// What the template renders to: the Cluster, and the objects it refers to in document
/// order with the workers' MachineDeployment last (its presence says the rest were applied).
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub cluster: Value,
    pub objects: Vec<Value>,
}

/// The variables a template sees: the class's variables, then clusterctl's built-ins.
pub fn variables(shape: &ClusterShape, workers: i32) -> BTreeMap<String, Value> {
    let mut vars: BTreeMap<String, Value> = shape.variables.iter().cloned().collect();
    vars.insert("CLUSTER_NAME".into(), json!(shape.name));
    vars.insert("NAMESPACE".into(), json!(shape.namespace));
    vars.insert("KUBERNETES_VERSION".into(), json!(shape.version));
    vars.insert("CONTROL_PLANE_MACHINE_COUNT".into(), json!(shape.control_plane_replicas));
    vars.insert("WORKER_MACHINE_COUNT".into(), json!(workers));
    vars
}

/// Renders `text` for `shape`. `worker_md` is the MachineDeployment mck8s scales
/// (`<cluster>-<workers.name>`); mck8s sets its replicas (`workers`), or the
/// cluster-autoscaler's bounds instead.
pub fn render(text: &str, shape: &ClusterShape, worker_md: &str, workers: i32) -> Result<Rendered, TemplateError> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::TooLarge(text.len()));
    }
    let vars = variables(shape, workers);
    let mut missing = BTreeSet::new();
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| TemplateError::Yaml(e.to_string()))?;
        if v.is_null() {
            continue;
        }
        if docs.len() == MAX_OBJECTS {
            return Err(TemplateError::Refused(format!("more than {MAX_OBJECTS} objects")));
        }
        if let Filled::Value(v) = fill(v, &vars, &mut missing)? {
            docs.push(v);
        }
    }
    if !missing.is_empty() {
        return Err(TemplateError::Missing(missing.into_iter().collect()));
    }
    let refused = |m: String| TemplateError::Refused(m);
    let mut cluster = None;
    let mut workers_md = None;
    let mut objects = Vec::new();
    let mut seen = BTreeSet::new();
    for mut obj in docs {
        let (group, kind, name) = identity(&obj).ok_or_else(|| refused("every object needs apiVersion, kind and metadata.name".into()))?;
        let what = format!("{kind} {name}");
        if group != capi::GROUP && !group.ends_with(".cluster.x-k8s.io") {
            return Err(refused(format!("{what}: only Cluster API groups (*.cluster.x-k8s.io) are rendered, not {:?}", obj["apiVersion"])));
        }
        if !seen.insert((group.clone(), kind.clone(), name.clone())) {
            return Err(refused(format!("{what} appears twice")));
        }
        let meta = obj["metadata"].as_object_mut().expect("identity checked metadata");
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if ns != shape.namespace => return Err(refused(format!("{what} is in namespace {ns:?}, not the cluster's {:?}", shape.namespace))),
            _ => {}
        }
        if meta.contains_key("ownerReferences") {
            return Err(refused(format!("{what} sets ownerReferences; mck8s makes the Cluster their owner")));
        }
        meta.insert("namespace".into(), json!(shape.namespace));
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            return Err(refused(format!("{what}: metadata.labels is not a map")));
        }
        for (k, v) in
            [(capi::OWNER_LABEL, &shape.owner), (capi::OWNER_UID_LABEL, &shape.owner_uid), ("fogguru.eu/managed-by", &"mck8s".to_string()), (capi::CLUSTER_NAME_LABEL, &shape.name)]
        {
            labels[k] = json!(v);
        }
        match (group == capi::GROUP, kind.as_str()) {
            (true, "Cluster") => {
                if name != shape.name || cluster.is_some() {
                    return Err(refused(format!("{what}: the template must hold exactly one Cluster, named ${{CLUSTER_NAME}} ({})", shape.name)));
                }
                if obj.pointer("/spec/topology").is_some_and(|t| !t.is_null()) {
                    return Err(refused(format!("{what} has spec.topology: a template is for Cluster API without managed topologies")));
                }
                cluster = Some(obj);
            }
            (true, "MachineDeployment") => {
                if name != worker_md || workers_md.is_some() {
                    return Err(refused(format!("{what}: the template must hold exactly one MachineDeployment, named {worker_md} (${{CLUSTER_NAME}}-<spec.workers.name>)")));
                }
                set_worker_replicas(&mut obj, shape, workers).map_err(|m| refused(format!("{what}: {m}")))?;
                workers_md = Some(obj);
            }
            _ => objects.push(obj),
        }
    }
    let cluster = cluster.ok_or_else(|| refused(format!("no Cluster named {}", shape.name)))?;
    let md = workers_md.ok_or_else(|| refused(format!("no MachineDeployment named {worker_md}")))?;
    objects.push(md);
    Ok(Rendered { cluster, objects })
}

fn identity(obj: &Value) -> Option<(String, String, String)> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let (group, _version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = obj.get("kind")?.as_str()?;
    let name = obj.pointer("/metadata/name")?.as_str().filter(|n| !n.is_empty())?;
    Some((group.to_string(), kind.to_string(), name.to_string()))
}

/// Replicas are mck8s's (its sizing, then the node autoscaler), or in cluster-autoscaler
/// mode none at all, only the bounds (Cluster API refuses both).
fn set_worker_replicas(md: &mut Value, shape: &ClusterShape, workers: i32) -> Result<(), String> {
    let spec = md.get_mut("spec").and_then(Value::as_object_mut).ok_or("no spec")?;
    spec.insert("clusterName".into(), json!(shape.name));
    match shape.autoscaler_bounds {
        Some((min, max)) => {
            spec.remove("replicas");
            let meta = md["metadata"].as_object_mut().ok_or("no metadata")?;
            let ann = meta.entry("annotations").or_insert_with(|| json!({}));
            if !ann.is_object() {
                return Err("metadata.annotations is not a map".into());
            }
            ann[capi::AUTOSCALER_MIN] = json!(min.to_string());
            ann[capi::AUTOSCALER_MAX] = json!(max.to_string());
        }
        None => {
            spec.insert("replicas".into(), json!(workers));
        }
    }
    Ok(())
}

enum Filled {
    Value(Value),
    /// `${NAME:=}` with `NAME` unset, alone in its scalar: the field is left out.
    Omit,
}

fn fill(v: Value, vars: &BTreeMap<String, Value>, missing: &mut BTreeSet<String>) -> Result<Filled, TemplateError> {
    Ok(match v {
        Value::String(s) => fill_str(&s, vars, missing)?,
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Filled::Value(x) = fill(item, vars, missing)? {
                    out.push(x);
                }
            }
            Filled::Value(Value::Array(out))
        }
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, item) in map {
                if let Filled::Value(x) = fill(item, vars, missing)? {
                    out.insert(k, x);
                }
            }
            Filled::Value(Value::Object(out))
        }
        other => Filled::Value(other),
    })
}

/// One `${NAME}` / `${NAME:=default}` found in a string.
struct Placeholder<'a> {
    start: usize,
    end: usize,
    name: &'a str,
    default: Option<&'a str>,
}

fn placeholders(s: &str) -> Result<Vec<Placeholder<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = s[from..].find("${") {
        let start = from + i;
        let close = s[start..].find('}').ok_or_else(|| TemplateError::Yaml(format!("unclosed placeholder in {:?}", clip(s))))?;
        let body = &s[start + 2..start + close];
        let (name, default) = match body.split_once(":=") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(TemplateError::Yaml(format!("malformed placeholder ${{{}}} in {:?}", clip(body), clip(s))));
        }
        out.push(Placeholder { start, end: start + close + 1, name, default });
        from = start + close + 1;
    }
    Ok(out)
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn fill_str(s: &str, vars: &BTreeMap<String, Value>, missing: &mut BTreeSet<String>) -> Result<Filled, TemplateError> {
    let found = placeholders(s)?;
    if found.is_empty() {
        return Ok(Filled::Value(Value::String(s.to_string())));
    }
    if let [p] = found.as_slice()
        && p.start == 0
        && p.end == s.len()
    {
        return Ok(match (vars.get(p.name), p.default) {
            (Some(v), _) => Filled::Value(v.clone()),
            (None, Some("")) => Filled::Omit,
            (None, Some(d)) => Filled::Value(scalar(d)),
            (None, None) => {
                missing.insert(p.name.to_string());
                Filled::Value(Value::Null)
            }
        });
    }
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for p in &found {
        out.push_str(&s[at..p.start]);
        match (vars.get(p.name), p.default) {
            (Some(Value::String(v)), _) => out.push_str(v),
            (Some(v), _) => out.push_str(&v.to_string()),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                missing.insert(p.name.to_string());
            }
        }
        at = p.end;
    }
    out.push_str(&s[at..]);
    Ok(Filled::Value(Value::String(out)))
}

/// A default as YAML reads it alone (`3` a number, `true` a bool), else the text.
fn scalar(d: &str) -> Value {
    match serde_yaml_ng::from_str::<Value>(d) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(d.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> ClusterShape {
        ClusterShape {
            name: "cloud1".into(),
            namespace: "cloud1".into(),
            owner: "cp1".into(),
            owner_uid: "u1".into(),
            class_name: "unused".into(),
            class_namespace: "unused".into(),
            version: "v1.34.2".into(),
            control_plane_replicas: 1,
            worker_class: "default-worker".into(),
            worker_name: "md-0".into(),
            variables: vec![("workerFlavor".into(), json!("k8s.large")), ("identityRef".into(), json!({"name": "cloud1-cloud-config", "cloudName": "openstack"}))],
            autoscaler_bounds: None,
        }
    }

    const TEMPLATE: &str = "
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata: {name: '${CLUSTER_NAME}'}
spec:
  infrastructureRef: {apiGroup: infrastructure.cluster.x-k8s.io, kind: OpenStackCluster, name: '${CLUSTER_NAME}'}
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: OpenStackCluster
metadata: {name: '${CLUSTER_NAME}', namespace: '${NAMESPACE}'}
spec:
  identityRef: ${identityRef}
  apiServerFloatingIP: ${apiServerFloatingIP:=}
  note: 'flavor ${workerFlavor} for ${CLUSTER_NAME}, image ${imageName:=ubuntu}'
  routes: ['${gatewayRoute:=}', keep]
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: MachineDeployment
metadata: {name: '${CLUSTER_NAME}-md-0'}
spec:
  replicas: ${WORKER_MACHINE_COUNT}
  template: {spec: {version: '${KUBERNETES_VERSION}'}}
";

    #[test]
    fn placeholders_take_values_types_defaults_and_drop_unset_optionals() {
        let r = render(TEMPLATE, &shape(), "cloud1-md-0", 3).unwrap();
        assert_eq!(r.cluster["metadata"]["name"], "cloud1");
        assert_eq!(r.cluster["metadata"]["labels"][capi::OWNER_UID_LABEL], "u1");
        assert_eq!(r.objects.len(), 2);
        let osc = &r.objects[0];
        assert_eq!(osc["metadata"]["namespace"], "cloud1");
        assert_eq!(osc["spec"]["identityRef"]["cloudName"], "openstack", "a whole placeholder keeps the value's type");
        assert!(osc["spec"].get("apiServerFloatingIP").is_none(), "an unset optional drops the field");
        assert_eq!(osc["spec"]["note"], "flavor k8s.large for cloud1, image ubuntu");
        assert_eq!(osc["spec"]["routes"], json!(["keep"]));
        let md = &r.objects[1];
        assert_eq!((md["spec"]["replicas"].clone(), md["spec"]["clusterName"].clone()), (json!(3), json!("cloud1")));
        assert_eq!(md["spec"]["template"]["spec"]["version"], "v1.34.2");
    }

    #[test]
    fn the_shipped_openstack_template_renders_the_originals_example() {
        let cm: k8s_openapi::api::core::v1::ConfigMap = serde_yaml_ng::from_str(include_str!("../../../../deploy/capi/cluster-template-mck8s-openstack.yaml")).unwrap();
        let text = cm.data.unwrap().remove(crate::cloud::settings::DEFAULT_TEMPLATE_KEY).unwrap();
        let cp: mck8s_api::CloudProvisioner = serde_yaml_ng::from_str(include_str!("../../../../tests/cases/mck8s-examples/example_cloud_provisioner.yaml")).unwrap();
        let s = crate::cloud::settings::resolve(&cp).unwrap();
        assert_eq!((s.template.namespace.as_str(), s.template.name.as_str()), ("mck8s-system", cm.metadata.name.as_deref().unwrap()));
        let r = render(&text, &s.shape("cp1", "u1", "k8s.xlarge"), &s.worker_machine_deployment(), 2).unwrap();
        let kinds: Vec<&str> = r.objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["OpenStackCluster", "KubeadmControlPlane", "OpenStackMachineTemplate", "OpenStackMachineTemplate", "KubeadmConfigTemplate", "MachineDeployment"]);
        assert_eq!(r.cluster["spec"]["controlPlaneRef"]["name"], "cloud1-control-plane");
        let osc = &r.objects[0]["spec"];
        assert_eq!((osc["apiServerFloatingIP"].as_str(), osc["externalNetwork"]["id"].as_str()), (Some("10.16.92.1"), Some("c95efff4-fd35-46f1-af1d-d65459fcebef")));
        assert_eq!(osc["identityRef"], json!({"name": "cloud1-cloud-config", "cloudName": "openstack"}));
        assert_eq!(r.objects[3]["spec"]["template"]["spec"]["flavor"], "k8s.xlarge");
        assert_eq!(r.objects[4]["spec"]["template"]["spec"]["preKubeadmCommands"], json!(["ip route add 10.0.0.0/24 via 10.16.91.27"]));
        assert_eq!(r.objects[5]["spec"]["replicas"], 2);
        assert!(!serde_json::to_string(&(&r.cluster, &r.objects)).unwrap().contains(cp.spec.clouds_yaml.as_deref().unwrap()), "credentials stay in their Secret");
    }

    #[test]
    fn a_value_cannot_inject_yaml() {
        let mut s = shape();
        s.variables.push(("imageName".into(), json!("x\n---\napiVersion: v1\nkind: Secret")));
        let r = render(TEMPLATE, &s, "cloud1-md-0", 1).unwrap();
        assert_eq!(r.objects.len(), 2);
        assert!(r.objects[0]["spec"]["note"].as_str().unwrap().contains("kind: Secret"), "stays inside the one string");
    }

    #[test]
    fn missing_variables_are_all_named() {
        let mut s = shape();
        s.variables.clear();
        match render(TEMPLATE, &s, "cloud1-md-0", 1) {
            Err(TemplateError::Missing(names)) => assert_eq!(names, ["identityRef", "workerFlavor"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cluster_autoscaler_mode_sets_bounds_not_replicas() {
        let s = ClusterShape { autoscaler_bounds: Some((1, 5)), ..shape() };
        let r = render(TEMPLATE, &s, "cloud1-md-0", 3).unwrap();
        let md = r.objects.last().unwrap();
        assert!(md["spec"].get("replicas").is_none());
        assert_eq!(md["metadata"]["annotations"][capi::AUTOSCALER_MAX], "5");
    }

    #[test]
    fn hostile_or_wrong_templates_are_refused_with_the_reason() {
        let refused = |t: &str| match render(t, &shape(), "cloud1-md-0", 1) {
            Err(TemplateError::Refused(m)) => m,
            other => panic!("{other:?}"),
        };
        let secret = format!("{TEMPLATE}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: steal}}\n");
        assert!(refused(&secret).contains("only Cluster API groups"));
        let elsewhere = TEMPLATE.replace("namespace: '${NAMESPACE}'", "namespace: kube-system");
        assert!(refused(&elsewhere).contains("kube-system"));
        let topology = TEMPLATE.replace("spec:\n  infrastructureRef", "spec:\n  topology: {classRef: {name: x}}\n  infrastructureRef");
        assert!(refused(&topology).contains("spec.topology"));
        let renamed = TEMPLATE.replace("'${CLUSTER_NAME}-md-0'", "workers");
        assert!(refused(&renamed).contains("cloud1-md-0"));
        let twice = format!("{TEMPLATE}---\n{}", TEMPLATE.split("---").nth(1).unwrap());
        assert!(refused(&twice).contains("twice"));
        assert!(matches!(render(&"x: y\n".repeat(200_000), &shape(), "cloud1-md-0", 1), Err(TemplateError::TooLarge(_))));
        assert!(matches!(render("a: '${not valid}'", &shape(), "cloud1-md-0", 1), Err(TemplateError::Yaml(_))));
        assert!(matches!(render("a: [", &shape(), "cloud1-md-0", 1), Err(TemplateError::Yaml(_))));
    }
}
