//! The two `mck8s run --leader-elect` processes under test, and when each led: from their
//! own JSON logs ("became the leader", "lost the leader lease") and from the moments this
//! driver killed them.

use k8s_openapi::jiff::Timestamp;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Controller {
    pub name: String,
    log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// When this driver killed it or found it exited (the end of any leadership then open).
    ended: Vec<Timestamp>,
}

impl Controller {
    pub fn new(name: &str, dir: &Path, args: Vec<String>) -> Self {
        Controller { name: name.into(), log: dir.join(format!("{name}.log")), args, child: None, ended: Vec::new() }
    }

    pub fn start(&mut self, bin: &Path) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(bin)
            .arg("run")
            .args(&self.args)
            .env("POD_NAME", &self.name)
            .env("MCK8S_LOG_JSON", "true")
            .env("MCK8S_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Restarts it if it exited by itself (a leader that lost its Lease exits, and its
    /// Deployment would restart it).
    pub fn keep_running(&mut self, bin: &Path) -> anyhow::Result<bool> {
        let exited = match &mut self.child {
            Some(c) => c.try_wait()?.is_some(),
            None => true,
        };
        if exited {
            self.ended.push(Timestamp::now());
            self.start(bin)?;
        }
        Ok(exited)
    }

    /// SIGKILL: no release of the Lease, no clean shutdown.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.ended.push(Timestamp::now());
        }
    }

    /// `[start, end)` of every time it led; an open one ends now.
    pub fn leaderships(&self) -> Vec<(Timestamp, Timestamp)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut events: Vec<(Timestamp, bool)> = Vec::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let msg = v["fields"]["message"].as_str().unwrap_or("");
            let err = v["fields"]["error"].as_str().unwrap_or("");
            let Some(t) = v["timestamp"].as_str().and_then(|t| t.parse::<Timestamp>().ok()) else { continue };
            if msg == "became the leader" {
                events.push((t, true));
            } else if err.starts_with("lost the leader lease") {
                events.push((t, false));
            }
        }
        events.extend(self.ended.iter().map(|t| (*t, false)));
        events.sort();
        let mut out = Vec::new();
        let mut open: Option<Timestamp> = None;
        for (t, start) in events {
            match (start, open) {
                (true, None) => open = Some(t),
                (false, Some(s)) => {
                    out.push((s, t));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(s) = open {
            out.push((s, Timestamp::now()));
        }
        out
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Pairs of leaderships of different controllers that overlap in time.
pub fn overlapping(controllers: &[Controller]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in controllers.iter().enumerate() {
        for b in &controllers[i + 1..] {
            for (s1, e1) in a.leaderships() {
                for (s2, e2) in b.leaderships() {
                    if s1 < e2 && s2 < e1 {
                        out.push(format!("{} led {s1}..{e1} and {} led {s2}..{e2}", a.name, b.name));
                    }
                }
            }
        }
    }
    out
}
