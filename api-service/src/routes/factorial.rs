//! `GET /api/v1/factorial?number=N` (reference system 002, see examples/README.md).

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use crate::{
    error::{ApiError, Json, Query},
    factorial::{INLINE_MAX, factorial_decimal, factorial_on_thread, parse_number},
    startup::AppState,
};

/// The query string.
#[derive(Debug, Deserialize)]
pub struct FactorialQuery {
    /// N, as text so that every malformed value gets the same clear 400.
    pub number: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct FactorialResponse {
    /// N.
    pub number: u64,
    /// N! in decimal.
    pub factorial: String,
}

/// N!, exact. Large N runs on a thread of its own, at most one computation per CPU at a time, so it
/// never stalls the request workers; when the request times out or the client goes away, the
/// computation stops and frees its CPU.
pub async fn factorial(
    State(state): State<AppState>,
    Query(query): Query<FactorialQuery>,
) -> Result<Json<FactorialResponse>, ApiError> {
    let number = parse_number(query.number.as_deref(), state.config.factorial_max)?;
    let factorial = if number <= INLINE_MAX {
        factorial_decimal(number)
    } else {
        // The request timeout (the route has no timeout layer: small N answers at once).
        let computed = async {
            let permit =
                state.cpu_permits.clone().acquire_owned().await.map_err(|e| ApiError::Internal(e.to_string()))?;
            factorial_on_thread(number, permit, state.metrics.clone()).await
        };
        tokio::time::timeout(state.config.request_timeout(), computed).await.map_err(|_| ApiError::Status {
            status: StatusCode::REQUEST_TIMEOUT,
            message: "request timeout".into(),
        })??
    };
    Ok(Json(FactorialResponse { number, factorial }))
}
