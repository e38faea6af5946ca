//! A real Prometheus server for tests (Debian's `prometheus` package, which `scripts/test` installs),
//! scraping the addresses a test gives it every second, with storage in a directory of its own that
//! goes away with the server. Analysis is tested against it rather than against our reading of PromQL.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prometheus; stopped (and its storage removed) when dropped.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
}

/// The server binary: `PROMETHEUS_BIN`, else `prometheus` on the PATH, else Debian's path.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMETHEUS_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free local port")
}

impl Prometheus {
    /// Starts a server that scrapes `targets` (`/metrics`) every second, and waits until it is ready.
    /// Panics, saying how to get one, when the binary is missing: these tests are never skipped.
    pub async fn start(targets: &[SocketAddr]) -> Self {
        let binary = binary();
        assert!(
            binary.is_file(),
            "no Prometheus server at {}: ./scripts/test installs Debian's `prometheus` package \
             (apt-get install prometheus), or set PROMETHEUS_BIN",
            binary.display()
        );
        let dir = std::env::temp_dir().join(format!("ecsop-prometheus-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("a directory for Prometheus");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: test\n    \
             scrape_interval: 1s\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("writing prometheus.yml");
        // A port picked now may be taken before Prometheus binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&binary)
                .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
            let address = format!("http://127.0.0.1:{port}");
            if ready(&mut child, &address, Duration::from_secs(30)).await {
                return Self { child, dir, address };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("Prometheus did not become ready on any of 5 ports");
    }
}

/// Whether the server at `address` answers `/-/ready` within `within` (false as soon as it exits).
async fn ready(child: &mut Child, address: &str, within: Duration) -> bool {
    let client = reqwest::Client::new();
    let url = format!("{address}/-/ready");
    let started = Instant::now();
    while started.elapsed() < within {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
