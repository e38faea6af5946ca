//! `GET /.well-known/openid-configuration` and `GET /.well-known/jwks.json`: what an API Gateway JWT
//! authorizer (or any OpenID Connect relying party) reads to check the service's tokens without calling
//! it. Both answer 404 unless tokens are signed with `JWT_SIGNING_KEY` (an HS256 secret is never
//! published); the discovery document also needs `JWT_ISSUER`.

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use crate::{
    error::{ApiError, Json},
    startup::AppState,
};

/// Verifiers cache keys; five minutes bounds how long a replaced key keeps being served from caches.
const CACHE_CONTROL: &str = "public, max-age=300";

fn cached(document: Value) -> Response {
    let mut response = Json(document).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}

/// The OpenID Connect discovery document: `issuer`, `jwks_uri` and the signing algorithm.
pub async fn openid_configuration(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.jwt.openid_configuration().map(cached).ok_or(ApiError::NotFound("OpenID configuration"))
}

/// The JWK Set with the public signing key.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.jwt.jwks().map(cached).ok_or(ApiError::NotFound("JWK set"))
}
