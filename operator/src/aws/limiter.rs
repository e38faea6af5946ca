//! A client-side token-bucket limiter per AWS operation class.
//!
//! AWS throttles per account and region with token buckets (RegisterTaskDefinition about 1/s, ECS
//! writes about 5/s, ELBv2 writes about 3/s). Staying under those rates ourselves keeps a fleet-wide
//! resync from spending the account's budget that other tools and humans share.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The class an operation's rate is limited under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Reads of any service.
    Read,
    /// ECS RegisterTaskDefinition and DeregisterTaskDefinition.
    TaskDefinitionWrite,
    /// Other ECS writes.
    EcsWrite,
    /// ELBv2 writes.
    Elbv2Write,
    /// ECR writes.
    EcrWrite,
    /// Cloud Map and Application Auto Scaling writes.
    OtherWrite,
}

impl Class {
    /// The class of `service`'s `operation`.
    pub fn of(service: &str, operation: &str) -> Class {
        const READS: [&str; 4] = ["Describe", "List", "Get", "BatchGet"];
        if READS.iter().any(|p| operation.starts_with(p)) {
            return Class::Read;
        }
        match service {
            "ecs" if operation.ends_with("TaskDefinition") => Class::TaskDefinitionWrite,
            "ecs" => Class::EcsWrite,
            "elbv2" => Class::Elbv2Write,
            "ecr" => Class::EcrWrite,
            _ => Class::OtherWrite,
        }
    }
}

/// Sustained rate and burst of one class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

/// The rates ecsop keeps under by default: below the documented AWS quotas, so other callers in the
/// account keep some headroom.
pub fn default_rates() -> HashMap<Class, Rate> {
    HashMap::from([
        (Class::Read, Rate { per_second: 20.0, burst: 50.0 }),
        (Class::TaskDefinitionWrite, Rate { per_second: 1.0, burst: 10.0 }),
        (Class::EcsWrite, Rate { per_second: 5.0, burst: 10.0 }),
        (Class::Elbv2Write, Rate { per_second: 3.0, burst: 6.0 }),
        (Class::EcrWrite, Rate { per_second: 5.0, burst: 10.0 }),
        (Class::OtherWrite, Rate { per_second: 5.0, burst: 10.0 }),
    ])
}

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

/// Token buckets per class. A class without a rate is not limited.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<Class, Bucket>>,
}

impl Limiter {
    /// A limiter with these rates, buckets full.
    pub fn new(rates: HashMap<Class, Rate>) -> Self {
        let now = Instant::now();
        let buckets = rates.into_iter().map(|(c, rate)| (c, Bucket { rate, tokens: rate.burst, last: now })).collect();
        Limiter { buckets: Mutex::new(buckets) }
    }

    /// A limiter that never waits.
    pub fn unlimited() -> Self {
        Limiter::default()
    }

    /// Take a token of `class`, waiting until one is available.
    pub async fn acquire(&self, class: Class) {
        loop {
            let wait = self.try_take(class, Instant::now());
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// Take a token at `now` if one is available (`None`), else say how long until one is.
    pub fn try_take(&self, class: Class, now: Instant) -> Option<Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.get_mut(&class)?;
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * bucket.rate.per_second).min(bucket.rate.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.rate.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_fall_into_their_classes() {
        assert_eq!(Class::of("ecs", "DescribeServices"), Class::Read);
        assert_eq!(Class::of("ecs", "RegisterTaskDefinition"), Class::TaskDefinitionWrite);
        assert_eq!(Class::of("ecs", "UpdateService"), Class::EcsWrite);
        assert_eq!(Class::of("elbv2", "CreateRule"), Class::Elbv2Write);
        assert_eq!(Class::of("ecr", "PutLifecyclePolicy"), Class::EcrWrite);
        assert_eq!(Class::of("application-autoscaling", "PutScalingPolicy"), Class::OtherWrite);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_the_sustained_rate() {
        let limiter = Limiter::new(HashMap::from([(Class::EcsWrite, Rate { per_second: 5.0, burst: 2.0 })]));
        let t0 = Instant::now();
        assert_eq!(limiter.try_take(Class::EcsWrite, t0), None);
        assert_eq!(limiter.try_take(Class::EcsWrite, t0), None);
        let wait = limiter.try_take(Class::EcsWrite, t0).expect("bucket empty");
        assert!((wait.as_secs_f64() - 0.2).abs() < 1e-6, "{wait:?}");
        assert_eq!(limiter.try_take(Class::EcsWrite, t0 + Duration::from_millis(200)), None);
        // Unlimited classes never wait.
        assert_eq!(limiter.try_take(Class::Read, t0), None);
    }
}
