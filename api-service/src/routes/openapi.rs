//! `GET /openapi.json`: the OpenAPI 3.1 description of every route, built by hand with `serde_json`
//! (no proc-macro framework; an integration test checks that every route is described and that every
//! described route exists).

use std::sync::LazyLock;

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

static DOCUMENT: LazyLock<Vec<u8>> = LazyLock::new(|| serde_json::to_vec(&document()).unwrap_or_default());

/// Serves the document (built once).
pub async fn handler() -> Response {
    let mut response = DOCUMENT.as_slice().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn body(name: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema(name)}}})
}

fn id_param() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64"}}])
}

fn page_params() -> Value {
    json!([
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}
    ])
}

/// CRUD paths for one resource (`books` or `movies`).
fn crud(tag: &str, item: &str, input: &str, conflict: &str) -> (Value, Value) {
    let secured = json!([{"bearer": []}]);
    let collection = json!({
        "get": {
            "tags": [tag], "summary": format!("List {tag} (oldest first)"), "operationId": format!("list_{tag}"),
            "parameters": page_params(),
            "responses": {
                "200": ok("One page", json!({"type": "object", "required": ["items", "limit", "offset", "next_offset"],
                    "properties": {"items": {"type": "array", "items": schema(item)}, "limit": {"type": "integer"},
                    "offset": {"type": "integer"}, "next_offset": {"type": ["integer", "null"]}}})),
                "400": error("Invalid limit or offset")
            }
        },
        "post": {
            "tags": [tag], "summary": format!("Create a {}", item.to_lowercase()), "operationId": format!("create_{tag}"),
            "security": secured, "requestBody": body(input),
            "responses": {
                "201": ok("Created", schema(item)), "400": error("Malformed JSON"), "401": error("Missing or invalid token"),
                "409": error(conflict), "413": error("Body too large"), "415": error("Not JSON"), "422": error("Invalid fields")
            }
        }
    });
    let single = json!({
        "parameters": id_param(),
        "get": {
            "tags": [tag], "summary": format!("Read a {}", item.to_lowercase()), "operationId": format!("read_{tag}"),
            "responses": {"200": ok("Found", schema(item)), "400": error("Invalid id"), "404": error("Not found")}
        },
        "put": {
            "tags": [tag], "summary": format!("Replace a {}", item.to_lowercase()), "operationId": format!("update_{tag}"),
            "security": secured, "requestBody": body(input),
            "responses": {
                "200": ok("Updated", schema(item)), "400": error("Malformed JSON or id"), "401": error("Missing or invalid token"),
                "403": error("Not its owner and not an admin"),
                "404": error("Not found"), "409": error(conflict), "413": error("Body too large"), "415": error("Not JSON"),
                "422": error("Invalid fields")
            }
        },
        "delete": {
            "tags": [tag], "summary": format!("Delete a {}", item.to_lowercase()), "operationId": format!("delete_{tag}"),
            "security": secured,
            "responses": {"204": {"description": "Deleted"}, "401": error("Missing or invalid token"),
                "403": error("Not its owner and not an admin"), "404": error("Not found")}
        }
    });
    (collection, single)
}

