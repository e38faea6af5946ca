//! `api-service`: the HTTP API that ecsop deploys.
//!
//! One Rust service replacing the five reference systems (Flask upload API, FastAPI books API with an
//! authorizer, Flask factorial API, Flask books API, Django movies/users API):
//!
//! - `GET /api/v1/factorial?number=N`
//! - `/api/v1/books` and `/api/v1/movies` (list, create, read, update, delete)
//! - `POST /api/v1/users`, `POST /api/v1/auth/login` (argon2 password hashes, JWT bearer tokens: HS256,
//!   or ES256/RS256 with the public key at `GET /.well-known/jwks.json` for an API Gateway JWT authorizer)
//! - `POST /api/v1/uploads` (multipart, streamed to S3)
//! - `GET /healthz`, `GET /readyz`, `GET /openapi.json`; `GET /metrics` on the admin address (`ADMIN_ADDR`)
//!
//! [`startup::Application`] binds the listener and serves; [`startup::router`] builds the socket-free
//! router used by `oneshot` tests. `main.rs` is a thin shell over this library.

pub mod auth;
pub mod config;
pub mod db;
pub mod envelope;
pub mod error;
pub mod factorial;
pub mod healthcheck;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod signing;
pub mod startup;
pub mod storage;
pub mod telemetry;

pub use config::{Cli, Command, Config, Secret};
pub use error::{ApiError, Error};
pub use startup::{AppState, Application, router, shutdown_signal};
