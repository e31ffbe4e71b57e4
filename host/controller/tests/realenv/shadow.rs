//! Shadow policies end to end: a ConfigMap annotated `fogguru.eu/shadow-of: house` makes
//! its policy decide beside `house` on every real decision. Its divergence is reported
//! (condition, Event, metrics) and never applied; a hostile shadow (a loop) costs nothing but
//! its own report; `mck8s policy promote` and `rollback` each take effect on the next
//! decision.

use crate::common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, ListParams, Patch, PatchParams};
use mck8s_policy::loaded::sha256_hex;

/// Waits until `probe` (an MCD naming `policy` that fits nowhere, so it is decided again at
/// every burst retry) was decided by the component with `digest`: the controller serves it.
async fn wait_serving(h: &Harness, probe: &str, digest: &str) {
    h.eventually(&format!("{probe} decided by {}", &digest[..12]), || async {
        let s = h.status(probe).await;
        if s.policy_digest.as_deref() == Some(digest) { Ok(()) } else { Err(format!("{:?}", s.policy_digest)) }
    })
    .await;
}

async fn shadow_condition(h: &Harness, want_reason: &str) -> String {
    h.eventually(&format!("ShadowAgrees {want_reason}"), || async {
        let s = h.status("web").await;
        match mck8s_api::conditions::get(&s.conditions, "ShadowAgrees") {
            Some(c) if c.reason == want_reason => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let s = h.status("web").await;
    mck8s_api::conditions::get(&s.conditions, "ShadowAgrees").map(|c| c.message.clone()).unwrap_or_default()
}

fn patch_spec(h: &Harness, spec: &str) {
    h.kubectl_ok(&["patch", "mcd", "web", "--type=merge", "-p", &format!("{{\"spec\":{spec}}}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_policy_is_reported_never_applied_and_promoted_then_rolled_back() {
    let _serial = serial().await;
    let port = free_port();
    let env = mck8s_testenv::TestEnv::shared().await.unwrap();
    let ns = env.namespace("cluster0", "shadow").await.unwrap();
    let h = Harness::start_tuned(env, ns, &FOG, None, |c| c.metrics_addr = Some(([127, 0, 0, 1], port).into())).await;
    let (worst, best, hostile) = (
        std::fs::read(builtin_dir().join("worst-fit.wasm")).unwrap(),
        std::fs::read(builtin_dir().join("best-fit.wasm")).unwrap(),
        mck8s_policy::built::read("mck8s_guest_hostile.wasm"),
    );
    let cms: Api<ConfigMap> = h.ns.api();
    let configmap = |name: &str, bytes: &[u8], shadow_of: Option<&str>| {
        let mut cm = mck8s_controller::policy_configmaps::configmap_for(name, &h.ns.name, bytes).unwrap();
        if let Some(of) = shadow_of {
            cm.metadata.annotations = Some([("fogguru.eu/shadow-of".to_string(), of.to_string())].into());
        }
        cm
    };
    // cluster2 keeps 2 of its 4 slots: best-fit's choice for 2 replicas, where worst-fit
    // takes cluster1 (4 slots; cluster3 ties and loses on name).
    h.apply_yaml(&mcd("filler", "  locations: cluster2\n  replicas: 2"));
    h.wait_condition("filler", "Ready", "True").await;
    cms.create(&Default::default(), &configmap("next", &best, Some("house"))).await.unwrap();
    cms.create(&Default::default(), &configmap("house", &worst, None)).await.unwrap();
    for (probe, policy) in [("probe-house", "house"), ("probe-next", "next")] {
        h.apply_yaml(&mcd_shaped(probe, &format!("  placementPolicy: {policy}\n  replicas: 1"), "{cpu: '64', memory: 1Gi}", ""));
    }
    wait_serving(&h, "probe-house", &sha256_hex(&worst)).await;
    wait_serving(&h, "probe-next", &sha256_hex(&best)).await;

    // The shadow diverges: reported, not applied.
    h.apply_yaml(&mcd("web", "  placementPolicy: house\n  replicas: 2"));
    let message = shadow_condition(&h, "Diverges").await;
    assert!(message.contains("would place cluster1=0,cluster2=2 where the active policy places cluster1=2,cluster2=0"), "{message}");
    h.wait_children("web", &[("cluster1", 2)]).await;
    let events: Api<Event> = Api::namespaced(h.mgmt.clone(), &h.ns.name);
    let diverged = events.list(&ListParams::default()).await.unwrap().items.into_iter().filter(|e| e.reason.as_deref() == Some("ShadowDiverged")).count();
    assert!(diverged >= 1);
    let m = metrics(port).await;
    assert!(sample(&m, r#"mck8s_shadow_decisions_total{policy="house",shadow="next",result="diverged"}"#) >= 1.0, "{m}");
    assert!(sample(&m, r#"mck8s_shadow_replicas_moved_total{policy="house",shadow="next",result="diverged"}"#) >= 2.0);

    // Promoted: house is best-fit from the next decision on, and its shadow now agrees.
    let said = mck8s_ok(&h, &["policy", "promote", "next", "-n", &h.ns.name]);
    assert!(said.contains("house: now next's component"), "{said}");
    wait_serving(&h, "probe-house", &sha256_hex(&best)).await;
    patch_spec(&h, r#"{"replicas":1}"#);
    h.wait_children("web", &[("cluster2", 1)]).await;
    h.status_when("web", "decided by best", |s| s.policy_digest.as_deref() == Some(sha256_hex(&best).as_str())).await;
    shadow_condition(&h, "Agrees").await;

    // Rolled back: worst-fit again at the next decision.
    mck8s_ok(&h, &["policy", "rollback", "house", "-n", &h.ns.name]);
    wait_serving(&h, "probe-house", &sha256_hex(&worst)).await;
    patch_spec(&h, r#"{"replicas":2}"#);
    h.wait_children("web", &[("cluster1", 2)]).await;
    h.status_when("web", "decided by worst", |s| s.policy_digest.as_deref() == Some(sha256_hex(&worst).as_str())).await;

    // A hostile shadow: it loops on web's parameters (worst-fit ignores them). The real
    // decision is made and applied; the shadow is reported failed.
    cms.patch("mck8s-policy-next", &PatchParams::default(), &Patch::Merge(&configmap("next", &hostile, Some("house")))).await.unwrap();
    wait_serving(&h, "probe-next", &sha256_hex(&hostile)).await;
    patch_spec(&h, r#"{"replicas":3,"placementParams":{"mode":"spin"}}"#);
    let message = shadow_condition(&h, "ShadowFailed").await;
    assert!(message.contains("deadline"), "{message}");
    h.wait_children("web", &[("cluster1", 3)]).await;
    assert!(sample(&metrics(port).await, r#"mck8s_shadow_decisions_total{policy="house",shadow="next",result="failed"}"#) >= 1.0);
    h.finish().await;
}
