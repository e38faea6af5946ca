//! `GET /healthz`, `GET /readyz` (API port and admin address), `GET /metrics` (admin address only).

use std::{sync::atomic::Ordering, time::Duration};

use axum::{extract::State, response::Response};
use serde_json::{Value, json};

use crate::{
    error::{ApiError, Json},
    startup::AppState,
};

/// Alive: the process serves HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: the database answers within 2 s and the service is not shutting down (so a load balancer
/// stops sending traffic while in-flight requests drain).
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.shutting_down.load(Ordering::Relaxed) {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    match tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            Err(ApiError::Unavailable("database unreachable".into()))
        }
        Err(_) => Err(ApiError::Unavailable("database did not answer within 2s".into())),
    }
}

/// Prometheus metrics (OpenMetrics text).
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    crate::metrics::handler(State(state.metrics.clone())).await
}
