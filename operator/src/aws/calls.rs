//! How every SDK call is made: rate-limited per operation class, retried with backoff on throttling and
//! transient errors (never on AccessDenied or validation errors), and recorded for metrics.
//!
//! The SDK's own retries are switched off in the clients ecsop builds (see [`sdk_retry_config`]) so
//! that this is the one place deciding retries, and every attempt is counted, throttled ones included.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::limiter::{Class, Limiter, default_rates};
use super::{AwsError, ErrorKind};

/// How a call attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Success.
    Ok,
    /// Throttled by AWS.
    Throttled,
    /// Any other error, by kind label.
    Error(&'static str),
}

impl Outcome {
    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Throttled => "throttled",
            Outcome::Error(kind) => kind,
        }
    }
}

/// One attempt of one AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The service.
    pub service: &'static str,
    /// The operation.
    pub operation: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
    /// How long it waited, before it was sent, for the region's budget of calls.
    pub budget_wait: Duration,
}

impl CallRecord {
    /// Whether the operation changes state in AWS.
    pub fn is_write(&self) -> bool {
        Class::of(self.service, self.operation) != Class::Read
    }
}

/// Retry policy for throttled and transient failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// First backoff.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

type Observer = dyn Fn(&CallRecord) + Send + Sync;
/// Attempts by (service, operation, outcome).
pub type CallCounts = BTreeMap<(&'static str, &'static str, Outcome), u64>;

/// Shared by every SDK adapter of a process: the limiter, the retry policy and the call counters.
#[derive(Clone)]
pub struct Calls {
    limiter: Arc<Limiter>,
    /// The region the adapters using this handle call (their budget is the region's).
    region: Arc<str>,
    retry: RetryPolicy,
    counts: Arc<Mutex<CallCounts>>,
    observer: Option<Arc<Observer>>,
}

impl Default for Calls {
    fn default() -> Self {
        Calls::new(Limiter::new(default_rates()), RetryPolicy::default())
    }
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls").field("retry", &self.retry).finish_non_exhaustive()
    }
}

impl Calls {
    /// Calls going through `limiter`, retried by `retry`.
    pub fn new(limiter: Limiter, retry: RetryPolicy) -> Self {
        Calls { limiter: Arc::new(limiter), region: Arc::from(""), retry, counts: Arc::default(), observer: None }
    }

    /// The same limiter, counts and observer, for adapters calling `region`: they take from that
    /// region's budget.
    pub fn for_region(&self, region: &str) -> Calls {
        Calls { region: Arc::from(region), ..self.clone() }
    }

    /// The default rates per operation class, under a budget of `per_second` calls per region (with a
    /// burst of one second's worth) when one is given.
    pub fn with_budget(per_second: Option<f64>) -> Calls {
        let limiter = Limiter::new(default_rates());
        let limiter = match per_second {
            Some(rate) => limiter.with_budget(super::limiter::Rate { per_second: rate, burst: rate.max(1.0) }),
            None => limiter,
        };
        Calls::new(limiter, RetryPolicy::default())
    }

    /// The budget of calls per region, if there is one.
    pub fn budget(&self) -> Option<super::limiter::Rate> {
        self.limiter.budget()
    }

