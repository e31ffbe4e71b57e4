//! Starting detached processes and stopping exactly those, by PID.
//!
//! A PID alone could be reused by an unrelated process after ours exited, so every record also
//! keeps the process start time from `/proc/PID/stat`; we signal only when both match.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcRecord {
    /// e.g. `cluster1/kube-apiserver`.
    pub name: String,
    pub pid: i32,
    pub start_time: u64,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Extra environment variables (e.g. `GOGC` for the Go components).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

/// Starts `program args` in its own process group (so it outlives `testenv up` and a Ctrl-C
/// there does not reach it), appending stdout and stderr to `log`.
pub fn spawn(name: &str, program: &Path, args: &[String], env: &[(String, String)], log: &Path) -> Result<ProcRecord> {
    use std::os::unix::process::CommandExt;
    let out = OpenOptions::new().create(true).append(true).open(log).map_err(|e| Error::io(log, e))?;
    let err = out.try_clone().map_err(|e| Error::io(log, e))?;
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Command { what: format!("starting {}", program.display()), detail: e.to_string() })?;
    let pid = child.id() as i32;
    // The child is reaped by init once we exit; until then a zombie is harmless.
    std::mem::forget(child);
    let start_time = start_time(pid).unwrap_or(0);
    tracing::debug!(name, pid, "started");
    Ok(ProcRecord { name: name.into(), pid, start_time, program: program.into(), args: args.into(), env: env.into(), log: log.into() })
}

/// Field 22 of `/proc/PID/stat`: start time in clock ticks since boot.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z'))).unwrap_or(false)
}

impl ProcRecord {
    /// True while the process we started (same PID and start time) still runs.
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time) && !is_zombie(self.pid)
    }

    /// SIGTERM, then SIGKILL after `grace`; returns once the process is gone.
    #[allow(unsafe_code, reason = "waitpid on a child this process spawned, to reap it")]
    pub fn stop(&self, grace: Duration) {
        if !self.alive() {
            return;
        }
        signal(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.alive() {
            tracing::warn!(name = %self.name, pid = self.pid, "did not stop on SIGTERM, killing");
            signal(self.pid, libc::SIGKILL);
            while self.alive() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // If we are its parent (same `testenv` process started it), reap it.
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), libc::WNOHANG) };
    }

    /// SIGSTOP: the process keeps its sockets open and answers nothing, like a hung server.
    pub fn freeze(&self) {
        if self.alive() {
            signal(self.pid, libc::SIGSTOP);
        }
    }

    /// SIGCONT after [`ProcRecord::freeze`].
    pub fn thaw(&self) {
        if self.alive() {
            signal(self.pid, libc::SIGCONT);
        }
    }

    /// Resident set size in bytes, from `/proc/PID/status`.
    pub fn rss_bytes(&self) -> Option<u64> {
        if !self.alive() {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Starts the same command again (after `stop`), returning the new record.
    pub fn restart(&self) -> Result<ProcRecord> {
        spawn(&self.name, &self.program, &self.args, &self.env, &self.log)
    }
}

/// Stops several processes at once: SIGTERM to all, then wait, then SIGKILL the stragglers.
/// Sequential stops would add up every component's graceful-shutdown time.
pub fn stop_all(procs: &[ProcRecord], grace: Duration) {
    let live: Vec<&ProcRecord> = procs.iter().filter(|p| p.alive()).collect();
    for p in &live {
        signal(p.pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while live.iter().any(|p| p.alive()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in live {
        p.stop(Duration::ZERO);
    }
}

#[allow(unsafe_code, reason = "kill(2) on a PID this environment recorded")]
fn signal(pid: i32, sig: i32) {
    // Safety: plain syscall; `pid` is positive and was checked to be our process just before.
    if pid > 0 {
        unsafe { libc::kill(pid, sig) };
    }
}

pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("logs").join(format!("{}.log", name.replace('/', "_")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path) -> ProcRecord {
        spawn("test/sleep", Path::new("sleep"), &["30".to_string()], &[], &dir.join("sleep.log")).unwrap()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mck8s-procs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn stop_ends_the_process_it_started() {
        let dir = temp_dir("stop");
        let rec = sleeper(&dir);
        assert!(rec.alive());
        assert!(rec.rss_bytes().is_some());
        rec.stop(Duration::from_secs(5));
        assert!(!rec.alive());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_reused_pid_is_not_ours() {
        let dir = temp_dir("reuse");
        let rec = sleeper(&dir);
        // Same PID, different start time: what a recycled PID looks like.
        let impostor = ProcRecord { start_time: rec.start_time + 1, ..rec.clone() };
        assert!(!impostor.alive());
        impostor.stop(Duration::from_secs(1));
        assert!(rec.alive(), "stopping a record whose start time differs must not signal the PID");
        stop_all(std::slice::from_ref(&rec), Duration::from_secs(5));
        assert!(!rec.alive());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
