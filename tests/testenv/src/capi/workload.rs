//! A simulated Cluster's real control plane: a kube-apiserver (own etcd prefix in the shared
//! etcd, own token file with two admin tokens), then, once it answers, a
//! kube-controller-manager and a kube-scheduler, with the same flags as the fleet's clusters.
//! Every start and stop goes through `record`, under its lock.

use std::time::{Duration, Instant};

use crate::env::{ApiserverArgs, controller_manager_args, go_env, scheduler_args};
use crate::fleet::CAPI_SLOTS;
use crate::kubeconfig::{self, Endpoint};
use crate::kubelet::KubeletHandle;
use crate::procs::{self, ProcRecord};
use crate::{Error, Result, paths};

use super::record::{self, WorkloadRecord};
use super::{Ctx, access, names};

const APISERVER: &str = "kube-apiserver";
const CONTROLLER_MANAGER: &str = "kube-controller-manager";
const SCHEDULER: &str = "kube-scheduler";

/// A running workload cluster, as the Cluster's task sees it.
pub(super) struct Workload {
    pub rec: WorkloadRecord,
    /// Admin client (token A; both tokens stay valid).
    pub client: kube::Client,
    /// The kubelets of its Nodes (one per Running Machine).
    pub kubelet: KubeletHandle,
    /// When `/readyz` first answered; None before.
    pub ready_since: Option<Instant>,
    /// The last probe's result (RemoteConnectionProbe).
    pub reachable: bool,
}

impl Workload {
    pub async fn attach(ctx: &Ctx, rec: WorkloadRecord) -> Result<Workload> {
        let client = access::client_from_kubeconfig(&kubeconfig_text(&rec.name, rec.port, &ctx.ca_pem, &rec.tokens[0])).await?;
        // Addresses 10.(100+slot).x.y: distinct from the fleet's clusters (10.i.x.y).
        let kubelet = KubeletHandle::start(client.clone(), &rec.name, 100 + rec.slot as usize, ctx.load.clone(), ctx.job_duration);
        Ok(Workload { rec, client, kubelet, ready_since: None, reachable: false })
    }

    /// Probes `/readyz`; remembers when it first answered.
    pub async fn probe(&mut self) -> bool {
        self.reachable = readyz(&self.client).await;
        if self.reachable && self.ready_since.is_none() {
            self.ready_since = Some(Instant::now());
        }
        self.reachable
    }
}

/// The kubeconfig of a workload cluster, shaped as KCP writes it: cluster `<c>`, user
/// `<c>-admin`, context `<c>-admin@<c>`, the CA inline. Authentication is a token here
/// (KCP uses a client certificate).
pub(super) fn kubeconfig_text(cluster: &str, port: u16, ca_pem: &str, token: &str) -> String {
    let ca = serde_json::to_value(k8s_openapi::ByteString(ca_pem.as_bytes().to_vec())).expect("bytes serialize");
    let user = format!("{cluster}-admin");
    let context = format!("{user}@{cluster}");
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": format!("https://127.0.0.1:{port}"), "certificate-authority-data": ca}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "users": [{"name": user, "user": {"token": token}}],
        "preferences": {},
    });
    serde_yaml_ng::to_string(&doc).expect("kubeconfig serializes")
}

