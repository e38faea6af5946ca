//! `/healthz`, `/readyz`, `/metrics`, request ids, framework errors, the `healthcheck` subcommand.

use reqwest::StatusCode;

use crate::{
    helpers::{Backend, TestApp, error_code, spawn_app, spawn_app_with, status_json},
    on_both_databases,
};

on_both_databases!(ready_when_the_database_answers, unready_when_the_database_is_gone, unready_while_shutting_down);

async fn ready_when_the_database_answers(app: TestApp) {
    let (status, body) = status_json(app.readyz().await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
}

async fn unready_when_the_database_is_gone(app: TestApp) {
    app.state.db.close().await;
    let (status, body) = status_json(app.readyz().await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&body), "unavailable");
    // Liveness does not depend on the database.
    assert_eq!(app.healthz().await.status(), StatusCode::OK);
}

async fn unready_while_shutting_down(app: TestApp) {
    app.mark_shutting_down();
    let (status, body) = status_json(app.readyz().await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["message"], "shutting down");
}

#[tokio::test]
async fn healthz_is_alive() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.healthz().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["status"], "ok");
}

#[tokio::test]
async fn request_ids_are_generated_or_echoed() {
    let app = spawn_app(Backend::Sqlite).await;
    let generated = app.healthz().await;
    let id = generated.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let echoed = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    // Errors carry the id too.
    let missing = app.client.get(app.url("/nope")).header("x-request-id", "err-1").send().await.unwrap();
    assert_eq!(missing.headers()["x-request-id"], "err-1");
}

#[tokio::test]
async fn framework_errors_use_the_json_error_shape() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, body) = status_json(app.get("/no/such/route").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");

    let response = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key("allow"));
    assert_eq!(response.headers()["content-type"], "application/json");
    let (_, body) = status_json(response).await;
    assert_eq!(error_code(&body), "method_not_allowed");
}

#[tokio::test]
async fn request_timeouts_answer_408_json() {
    // Every CPU permit is taken (as by other large factorials), so factorial(5000) waits for one and
    // the 1 s request timeout answers first, whatever the speed of the machine.
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, |c| c.request_timeout_secs = 1, None).await;
    let permits = app.state.cpu_permits.available_permits() as u32;
    let held = app.state.cpu_permits.clone().acquire_many_owned(permits).await.unwrap();
    let started = std::time::Instant::now();
    let (status, body) = status_json(app.factorial("number=5000").await).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(error_code(&body), "request_timeout");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    // Once a permit is free, the same request is answered.
    drop(held);
    let (status, body) = status_json(app.factorial("number=5000").await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = spawn_app(Backend::Sqlite).await;
    app.read("books", "1").await;
    app.read("books", "2").await;
    app.factorial("number=3").await;
    app.get("/unknown/a").await;
    let text = app.metrics().await;
    assert!(
        text.contains(r#"api_http_requests_total{method="GET",route="/api/v1/books/{id}",status="404"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"api_http_requests_total{method="GET",route="/api/v1/factorial",status="200"} 1"#));
    assert!(text.contains(r#"route="unmatched",status="404"} 1"#));
    assert!(text.contains("api_http_request_duration_seconds_bucket"));
    assert!(text.contains("# TYPE api_http_request_duration_seconds histogram"));
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn metrics_are_served_on_the_admin_address_only() {
    let app = spawn_app(Backend::Sqlite).await;
    app.factorial("number=3").await;
    let (status, body) = status_json(app.get("/metrics").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "metrics must not be public on the API port: {body}");
    let admin = app.admin_address.clone().unwrap();
    assert_ne!(admin, app.address);
    let text = app.metrics().await;
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "the 404 above is an API request like any other: {text}"
    );
    // Scrapes are not API traffic.
    app.metrics().await;
    assert!(!app.metrics().await.contains(r#"route="/metrics",status="200""#));
    for probe in ["/healthz", "/readyz"] {
        let response = app.client.get(format!("{admin}{probe}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{probe} on the admin address");
    }
    let response = app.client.get(format!("{admin}/api/v1/factorial?number=3")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "the API is not served on the admin address");
}

#[tokio::test]
async fn the_admin_server_can_be_turned_off_and_never_shares_the_api_port() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.admin_addr = "off".parse().unwrap(), None).await;
    assert_eq!(app.admin_address, None);
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.healthz().await.status(), StatusCode::OK);

    let mut config = crate::helpers::test_config();
    config.port = 8080;
    for same in ["0.0.0.0:8080", "127.0.0.1:8080"] {
        config.admin_addr = same.parse().unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("ADMIN_ADDR") && error.contains("PORT"), "{error}");
    }
    config.admin_addr = "127.0.0.1:9090".parse().unwrap();
    config.validate().unwrap();
    let error = "9090".parse::<api_service::config::AdminAddr>().unwrap_err();
    assert!(error.contains("HOST:PORT"), "{error}");
}

#[tokio::test]
async fn healthcheck_subcommand_exits_0_when_healthy_and_1_when_not() {
    let app = spawn_app(Backend::Sqlite).await;
    let port = app.port;
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_api-service"))
            .arg("healthcheck")
            .env("PORT", port.to_string())
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_api-service"))
        .args(["healthcheck", "--port", &closed.to_string()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unhealthy"));
}
