//! Rollout analysis from the load balancer's own metrics: both revisions' target groups measured in one
//! GetMetricData call, over the SDK against moto (the harness answers GetMetricData in CBOR and computes
//! CloudWatch's statistics, percentiles included) and against FakeAws, with the same datapoints.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ecsop::analysis::cloudwatch::{AlbMeasure, AlbTraffic, measure};
use ecsop::analysis::{Bound, Check, Judgement, judge};
use ecsop::aws::cloudwatch::SdkCloudWatch;
use ecsop::aws::{CloudWatch, ErrorKind, MetricQuery};
use ecsop_testkit::Account;
use ecsop_testkit::fake::FakeAws;

mod support;
use support::{account, fast_calls};

const LB: &str = "app/web/50dc6c495c0c9188";
const OLD: &str = "targetgroup/ecsop-books-b/1111111111111111";
const GOOD: &str = "targetgroup/ecsop-books-g/2222222222222222";
const BAD: &str = "targetgroup/ecsop-books-x/3333333333333333";

/// One minute of one target group: requests, 5xx answers, and response times (`count` at `seconds`).
struct Minute {
    requests: f64,
    errors: f64,
    latencies: &'static [(f64, u64)],
}

/// 0.1% errors, p99 200 ms (1,970 answers at 50 ms, 30 at 200 ms: the 1,980th is slow).
const HEALTHY: Minute = Minute { requests: 2000.0, errors: 2.0, latencies: &[(0.05, 1970), (0.2, 30)] };
/// 5% errors, p99 600 ms: three times the healthy one.
const BROKEN: Minute = Minute { requests: 2000.0, errors: 100.0, latencies: &[(0.15, 1970), (0.6, 30)] };

enum Sink<'a> {
    Moto(&'a Account),
    Fake(&'a FakeAws),
}

impl Sink<'_> {
    async fn put(&self, name: &str, target_group: &str, points: &[(SystemTime, f64, u64)]) {
        let dimensions = BTreeMap::from([
            ("LoadBalancer".to_owned(), LB.to_owned()),
            ("TargetGroup".to_owned(), target_group.to_owned()),
        ]);
        match self {
            Sink::Moto(account) => {
                account.put_metric("AWS/ApplicationELB", name, &dimensions, points).await.unwrap();
            }
            Sink::Fake(fake) => {
                for (at, value, count) in points {
                    fake.put_metric("AWS/ApplicationELB", name, &dimensions, *at, *value, *count);
                }
            }
        }
    }

    /// What the ALB publishes for `target_group` in the minute starting at `at`.
    async fn minute(&self, target_group: &str, at: SystemTime, minute: &Minute) {
        let at = at + Duration::from_secs(30);
        self.put("RequestCount", target_group, &[(at, minute.requests, 1)]).await;
        self.put("HTTPCode_Target_5XX_Count", target_group, &[(at, minute.errors, 1)]).await;
        let latencies: Vec<_> = minute.latencies.iter().map(|(s, n)| (at, *s, *n)).collect();
        self.put("TargetResponseTime", target_group, &latencies).await;
    }
}

/// The last whole minute boundary, and the two minutes before it with metrics for each target group;
/// plus a broken minute of the old target group before the window and one after it, which must not count.
async fn publish(sink: &Sink<'_>) -> SystemTime {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let end = UNIX_EPOCH + Duration::from_secs(now - now % 60);
    for minutes_before in [1, 2] {
        let at = end - Duration::from_secs(60 * minutes_before);
        sink.minute(OLD, at, &HEALTHY).await;
        sink.minute(GOOD, at, &HEALTHY).await;
        sink.minute(BAD, at, &BROKEN).await;
    }
    sink.minute(OLD, end - Duration::from_secs(180), &BROKEN).await;
    sink.minute(OLD, end, &BROKEN).await;
    end
}

fn traffic(new: &str) -> AlbTraffic {
    AlbTraffic { load_balancer: LB.into(), new_target_group: new.into(), old_target_group: OLD.into() }
}