/// Allocates a slot and starts the API server, or returns the record that already exists for
/// this Cluster (same UID): a restarted simulator re-adopts instead of duplicating.
pub(super) fn provision(ctx: &Ctx, ns: &str, name: &str, uid: &str) -> Result<WorkloadRecord> {
    let key = names::key(ns, name);
    tokio::task::block_in_place(|| {
        record::update(&ctx.sd.dir, |recs| {
            if let Some(r) = recs.clusters.get(&key) {
                if r.uid == uid {
                    return Ok(r.clone());
                }
                // A previous Cluster of the same name that vanished without our finalizer.
                stop_procs(&r.procs);
                recs.clusters.remove(&key);
            }
            let used: std::collections::HashSet<u16> = recs.clusters.values().map(|r| r.slot).collect();
            let slot = (0..CAPI_SLOTS)
                .find(|s| !used.contains(s) && std::net::TcpListener::bind(("127.0.0.1", ctx.ports.capi_apiserver(*s))).is_ok())
                .ok_or_else(|| Error::Environment(format!("all {CAPI_SLOTS} simulated workload cluster ports are in use")))?;
            let port = ctx.ports.capi_apiserver(slot);
            let dir = ctx.workload_dir(ns, name);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let tokens = [names::random_hex(16), names::random_hex(16)];
            let file = dir.join("tokens.csv");
            let csv = format!("{},admin,admin,\"system:masters\"\n{},admin-b,admin-b,\"system:masters\"\n", tokens[0], tokens[1]);
            std::fs::write(&file, csv).map_err(|e| Error::io(&file, e))?;
            // For the controller-manager and scheduler.
            kubeconfig::write(&dir.join("kubeconfig.yaml"), &[Endpoint { cluster: name, port }], &ctx.sd.pki().join("ca.crt"), &tokens[0])?;
            let mut rec = WorkloadRecord {
                namespace: ns.into(),
                name: name.into(),
                uid: uid.into(),
                slot,
                port,
                etcd_prefix: names::etcd_prefix(ns, name),
                tokens,
                token_index: 0,
                rotation_seen: None,
                procs: Vec::new(),
            };
            let api = spawn(ctx, &rec, APISERVER)?;
            rec.procs.push(api);
            recs.clusters.insert(key.clone(), rec.clone());
            tracing::info!(cluster = %key, port, "workload API server started");
            Ok(rec)
        })
    })
}

fn proc_name(rec: &WorkloadRecord, component: &str) -> String {
    format!("capi/{}/{}/{component}", rec.namespace, rec.name)
}

fn spawn(ctx: &Ctx, rec: &WorkloadRecord, component: &str) -> Result<ProcRecord> {
    let dir = ctx.workload_dir(&rec.namespace, &rec.name);
    let kc = dir.join("kubeconfig.yaml");
    let args = match component {
        APISERVER => {
            ApiserverArgs { etcd_prefix: rec.etcd_prefix.clone(), port: rec.port, cert_dir: dir.join("apiserver"), token_file: dir.join("tokens.csv") }.args(&ctx.sd, &ctx.etcd_url)
        }
        CONTROLLER_MANAGER => controller_manager_args(&ctx.sd, &kc, &rec.name),
        _ => scheduler_args(&kc),
    };
    let name = proc_name(rec, component);
    procs::spawn(&name, &paths::kube_bin(component), &args, &go_env(&name), &procs::log_path(&ctx.sd.dir, &name))
}

/// Restarts whatever died, and starts the controller-manager and scheduler once the API
/// server is ready (the 1.20 controller-manager exits if its API server does not answer
/// within 10 s). Takes the lock only when something has to change.
#[allow(unsafe_code, reason = "waitpid on a child this process spawned, to reap it")]
pub(super) fn ensure_running(ctx: &Ctx, rec: &WorkloadRecord, api_ready: bool) -> Result<WorkloadRecord> {
    let wanted: &[&str] = if api_ready { &[APISERVER, CONTROLLER_MANAGER, SCHEDULER] } else { &[APISERVER] };
    if wanted.iter().all(|c| rec.proc(c).is_some_and(ProcRecord::alive)) {
        return Ok(rec.clone());
    }
    let key = names::key(&rec.namespace, &rec.name);
    tokio::task::block_in_place(|| {
        record::update(&ctx.sd.dir, |recs| {
            let r = recs.clusters.get_mut(&key).ok_or_else(|| Error::State(format!("no record for {key}")))?;
            for component in wanted {
                let old = r.proc(component).cloned();
                if old.as_ref().is_some_and(ProcRecord::alive) {
                    continue;
                }
                if let Some(old) = &old {
                    // Reap it (we are its parent) and say so: a dead control plane is news.
                    unsafe { libc::waitpid(old.pid, std::ptr::null_mut(), libc::WNOHANG) };
                    tracing::warn!(cluster = %key, component, "workload process died; restarting");
                }
                let new = spawn(ctx, r, component)?;
                r.procs.retain(|p| p.name != new.name);
                r.procs.push(new);
            }
            Ok(r.clone())
        })
    })
}

