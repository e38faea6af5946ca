//! Who may change what: rows belong to the user who created them, admins (by configuration or
//! `api-service admin grant`) may change any; registration open, closed or by invitation; answers that
//! give away nothing (a taken username or e-mail look the same) and carry security headers. On both
//! databases.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, error_code, isbn13, spawn_app_with, status_json};

const PASSWORD: &str = "correct horse";

/// Registers `name` (with `token` as the registering admin's, if given) and logs in: the bearer token.
async fn user(app: &TestApp, name: &str) -> String {
    let response =
        app.register(&json!({"username": name, "email": format!("{name}@example.org"), "password": PASSWORD})).await;
    assert_eq!(response.status(), StatusCode::CREATED, "register {name}");
    login(app, name).await
}

async fn login(app: &TestApp, name: &str) -> String {
    let (status, body) = status_json(app.login(&json!({"username": name, "password": PASSWORD})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

fn book(n: u64) -> Value {
    json!({"title": format!("Book {n}"), "author": "Ada Lovelace", "isbn": isbn13(n), "published_year": 1843})
}

fn movie(n: u64) -> Value {
    json!({"title": format!("Movie {n}"), "year": 1999})
}

async fn created_id(response: reqwest::Response) -> String {
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().expect("id").to_string()
}

async fn only_owners_and_admins_change_rows(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.admin_users = vec!["boss".into()], None).await;
    let (alice, bob, boss) = (user(&app, "alice").await, user(&app, "bob").await, user(&app, "boss").await);
    for (resource, body, other) in [("books", book(1), book(2)), ("movies", movie(1), movie(2))] {
        let id = created_id(app.create(resource, Some(&alice), &body).await).await;

        // Bob may read it, not change or delete it.
        assert_eq!(app.read(resource, &id).await.status(), StatusCode::OK);
        let (status, answer) = status_json(app.update(resource, Some(&bob), &id, &other).await).await;
        assert_eq!((status, error_code(&answer)), (StatusCode::FORBIDDEN, "forbidden"), "{resource}: {answer}");
        let (status, answer) = status_json(app.delete(resource, Some(&bob), &id).await).await;
        assert_eq!((status, error_code(&answer)), (StatusCode::FORBIDDEN, "forbidden"), "{resource}: {answer}");
        let (_, unchanged) = status_json(app.read(resource, &id).await).await;
        assert_eq!(unchanged["title"], body["title"], "{resource}: Bob's refused update changed nothing");

        // Alice may; so may an admin named in ADMIN_USERS.
        assert_eq!(app.update(resource, Some(&alice), &id, &other).await.status(), StatusCode::OK, "{resource}");
        assert_eq!(app.update(resource, Some(&boss), &id, &body).await.status(), StatusCode::OK, "{resource}");
        // A missing row is 404 for everyone, not 403.
        assert_eq!(app.delete(resource, Some(&bob), "999999").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.delete(resource, Some(&boss), &id).await.status(), StatusCode::NO_CONTENT, "{resource}");
    }

    // The admin role granted in the database (`api-service admin grant`), and revoked.
    let carol = user(&app, "carol").await;
    let id = created_id(app.create("books", Some(&alice), &book(3)).await).await;
    assert_eq!(app.delete("books", Some(&carol), &id).await.status(), StatusCode::FORBIDDEN);
    assert!(app.state.db.set_role("carol", "admin").await.expect("grant"));
    assert_eq!(app.update("books", Some(&carol), &id, &book(4)).await.status(), StatusCode::OK);
    assert!(app.state.db.set_role("carol", "user").await.expect("revoke"));
    assert_eq!(app.delete("books", Some(&carol), &id).await.status(), StatusCode::FORBIDDEN, "revoked at once");
    assert!(!app.state.db.set_role("nobody", "admin").await.expect("no such user"));
}

async fn registration_can_be_closed_or_by_invitation(backend: Backend) {
    use api_service::config::Registration;

    // Closed: nobody registers by themselves; an admin registers users.
    let app = spawn_app_with(backend, |c| c.registration = Registration::Closed, None).await;
    let body = |name: &str| json!({"username": name, "email": format!("{name}@example.org"), "password": PASSWORD});
    let (status, answer) = status_json(app.register(&body("eve")).await).await;
    assert_eq!((status, error_code(&answer)), (StatusCode::FORBIDDEN, "forbidden"), "{answer}");
    let hash = app.state.passwords.hash(PASSWORD.to_string()).await.expect("hash");
    app.state.db.create_user("root", "root@example.org", &hash).await.expect("the first admin, by hand");
    assert!(app.state.db.set_role("root", "admin").await.expect("grant"));
    let root = login(&app, "root").await;
    let by_admin =
        app.client.post(app.url("/api/v1/users")).bearer_auth(&root).json(&body("dave")).send().await.unwrap();
    assert_eq!(by_admin.status(), StatusCode::CREATED);
    let dave = login(&app, "dave").await;
    let by_user =
        app.client.post(app.url("/api/v1/users")).bearer_auth(&dave).json(&body("mallory")).send().await.unwrap();
    assert_eq!(by_user.status(), StatusCode::FORBIDDEN, "a plain user cannot register others");

    // By invitation: only with the token.
    let invitation = "invite-0123456789abcdef";
    let app = spawn_app_with(
        backend,
        |c| {
            c.registration = Registration::Invitation;
            c.registration_invitation_token = Some(api_service::Secret::new(invitation));
        },
        None,
    )
    .await;
    assert_eq!(app.register(&body("eve")).await.status(), StatusCode::FORBIDDEN);
    let mut wrong = body("eve");
    wrong["invitation"] = "invite-guess".into();
    assert_eq!(app.register(&wrong).await.status(), StatusCode::FORBIDDEN);
    let mut right = body("eve");
    right["invitation"] = invitation.into();
    assert_eq!(app.register(&right).await.status(), StatusCode::CREATED);
}

async fn answers_give_nothing_away_and_carry_security_headers(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.behind_tls = true, None).await;
    user(&app, "alice").await;
    let taken_name = status_json(
        app.register(&json!({"username": "alice", "email": "other@example.org", "password": PASSWORD})).await,
    )
    .await;
    let taken_email = status_json(
        app.register(&json!({"username": "other", "email": "alice@example.org", "password": PASSWORD})).await,
    )
    .await;
    assert_eq!(taken_name.0, StatusCode::CONFLICT);
    assert_eq!(taken_name, taken_email, "a taken username and a taken e-mail answer alike");

    let response = app.login(&json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store", "a token is never cached");
    for response in [app.healthz().await, app.read("books", "1").await, response] {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(headers["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    }
    let plain = spawn_app_with(backend, |_| {}, None).await;
    assert!(plain.healthz().await.headers().get("strict-transport-security").is_none(), "HSTS only behind TLS");
}

crate::on_both_databases!(
    backend:
    only_owners_and_admins_change_rows,
    registration_can_be_closed_or_by_invitation,
    answers_give_nothing_away_and_carry_security_headers,
);
