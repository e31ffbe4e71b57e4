//! `mck8s policy promote SHADOW` and `mck8s policy rollback POLICY`: a shadow policy takes
//! the place of the policy it shadows, and back. Both act on the policy ConfigMaps in the
//! controller's namespace. Each is one `replace` of the active policy's ConfigMap, with the
//! resourceVersion it was read at, so it is atomic: the controller sees the old version or
//! the new one, and a concurrent edit makes it fail instead of being overwritten. The
//! replaced version stays in the same ConfigMap under `<policy>.wasm.previous` (not a policy
//! key), which is what `rollback` swaps back.

use anyhow::{Context, Result};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use mck8s_api::labels;
use mck8s_policy::registry::normalize;

/// Leaves room for metadata under the API server's 1 MiB.
const CONFIGMAP_BYTES_MAX: usize = 1024 * 1024 - 16 * 1024;

pub fn promote(shadow: &str, namespace: &str) -> Result<()> {
    block_on(async {
        let api = api(namespace).await?;
        let cms = api.list(&ListParams::default().labels(labels::POLICY_CONFIGMAP)).await.context("listing the policy ConfigMaps")?.items;
        let (shadow_cm, shadow_key) = find(&cms, shadow).with_context(|| format!("no policy ConfigMap in {namespace} has {shadow}.wasm"))?;
        let active = shadow_cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(labels::SHADOW_OF))
            .with_context(|| format!("{shadow} is not a shadow: its ConfigMap has no {} annotation", labels::SHADOW_OF))?
            .trim()
            .to_string();
        let bytes = bytes_of(shadow_cm, &shadow_key).context("the shadow's component")?;
        let (active_cm, active_key) = find(&cms, &active).with_context(|| {
            format!("{active} (which {shadow} shadows) is not from a ConfigMap in {namespace}: promote works on ConfigMap policies; for the policy directory, copy {shadow}.wasm over {active}.wasm")
        })?;
        let mut new = promoted(active_cm, &active_key, bytes, &format!("{shadow}@{}", mck8s_policy::loaded::sha256_hex(bytes))).map_err(anyhow::Error::msg)?;
        new.metadata.managed_fields = None;
        let name = new.metadata.name.clone().unwrap_or_default();
        api.replace(&name, &PostParams::default(), &new).await.with_context(|| format!("replacing ConfigMap {name}"))?;
        println!(
            "{active}: now {shadow}'s component (sha256 {}); the replaced version is kept for `mck8s policy rollback {active}`",
            &mck8s_policy::loaded::sha256_hex(bytes)[..12]
        );
        println!("{shadow} still shadows {active} (it now agrees with it): delete its ConfigMap when done");
        Ok(())
    })
}

pub fn rollback(policy: &str, namespace: &str) -> Result<()> {
    block_on(async {
        let api = api(namespace).await?;
        let cms = api.list(&ListParams::default().labels(labels::POLICY_CONFIGMAP)).await.context("listing the policy ConfigMaps")?.items;
        let (cm, key) = find(&cms, policy).with_context(|| format!("no policy ConfigMap in {namespace} has {policy}.wasm"))?;
        let mut new = rolled_back(cm, &key).map_err(anyhow::Error::msg)?;
        new.metadata.managed_fields = None;
        let name = new.metadata.name.clone().unwrap_or_default();
        api.replace(&name, &PostParams::default(), &new).await.with_context(|| format!("replacing ConfigMap {name}"))?;
        let now = bytes_of(&new, &key).map(mck8s_policy::loaded::sha256_hex).unwrap_or_default();
        println!("{policy}: back to sha256 {}; the version it replaced is kept, so a second rollback undoes this one", &now[..now.len().min(12)]);
        Ok(())
    })
}

/// The active policy's ConfigMap with `bytes` as the policy and the old component kept as
/// `<key>.previous`.
pub fn promoted(cm: &ConfigMap, key: &str, bytes: &[u8], from: &str) -> Result<ConfigMap, String> {
    let old = bytes_of(cm, key).ok_or_else(|| format!("{key} is empty"))?.to_vec();
    let mut new = cm.clone();
    let data = new.binary_data.get_or_insert_default();
    data.insert(key.to_string(), ByteString(bytes.to_vec()));
    data.insert(format!("{key}.previous"), ByteString(old));
    new.metadata.annotations.get_or_insert_default().insert(labels::PROMOTED_FROM.to_string(), from.to_string());
    fits(&new)?;
    Ok(new)
}

