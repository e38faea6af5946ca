//! The CloudWatch metric-alarm SDK adapter against moto, through the harness's translation of the
//! SDK's Smithy RPC v2 CBOR (moto serves CloudWatch only over Query and JSON).
//!
//! Where moto's CloudWatch backend differs from AWS on these calls, the translation in
//! `testkit/python/ecsop_moto.py` follows AWS, and these tests rely on it: PutMetricAlarm applies Tags
//! only when it creates the alarm, a new alarm starts in INSUFFICIENT_DATA and a replaced one keeps its
//! state, DescribeAlarms pages (50 alarms), DeleteAlarms deletes the tags too, and the tagging calls
//! fail with ResourceNotFoundException for an ARN that is not an alarm.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch as cw;
use ecsop::aws::cloudwatch::SdkCloudWatch;
use ecsop::aws::{Calls, CloudWatch, ErrorKind, MetricAlarm, Outcome, Tags};
use ecsop_testkit::{Account, Fault};

mod support;
use support::{account, fast_calls};

/// CloudWatch's signing name, as the harness logs and matches calls.
const SIGNING_NAME: &str = "monitoring";

async fn adapter(account: &Account, calls: &Calls) -> SdkCloudWatch {
    SdkCloudWatch::new(&account.sdk_config().await, calls.clone())
}

fn alarm(name: &str) -> MetricAlarm {
    MetricAlarm {
        name: name.into(),
        description: "CPU of prod/books-api".into(),
        namespace: "AWS/ECS".into(),
        metric_name: "CPUUtilization".into(),
        dimensions: BTreeMap::from([
            ("ClusterName".to_string(), "prod".to_string()),
            ("ServiceName".to_string(), "books-api".to_string()),
        ]),
        statistic: "Average".into(),
        comparison: "GreaterThanThreshold".into(),
        threshold: 80.5,
        period_seconds: 60,
        evaluation_periods: 5,
        datapoints_to_alarm: 3,
        treat_missing_data: "notBreaching".into(),
        alarm_actions: vec![
            "arn:aws:sns:us-east-1:123456789012:page".into(),
            "arn:aws:sns:us-east-1:123456789012:ticket".into(),
        ],
        ok_actions: vec!["arn:aws:sns:us-east-1:123456789012:ok".into()],
    }
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn owner_tags() -> Tags {
    tags(&[("ecsop.io/managed-by", "ecsop"), ("ecsop.io/owner", "prod/books-api")])
}

#[tokio::test]
async fn an_alarm_is_put_read_back_replaced_retagged_and_deleted() {
    let account = account().await;
    let calls = fast_calls();
    let cloudwatch = adapter(&account, &calls).await;
    assert_eq!(cloudwatch.alarms("prod-books-api-").await.expect("none yet"), vec![]);

    let cpu = alarm("prod-books-api-cpu");
    cloudwatch.put_alarm(&cpu, &owner_tags()).await.expect("create");
    cloudwatch.put_alarm(&alarm("staging-books-api-cpu"), &Tags::new()).await.expect("another prefix");
    let listed = cloudwatch.alarms("prod-books-api-").await.expect("read back");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].alarm, cpu, "every field as put");
    assert_eq!(listed[0].state, "INSUFFICIENT_DATA");
    let arn = listed[0].arn.clone();
    assert_eq!(arn, format!("arn:aws:cloudwatch:us-east-1:{}:alarm:prod-books-api-cpu", account.id()));
    assert_eq!(cloudwatch.tags(&arn).await.expect("tags"), owner_tags());

    // What was sent beyond ecsop's fields: actions enabled.
    let raw = cw::Client::new(&account.sdk_config().await)
        .describe_alarms()
        .alarm_names("prod-books-api-cpu")
        .send()
        .await
        .expect("describe");
    assert_eq!(raw.metric_alarms()[0].actions_enabled(), Some(true));

    // A replace (new threshold, no alarm actions) keeps the ARN and the tags.
    let replaced = MetricAlarm { threshold: 90.0, alarm_actions: vec![], ..cpu.clone() };
    cloudwatch.put_alarm(&replaced, &owner_tags()).await.expect("replace");
    let listed = cloudwatch.alarms("prod-books-api-").await.expect("read back");
    assert_eq!((listed.len(), &listed[0].alarm, listed[0].arn.as_str()), (1, &replaced, arn.as_str()));
    assert_eq!(cloudwatch.tags(&arn).await.expect("tags"), owner_tags());

    // PutMetricAlarm ignores Tags on a replace: a new tag arrives through TagResource.
    let mut more = owner_tags();
    more.insert("team".into(), "books".into());
    account.clear_calls().await.expect("clear");
    cloudwatch.put_alarm(&replaced, &more).await.expect("replace with one more tag");
    assert_eq!(cloudwatch.tags(&arn).await.expect("tags"), more);
    let operations: Vec<String> = account.calls().await.expect("calls").into_iter().map(|c| c.operation).collect();
    assert_eq!(operations, ["PutMetricAlarm", "DescribeAlarms", "TagResource", "ListTagsForResource"]);

    cloudwatch.untag(&arn, &["team".to_string()]).await.expect("untag");
    assert_eq!(cloudwatch.tags(&arn).await.expect("tags"), owner_tags());

    cloudwatch.delete_alarms(&["prod-books-api-cpu".to_string()]).await.expect("delete");
    assert_eq!(cloudwatch.alarms("prod-books-api-").await.expect("gone"), vec![]);
    cloudwatch.delete_alarms(&["prod-books-api-cpu".to_string()]).await.expect("deleting again is success");
    let err = cloudwatch.tags(&arn).await.expect_err("a deleted alarm has no tags");
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::NotFound, Some("ResourceNotFoundException")), "{err}");
    assert_eq!(cloudwatch.alarms("staging-").await.expect("the other alarm").len(), 1);
}

