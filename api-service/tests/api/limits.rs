//! Rate limits: 429 `rate_limited` with `Retry-After`, per client address, per user and per account.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, error_code, spawn_app_with, status_json};

const PASSWORD: &str = "correct horse";

async fn limited_app(backend: Backend, tweak: impl FnOnce(&mut api_service::Config)) -> TestApp {
    spawn_app_with(
        backend,
        |c| {
            c.rate_limits = true;
            tweak(c);
        },
        None,
    )
    .await
}

async fn register(app: &TestApp, name: &str) -> reqwest::Response {
    app.register(&json!({"username": name, "email": format!("{name}@example.org"), "password": PASSWORD})).await
}

fn assert_limited(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &serde_json::Value) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(error_code(body), "rate_limited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
}

async fn the_sixth_failed_login_in_a_minute_for_one_account_is_refused(backend: Backend) {
    let app = limited_app(backend, |_| {}).await;
    assert_eq!(register(&app, "alice").await.status(), StatusCode::CREATED);
    assert_eq!(register(&app, "bob").await.status(), StatusCode::CREATED);
    let wrong = json!({"username": "alice", "password": "wrong password"});
    for attempt in 1..=5 {
        let (status, body) = status_json(app.login(&wrong).await).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"), "attempt {attempt}");
    }
    let sixth = app.login(&wrong).await;
    let headers = sixth.headers().clone();
    let (status, body) = status_json(sixth).await;
    assert_limited(status, &headers, &body);
    // Locked: even the right password waits, so guessing gains nothing.
    let right = app.login(&json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another account is not affected.
    let bob = app.login(&json!({"username": "bob", "password": PASSWORD})).await;
    assert_eq!(bob.status(), StatusCode::OK);
}

async fn a_flood_of_anonymous_factorials_is_refused_while_users_are_served(backend: Backend) {
    let app = limited_app(backend, |c| c.rate_limit_factorial_per_minute = 10).await;
    assert_eq!(register(&app, "carol").await.status(), StatusCode::CREATED);
    let (_, login) = status_json(app.login(&json!({"username": "carol", "password": PASSWORD})).await).await;
    let token = login["access_token"].as_str().expect("token").to_owned();
    let mut refused = 0;
    for _ in 0..30 {
        let response = app.factorial("number=10").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let headers = response.headers().clone();
            let (status, body) = status_json(response).await;
            assert_limited(status, &headers, &body);
            refused += 1;
        } else {
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    assert!(refused >= 19, "at most 10 (and a fraction) of 30 anonymous requests are served: {refused} refused");
    for _ in 0..20 {
        let response =
            app.client.get(app.url("/api/v1/factorial?number=10")).bearer_auth(&token).send().await.expect("factorial");
        assert_eq!(response.status(), StatusCode::OK, "the authenticated user keeps being served");
    }
}

async fn registrations_per_address_and_the_proxy_header(backend: Backend) {
    let app = limited_app(backend, |c| {
        c.rate_limit_register_per_minute = 2;
        c.trusted_proxy_header = Some("x-forwarded-for".into());
    })
    .await;
    let from = |ip: &str, name: &str| {
        let body = json!({"username": name, "email": format!("{name}@example.org"), "password": PASSWORD});
        app.client
            .post(app.url("/api/v1/users"))
            .header("x-forwarded-for", format!("10.9.9.9, {ip}"))
            .json(&body)
            .send()
    };
    assert_eq!(from("192.0.2.1", "user1").await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(from("192.0.2.1", "user2").await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(from("192.0.2.1", "user3").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    // The proxy's last entry is the client: another client behind the same proxy is not limited, and
    // a forged first entry changes nothing.
    assert_eq!(from("192.0.2.2", "user4").await.unwrap().status(), StatusCode::CREATED);
}

crate::on_both_databases!(
    backend:
    the_sixth_failed_login_in_a_minute_for_one_account_is_refused,
    a_flood_of_anonymous_factorials_is_refused_while_users_are_served,
    registrations_per_address_and_the_proxy_header,
);