/// The ConfigMap with `<key>` and `<key>.previous` swapped.
pub fn rolled_back(cm: &ConfigMap, key: &str) -> Result<ConfigMap, String> {
    let previous = format!("{key}.previous");
    let mut new = cm.clone();
    let data = new.binary_data.get_or_insert_default();
    let (Some(now), Some(before)) = (data.remove(key), data.remove(&previous)) else {
        return Err(format!("nothing to roll back to: the ConfigMap has no {previous} (only `mck8s policy promote` leaves one)"));
    };
    data.insert(key.to_string(), before);
    data.insert(previous, now);
    if let Some(a) = new.metadata.annotations.as_mut() {
        a.remove(labels::PROMOTED_FROM);
    }
    Ok(new)
}

fn fits(cm: &ConfigMap) -> Result<(), String> {
    let size: usize = cm.binary_data.iter().flatten().map(|(k, v)| k.len() + v.0.len()).sum();
    if size > CONFIGMAP_BYTES_MAX {
        return Err(format!(
            "the new and the previous component together are {} KiB, over what a ConfigMap holds (1 MiB): promote by hand, moving the old one elsewhere first",
            size / 1024
        ));
    }
    Ok(())
}

/// The ConfigMap and `binaryData` key providing policy `name` (matched as the registry
/// matches names).
fn find<'a>(cms: &'a [ConfigMap], name: &str) -> Option<(&'a ConfigMap, String)> {
    let want = normalize(name);
    cms.iter().find_map(|cm| cm.binary_data.as_ref()?.keys().find(|k| k.strip_suffix(".wasm").is_some_and(|stem| normalize(stem) == want)).map(|k| (cm, k.clone())))
}

fn bytes_of<'a>(cm: &'a ConfigMap, key: &str) -> Option<&'a [u8]> {
    cm.binary_data.as_ref()?.get(key).map(|b| b.0.as_slice()).filter(|b| !b.is_empty())
}

async fn api(namespace: &str) -> Result<Api<ConfigMap>> {
    let client = kube::Client::try_default().await.context("connecting to the management cluster (KUBECONFIG)")?;
    Ok(Api::namespaced(client, namespace))
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(entries: &[(&str, &[u8])]) -> ConfigMap {
        ConfigMap { binary_data: Some(entries.iter().map(|(k, v)| (k.to_string(), ByteString(v.to_vec()))).collect()), ..Default::default() }
    }

    #[test]
    fn promote_keeps_the_replaced_version_and_rollback_swaps_them_back_and_forth() {
        let active = cm(&[("house.wasm", b"old")]);
        let p = promoted(&active, "house.wasm", b"new", "next@abc").unwrap();
        let data = p.binary_data.as_ref().unwrap();
        assert_eq!((data["house.wasm"].0.as_slice(), data["house.wasm.previous"].0.as_slice()), (&b"new"[..], &b"old"[..]));
        assert_eq!(p.metadata.annotations.as_ref().unwrap()[labels::PROMOTED_FROM], "next@abc");
        let r = rolled_back(&p, "house.wasm").unwrap();
        let data = r.binary_data.as_ref().unwrap();
        assert_eq!((data["house.wasm"].0.as_slice(), data["house.wasm.previous"].0.as_slice()), (&b"old"[..], &b"new"[..]));
        let again = rolled_back(&r, "house.wasm").unwrap();
        assert_eq!(again.binary_data.as_ref().unwrap()["house.wasm"].0, b"new");
    }

    #[test]
    fn nothing_to_roll_back_to_and_too_big_are_refused() {
        assert!(rolled_back(&cm(&[("house.wasm", b"x")]), "house.wasm").unwrap_err().contains("nothing to roll back to"));
        let big = vec![0u8; 600 * 1024];
        assert!(promoted(&cm(&[("house.wasm", &big)]), "house.wasm", &big, "n@x").unwrap_err().contains("over what a ConfigMap holds"));
    }

    #[test]
    fn policies_are_found_by_normalised_name_never_by_their_previous_key() {
        let cms = [cm(&[("house.wasm.previous", b"a")]), cm(&[("Worst_Fit.wasm", b"b")])];
        assert_eq!(find(&cms, "worst-fit").map(|(_, k)| k), Some("Worst_Fit.wasm".into()));
        assert!(find(&cms, "house").is_none());
    }
}