/// The OpenAPI document.
pub fn document() -> Value {
    let (books, book) = crud("books", "Book", "BookInput", "Duplicate ISBN");
    let (movies, movie) = crud("movies", "Movie", "MovieInput", "Duplicate title and year");
    let text = |max: u64| json!({"type": "string", "minLength": 1, "maxLength": max});
    let stamp = json!({"type": "string", "format": "date-time"});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "api-service", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Factorials, books, movies, users and uploads: the companion API that ecsop deploys."},
        "paths": {
            "/healthz": {"get": {"tags": ["ops"], "summary": "Liveness", "operationId": "healthz",
                "responses": {"200": ok("Alive", json!({"type": "object"}))}}},
            "/readyz": {"get": {"tags": ["ops"], "summary": "Readiness (database reachable, not shutting down)",
                "operationId": "readyz",
                "responses": {"200": ok("Ready", json!({"type": "object"})), "503": error("Not ready")}}},
            "/openapi.json": {"get": {"tags": ["ops"], "summary": "This document", "operationId": "openapi",
                "responses": {"200": ok("OpenAPI document", json!({"type": "object"}))}}},
            "/api/v1/factorial": {"get": {"tags": ["factorial"], "summary": "Exact N! as a decimal string",
                "operationId": "factorial",
                "parameters": [{"name": "number", "in": "query", "required": true,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": "N, from 0 to FACTORIAL_MAX (default 100000)"}],
                "responses": {"200": ok("N!", schema("Factorial")), "400": error("Missing, not a non-negative integer, or over the cap"),
                    "429": error("Over the rate limit (per address, or per user with a token); see Retry-After")}}},
            "/api/v1/books": books,
            "/api/v1/books/{id}": book,
            "/api/v1/movies": movies,
            "/api/v1/movies/{id}": movie,
            "/api/v1/users": {"post": {"tags": ["users"], "summary": "Register", "operationId": "register",
                "requestBody": body("RegisterInput"),
                "responses": {"201": ok("Registered", schema("User")), "400": error("Malformed JSON"),
                    "401": error("Invalid bearer token (an admin registering someone)"),
                    "403": error("Registration closed, or no valid invitation"),
                    "429": error("Over the registration rate limit; see Retry-After"),
                    "409": error("Username or e-mail cannot be registered (which one is not said)"),
                    "413": error("Body too large"), "415": error("Not JSON"), "422": error("Invalid fields")}}},
            "/.well-known/openid-configuration": {"get": {"tags": ["auth"],
                "summary": "OpenID Connect discovery document (for JWT authorizers such as API Gateway's)",
                "operationId": "openid_configuration",
                "responses": {"200": ok("Discovery document", schema("OpenIdConfiguration")),
                    "404": error("No JWT_SIGNING_KEY or no JWT_ISSUER configured")}}},
            "/.well-known/jwks.json": {"get": {"tags": ["auth"], "summary": "The public key that signs access tokens",
                "operationId": "jwks",
                "responses": {"200": ok("JWK Set", schema("Jwks")), "404": error("No JWT_SIGNING_KEY configured (HS256)")}}},
            "/api/v1/auth/login": {"post": {"tags": ["users"],
                "summary": "Log in: a JWT bearer token (HS256, or ES256/RS256 with JWT_SIGNING_KEY)",
                "operationId": "login", "requestBody": body("LoginInput"),
                "responses": {"200": ok("Token", schema("Token")), "400": error("Malformed JSON"),
                    "401": error("Invalid credentials"), "413": error("Body too large"), "415": error("Not JSON"),
                    "422": error("Missing fields"),
                    "429": error("Over the login rate limit, or too many failed logins for the account; see Retry-After")}}},
            "/api/v1/uploads": {"post": {"tags": ["uploads"], "summary": "Upload a file to S3 (streamed)",
                "operationId": "upload", "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object",
                    "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}},
                "responses": {"201": ok("Stored", schema("Upload")), "400": error("Malformed multipart body"),
                    "401": error("Missing or invalid token"), "413": error("Over UPLOAD_MAX_BYTES"),
                    "429": error("Over the upload rate limit; see Retry-After"),
                    "422": error("No `file` part"), "503": error("Uploads not configured")}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                    "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Factorial": {"type": "object", "required": ["number", "factorial"],
                    "properties": {"number": {"type": "integer"}, "factorial": {"type": "string", "pattern": "^[0-9]+$"}}},
                "Book": {"type": "object", "required": ["id", "title", "author", "isbn", "published_year", "created_at", "updated_at"],
                    "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "author": {"type": "string"},
                        "isbn": {"type": "string"}, "published_year": {"type": ["integer", "null"]},
                        "created_at": stamp, "updated_at": stamp}},
                "BookInput": {"type": "object", "required": ["title", "author", "isbn"], "additionalProperties": false,
                    "properties": {"title": text(200), "author": text(200),
                        "isbn": {"type": "string", "description": "ISBN-10 or ISBN-13 with a valid check digit"},
                        "published_year": {"type": ["integer", "null"], "minimum": 1450, "maximum": 2100}}},
                "Movie": {"type": "object", "required": ["id", "title", "year", "director", "genre", "created_at", "updated_at"],
                    "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "year": {"type": "integer"},
                        "director": {"type": ["string", "null"]}, "genre": {"type": ["string", "null"]},
                        "created_at": stamp, "updated_at": stamp}},
                "MovieInput": {"type": "object", "required": ["title", "year"], "additionalProperties": false,
                    "properties": {"title": text(200), "year": {"type": "integer", "minimum": 1888, "maximum": 2100},
                        "director": {"type": ["string", "null"], "maxLength": 200}, "genre": {"type": ["string", "null"], "maxLength": 50}}},
                "RegisterInput": {"type": "object", "required": ["username", "email", "password"], "additionalProperties": false,
                    "properties": {"username": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{3,32}$"},
                        "email": {"type": "string", "format": "email"}, "password": {"type": "string", "minLength": 8, "maxLength": 128},
                        "invitation": {"type": "string", "description": "The invitation token, when REGISTRATION=invitation"}}},
                "LoginInput": {"type": "object", "required": ["username", "password"], "additionalProperties": false,
                    "properties": {"username": {"type": "string", "description": "Username or e-mail address"},
                        "password": {"type": "string"}}},
                "User": {"type": "object", "required": ["id", "username", "email", "created_at"],
                    "properties": {"id": {"type": "integer"}, "username": {"type": "string"}, "email": {"type": "string"},
                        "created_at": stamp}},
                "Token": {"type": "object", "required": ["access_token", "token_type", "expires_in"],
                    "properties": {"access_token": {"type": "string"}, "token_type": {"const": "Bearer"},
                        "expires_in": {"type": "integer"}}},
                "OpenIdConfiguration": {"type": "object", "required": ["issuer", "jwks_uri", "id_token_signing_alg_values_supported"],
                    "properties": {"issuer": {"type": "string", "format": "uri"}, "jwks_uri": {"type": "string", "format": "uri"},
                        "id_token_signing_alg_values_supported": {"type": "array", "items": {"type": "string"}},
                        "subject_types_supported": {"type": "array", "items": {"type": "string"}},
                        "claims_supported": {"type": "array", "items": {"type": "string"}}}},
                "Jwks": {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {
                    "type": "object", "required": ["kty", "kid", "use", "alg"],
                    "properties": {"kty": {"type": "string"}, "kid": {"type": "string"}, "use": {"const": "sig"},
                        "alg": {"type": "string"}, "crv": {"type": "string"}, "x": {"type": "string"}, "y": {"type": "string"},
                        "n": {"type": "string"}, "e": {"type": "string"}}}}}},
                "Upload": {"type": "object", "required": ["key", "size", "content_type"],
                    "properties": {"key": {"type": "string"}, "size": {"type": "integer"}, "content_type": {"type": "string"}}}
            }
        }
    })
}