/// Stops a workload cluster's processes (clients first), forgets its record and files, and
/// deletes its etcd prefix. Idempotent.
pub(super) async fn teardown(ctx: &Ctx, ns: &str, name: &str) -> Result<()> {
    let key = names::key(ns, name);
    let removed = tokio::task::block_in_place(|| {
        record::update(&ctx.sd.dir, |recs| {
            let r = recs.clusters.remove(&key);
            if let Some(r) = &r {
                stop_procs(&r.procs);
            }
            Ok(r)
        })
    })?;
    let dir = ctx.workload_dir(ns, name);
    let _ = std::fs::remove_dir_all(&dir);
    // The namespace's directory, once its last cluster is gone (fails while not empty).
    let _ = dir.parent().map(std::fs::remove_dir);
    if let Some(r) = removed {
        delete_etcd_prefix(&ctx.etcd_url, &r.etcd_prefix).await?;
        tracing::info!(cluster = %key, "workload cluster stopped and its etcd prefix deleted");
    }
    Ok(())
}

/// Clients, then the API server, as `down` does.
fn stop_procs(procs: &[ProcRecord]) {
    let (api, clients): (Vec<ProcRecord>, Vec<ProcRecord>) = procs.iter().cloned().partition(|p| p.name.ends_with(APISERVER));
    procs::stop_all(&clients, Duration::from_secs(5));
    // Short grace: the simulated cloud is deleting the machine anyway.
    procs::stop_all(&api, Duration::from_secs(3));
}

/// GET /readyz with a short timeout.
pub(super) async fn readyz(client: &kube::Client) -> bool {
    let req = http::Request::get("/readyz").body(Vec::new()).expect("static request");
    matches!(tokio::time::timeout(Duration::from_secs(2), client.request_text(req)).await, Ok(Ok(t)) if t.trim() == "ok")
}

/// etcd's JSON gateway: delete every key under `prefix/`.
async fn delete_etcd_prefix(etcd_url: &str, prefix: &str) -> Result<()> {
    let b64 = |s: String| serde_json::to_value(k8s_openapi::ByteString(s.into_bytes())).expect("bytes serialize");
    // `/` + 1 = `0`: the range covers exactly the keys below `prefix/`.
    let body = serde_json::json!({"key": b64(format!("{prefix}/")), "range_end": b64(format!("{prefix}0"))});
    let resp = reqwest::Client::new().post(format!("{etcd_url}/v3/kv/deleterange")).json(&body).send().await?;
    if !resp.status().is_success() {
        return Err(Error::Command { what: format!("deleting etcd prefix {prefix}"), detail: resp.text().await.unwrap_or_default() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_has_the_cluster_api_shape() {
        let text = kubeconfig_text("c1", 26600, "-----BEGIN CERTIFICATE-----\nx\n", "tok");
        let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("c1-admin@c1"));
        assert_eq!(kc.clusters[0].name, "c1");
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:26600"));
        assert!(cluster.certificate_authority_data.as_deref().is_some_and(|d| !d.contains("BEGIN")), "base64, not PEM");
        assert_eq!(kc.auth_infos[0].name, "c1-admin");
        let ctx = kc.contexts[0].context.as_ref().unwrap();
        assert_eq!((ctx.cluster.as_str(), ctx.user.as_deref()), ("c1", Some("c1-admin")));
    }
}
