//! Graceful shutdown of the real binary: SIGTERM during slow requests under load lets every in-flight
//! request finish with 200, refuses new connections, and exits 0.

use std::{process::Stdio, time::Duration};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Digits of 100000!.
const DIGITS_100000: usize = 456_574;

async fn in_flight(client: &reqwest::Client, base: &str) -> f64 {
    let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("api_http_requests_in_flight "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-service"))
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("api.db").display()))
        .env("JWT_SECRET", crate::helpers::JWT_SECRET)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("REQUEST_TIMEOUT_SECS", "300")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env_remove("UPLOAD_BUCKET")
        .env_remove("APP_ENV")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the api-service binary starts");
    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());

    // The bound addresses are in the "listening" log lines.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (addr, admin) = tokio::time::timeout(Duration::from_secs(20), async {
        let (mut addr, mut admin) = (None, None);
        while let Some(line) = lines.next_line().await.unwrap() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if let Some(bound) = event["addr"].as_str() {
                addr = Some(bound.to_owned());
            }
            if let Some(bound) = event["admin_addr"].as_str() {
                admin = Some(bound.to_owned());
            }
            if let (Some(addr), Some(admin)) = (&addr, &admin) {
                return (addr.clone(), admin.clone());
            }
        }
        panic!("the binary exited before listening");
    })
    .await
    .expect("the binary listens within 20 s");
    let logs = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });
    let base = format!("http://{addr}");
    let admin = format!("http://{admin}");

    // Load: slow requests, each on its own connection.
    const SLOW: usize = 6;
    let slow: Vec<_> = (0..SLOW)
        .map(|_| {
            let url = format!("{base}/api/v1/factorial?number=100000");
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let response = client.get(url).send().await.expect("in-flight request completes");
                let status = response.status();
                let body: serde_json::Value = response.json().await.expect("a complete JSON body");
                (status, body["factorial"].as_str().map_or(0, str::len))
            })
        })
        .collect();

    // Wait until all of them are being served (metrics are on the admin address: scrapes do not count).
    let probe = reqwest::Client::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while in_flight(&probe, &admin).await < SLOW as f64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the slow requests reach the server");

    kill(pid, Signal::SIGTERM).unwrap();

    // New connections are refused while the in-flight requests still drain.
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tokio::net::TcpStream::connect(&addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await;
    assert!(refused.is_ok(), "new connections were still accepted after SIGTERM");
    let still_running = slow.iter().filter(|h| !h.is_finished()).count();
    // The admin server still answers while the API drains: readiness says 503, metrics show the drain.
    if still_running > 0 {
        let ready = probe.get(format!("{admin}/readyz")).send().await.expect("the admin server answers while draining");
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(in_flight(&probe, &admin).await >= 1.0);
    }
    drop(probe);

    for handle in slow {
        let (status, digits) = handle.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(digits, DIGITS_100000);
    }
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("the binary exits").unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let logs = logs.await.unwrap().join("\n");
    assert!(logs.contains("shutdown complete"), "{logs}");
    assert!(still_running > 0, "every slow request had finished before the listener closed; the test proved nothing");
}
