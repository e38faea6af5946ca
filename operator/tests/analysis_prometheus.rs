//! Rollout analysis against a real Prometheus server: an exporter the test runs serves request
//! counters of three revisions (6 serving before the rollout, 7 a good release, 8 a bad one answering
//! 5% errors); Prometheus scrapes it every second; the checks query it as they would in a cluster.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use ecsop::analysis::prometheus::{PromQueries, Prometheus};
use ecsop::analysis::{Bound, Check, Judgement, Tally, judge};

/// Requests per second each revision serves, and the share that fail.
const REVISIONS: &[(&str, f64, f64)] = &[("6", 200.0, 0.001), ("7", 200.0, 0.001), ("8", 200.0, 0.05)];

/// Serves `app_requests_total{revision,code}`: counters that grow with time at each revision's rate.
async fn exporter() -> SocketAddr {
    let started = Instant::now();
    let metrics = move || async move {
        let seconds = started.elapsed().as_secs_f64();
        let mut text = String::from("# TYPE app_requests_total counter\n");
        for (revision, rate, errors) in REVISIONS {
            let all = (rate * seconds).floor();
            let failed = (rate * errors * seconds).floor();
            text.push_str(&format!("app_requests_total{{revision=\"{revision}\",code=\"200\"}} {}\n", all - failed));
            text.push_str(&format!("app_requests_total{{revision=\"{revision}\",code=\"500\"}} {failed}\n"));
        }
        text
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn error_ratio() -> PromQueries {
    PromQueries {
        value: r#"sum(rate(app_requests_total{revision="$revision",code=~"5.."}[$window])) / sum(rate(app_requests_total{revision="$revision"}[$window]))"#.into(),
        requests: r#"sum(increase(app_requests_total{revision="$revision"}[$window]))"#.into(),
    }
}

fn errors_check() -> Check {
    Check {
        name: "errors".into(),
        bound: Bound { max: Some(0.01), max_ratio_to_old: Some(2.0) },
        min_requests: 500.0,
        failed_intervals: 2,
    }
}

/// Waits until Prometheus has enough scrapes for a 5 s window.
async fn scraped(prometheus: &Prometheus) {
    let started = Instant::now();
    loop {
        let query = r#"count_over_time(app_requests_total{revision="6",code="200"}[10s])"#;
        if prometheus.query(query, SystemTime::now()).await.unwrap().is_some_and(|n| n >= 6.0) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "Prometheus did not scrape the exporter within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn the_prometheus_check_passes_a_good_release_and_aborts_a_bad_one() {
    let server = ecsop_testkit::prometheus::Prometheus::start(&[exporter().await]).await;
    let prometheus = Prometheus::new(&server.address, Duration::from_secs(5)).unwrap();
    scraped(&prometheus).await;
    let queries = error_ratio();
    queries.validate().unwrap();
    let check = errors_check();
    let window = Duration::from_secs(5);

    let good = prometheus.measure(&queries, "7", "6", window, SystemTime::now()).await.unwrap();
    assert!(good.new.requests >= 500.0, "{good:?}");
    assert!(good.new.value.unwrap() < 0.01, "{good:?}");
    assert_eq!(judge(&check, &good), Judgement::Passed, "{good:?}");

    // The bad release: the first failed interval counts, the second aborts with both values.
    let mut tally = Tally::default();
    let bad = prometheus.measure(&queries, "8", "6", window, SystemTime::now()).await.unwrap();
    let first = judge(&check, &bad);
    assert!(matches!(&first, Judgement::Failed(why) if why.contains("above 0.01")), "{first:?}");
    assert_eq!(tally.record(&check, &bad, &first), None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = prometheus.measure(&queries, "8", "6", window, SystemTime::now()).await.unwrap();
    let abort = tally.record(&check, &again, &judge(&check, &again)).expect("the second failed interval aborts");
    let new = abort.measured.new.value.unwrap();
    let old = abort.measured.old.value.unwrap();
    assert!((0.03..0.07).contains(&new), "new revision's error ratio {new}");
    assert!(old < 0.01, "old revision's error ratio {old}");
    let message = abort.to_string();
    assert!(message.starts_with("check errors failed 2 intervals"), "{message}");
    assert!(message.contains("window 5s"), "{message}");

    // The same check with the bound on the ratio alone: 5% against ~0.1% is far over 2x.
    let ratio_only = Check { bound: Bound { max: None, max_ratio_to_old: Some(2.0) }, ..check.clone() };
    assert!(matches!(judge(&ratio_only, &again), Judgement::Failed(_)));
}

#[tokio::test]
async fn queries_prometheus_cannot_judge_are_errors_that_say_why() {
    let server = ecsop_testkit::prometheus::Prometheus::start(&[exporter().await]).await;
    let prometheus = Prometheus::new(&server.address, Duration::from_secs(5)).unwrap();
    scraped(&prometheus).await;
    let now = SystemTime::now();

    // Several series: the check must aggregate.
    let error = prometheus.query("app_requests_total", now).await.unwrap_err().to_string();
    assert!(error.contains("series") && error.contains("sum(...)"), "{error}");
    // Not PromQL: Prometheus's own parser refuses it, and its reason is passed on.
    let error = prometheus.query("sum(rate(app_requests_total[5s]", now).await.unwrap_err().to_string();
    assert!(error.contains("Prometheus refused the query") && error.contains("bad_data"), "{error}");
    // A revision with no series: no value, not zero (an empty release is not a healthy one).
    let missing = prometheus.measure(&error_ratio(), "99", "6", Duration::from_secs(5), now).await.unwrap();
    assert_eq!(missing.new.value, None);
    assert_eq!(missing.new.requests, 0.0);
    assert!(matches!(judge(&errors_check(), &missing), Judgement::Inconclusive(_)));
    // A range vector is not one number.
    let error = prometheus.query("app_requests_total[5s]", now).await.unwrap_err().to_string();
    assert!(error.contains("must return one number"), "{error}");

    drop(server);
    let error = prometheus.query("vector(1)", SystemTime::now()).await.unwrap_err().to_string();
    assert!(error.contains("querying Prometheus at http://127.0.0.1:"), "{error}");
}
