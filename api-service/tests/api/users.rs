//! `POST /api/v1/users` and `POST /api/v1/auth/login` — on both databases.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{TestApp, error_code, isbn13, status_json},
    on_both_databases,
};

on_both_databases!(
    register_and_login,
    registration_conflicts_are_409,
    registration_validation_is_422,
    login_failures_do_not_enumerate_users
);

async fn register_and_login(app: TestApp) {
    let response =
        app.register(&json!({"username": "Ada", "email": "Ada@Example.org", "password": "analytical engine"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(user["username"], "ada");
    assert_eq!(user["email"], "ada@example.org");
    assert!(user["id"].is_i64());
    assert!(user.get("password").is_none() && user.get("password_hash").is_none(), "{user}");

    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'ada'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    for login in ["ada", "ADA", "ada@example.org"] {
        let (status, token) =
            status_json(app.login(&json!({"username": login, "password": "analytical engine"})).await).await;
        assert_eq!(status, StatusCode::OK, "{login}: {token}");
        assert_eq!(token["token_type"], "Bearer");
        assert_eq!(token["expires_in"], 3600);
        // The token authorizes writes.
        let access = token["access_token"].as_str().unwrap();
        assert_eq!(access.split('.').count(), 3);
        let book = json!({"title": "T", "author": "A", "isbn": isbn13(rand_id())});
        assert_eq!(app.create("books", Some(access), &book).await.status(), StatusCode::CREATED);
    }
}

fn rand_id() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_fields().0)
}

async fn registration_conflicts_are_409(app: TestApp) {
    let first = json!({"username": "grace", "email": "grace@example.org", "password": "cobol-1959"});
    assert_eq!(app.register(&first).await.status(), StatusCode::CREATED);
    for again in [
        json!({"username": "GRACE", "email": "other@example.org", "password": "cobol-1959"}),
        json!({"username": "hopper", "email": "Grace@example.org", "password": "cobol-1959"}),
    ] {
        let (status, body) = status_json(app.register(&again).await).await;
        assert_eq!(status, StatusCode::CONFLICT, "{again}");
        assert_eq!(error_code(&body), "conflict");
    }
}

async fn registration_validation_is_422(app: TestApp) {
    for case in [
        json!({"username": "ab", "email": "a@example.org", "password": "long enough"}),
        json!({"username": "with space", "email": "a@example.org", "password": "long enough"}),
        json!({"username": "okname", "email": "not-an-email", "password": "long enough"}),
        json!({"username": "okname", "email": "a@example.org", "password": "short"}),
        json!({"username": "okname", "email": "a@example.org", "password": "p".repeat(129)}),
        json!({"username": "okname", "email": "a@example.org"}),
        json!({"username": "okname", "email": "a@example.org", "password": "long enough", "admin": true}),
    ] {
        let (status, body) = status_json(app.register(&case).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{case}: {body}");
        assert_eq!(error_code(&body), "validation_failed");
    }
}

async fn login_failures_do_not_enumerate_users(app: TestApp) {
    let user = json!({"username": "linus", "email": "linus@example.org", "password": "penguin-1991"});
    assert_eq!(app.register(&user).await.status(), StatusCode::CREATED);
    let wrong_password = app.login(&json!({"username": "linus", "password": "penguin-1992"})).await;
    let unknown_user = app.login(&json!({"username": "nobody", "password": "penguin-1991"})).await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_user.status(), StatusCode::UNAUTHORIZED);
    let (_, a) = status_json(wrong_password).await;
    let (_, b) = status_json(unknown_user).await;
    assert_eq!(a, b, "both failures must look the same");
    assert_eq!(error_code(&a), "invalid_credentials");
    assert_eq!(a["error"]["message"], "invalid credentials");
    let (status, _) = status_json(app.login(&json!({"username": "linus"})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
