//! HTTP routes, one module per resource, and shared request/response types.

pub mod books;
pub mod factorial;
pub mod health;
pub mod movies;
pub mod openapi;
pub mod uploads;
pub mod users;
pub mod well_known;

use axum::{
    Router,
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use tower_http::timeout::TimeoutLayer;

use crate::{
    db::Page,
    error::ApiError,
    limits::{Route, limit},
    startup::AppState,
};

/// Default page size of list endpoints.
pub const DEFAULT_LIMIT: i64 = 20;
/// Largest page size of list endpoints.
pub const MAX_LIMIT: i64 = 100;

/// Every route of the service (without the envelope; see [`crate::startup::router`]).
///
/// Routes that can wait (on the database, S3) have the request timeout (`REQUEST_TIMEOUT_SECS`, 408).
/// Routes that answer from memory in microseconds do not: a timer per request was 1.3 µs of a 12 µs
/// request, for a timeout that could never fire. Factorial's large N runs under the same timeout
/// inside its handler, around the wait for the computation.
pub fn routes(state: &AppState) -> Router<AppState> {
    let immediate = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/openapi.json", get(openapi::handler))
        .route("/.well-known/openid-configuration", get(well_known::openid_configuration))
        .route("/.well-known/jwks.json", get(well_known::jwks))
        .route("/api/v1/factorial", limit(state, Route::Factorial, get(factorial::factorial)));
    let waiting = Router::new()
        .route("/readyz", get(health::readyz))
        .route("/api/v1/books", get(books::list).post(books::create))
        .route("/api/v1/books/{id}", get(books::read).put(books::update).delete(books::delete))
        .route("/api/v1/movies", get(movies::list).post(movies::create))
        .route("/api/v1/movies/{id}", get(movies::read).put(movies::update).delete(movies::delete))
        .route("/api/v1/users", limit(state, Route::Register, post(users::register)))
        .route("/api/v1/auth/login", limit(state, Route::Login, post(users::login)))
        .merge(uploads::routes(state))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.config.request_timeout()));
    immediate.merge(waiting)
}

/// `?limit=&offset=` of list endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    pub offset: Option<i64>,
}

impl ListQuery {
    /// The validated page (400 when out of range).
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!("`limit` must be between 1 and {MAX_LIMIT}")));
        }
        let offset = self.offset.unwrap_or(0);
        if !(0..=i64::from(i32::MAX)).contains(&offset) {
            return Err(ApiError::BadRequest("`offset` must be between 0 and 2147483647".into()));
        }
        Ok(Page { limit, offset })
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct PageOf<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Page size asked for.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// Offset of the next page, null on the last page.
    pub next_offset: Option<i64>,
}

impl<T> PageOf<T> {
    /// Builds a page from up to `limit + 1` rows (the extra row only says whether a next page exists).
    pub fn new(mut items: Vec<T>, page: Page) -> Self {
        let more = items.len() as i64 > page.limit;
        items.truncate(usize::try_from(page.limit).unwrap_or(0));
        let next_offset = more.then_some(page.offset + page.limit);
        Self { items, limit: page.limit, offset: page.offset, next_offset }
    }
}

/// Trims a required text field and checks its length (1..=max characters) and that it has no
/// control characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::Validation(format!("{field} must not be empty")));
    }
    checked_text(field, value, max)
}

/// Like [`required_text`] for optional fields: absent or blank becomes `None`.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => checked_text(field, v, max).map(Some),
    }
}

fn checked_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::Validation(format!("{field} must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!("{field} must not contain control characters")));
    }
    Ok(value.to_owned())
}
