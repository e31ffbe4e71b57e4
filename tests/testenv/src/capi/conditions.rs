//! `metav1.Condition`s in a status object (v1beta2 shape: type, status, reason, message,
//! lastTransitionTime, observedGeneration). The transition time moves only when the status
//! does, so consumers can tell how long a condition has held.

use serde_json::{Value, json};

pub(super) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Sets one condition in `status.conditions`.
pub(super) fn set(status: &mut Value, type_: &str, ok: bool, reason: &str, message: &str, generation: i64) {
    set_status(status, type_, if ok { "True" } else { "False" }, reason, message, generation)
}

pub(super) fn set_status(status: &mut Value, type_: &str, value: &str, reason: &str, message: &str, generation: i64) {
    if !status.is_object() {
        *status = json!({});
    }
    let conds = status.as_object_mut().expect("object").entry("conditions").or_insert_with(|| json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    let list = conds.as_array_mut().expect("array");
    let since = list.iter().find(|c| c["type"] == type_ && c["status"] == value).and_then(|c| c["lastTransitionTime"].as_str().map(String::from)).unwrap_or_else(now);
    let cond = json!({
        "type": type_, "status": value, "reason": reason, "message": message,
        "lastTransitionTime": since, "observedGeneration": generation,
    });
    match list.iter_mut().find(|c| c["type"] == type_) {
        Some(c) => *c = cond,
        None => list.push(cond),
    }
}

pub(super) fn get<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

pub(super) fn is_true(status: &Value, type_: &str) -> bool {
    get(status, type_).is_some_and(|c| c["status"] == "True")
}

pub(super) fn reason<'a>(status: &'a Value, type_: &str) -> Option<&'a str> {
    get(status, type_)?["reason"].as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let mut s = Value::Null;
        set(&mut s, "Ready", false, "Pending", "", 1);
        let t0 = get(&s, "Ready").unwrap()["lastTransitionTime"].clone();
        // Same status, other reason: same transition time, one entry.
        let mut stale = s.clone();
        stale["conditions"][0]["lastTransitionTime"] = json!("2000-01-01T00:00:00Z");
        set(&mut stale, "Ready", false, "Provisioning", "m", 2);
        assert_eq!(get(&stale, "Ready").unwrap()["lastTransitionTime"], "2000-01-01T00:00:00Z");
        assert_eq!(stale["conditions"].as_array().unwrap().len(), 1);
        assert_eq!(reason(&stale, "Ready"), Some("Provisioning"));
        assert_eq!(get(&stale, "Ready").unwrap()["observedGeneration"], 2);
        set(&mut stale, "Ready", true, "Ready", "", 2);
        assert!(is_true(&stale, "Ready"));
        assert_ne!(get(&stale, "Ready").unwrap()["lastTransitionTime"], "2000-01-01T00:00:00Z");
        assert!(t0.is_string());
    }
}
