//! Object names as Cluster API makes them, and the key the simulator files a Cluster under.

use std::io::Read;

/// `n` random lowercase letters, like the suffixes CAPI's topology controller appends.
pub fn random_suffix(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_err() {
        // Not random, but unique enough within one process: names only need to differ.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(7);
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = (nanos >> (i * 5 % 27)) as u8);
    }
    buf.iter().map(|b| (b'a' + b % 26) as char).collect()
}

/// Random hex for tokens.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<cluster>-<mdname>-<5 random>` for a topology's MachineDeployment.
pub fn machine_deployment(cluster: &str, md: &str) -> String {
    format!("{cluster}-{md}-{}", random_suffix(5))
}

/// `<md>-<5 random>` for a worker Machine (its Node has the same name).
pub fn worker_machine(md: &str) -> String {
    format!("{md}-{}", random_suffix(5))
}

/// `<cluster>-cp-<5 random>` for the control-plane Machine.
pub fn control_plane_machine(cluster: &str) -> String {
    format!("{cluster}-cp-{}", random_suffix(5))
}

/// `<cluster>-kubeconfig`: the Secret name the control-plane contract prescribes.
pub fn kubeconfig_secret(cluster: &str) -> String {
    format!("{cluster}-kubeconfig")
}

/// `sim://<namespace>/<machine>`: the simulated cloud's instance ID.
pub fn provider_id(ns: &str, machine: &str) -> String {
    format!("sim://{ns}/{machine}")
}

/// `<namespace>/<cluster>`: how records and tasks are keyed.
pub fn key(ns: &str, cluster: &str) -> String {
    format!("{ns}/{cluster}")
}

/// The etcd prefix of a workload cluster's API server.
pub fn etcd_prefix(ns: &str, cluster: &str) -> String {
    format!("/mck8s-testenv/capi/{ns}/{cluster}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cluster_api() {
        let md = machine_deployment("c1", "md-0");
        assert!(md.starts_with("c1-md-0-") && md.len() == "c1-md-0-".len() + 5, "{md}");
        assert!(md["c1-md-0-".len()..].bytes().all(|b| b.is_ascii_lowercase()));
        let m = worker_machine(&md);
        assert_eq!(m.len(), md.len() + 6);
        assert!(control_plane_machine("c1").starts_with("c1-cp-"));
        assert_eq!(kubeconfig_secret("c1"), "c1-kubeconfig");
        assert_eq!(provider_id("ns", "m"), "sim://ns/m");
        assert_eq!(etcd_prefix("ns", "c1"), "/mck8s-testenv/capi/ns/c1");
        assert_ne!(random_suffix(5), random_suffix(5));
        assert_eq!(random_hex(16).len(), 32);
    }
}
