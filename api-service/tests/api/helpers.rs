//! `spawn_app()`: a real server on port 0 with a fresh database per test (a temporary SQLite file, or
//! a PostgreSQL database with a random name that is dropped afterwards), and one method per endpoint.

use std::sync::atomic::Ordering;

use api_service::{AppState, Application, Config, Secret};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};

/// The signing secret test apps use (so tests can forge expired or foreign tokens).
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789";

/// Which database a test app uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// Base URL of the test PostgreSQL server (no database part).
pub fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { name: String },
}

/// A running app.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The port.
    pub port: u16,
    /// `http://127.0.0.1:PORT` of the admin server (`/metrics`), when it runs.
    pub admin_address: Option<String>,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The app's state (database pool, config).
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    db: TestDb,
}

/// The configuration tests start from: defaults (plus whatever the environment sets), then overridden.
pub fn test_config() -> Config {
    let mut config = Config::from_env().expect("default configuration");
    config.host = [127, 0, 0, 1].into();
    config.port = 0;
    config.jwt_secret = Some(Secret::new(JWT_SECRET));
    config.environment = api_service::config::Environment::Development;
    // Cheap hashes: debug builds of argon2 are slow and the cost is not what these tests check.
    config.argon2_memory_kib = 1024;
    config.argon2_iterations = 1;
    config.upload_bucket = None;
    config.s3_force_path_style = true;
    config.factorial_max = 100_000;
    config.upload_max_bytes = 10 * 1024 * 1024;
    config.body_limit_bytes = 64 * 1024;
    config.request_timeout_secs = 30;
    config.database_max_connections = 5;
    // The tests of other features make many requests from one address; the limits have tests of their
    // own (`limits.rs`), which turn them on.
    config.rate_limits = false;
    config.admin_addr = api_service::config::AdminAddr(Some(([127, 0, 0, 1], 0).into()));
    config
}

/// Creates a database for `backend`; returns its URL and the handle that removes it.
async fn create_database(backend: Backend) -> (String, TestDb) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}", dir.path().join("api.db").display());
            (url, TestDb::Sqlite(dir))
        }
        Backend::Postgres => {
            let base = postgres_base_url();
            let name = format!("api_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = PgConnection::connect(&format!("{base}/postgres")).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL tests need a server at {base} (set TEST_POSTGRES_URL to another one): {e}. \
                     These tests are not skipped when it is down."
                )
            });
            conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                .await
                .unwrap_or_else(|e| panic!("creating test database {name} on {base}: {e}"));
            conn.close().await.ok();
            (format!("{base}/{name}"), TestDb::Postgres { name })
        }
    }
}

/// Starts an app on `backend` with the test configuration.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}, None).await
}

/// Starts an app after `tweak` edits the configuration, with an optional AWS SDK configuration.
pub async fn spawn_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
    sdk_config: Option<aws_config::SdkConfig>,
) -> TestApp {
    let (url, db) = create_database(backend).await;
    let mut config = test_config();
    config.database_url = Secret::new(url);
    tweak(&mut config);
    let app = Application::build(config, sdk_config).await.expect("application starts");
    let port = app.port();
    let admin_address = app.admin_addr().map(|addr| format!("http://{addr}"));
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        admin_address,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        state,
        shutdown: Some(tx),
        db,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let TestDb::Postgres { name } = &self.db {
            // Drop the database from a thread of its own (Drop cannot await); FORCE ends the app's
            // remaining pooled connections.
            let name = name.clone();
            let base = postgres_base_url();
            let dropper = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&format!("{base}/postgres")).await {
                        let _ =
                            conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str()).await;
                    }
                });
            });
            let _ = dropper.join();
        }
    }
}

/// Status and JSON body of a response (Null when the body is empty or not JSON).
pub async fn status_json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts the service's error shape and returns the error code.
pub fn error_code(body: &Value) -> &str {
    let error = body.get("error").unwrap_or_else(|| panic!("not an error body: {body}"));
    assert!(error["message"].is_string(), "error without message: {body}");
    error["code"].as_str().unwrap_or_else(|| panic!("error without code: {body}"))
}

