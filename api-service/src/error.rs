//! Errors: [`Error`] for start-up, [`ApiError`] for requests, and the extractors whose rejections use
//! the one error shape every response uses:
//!
//! ```json
//! {"error": {"code": "validation_failed", "message": "title must not be empty"}}
//! ```
//!
//! Internal details (database and storage errors) are logged with the request's span and never sent
//! to the client, who gets a generic message.

use axum::{
    extract::{
        FromRequest, FromRequestParts,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// Start-up errors of the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The database could not be reached or opened.
    #[error("database connection failed")]
    Database(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// Binding or serving the socket failed.
    #[error("i/o error: {context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Every error a request can end with; each variant maps to one status code and error code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed request (query string, path, JSON syntax, multipart framing).
    #[error("{0}")]
    BadRequest(String),
    /// 422: well-formed but invalid input.
    #[error("{0}")]
    Validation(String),
    /// 401: missing or invalid bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 401: login failed (same answer for an unknown user and a wrong password).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 403: authenticated, but not allowed to do this (another user's row, closed registration).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 429: over a rate limit; `Retry-After` says when to come back.
    #[error("too many requests: try again in {retry_after_secs} s")]
    TooManyRequests {
        /// Seconds until a request may succeed.
        retry_after_secs: u64,
    },
    /// 404: the resource does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the write conflicts with existing data (unique keys).
    #[error("{0}")]
    Conflict(&'static str),
    /// 413: the request body is over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 503: a dependency is not available (database not ready, uploads not configured).
    #[error("{0}")]
    Unavailable(String),
    /// Any other status chosen by a framework rejection (415, 405, 408...).
    #[error("{message}")]
    Status {
        /// The status to answer with.
        status: StatusCode,
        /// Explanation for the client.
        message: String,
    },
    /// 500 (503 when the pool timed out): a database failure; logged, not shown.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// 500 (503 when SQLite stayed busy): a failure of the SQLite read path; logged, not shown.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// 500: any other internal failure; logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Status { status, .. } => *status,
            Self::Database(sqlx::Error::PoolTimedOut) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Sqlite(e) if sqlite_busy(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Sqlite(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden(_) => "forbidden",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Unavailable(_) => "unavailable",
            Self::Status { status, .. } => code_for_status(*status),
            Self::Database(sqlx::Error::PoolTimedOut) => "unavailable",
            Self::Sqlite(e) if sqlite_busy(e) => "unavailable",
            Self::Database(_) | Self::Sqlite(_) | Self::Internal(_) => "internal",
        }
    }
}

/// SQLite gave up waiting for a lock (after the busy timeout): the database is busy, not broken.
fn sqlite_busy(err: &rusqlite::Error) -> bool {
    matches!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// A stable error code for a bare status (used for framework errors and rejections).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        429 => "too_many_requests",
        503 => "unavailable",
        504 => "timeout",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

/// Builds a response in the service's one error shape.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::to_vec(&Body { error: Detail { code, message } }).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = if status.is_server_error() {
            // Internals go to the log (inside the request span, so with the request id), not the client.
            match &self {
                Self::Unavailable(msg) => tracing::warn!(reason = %msg, "dependency unavailable"),
                other => tracing::error!(error = ?other, "request failed"),
            }
            let message = match &self {
                Self::Unavailable(msg) => msg.as_str(),
                Self::Database(sqlx::Error::PoolTimedOut) => "the database is busy, try again",
                Self::Sqlite(e) if sqlite_busy(e) => "the database is busy, try again",
                _ => "internal server error",
            };
            error_response(status, self.code(), message)
        } else {
            error_response(status, self.code(), &self.to_string())
        };
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::TooManyRequests { retry_after_secs } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::Validation(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::BadRequest(e.body_text()),
            other => Self::Status { status: other.status(), message: other.body_text() },
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection.status() {
            s if s.is_server_error() => Self::Internal(rejection.body_text()),
            _ => Self::BadRequest(rejection.body_text()),
        }
    }
}

/// `axum::Json` with rejections in the service's error shape (400 for bad syntax, 422 for bad data,
/// 415 for a missing content type, 413 over the body limit).
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        // As axum::Json does, but starting from 1 KiB rather than 128 bytes: a page of 20 rows is
        // about 3 KiB, and each doubling of the buffer copies what was written so far.
        use bytes::{BufMut, BytesMut};
        let mut body = BytesMut::with_capacity(1024).writer();
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => {
                let mut response = body.into_inner().freeze().into_response();
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            Err(e) => ApiError::Internal(format!("encoding the response: {e}")).into_response(),
        }
    }
}

/// `axum::extract::Query` with rejections in the service's error shape (400).
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` with rejections in the service's error shape (400).
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);
