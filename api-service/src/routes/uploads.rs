//! `POST /api/v1/uploads` (reference system 000, see examples/README.md): a multipart file streamed to S3;
//! answers the object key.

use std::pin::pin;

use axum::{
    Router,
    extract::{
        DefaultBodyLimit, Multipart, State,
        multipart::{MultipartError, MultipartRejection},
    },
    http::StatusCode,
    routing::post,
};
use futures::StreamExt;
use serde::Serialize;

use crate::{
    auth::AuthUser,
    error::{ApiError, Json},
    startup::AppState,
    storage::{StoredType, object_key},
};

/// Room for multipart framing and small extra fields on top of `UPLOAD_MAX_BYTES`.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// The upload route, with its own body limit (the JSON limit elsewhere is much smaller).
pub fn routes(state: &AppState) -> Router<AppState> {
    let limit = state.config.upload_max_bytes.saturating_add(MULTIPART_OVERHEAD);
    Router::new()
        .route("/api/v1/uploads", crate::limits::limit(state, crate::limits::Route::Upload, post(upload)))
        .layer(DefaultBodyLimit::max(usize::try_from(limit).unwrap_or(usize::MAX)))
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct UploadResponse {
    /// The S3 object key (`uploads/<uuid>[.<ext>]`).
    pub key: String,
    /// Bytes stored.
    pub size: u64,
    /// Content type stored with the object.
    pub content_type: String,
}

fn multipart_error(err: MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the upload is larger than the limit".into())
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", err.body_text()))
    }
}

/// Reads the multipart body: the part named `file` is streamed to S3 (other parts are skipped).
/// 401 without a token, 503 when no bucket is configured, 413 over `UPLOAD_MAX_BYTES`, 422 without a
/// `file` part, 400 for a malformed body.
pub async fn upload(
    State(state): State<AppState>,
    _user: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    let storage = state
        .storage
        .clone()
        .ok_or_else(|| ApiError::Unavailable("uploads are not configured (UPLOAD_BUCKET)".into()))?;
    let mut multipart = multipart.map_err(|rejection| ApiError::Status {
        status: match rejection.status() {
            s if s.is_server_error() => StatusCode::BAD_REQUEST,
            s => s,
        },
        message: rejection.body_text(),
    })?;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            // Drain and ignore other parts (bounded by the route's body limit).
            let mut other = pin!(field);
            while let Some(chunk) = other.next().await {
                chunk.map_err(multipart_error)?;
            }
            continue;
        }
        let key = object_key(field.file_name());
        let stored_type = StoredType::of(field.content_type(), &state.config.upload_content_types);
        let body = pin!(field.map(|chunk| chunk.map_err(multipart_error)));
        let mut hard_stop = state.hard_stop.subscribe();
        let stored = tokio::select! {
            stored = storage.upload(key, &stored_type, body, state.config.upload_max_bytes) => stored?,
            _ = hard_stop.wait_for(|stop| *stop) => {
                return Err(ApiError::Unavailable("the service is shutting down".into()));
            }
        };
        tracing::info!(key = %stored.key, size = stored.size, "upload stored");
        return Ok((
            StatusCode::CREATED,
            Json(UploadResponse { key: stored.key, size: stored.size, content_type: stored_type.content_type }),
        ));
    }
    Err(ApiError::Validation("multipart field `file` is required".into()))
}