/// A valid ISBN-13 made from a number (978 prefix plus check digit).
pub fn isbn13(n: u64) -> String {
    let body = format!("978{:09}", n % 1_000_000_000);
    let sum: u32 =
        body.chars().enumerate().map(|(i, c)| c.to_digit(10).unwrap() * if i % 2 == 0 { 1 } else { 3 }).sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

impl TestApp {
    /// `url` for a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    /// `GET /healthz`.
    pub async fn healthz(&self) -> Response {
        self.get("/healthz").await
    }

    /// `GET /readyz`.
    pub async fn readyz(&self) -> Response {
        self.get("/readyz").await
    }

    /// `GET /metrics` from the admin server.
    pub async fn metrics(&self) -> String {
        let admin = self.admin_address.as_deref().expect("the admin server runs");
        let response = self.client.get(format!("{admin}/metrics")).send().await.expect("request sent");
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> Value {
        self.get("/openapi.json").await.json().await.unwrap()
    }

    /// `GET /api/v1/factorial?{query}`.
    pub async fn factorial(&self, query: &str) -> Response {
        self.get(&format!("/api/v1/factorial?{query}")).await
    }

    /// `POST /api/v1/users`.
    pub async fn register(&self, body: &Value) -> Response {
        self.client.post(self.url("/api/v1/users")).json(body).send().await.unwrap()
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, body: &Value) -> Response {
        self.client.post(self.url("/api/v1/auth/login")).json(body).send().await.unwrap()
    }

    /// Registers a user and logs in; returns the bearer token.
    pub async fn token(&self) -> String {
        let name = format!("user{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let response = self
            .register(&json!({"username": name, "email": format!("{name}@example.org"), "password": "correct horse"}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let (status, body) =
            status_json(self.login(&json!({"username": name, "password": "correct horse"})).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    fn authed(&self, builder: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// `GET /api/v1/{resource}?{query}` (resource: `books` or `movies`).
    pub async fn list(&self, resource: &str, query: &str) -> Response {
        self.get(&format!("/api/v1/{resource}?{query}")).await
    }

    /// `POST /api/v1/{resource}`.
    pub async fn create(&self, resource: &str, token: Option<&str>, body: &Value) -> Response {
        let builder = self.client.post(self.url(&format!("/api/v1/{resource}"))).json(body);
        self.authed(builder, token).send().await.unwrap()
    }

    /// `GET /api/v1/{resource}/{id}`.
    pub async fn read(&self, resource: &str, id: &str) -> Response {
        self.get(&format!("/api/v1/{resource}/{id}")).await
    }

    /// `PUT /api/v1/{resource}/{id}`.
    pub async fn update(&self, resource: &str, token: Option<&str>, id: &str, body: &Value) -> Response {
        let builder = self.client.put(self.url(&format!("/api/v1/{resource}/{id}"))).json(body);
        self.authed(builder, token).send().await.unwrap()
    }

    /// `DELETE /api/v1/{resource}/{id}`.
    pub async fn delete(&self, resource: &str, token: Option<&str>, id: &str) -> Response {
        let builder = self.client.delete(self.url(&format!("/api/v1/{resource}/{id}")));
        self.authed(builder, token).send().await.unwrap()
    }

    /// `POST /api/v1/{resource}` with a raw body and content type.
    pub async fn create_raw(&self, resource: &str, token: &str, content_type: &str, body: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/{resource}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/v1/uploads` with one `file` part.
    pub async fn upload(&self, token: Option<&str>, file_name: &str, bytes: Vec<u8>) -> Response {
        let part =
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()).mime_str("image/png").unwrap();
        let form = reqwest::multipart::Form::new().text("note", "ignored").part("file", part);
        let builder = self.client.post(self.url("/api/v1/uploads")).multipart(form);
        self.authed(builder, token).send().await.unwrap()
    }

    /// Marks the app as shutting down (what the signal handler does).
    pub fn mark_shutting_down(&self) {
        self.state.shutting_down.store(true, Ordering::Relaxed);
    }
}

/// Runs each named `async fn(TestApp)` once on SQLite and once on PostgreSQL, as
/// `<name>::sqlite` and `<name>::postgres`. With `backend:` first, each is an `async fn(Backend)` that
/// starts its own apps (for a configuration of its own).
#[macro_export]
macro_rules! on_both_databases {
    (@call app $name:ident $backend:ident) => {
        super::$name($crate::helpers::spawn_app($crate::helpers::Backend::$backend).await).await
    };
    (@call backend $name:ident $backend:ident) => {
        super::$name($crate::helpers::Backend::$backend).await
    };
    (@each $arg:ident; $($name:ident),*) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                $crate::on_both_databases!(@call $arg $name Sqlite);
            }
            #[tokio::test]
            async fn postgres() {
                $crate::on_both_databases!(@call $arg $name Postgres);
            }
        }
    )*};
    (backend: $($name:ident),* $(,)?) => { $crate::on_both_databases!(@each backend; $($name),*); };
    ($($name:ident),* $(,)?) => { $crate::on_both_databases!(@each app; $($name),*); };
}
