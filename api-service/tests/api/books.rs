//! `/api/v1/books`: CRUD, conflicts, validation, auth rules, pagination — on both databases.

use jsonwebtoken::{EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{JWT_SECRET, TestApp, error_code, isbn13, status_json},
    on_both_databases,
};

fn book(n: u64) -> Value {
    json!({"title": format!("Book {n}"), "author": "Ada Lovelace", "isbn": isbn13(n), "published_year": 1843})
}

on_both_databases!(
    books_crud_round_trip,
    books_conflicts_are_409,
    books_validation_is_422,
    books_malformed_bodies_are_400_and_415,
    books_writes_need_a_valid_token,
    books_paginate,
);

async fn books_crud_round_trip(app: TestApp) {
    let token = app.token().await;
    let response = app.create("books", Some(&token), &book(1)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_i64().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/books/{id}"));
    assert_eq!(created["title"], "Book 1");
    assert_eq!(created["isbn"], isbn13(1));
    assert_eq!(created["published_year"], 1843);

    let (status, read) = status_json(app.read("books", &id).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);

    let changed = json!({"title": "  Notes  ", "author": "A. A. Lovelace", "isbn": "978-0-306-40615-7"});
    let (status, updated) = status_json(app.update("books", Some(&token), &id, &changed).await).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["title"], "Notes");
    assert_eq!(updated["isbn"], "9780306406157");
    assert_eq!(updated["published_year"], Value::Null);
    assert_eq!(updated["created_at"], created["created_at"]);

    let (_, list) = status_json(app.list("books", "").await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0], updated);

    assert_eq!(app.delete("books", Some(&token), &id).await.status(), StatusCode::NO_CONTENT);
    let (status, body) = status_json(app.read("books", &id).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
    assert_eq!(app.delete("books", Some(&token), &id).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.update("books", Some(&token), &id, &book(2)).await.status(), StatusCode::NOT_FOUND);
    let (status, body) = status_json(app.read("books", "not-a-number").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "bad_request");
}

