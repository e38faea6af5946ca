//! A client-side token-bucket limiter per AWS operation class, under an optional budget per region.
//!
//! AWS throttles per account and region with token buckets (RegisterTaskDefinition about 1/s, ECS
//! writes about 5/s, ELBv2 writes about 3/s). Staying under those rates ourselves keeps a fleet-wide
//! resync from spending the account's budget that other tools and humans share. The budget
//! (`--aws-calls-per-second`) caps all of ecsop's calls in a region together, whatever their class:
//! the share of the account's API rate the platform team gives ecsop.

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

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Bucket { rate, tokens: rate.burst, last: now }
    }

    /// Refills for the time since the last look; the wait until a token is there (zero: there is one).
    fn refill(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate.per_second)
        }
    }
}

/// Why a call has to wait for its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// How long until both tokens are there.
    pub duration: Duration,
    /// Whether the region's budget is what is short (as opposed to, or as well as, the class's rate).
    pub budget: bool,
}

/// The buckets, behind one lock: every call takes from a class's and, with a budget, a region's.
#[derive(Debug, Default)]
struct Buckets {
    classes: HashMap<Class, Bucket>,
    regions: HashMap<String, Bucket>,
}

/// Token buckets per class, and optionally one budget bucket per region that every call takes from
/// too. A class without a rate is not limited; without a budget, only the classes are.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<Buckets>,
    budget: Option<Rate>,
}

impl Limiter {
    /// A limiter with these rates, buckets full.
    pub fn new(rates: HashMap<Class, Rate>) -> Self {
        let now = Instant::now();
        let classes = rates.into_iter().map(|(c, rate)| (c, Bucket::full(rate, now))).collect();
        Limiter { buckets: Mutex::new(Buckets { classes, regions: HashMap::new() }), budget: None }
    }

    /// A limiter that never waits.
    pub fn unlimited() -> Self {
        Limiter::default()
    }

    /// Also keeps every region's calls together under `budget` (the burst is what a quiet region
    /// may spend at once).
    pub fn with_budget(mut self, budget: Rate) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The budget per region, if there is one.
    pub fn budget(&self) -> Option<Rate> {
        self.budget
    }

    /// Take a token of `class` (and of `region`'s budget), waiting until both are available; returns
    /// how long of that wait the region's budget was short.
    pub async fn acquire(&self, class: Class, region: &str) -> Duration {
        let mut budget_wait = Duration::ZERO;
        while let Some(wait) = self.try_take(class, region, Instant::now()) {
            tokio::time::sleep(wait.duration).await;
            if wait.budget {
                budget_wait += wait.duration;
            }
        }
        budget_wait
    }

    /// Take a token of `class` and one of `region`'s budget at `now` if both are available (`None`),
    /// else take neither and say how long until both are.
    pub fn try_take(&self, class: Class, region: &str, now: Instant) -> Option<Wait> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Buckets { classes, regions } = &mut *buckets;
        let mut class_bucket = classes.get_mut(&class);
        let mut budget_bucket = self.budget.map(|rate| {
            // The region's name is copied once, when its bucket is made, not on every call.
            if !regions.contains_key(region) {
                regions.insert(region.to_owned(), Bucket::full(rate, now));
            }
            regions.get_mut(region).unwrap_or_else(|| unreachable!("inserted above"))
        });
        let class_wait = class_bucket.as_mut().map_or(Duration::ZERO, |b| b.refill(now));
        let budget_wait = budget_bucket.as_mut().map_or(Duration::ZERO, |b| b.refill(now));
        if class_wait.is_zero() && budget_wait.is_zero() {
            for bucket in [class_bucket, budget_bucket].into_iter().flatten() {
                bucket.tokens -= 1.0;
            }
            return None;
        }
        Some(Wait { duration: class_wait.max(budget_wait), budget: !budget_wait.is_zero() })
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

    const REGION: &str = "us-east-1";

    #[test]
    fn a_bucket_allows_its_burst_then_the_sustained_rate() {
        let limiter = Limiter::new(HashMap::from([(Class::EcsWrite, Rate { per_second: 5.0, burst: 2.0 })]));
        let t0 = Instant::now();
        assert_eq!(limiter.try_take(Class::EcsWrite, REGION, t0), None);
        assert_eq!(limiter.try_take(Class::EcsWrite, REGION, t0), None);
        let wait = limiter.try_take(Class::EcsWrite, REGION, t0).expect("bucket empty");
        assert!((wait.duration.as_secs_f64() - 0.2).abs() < 1e-6, "{wait:?}");
        assert!(!wait.budget);
        assert_eq!(limiter.try_take(Class::EcsWrite, REGION, t0 + Duration::from_millis(200)), None);
        // Unlimited classes never wait.
        assert_eq!(limiter.try_take(Class::Read, REGION, t0), None);
    }

    #[test]
    fn the_budget_is_shared_by_every_class_of_a_region_and_not_across_regions() {
        let limiter = Limiter::new(default_rates()).with_budget(Rate { per_second: 2.0, burst: 3.0 });
        let t0 = Instant::now();
        // Reads and writes take from the same budget: three calls of any class, then a wait.
        assert_eq!(limiter.try_take(Class::Read, REGION, t0), None);
        assert_eq!(limiter.try_take(Class::EcsWrite, REGION, t0), None);
        assert_eq!(limiter.try_take(Class::Read, REGION, t0), None);
        let wait = limiter.try_take(Class::Elbv2Write, REGION, t0).expect("budget spent");
        assert_eq!(wait, Wait { duration: Duration::from_millis(500), budget: true });
        // A call refused for the budget took no token of its class either: ELBv2's burst of 6 is intact.
        // Another region has its own budget.
        assert_eq!(limiter.try_take(Class::Read, "eu-west-1", t0), None);
        // Half a second later one call fits, then the budget is short again.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(limiter.try_take(Class::Elbv2Write, REGION, t1), None);
        assert!(limiter.try_take(Class::Read, REGION, t1).is_some_and(|w| w.budget));
    }

    #[test]
    fn the_longer_of_the_two_waits_is_the_wait() {
        let limiter = Limiter::new(HashMap::from([(Class::TaskDefinitionWrite, Rate { per_second: 1.0, burst: 1.0 })]))
            .with_budget(Rate { per_second: 10.0, burst: 10.0 });
        let t0 = Instant::now();
        assert_eq!(limiter.try_take(Class::TaskDefinitionWrite, REGION, t0), None);
        // The class is short (1 s), the budget is not: the wait is the class's and not the budget's.
        let wait = limiter.try_take(Class::TaskDefinitionWrite, REGION, t0).unwrap();
        assert_eq!(wait, Wait { duration: Duration::from_secs(1), budget: false });
        assert_eq!(limiter.budget(), Some(Rate { per_second: 10.0, burst: 10.0 }));
        assert_eq!(Limiter::unlimited().budget(), None);
    }
}
