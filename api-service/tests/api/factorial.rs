//! `GET /api/v1/factorial`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Backend, error_code, spawn_app, spawn_app_with, status_json};

#[tokio::test]
async fn small_factorials_are_exact() {
    let app = spawn_app(Backend::Sqlite).await;
    for (n, expected) in [("0", "1"), ("1", "1"), ("5", "120"), ("20", "2432902008176640000"), ("007", "5040")] {
        let (status, body) = status_json(app.factorial(&format!("number={n}")).await).await;
        assert_eq!(status, StatusCode::OK, "{n}: {body}");
        assert_eq!(body["factorial"], expected, "{n}");
    }
    let (_, body) = status_json(app.factorial("number=100").await).await;
    let digits = body["factorial"].as_str().unwrap();
    assert_eq!(digits.len(), 158);
    assert!(digits.starts_with("93326215443944152681699238856266700490715968264381621468592963895217599993229915608941463976156518286253697920827223758251185210916864"));
    assert!(digits.ends_with(&"0".repeat(24)));
    assert_eq!(body["number"], 100);
}

#[tokio::test]
async fn large_factorials_are_exact() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, body) = status_json(app.factorial("number=20000").await).await;
    assert_eq!(status, StatusCode::OK);
    let digits = body["factorial"].as_str().unwrap();
    // 20000! has 77338 digits and 4999 trailing zeros.
    assert_eq!(digits.len(), 77_338);
    assert_eq!(digits.len() - digits.trim_end_matches('0').len(), 4_999);
    assert!(digits.starts_with("18192063202303451348276417568664587660716"), "{}", &digits[..50]);
}

#[tokio::test]
async fn invalid_numbers_get_400_json() {
    let app = spawn_app(Backend::Sqlite).await;
    for query in [
        "",
        "number=",
        "number=-1",
        "number=1.5",
        "number=abc",
        "number=1e3",
        "number=%201",
        "number=100001",
        "number=99999999999999999999999999999",
        "number=1&number=2",
    ] {
        let (status, body) = status_json(app.factorial(query).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}: {body}");
        assert_eq!(error_code(&body), "bad_request", "{query:?}");
    }
}

#[tokio::test]
async fn the_cap_is_configurable() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.factorial_max = 50, None).await;
    assert_eq!(app.factorial("number=50").await.status(), StatusCode::OK);
    let (status, body) = status_json(app.factorial("number=51").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("at most 50"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_factorials_do_not_block_other_requests() {
    let app = spawn_app(Backend::Sqlite).await;
    let started = Instant::now();
    let heavy: Vec<_> = (0..4)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/api/v1/factorial?number=100000");
            tokio::spawn(async move {
                let response = client.get(url).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                response.bytes().await.unwrap();
                Instant::now()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // While the factorials run, cheap requests are still answered promptly.
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(app.healthz().await.status(), StatusCode::OK);
        assert!(t.elapsed() < Duration::from_millis(500), "healthz took {:?}", t.elapsed());
    }
    let light_done = Instant::now();
    let mut last_heavy = started;
    for handle in heavy {
        last_heavy = last_heavy.max(handle.await.unwrap());
    }
    assert!(last_heavy > light_done, "the factorials should still have been running");
}

/// A metric of the app's own registry (0 when absent).
fn metric(app: &crate::helpers::TestApp, name: &str) -> f64 {
    let text = app.state.metrics.render().unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits (up to `bound`) until no factorial is computing; returns how long that took.
async fn until_no_factorial_runs(app: &crate::helpers::TestApp, bound: Duration) -> Duration {
    let started = Instant::now();
    while metric(app, "api_factorial_computations_running") > 0.0 {
        assert!(
            started.elapsed() < bound,
            "a factorial nobody waits for still computes {bound:?} later: it was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// 3,000,000! takes seconds to compute and convert (19.3 million digits); a cancelled one stops at its
/// next step (at most 2^20 bits converted, ~20 ms, or the 0.5 s factorial itself).
const SLOW_N: &str = "3000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factorial_that_timed_out_stops_computing_and_frees_its_cpu() {
    let app = spawn_app_with(
        Backend::Sqlite,
        |c| {
            c.factorial_max = 3_000_000;
            c.request_timeout_secs = 1;
        },
        None,
    )
    .await;
    let (status, body) = status_json(app.factorial(&format!("number={SLOW_N}")).await).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(metric(&app, "api_factorial_computations_running"), 1.0, "the computation was running at the timeout");

    let freed = until_no_factorial_runs(&app, Duration::from_secs(10)).await;
    assert_eq!(metric(&app, "api_factorial_computations_cancelled_total"), 1.0, "it stopped early, not at the end");
    eprintln!("CPU free {freed:?} after the 408");
    // Every permit is back: as many large factorials as there are CPUs run at once again.
    let permits = app.state.cpu_permits.available_permits();
    assert_eq!(permits, std::thread::available_parallelism().map_or(2, usize::from));
    assert_eq!(app.factorial("number=5000").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factorial_whose_client_went_away_stops_computing() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.factorial_max = 3_000_000, None).await;
    // The server would wait 30 s; the client gives up after 1.
    let gone = app
        .client
        .get(app.url(&format!("/api/v1/factorial?number={SLOW_N}")))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(gone.is_err_and(|e| e.is_timeout()), "the client timed out");
    until_no_factorial_runs(&app, Duration::from_secs(10)).await;
    assert_eq!(metric(&app, "api_factorial_computations_cancelled_total"), 1.0);
    assert_eq!(metric(&app, "api_factorial_computations_running"), 0.0);
}
