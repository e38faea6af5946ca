//! Prometheus metrics (prometheus-client, prefix `api`): request counts and latency histograms by
//! method, route template and status, plus in-flight requests.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::State,
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::error::ApiError;

/// Labels of the request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// Labels of the latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: &'static str,
    route: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The registry and the metrics the middleware records.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    in_flight: Gauge,
    factorial_running: Gauge,
    factorial_cancelled: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with the HTTP metrics registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("api");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let in_flight = Gauge::default();
        registry.register("http_requests", "HTTP requests by method, route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by method and route", latency.clone());
        registry.register("http_requests_in_flight", "HTTP requests being served", in_flight.clone());
        let factorial_running = Gauge::default();
        let factorial_cancelled = Counter::default();
        registry.register(
            "factorial_computations_running",
            "Large factorials being computed on threads of their own (each holds one CPU permit)",
            factorial_running.clone(),
        );
        registry.register(
            "factorial_computations_cancelled",
            "Large factorials stopped before the end because nobody waited for them any more",
            factorial_cancelled.clone(),
        );
        Self { registry, requests, latency, in_flight, factorial_running, factorial_cancelled }
    }

    /// The registry, to register more metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> Result<String, ApiError> {
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
        Ok(out)
    }
}

impl Metrics {
    /// Counts a request in flight until the guard is dropped (also when the request is dropped
    /// mid-way because the client went away).
    pub fn start_request(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Records a finished request: `route` is its template (`unmatched` when no route matched, which
    /// keeps cardinality bounded), `method` from [`method_label`].
    pub fn record(&self, method: &'static str, route: String, status: StatusCode, latency: Duration) {
        let labels = LatencyLabels { method, route };
        self.latency.get_or_create(&labels).observe(latency.as_secs_f64());
        let LatencyLabels { method, route } = labels;
        self.requests.get_or_create(&RequestLabels { method, route, status: status.as_u16() }).inc();
    }
}

impl Metrics {
    /// Counts a large factorial as running until the guard is dropped.
    pub fn factorial_started(&self) -> Computing {
        self.factorial_running.inc();
        Computing { running: self.factorial_running.clone(), cancelled: self.factorial_cancelled.clone() }
    }
}

/// A factorial being computed; see [`Metrics::factorial_started`].
#[derive(Debug)]
pub struct Computing {
    running: Gauge,
    cancelled: Counter,
}

impl Computing {
    /// Records that the computation stopped early, because nobody waited for it.
    pub fn cancelled(&self) {
        self.cancelled.inc();
    }
}

impl Drop for Computing {
    fn drop(&mut self) {
        self.running.dec();
    }
}

/// A request in flight; see [`Metrics::start_request`].
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The method as a label: the standard ones by name, any extension method (which hyper accepts, and a
/// client can make up by the thousand) as `other`, so clients cannot grow the label sets.
pub fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// `GET /metrics`.
pub async fn handler(State(metrics): State<Arc<Metrics>>) -> Result<Response, ApiError> {
    let body = metrics.render()?;
    let mut response = Body::from(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(method_label(&Method::from_bytes(b"FROBNICATE").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}