/// AWS answers DescribeAlarms 50 alarms a page: the adapter follows NextToken to the end.
#[tokio::test]
async fn alarms_are_read_over_every_page() {
    let account = account().await;
    let calls = fast_calls();
    let cloudwatch = adapter(&account, &calls).await;
    let names: Vec<String> = (0..55).map(|i| format!("prod-api-{i:02}")).collect();
    for name in &names {
        cloudwatch.put_alarm(&alarm(name), &Tags::new()).await.expect("put");
    }
    account.clear_calls().await.expect("clear");

    let listed = cloudwatch.alarms("prod-api-").await.expect("all pages");
    assert_eq!(listed.iter().map(|a| a.alarm.name.clone()).collect::<Vec<_>>(), names);
    let describes = account.calls().await.expect("calls").iter().filter(|c| c.operation == "DescribeAlarms").count();
    assert_eq!(describes, 2, "50 + 5 alarms");
}

/// moto never evaluates alarms; the harness sets a state the way CloudWatch's evaluation would.
#[tokio::test]
async fn an_alarm_state_set_by_the_harness_shows_in_alarms() {
    let account = account().await;
    let calls = fast_calls();
    let cloudwatch = adapter(&account, &calls).await;
    cloudwatch.put_alarm(&alarm("prod-books-api-cpu"), &Tags::new()).await.expect("put");
    assert_eq!(account.alarm_state("prod-books-api-cpu").await.expect("state").as_deref(), Some("INSUFFICIENT_DATA"));
    assert_eq!(account.alarm_state("no-such-alarm").await.expect("state"), None);

    account.set_alarm_state("prod-books-api-cpu", "ALARM", "Threshold Crossed").await.expect("set state");
    let listed = cloudwatch.alarms("prod-books-api-").await.expect("read back");
    assert_eq!(listed.iter().map(|a| a.state.as_str()).collect::<Vec<_>>(), ["ALARM"]);
    assert_eq!(account.alarm_state("prod-books-api-cpu").await.expect("state").as_deref(), Some("ALARM"));

    // A replace leaves the state alone, as in AWS.
    let replaced = MetricAlarm { threshold: 95.0, ..alarm("prod-books-api-cpu") };
    cloudwatch.put_alarm(&replaced, &Tags::new()).await.expect("replace");
    assert_eq!(cloudwatch.alarms("prod-books-api-").await.expect("read back")[0].state, "ALARM");

    assert!(account.set_alarm_state("no-such-alarm", "ALARM", "r").await.is_err(), "missing alarm");
}

#[tokio::test]
async fn cloudwatch_faults_come_back_in_its_own_error_shape() {
    let account = account().await;
    let calls = fast_calls();
    let cloudwatch = adapter(&account, &calls).await;
    cloudwatch.put_alarm(&alarm("prod-books-api-cpu"), &Tags::new()).await.expect("put");

    let throttle = Fault::throttle().service(SIGNING_NAME).operation("DescribeAlarms").count(2);
    account.inject(throttle).await.expect("inject");
    account.clear_calls().await.expect("clear");
    let listed = cloudwatch.alarms("prod-books-api-").await.expect("retried through Calls");
    assert_eq!(listed.len(), 1);
    let counts = calls.counts();
    assert_eq!(counts[&("cloudwatch", "DescribeAlarms", Outcome::Throttled)], 2);
    assert_eq!(counts[&("cloudwatch", "DescribeAlarms", Outcome::Ok)], 1);
    let server = account.calls().await.expect("calls");
    let throttled = server.iter().filter(|c| c.fault.as_deref() == Some("throttle")).count();
    assert_eq!((throttled, server.len()), (2, 3), "the SDK itself did not retry: {server:?}");

    account.inject(Fault::access_denied().service(SIGNING_NAME).operation("PutMetricAlarm")).await.expect("inject");
    let err = cloudwatch.put_alarm(&alarm("prod-books-api-cpu"), &Tags::new()).await.expect_err("denied");
    assert_eq!((err.kind, err.operation), (ErrorKind::AccessDenied, "PutMetricAlarm"), "{err}");
    // CloudWatch is awsQueryCompatible: the SDK takes the code from `x-amzn-query-error`, not `__type`.
    assert_eq!(err.code.as_deref(), Some("AccessDenied"), "{err}");
    assert_eq!(calls.counts()[&("cloudwatch", "PutMetricAlarm", Outcome::Error("access_denied"))], 1, "never retried");
}
