//! `GET /openapi.json` describes every route, and every described route exists.

use reqwest::{Method, StatusCode};

use crate::helpers::{Backend, spawn_app, status_json};

/// Every (method, path) the service serves.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
    ("get", "/.well-known/openid-configuration"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/api/v1/factorial"),
    ("get", "/api/v1/books"),
    ("post", "/api/v1/books"),
    ("get", "/api/v1/books/{id}"),
    ("put", "/api/v1/books/{id}"),
    ("delete", "/api/v1/books/{id}"),
    ("get", "/api/v1/movies"),
    ("post", "/api/v1/movies"),
    ("get", "/api/v1/movies/{id}"),
    ("put", "/api/v1/movies/{id}"),
    ("delete", "/api/v1/movies/{id}"),
    ("post", "/api/v1/users"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/uploads"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options", "trace"];

#[tokio::test]
async fn the_document_covers_every_route_and_nothing_else() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc = app.openapi().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();

    let mut documented = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                assert!(operation["responses"].is_object(), "{method} {path} has no responses");
                assert!(operation["operationId"].is_string(), "{method} {path} has no operationId");
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    let mut expected: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    documented.sort();
    expected.sort();
    assert_eq!(documented, expected);

    // Every documented operation is routed: not the fallback's 404, not 405.
    for (method, path) in &expected {
        let url = app.url(&path.replace("{id}", "1"));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, body) = status_json(app.client.request(method.clone(), url).send().await.unwrap()).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(body["error"]["message"], "no route for this path", "{method} {path}");
    }

    // Every referenced schema exists.
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(doc["components"]["schemas"][name].is_object(), "missing schema {name}");
    }
}
