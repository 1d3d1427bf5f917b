//! The real `storehook` binary as a child process: started with a configuration file, stopped
//! with SIGTERM (or killed), its `/metrics` read.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::app::{storehook_binary, wait_until_ready};

/// A running `storehook serve`; killed when dropped if still running.
#[derive(Debug)]
pub struct Storehook {
    child: Child,
    pub address: String,
    http: reqwest::Client,
}

impl Storehook {
    /// `storehook serve --config <config>`, listening on `port`; waits until `/readyz` says ready.
    pub async fn serve(config: &Path, port: u16) -> Storehook {
        Storehook::serve_with(config, port, &[]).await
    }

    /// [`Storehook::serve`] with extra environment variables (`STOREHOOK__…` overrides).
    pub async fn serve_with(config: &Path, port: u16, env: &[(&str, &str)]) -> Storehook {
        let child = Command::new(storehook_binary())
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            // Logs (warnings and up in the tests' configurations) go to the test's output.
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("storehook serve starts");
        let process = Storehook {
            child,
            address: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        wait_until_ready(&process.http, &process.address).await;
        process
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM, as an orchestrator stopping the container does.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Wait (polling) for the process to exit, at most `within`: its status, or `None` if it is
    /// still running.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The sum of the samples of `metric` (exposed name, e.g. `storehook_webhook_attempts_total`)
    /// whose labels contain `labels` (e.g. `outcome="delivered"`; empty for all).
    pub async fn metric(&self, metric: &str, labels: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("storehook answers /metrics")
            .text()
            .await
            .expect("a body");
        sum_of(&text, metric, labels)
    }
}

impl Drop for Storehook {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// The sum of the samples of `metric` with `labels` in an exposition text.
pub fn sum_of(exposition: &str, metric: &str, labels: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, label_text) = match series.split_once('{') {
                Some((name, rest)) => (name, rest),
                None => (series, ""),
            };
            (name == metric && label_text.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
