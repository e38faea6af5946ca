//! The envelope every request goes through, as one tower service: request id, tracing span, metrics,
//! panic catching and the JSON error shape.
//!
//! Why one service rather than tower-http's layers stacked with `Router::layer`: each layer there is
//! boxed and cloned per route and per request, and the seven of them (with the timeout) cost 4.7 µs
//! of a 12 µs request on one core, more than the handler, the routing and hyper together. This service
//! does the same work in one pass, with one boxed future.
//!
//! What it does, in order:
//! - takes the `x-request-id` header, or generates a UUID v4 and sets it on the request;
//! - runs the rest inside a `request` span carrying the method, path and request id (failures are
//!   logged by the error type inside it; a DEBUG line closes each request);
//! - counts the request in `/metrics` by method, route template and status, with its latency;
//! - turns a panic in the handler into a logged, generic 500;
//! - gives framework-made errors (405, 408, 413, 415...) the service's JSON error shape, keeping
//!   their headers (e.g. `Allow`);
//! - echoes the request id on the response, with the security headers (`nosniff`, `no-referrer`, HSTS
//!   behind TLS).
//!
//! It is added with `Router::layer`, so it wraps each route and sees the matched route template.

use std::{
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::FutureExt;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::{
    error::{code_for_status, error_response},
    metrics::Metrics,
};

/// The request id header, read from clients and load balancers and echoed on every response.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Adds the [`Envelope`] to every route.
#[derive(Debug, Clone)]
pub struct EnvelopeLayer {
    metrics: Arc<Metrics>,
    hsts: bool,
}

impl EnvelopeLayer {
    /// An envelope recording into `metrics`; `hsts` adds `Strict-Transport-Security` to every answer
    /// (`BEHIND_TLS`).
    pub fn new(metrics: Arc<Metrics>, hsts: bool) -> Self {
        Self { metrics, hsts }
    }
}

impl<S> Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Envelope<S> {
        Envelope { inner, metrics: self.metrics.clone(), hsts: self.hsts }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Envelope<S> {
    inner: S,
    metrics: Arc<Metrics>,
    hsts: bool,
}

impl<S> Service<Request> for Envelope<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let request_id = match request.headers().get(&X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                    .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
                request.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
                id
            }
        };
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = request_id.to_str().unwrap_or(""),
        );
        let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
        let method = crate::metrics::method_label(request.method());
        let metrics = self.metrics.clone();
        let hsts = self.hsts;
        let start = Instant::now();
        // A guard, so a request dropped mid-way (client gone) still leaves the gauge.
        let in_flight = metrics.start_request();
        // The handler's future is built inside the span too (extractors may log).
        let called = span.in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))));
        let respond = async move {
            let outcome = match called {
                Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                Err(panic) => Err(panic),
            };
            let mut response = match outcome {
                Ok(Ok(response)) => json_error_shape(response),
                Ok(Err(infallible)) => match infallible {},
                Err(panic) => panic_response(panic),
            };
            drop(in_flight);
            let status = response.status();
            let latency = start.elapsed();
            metrics.record(method, route, status, latency);
            tracing::debug!(status = status.as_u16(), latency_us = latency.as_micros(), "request finished");
            let headers = response.headers_mut();
            headers.insert(X_REQUEST_ID.clone(), request_id);
            security_headers(headers, hsts);
            Ok(response)
        };
        Box::pin(respond.instrument(span))
    }
}

/// Headers every answer carries: no MIME sniffing (a JSON error is never run as a page), no referrer to
/// other sites, and, behind TLS, HSTS. Set here rather than by a layer of their own: one more layer was
/// 4 µs of a 75 µs book list.
fn security_headers(headers: &mut axum::http::HeaderMap, hsts: bool) {
    use axum::http::header;
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
}

/// Framework-made errors (405, 408 timeout, 413 body limit...) come with an empty or plain-text body:
/// give them the service's JSON error shape, keeping their headers (e.g. `Allow`).
fn json_error_shape(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    let mut replaced = error_response(status, code_for_status(status), &message);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().append(name.clone(), value.clone());
        }
    }
    replaced
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error").into_response()
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, routing::get};
    use tower::ServiceExt;

    use super::*;

    fn app(metrics: Arc<Metrics>) -> Router {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        async fn teapot() -> (StatusCode, &'static str) {
            (StatusCode::IM_A_TEAPOT, "short and stout")
        }
        Router::new()
            .route("/boom", get(boom))
            .route("/teapot/{n}", get(teapot))
            .route("/ok", get(|| async { "fine" }))
            .layer(EnvelopeLayer::new(metrics, false))
    }

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_panic_is_a_json_500_with_the_request_id() {
        let response = app(Arc::new(Metrics::new()))
            .oneshot(Request::get("/boom").header("x-request-id", "req-7").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-request-id"], "req-7");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["message"], "internal server error");
    }

    #[tokio::test]
    async fn plain_errors_get_the_json_shape_and_ids_are_generated() {
        let metrics = Arc::new(Metrics::new());
        let response =
            app(metrics.clone()).oneshot(Request::get("/teapot/3").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert_eq!(body_json(response).await["error"]["message"], "i'm a teapot");
        // 405 keeps its Allow header.
        let response = app(metrics.clone()).oneshot(Request::post("/ok").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(response.headers().contains_key(header::ALLOW));
        assert_eq!(body_json(response).await["error"]["code"], "method_not_allowed");
        let text = metrics.render().unwrap();
        assert!(text.contains(r#"api_http_requests_total{method="GET",route="/teapot/{n}",status="418"} 1"#), "{text}");
        assert!(text.contains(r#"api_http_requests_in_flight 0"#), "{text}");
    }

    #[tokio::test]
    async fn successes_pass_through() {
        let response =
            app(Arc::new(Metrics::new())).oneshot(Request::get("/ok").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"fine");
    }
}