async fn books_conflicts_are_409(app: TestApp) {
    let token = app.token().await;
    assert_eq!(app.create("books", Some(&token), &book(1)).await.status(), StatusCode::CREATED);
    let (status, body) = status_json(app.create("books", Some(&token), &book(1)).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "conflict");
    // The same ISBN written with hyphens is the same ISBN.
    let hyphenated = isbn13(1);
    let hyphenated = format!("{}-{}", &hyphenated[..3], &hyphenated[3..]);
    let mut same = book(9);
    same["isbn"] = json!(hyphenated);
    assert_eq!(app.create("books", Some(&token), &same).await.status(), StatusCode::CONFLICT);

    let (_, second) = status_json(app.create("books", Some(&token), &book(2)).await).await;
    let id = second["id"].to_string();
    let (status, _) = status_json(app.update("books", Some(&token), &id, &book(1)).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A failed write changes nothing.
    let (_, unchanged) = status_json(app.read("books", &id).await).await;
    assert_eq!(unchanged, second);
}

async fn books_validation_is_422(app: TestApp) {
    let token = app.token().await;
    let cases = [
        json!({"title": "", "author": "A", "isbn": isbn13(1)}),
        json!({"title": "   ", "author": "A", "isbn": isbn13(1)}),
        json!({"title": "T", "author": "", "isbn": isbn13(1)}),
        json!({"title": "x".repeat(201), "author": "A", "isbn": isbn13(1)}),
        json!({"title": "T\u{0007}", "author": "A", "isbn": isbn13(1)}),
        json!({"title": "T", "author": "A", "isbn": "12345"}),
        json!({"title": "T", "author": "A", "isbn": "9780306406158"}),
        json!({"title": "T", "author": "A", "isbn": isbn13(1), "published_year": 1449}),
        json!({"title": "T", "author": "A", "isbn": isbn13(1), "published_year": 2101}),
        json!({"title": "T", "author": "A", "isbn": isbn13(1), "published_year": "1999"}),
        json!({"title": "T", "author": "A"}),
        json!({"title": "T", "author": "A", "isbn": isbn13(1), "extra": true}),
        json!({"title": 5, "author": "A", "isbn": isbn13(1)}),
        json!([1, 2, 3]),
    ];
    for case in &cases {
        let (status, body) = status_json(app.create("books", Some(&token), case).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{case}: {body}");
        assert_eq!(error_code(&body), "validation_failed", "{case}");
    }
    let (_, list) = status_json(app.list("books", "").await).await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

async fn books_malformed_bodies_are_400_and_415(app: TestApp) {
    let token = app.token().await;
    let (status, body) = status_json(app.create_raw("books", &token, "application/json", "{\"title\": ").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "bad_request");
    let (status, body) = status_json(app.create_raw("books", &token, "text/plain", "{}").await).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&body), "unsupported_media_type");
    let huge = format!("{{\"title\": \"{}\"}}", "x".repeat(100 * 1024));
    let (status, body) = status_json(app.create_raw("books", &token, "application/json", &huge).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "payload_too_large");
}

async fn books_writes_need_a_valid_token(app: TestApp) {
    let token = app.token().await;
    let (_, created) = status_json(app.create("books", Some(&token), &book(1)).await).await;
    let id = created["id"].to_string();

    let now = chrono::Utc::now().timestamp();
    let expired = encode(
        &Header::default(),
        &json!({"sub": "1", "name": "x", "iat": now - 7200, "exp": now - 3600}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let foreign = encode(
        &Header::default(),
        &json!({"sub": "1", "name": "x", "iat": now, "exp": now + 3600}),
        &EncodingKey::from_secret(b"some-other-secret-some-other-secret"),
    )
    .unwrap();
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [None, Some("garbage"), Some(expired.as_str()), Some(foreign.as_str()), Some(tampered.as_str())] {
        for response in [
            app.create("books", bad, &book(2)).await,
            app.update("books", bad, &id, &book(2)).await,
            app.delete("books", bad, &id).await,
        ] {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let (_, body) = status_json(response).await;
            assert_eq!(error_code(&body), "unauthorized");
        }
    }
    // Non-bearer schemes are refused too.
    let basic = app
        .client
        .post(app.url("/api/v1/books"))
        .header("authorization", format!("Basic {token}"))
        .json(&book(3))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    // Reads are public, and nothing was written.
    let (status, read) = status_json(app.read("books", &id).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);
    let (_, list) = status_json(app.list("books", "").await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

async fn books_paginate(app: TestApp) {
    let token = app.token().await;
    for n in 0..25 {
        assert_eq!(app.create("books", Some(&token), &book(n)).await.status(), StatusCode::CREATED);
    }
    let (status, first) = status_json(app.list("books", "").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["items"].as_array().unwrap().len(), 20);
    assert_eq!(first["limit"], 20);
    assert_eq!(first["offset"], 0);
    assert_eq!(first["next_offset"], 20);
    assert_eq!(first["items"][0]["title"], "Book 0");

    let (_, last) = status_json(app.list("books", "limit=10&offset=20").await).await;
    let items = last["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0]["title"], "Book 20");
    assert_eq!(last["next_offset"], Value::Null);

    let (_, exact) = status_json(app.list("books", "limit=5&offset=20").await).await;
    assert_eq!(exact["next_offset"], Value::Null);
    let (_, past) = status_json(app.list("books", "offset=1000").await).await;
    assert!(past["items"].as_array().unwrap().is_empty());
    let (_, max) = status_json(app.list("books", "limit=100").await).await;
    assert_eq!(max["items"].as_array().unwrap().len(), 25);

    for query in ["limit=0", "limit=101", "limit=-1", "offset=-1", "limit=abc", "limit=1.5", "page=2"] {
        let (status, body) = status_json(app.list("books", query).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(error_code(&body), "bad_request");
    }
}
