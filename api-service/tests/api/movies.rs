//! `/api/v1/movies`: CRUD, conflicts, validation, auth rules, pagination — on both databases.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, error_code, status_json},
    on_both_databases,
};

fn movie(title: &str, year: i64) -> Value {
    json!({"title": title, "year": year, "director": "Fritz Lang", "genre": "Science fiction"})
}

on_both_databases!(
    movies_crud_round_trip,
    movies_conflicts_are_409,
    movies_validation_is_422,
    movies_writes_need_a_token,
    movies_paginate
);

async fn movies_crud_round_trip(app: TestApp) {
    let token = app.token().await;
    let response = app.create("movies", Some(&token), &movie("Metropolis", 1927)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].to_string();
    assert_eq!(created["year"], 1927);
    assert_eq!(created["director"], "Fritz Lang");

    let (status, read) = status_json(app.read("movies", &id).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);

    let (status, updated) = status_json(
        app.update("movies", Some(&token), &id, &json!({"title": "M", "year": 1931, "director": " ", "genre": null}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["title"], "M");
    assert_eq!(updated["director"], Value::Null);
    assert_eq!(updated["genre"], Value::Null);

    assert_eq!(app.delete("movies", Some(&token), &id).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.read("movies", &id).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.delete("movies", Some(&token), &id).await.status(), StatusCode::NOT_FOUND);
    let (status, body) = status_json(app.update("movies", Some(&token), &id, &movie("X", 2000)).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
}

async fn movies_conflicts_are_409(app: TestApp) {
    let token = app.token().await;
    assert_eq!(app.create("movies", Some(&token), &movie("Solaris", 1972)).await.status(), StatusCode::CREATED);
    let (status, body) = status_json(app.create("movies", Some(&token), &movie("Solaris", 1972)).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "conflict");
    // Same title, another year: a remake, allowed.
    let (status, remake) = status_json(app.create("movies", Some(&token), &movie("Solaris", 2002)).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = remake["id"].to_string();
    assert_eq!(app.update("movies", Some(&token), &id, &movie("Solaris", 1972)).await.status(), StatusCode::CONFLICT);
}

async fn movies_validation_is_422(app: TestApp) {
    let token = app.token().await;
    for case in [
        json!({"title": "", "year": 2000}),
        json!({"title": "T", "year": 1887}),
        json!({"title": "T", "year": 2101}),
        json!({"title": "T"}),
        json!({"title": "T", "year": 2000, "genre": "g".repeat(51)}),
        json!({"title": "T", "year": 2000, "director": "d".repeat(201)}),
        json!({"title": "T", "year": 2000, "rating": 5}),
        json!({"title": "T", "year": 20.5}),
    ] {
        let (status, body) = status_json(app.create("movies", Some(&token), &case).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{case}: {body}");
        assert_eq!(error_code(&body), "validation_failed");
    }
}

async fn movies_writes_need_a_token(app: TestApp) {
    let token = app.token().await;
    let (_, created) = status_json(app.create("movies", Some(&token), &movie("Alien", 1979)).await).await;
    let id = created["id"].to_string();
    assert_eq!(app.create("movies", None, &movie("Aliens", 1986)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.update("movies", Some("x.y.z"), &id, &movie("Aliens", 1986)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.delete("movies", None, &id).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.read("movies", &id).await.status(), StatusCode::OK);
    assert_eq!(app.list("movies", "").await.status(), StatusCode::OK);
}

async fn movies_paginate(app: TestApp) {
    let token = app.token().await;
    for year in 2000..2007 {
        assert_eq!(app.create("movies", Some(&token), &movie("Annual", year)).await.status(), StatusCode::CREATED);
    }
    let (_, page) = status_json(app.list("movies", "limit=3&offset=3").await).await;
    let years: Vec<i64> = page["items"].as_array().unwrap().iter().map(|m| m["year"].as_i64().unwrap()).collect();
    assert_eq!(years, [2003, 2004, 2005]);
    assert_eq!(page["next_offset"], 6);
    let (_, last) = status_json(app.list("movies", "limit=3&offset=6").await).await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert_eq!(last["next_offset"], Value::Null);
    assert_eq!(app.list("movies", "limit=1000").await.status(), StatusCode::BAD_REQUEST);
}
