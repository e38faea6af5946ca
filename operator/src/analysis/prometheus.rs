//! The Prometheus source: PromQL instant queries (`GET /api/v1/query`), one per revision, at the same
//! evaluation time, so both revisions are measured on the same window.
//!
//! A check's queries are templates: `$revision` becomes the revision measured (the task definition's
//! revision number, as the service's metrics label it) and `$window` the analysis window in seconds
//! (`60s`), so `rate(x[$window])` covers exactly the interval being judged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::{Measurement, Sample};
use crate::Error;

/// The queries of a Prometheus check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromQueries {
    /// The value judged, for example the 5xx ratio:
    /// `sum(rate(http_requests_total{revision="$revision",code=~"5.."}[$window])) / sum(rate(http_requests_total{revision="$revision"}[$window]))`.
    pub value: String,
    /// Requests served in the window, for the minimum sample:
    /// `sum(increase(http_requests_total{revision="$revision"}[$window]))`.
    pub requests: String,
}

impl PromQueries {
    /// Rejects templates that cannot tell the revisions apart (no `$revision`), naming the field.
    pub fn validate(&self) -> Result<(), String> {
        for (field, template) in [("query", &self.value), ("requestsQuery", &self.requests)] {
            if template.trim().is_empty() {
                return Err(format!("{field} must not be empty"));
            }
            if !template.contains("$revision") {
                return Err(format!(
                    "{field} must select one revision with $revision (for example {{revision=\"$revision\"}}), \
                     or both revisions would measure the same series"
                ));
            }
        }
        Ok(())
    }
}

/// A query with its placeholders filled in.
pub fn render(template: &str, revision: &str, window: Duration) -> String {
    template.replace("$revision", revision).replace("$window", &format!("{}s", window.as_secs().max(1)))
}

/// A Prometheus server's HTTP API.
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Series>),
    Scalar((f64, String)),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: serde_json::Map<String, serde_json::Value>,
    value: (f64, String),
}

impl Prometheus {
    /// A client of the server at `address` (`http://prometheus.monitoring:9090`), with `timeout` per query.
    pub fn new(address: &str, timeout: Duration) -> Result<Self, Error> {
        let base = address.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Analysis(format!("Prometheus address {address:?} must start with http:// or https://")));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Analysis(format!("building the Prometheus client: {e}")))?;
        Ok(Self { base: base.to_owned(), client })
    }

    /// Evaluates `promql` at `at`: its single value, `None` when it has no series (or NaN). More than
    /// one series is an error: the check must aggregate (`sum(...)`) to judge one number.
    pub async fn query(&self, promql: &str, at: SystemTime) -> Result<Option<f64>, Error> {
        let time = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let url = format!("{}/api/v1/query", self.base);
        let response = self
            .client
            .post(&url)
            .form(&[("query", promql), ("time", &format!("{time:.3}"))])
            .send()
            .await
            .map_err(|e| Error::Analysis(format!("querying Prometheus at {}: {e}", self.base)))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| Error::Analysis(format!("reading Prometheus's answer: {e}")))?;
        let answer: Answer = serde_json::from_str(&body).map_err(|_| {
            Error::Analysis(format!(
                "Prometheus at {} answered {status} with something other than its API's JSON",
                self.base
            ))
        })?;
        if answer.status != "success" {
            return Err(Error::Analysis(format!(
                "Prometheus refused the query {promql:?}: {}: {}",
                answer.error_type.as_deref().unwrap_or("error"),
                answer.error.as_deref().unwrap_or("no reason given")
            )));
        }
        let value = match answer.data {
            Some(Data::Vector(series)) => match series.as_slice() {
                [] => return Ok(None),
                [one] => one.value.1.clone(),
                many => {
                    let labels: Vec<String> =
                        many.iter().take(3).map(|s| serde_json::Value::Object(s.metric.clone()).to_string()).collect();
                    return Err(Error::Analysis(format!(
                        "the query {promql:?} returns {} series ({}, ...); aggregate it to one, for example with sum(...)",
                        many.len(),
                        labels.join(", ")
                    )));
                }
            },
            Some(Data::Scalar((_, value))) => value,
            Some(Data::Matrix(_) | Data::String(_)) | None => {
                return Err(Error::Analysis(format!(
                    "the query {promql:?} must return one number (an instant vector or a scalar)"
                )));
            }
        };
        let value: f64 = value
            .parse()
            .map_err(|_| Error::Analysis(format!("Prometheus returned {value:?} for {promql:?}, not a number")))?;
        Ok(Some(value).filter(|v| v.is_finite()))
    }

    /// Measures both revisions with `queries` over the `window` that ends at `at`.
    pub async fn measure(
        &self,
        queries: &PromQueries,
        new_revision: &str,
        old_revision: &str,
        window: Duration,
        at: SystemTime,
    ) -> Result<Measurement, Error> {
        let new = self.sample(queries, new_revision, window, at).await?;
        let old = self.sample(queries, old_revision, window, at).await?;
        Ok(Measurement { new, old, window })
    }

    /// One revision's value and requests over the window.
    async fn sample(
        &self,
        queries: &PromQueries,
        revision: &str,
        window: Duration,
        at: SystemTime,
    ) -> Result<Sample, Error> {
        let value = self.query(&render(&queries.value, revision, window), at).await?;
        let requests = self.query(&render(&queries.requests, revision, window), at).await?.unwrap_or(0.0);
        Ok(Sample { value, requests })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_in_the_revision_and_the_window() {
        let rendered = render(r#"sum(rate(x{revision="$revision"}[$window]))"#, "7", Duration::from_secs(60));
        assert_eq!(rendered, r#"sum(rate(x{revision="7"}[60s]))"#);
    }

    #[test]
    fn a_template_must_tell_the_revisions_apart() {
        let queries =
            PromQueries { value: "sum(rate(x[$window]))".into(), requests: "sum(x{revision=\"$revision\"})".into() };
        let error = queries.validate().unwrap_err();
        assert!(error.starts_with("query must select one revision with $revision"), "{error}");
        let ok =
            PromQueries { value: "x{revision=\"$revision\"}".into(), requests: "y{revision=\"$revision\"}".into() };
        ok.validate().unwrap();
        assert!(Prometheus::new("prometheus:9090", Duration::from_secs(1)).is_err());
    }
}