fn check(name: &str, bound: Bound) -> Check {
    Check { name: name.into(), bound, min_requests: 1000.0, failed_intervals: 2 }
}

/// The same verdicts from any CloudWatch.
async fn judges_both_releases(cloudwatch: &dyn CloudWatch, end: SystemTime) {
    let window = Duration::from_secs(120);
    // The end may be given anywhere in the minute: the window ends on the boundary before it.
    let at = end + Duration::from_secs(59);
    let errors = check("errors", Bound { max: Some(0.01), max_ratio_to_old: Some(2.0) });
    let latency = check("latency", Bound { max: Some(0.25), max_ratio_to_old: Some(2.0) });

    let good = measure(cloudwatch, AlbMeasure::ErrorRatio, &traffic(GOOD), window, at).await.unwrap();
    assert_eq!(good.new.requests, 4000.0);
    assert_eq!(good.old.requests, 4000.0, "the minutes outside the window do not count: {good:?}");
    assert_eq!(good.new.value, Some(0.001));
    assert_eq!(good.old.value, Some(0.001));
    assert_eq!(judge(&errors, &good), Judgement::Passed);

    let bad = measure(cloudwatch, AlbMeasure::ErrorRatio, &traffic(BAD), window, at).await.unwrap();
    assert_eq!(bad.new.value, Some(0.05));
    assert!(matches!(judge(&errors, &bad), Judgement::Failed(why) if why.contains("above 0.01")));

    let good = measure(cloudwatch, AlbMeasure::LatencyP99, &traffic(GOOD), window, at).await.unwrap();
    assert_eq!((good.new.value, good.old.value), (Some(0.2), Some(0.2)));
    assert_eq!(judge(&latency, &good), Judgement::Passed);
    let bad = measure(cloudwatch, AlbMeasure::LatencyP99, &traffic(BAD), window, at).await.unwrap();
    assert_eq!((bad.new.value, bad.old.value), (Some(0.6), Some(0.2)));
    let verdict = judge(&latency, &bad);
    assert!(
        matches!(&verdict, Judgement::Failed(why) if why.contains("more than 2x the old revision's 0.2")),
        "{verdict:?}"
    );

    // A target group with no traffic yet: no value and no requests, so nothing is judged.
    let idle =
        measure(cloudwatch, AlbMeasure::ErrorRatio, &traffic("targetgroup/idle/4444"), window, at).await.unwrap();
    assert_eq!((idle.new.value, idle.new.requests), (None, 0.0));
    assert!(matches!(judge(&errors, &idle), Judgement::Inconclusive(_)));

    // What CloudWatch refuses is refused: a statistic it does not know, a period not in whole minutes.
    let query = MetricQuery {
        namespace: "AWS/ApplicationELB".into(),
        metric_name: "RequestCount".into(),
        dimensions: BTreeMap::new(),
        stat: "p999x".into(),
    };
    let start = end - window;
    let error = cloudwatch.metric_data(std::slice::from_ref(&query), start, end).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Invalid, "{error}");
    let error = cloudwatch.metric_data(&[query], start, start + Duration::from_secs(90)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Invalid, "{error}");
}

#[tokio::test]
async fn alb_metrics_judge_a_release_through_the_sdk_against_moto() {
    let account = account().await;
    let end = publish(&Sink::Moto(&account)).await;
    let cloudwatch = SdkCloudWatch::new(&account.sdk_config().await, fast_calls());
    judges_both_releases(&cloudwatch, end).await;

    // One interval of one check costs one GetMetricData call for both revisions.
    account.clear_calls().await.unwrap();
    measure(&cloudwatch, AlbMeasure::ErrorRatio, &traffic(BAD), Duration::from_secs(60), end).await.unwrap();
    let calls = account.calls().await.unwrap();
    let operations: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    assert_eq!(operations, ["GetMetricData"]);
}

#[tokio::test]
async fn alb_metrics_judge_a_release_against_fake_aws() {
    let fake = FakeAws::new();
    let end = publish(&Sink::Fake(&fake)).await;
    judges_both_releases(&fake, end).await;
}