    /// Also tell `observer` about every attempt (the controller's metrics use this).
    pub fn with_observer(mut self, observer: impl Fn(&CallRecord) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Attempts so far by (service, operation, outcome).
    pub fn counts(&self) -> CallCounts {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads and writes attempted so far.
    pub fn totals(&self) -> (u64, u64) {
        let mut reads = 0;
        let mut writes = 0;
        for ((service, operation, _), n) in self.counts() {
            if Class::of(service, operation) == Class::Read {
                reads += n;
            } else {
                writes += n;
            }
        }
        (reads, writes)
    }

    /// Run one call of `service`'s `operation`: wait for the limiter, send, classify, retry what is
    /// worth retrying, record every attempt.
    pub async fn run<T, F, Fut>(
        &self,
        service: &'static str,
        operation: &'static str,
        mut send: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let class = Class::of(service, operation);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let budget_wait = self.limiter.acquire(class, &self.region).await;
            let started = Instant::now();
            let result = send().await;
            let outcome = match &result {
                Ok(_) => Outcome::Ok,
                Err(e) if e.kind == ErrorKind::Throttled => Outcome::Throttled,
                Err(e) => Outcome::Error(e.kind.label()),
            };
            self.record(CallRecord { service, operation, outcome, duration: started.elapsed(), budget_wait });
            match result {
                Err(e) if e.kind.is_retryable() && attempt < self.retry.max_attempts && repeatable(operation, &e) => {
                    tracing::debug!(service, operation, attempt, error = %e, "retrying AWS call");
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    fn record(&self, record: CallRecord) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((record.service, record.operation, record.outcome))
            .or_default() += 1;
        if let Some(observer) = &self.observer {
            observer(&record);
        }
    }

    /// Exponential backoff with jitter ("equal jitter": half fixed, half random).
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.retry.initial_backoff.saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let cap = exp.min(self.retry.max_backoff);
        let half = cap / 2;
        half + half.mul_f64(jitter())
    }
}

/// Writes that AWS does not make idempotent: repeated after their answer was lost, they make a second
/// one (a revision, a rule, an integration, a route, an authorizer) or fail as a conflict with the
/// first. The engine looks for what such a write made before it makes it again
/// (`engine::act`), so the call layer must not repeat it blindly.
pub const NOT_IDEMPOTENT: &[&str] = &[
    "RegisterTaskDefinition",
    "CreateRule",
    "CreateTargetGroup",
    "CreateRepository",
    "CreateIntegration",
    "CreateAuthorizer",
    "CreateRoute",
    "PutImage",
    "StartImageScan",
];

/// Whether `operation` may be sent again after `error`. A throttled call was refused before AWS did
/// anything; a transient failure (a timeout, a 5xx, a reset connection) may come after AWS did the
/// work, so only calls that are safe to repeat are repeated.
fn repeatable(operation: &str, error: &AwsError) -> bool {
    error.kind == ErrorKind::Throttled || !NOT_IDEMPOTENT.contains(&operation)
}

/// A cheap random fraction in [0, 1) without a RNG dependency: the clock's nanoseconds, mixed.
fn jitter() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mixed = u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    mixed as f64 / (1u64 << 53) as f64
}

/// The SDK retry setting for clients used through [`Calls`]: off, because [`Calls::run`] retries.
pub fn sdk_retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::disabled()
}

#[cfg(test)]
impl Calls {
    /// No rate limit and retries of a millisecond or two, for the adapters' unit tests.
    pub(crate) fn for_unit_tests() -> Calls {
        Calls::new(
            Limiter::unlimited(),
            RetryPolicy {
                max_attempts: 5,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> Calls {
        Calls::for_unit_tests()
    }

    #[tokio::test]
    async fn calls_beyond_the_regions_budget_wait_and_say_so() {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let seen = waits.clone();
        let calls = Calls::with_budget(Some(50.0))
            .with_observer(move |record| seen.lock().unwrap().push(record.budget_wait))
            .for_region("us-east-1");
        assert_eq!(calls.budget().map(|b| b.burst), Some(50.0));
        // The burst (50) goes at once; the 51st call waits for the budget (20 ms at 50/s).
        for _ in 0..51 {
            calls.run("ecs", "DescribeServices", || async { Ok(()) }).await.unwrap();
        }
        let first: Vec<Duration> = waits.lock().unwrap().clone();
        assert!(first[..50].iter().all(Duration::is_zero), "{first:?}");
        assert!(!first[50].is_zero(), "the call over the budget waited for it: {first:?}");
        // Another region's calls do not wait for this one's budget.
        let other = calls.for_region("eu-west-1");
        other.run("ecs", "DescribeServices", || async { Ok(()) }).await.unwrap();
        assert_eq!(waits.lock().unwrap().last(), Some(&Duration::ZERO));
        assert_eq!(calls.counts().values().sum::<u64>(), 52, "regions share the counts");
        assert!(Calls::default().budget().is_none());
    }

    #[tokio::test]
    async fn throttling_is_retried_until_success_and_every_attempt_counted() {
        let calls = fast();
        let n = AtomicU32::new(0);
        let result = calls
            .run("ecs", "UpdateService", || async {
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(AwsError::new("ecs", "UpdateService", ErrorKind::Throttled, "Rate exceeded"))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result, Ok(7));
        let counts = calls.counts();
        assert_eq!(counts[&("ecs", "UpdateService", Outcome::Throttled)], 2);
        assert_eq!(counts[&("ecs", "UpdateService", Outcome::Ok)], 1);
        assert_eq!(calls.totals(), (0, 3));
    }

    #[tokio::test]
    async fn a_write_aws_does_not_make_idempotent_is_not_repeated_after_an_ambiguous_failure() {
        let calls = fast();
        let n = AtomicU32::new(0);
        let lost: Result<(), _> = calls
            .run("ecs", "RegisterTaskDefinition", || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(AwsError::new("ecs", "RegisterTaskDefinition", ErrorKind::Transient, "HTTP 500"))
            })
            .await;
        assert_eq!(lost.expect_err("lost").kind, ErrorKind::Transient);
        assert_eq!(n.load(Ordering::SeqCst), 1, "the engine decides whether to send it again");

        // Throttling refused the call before AWS did anything: repeating is safe.
        let n = AtomicU32::new(0);
        let result = calls
            .run("ecs", "RegisterTaskDefinition", || async {
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(AwsError::new("ecs", "RegisterTaskDefinition", ErrorKind::Throttled, "Rate exceeded"))
                } else {
                    Ok(1)
                }
            })
            .await;
        assert_eq!(result, Ok(1));

        // An idempotent write is repeated after a transient failure.
        let n = AtomicU32::new(0);
        let result = calls
            .run("ecs", "UpdateService", || async {
                if n.fetch_add(1, Ordering::SeqCst) < 1 {
                    Err(AwsError::new("ecs", "UpdateService", ErrorKind::Transient, "HTTP 503"))
                } else {
                    Ok(2)
                }
            })
            .await;
        assert_eq!(result, Ok(2));
    }

    #[tokio::test]
    async fn access_denied_fails_at_once_and_retries_run_out() {
        let calls = fast();
        let n = AtomicU32::new(0);
        let denied: Result<(), _> = calls
            .run("ecs", "CreateService", || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(AwsError::new("ecs", "CreateService", ErrorKind::AccessDenied, "no"))
            })
            .await;
        assert_eq!(denied.expect_err("denied").kind, ErrorKind::AccessDenied);
        assert_eq!(n.load(Ordering::SeqCst), 1, "AccessDenied is never retried");

        let n = AtomicU32::new(0);
        let throttled: Result<(), _> = calls
            .run("ecs", "DescribeServices", || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(AwsError::new("ecs", "DescribeServices", ErrorKind::Throttled, "slow"))
            })
            .await;
        assert_eq!(throttled.expect_err("gives up").kind, ErrorKind::Throttled);
        assert_eq!(n.load(Ordering::SeqCst), 5, "max_attempts in total");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let calls = Calls::new(
            Limiter::unlimited(),
            RetryPolicy {
                max_attempts: 10,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
            },
        );
        let b1 = calls.backoff(1);
        let b4 = calls.backoff(4);
        assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100), "{b1:?}");
        assert!(b4 >= Duration::from_millis(400) && b4 <= Duration::from_millis(800), "{b4:?}");
        assert!(calls.backoff(12) <= Duration::from_secs(1));
    }
}
