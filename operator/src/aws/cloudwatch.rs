//! The CloudWatch metric-alarm adapter over `aws-sdk-cloudwatch`.
//!
//! The SDK speaks Smithy RPC v2 CBOR to CloudWatch; nothing here depends on that, but it is why the test
//! harness translates these calls for moto (see `testkit/python/ecsop_moto.py`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudwatch as sdk;
use sdk::types::{AlarmType, ComparisonOperator, Dimension, Statistic, Tag};

use super::calls::{self, Calls};
use super::error::MissingOk;
use super::{AlarmInfo, AwsError, AwsResult, CloudWatch, ErrorKind, MetricAlarm, MetricQuery, Tags};

const SERVICE: &str = "cloudwatch";
/// DeleteAlarms takes at most 100 names per call.
const DELETE_BATCH: usize = 100;
/// What CloudWatch assumes when an alarm has no TreatMissingData.
const DEFAULT_TREAT_MISSING_DATA: &str = "missing";
/// The state CloudWatch gives an alarm it has not evaluated yet.
const DEFAULT_STATE: &str = "INSUFFICIENT_DATA";

/// [`CloudWatch`] through the AWS SDK.
#[derive(Debug)]
pub struct SdkCloudWatch {
    client: sdk::Client,
    calls: Calls,
}

impl SdkCloudWatch {
    /// An adapter using `config` (region, endpoint, credentials), with the SDK's own retries off:
    /// `calls` rate-limits, retries and counts every call.
    pub fn new(config: &aws_config::SdkConfig, calls: Calls) -> Self {
        let conf = sdk::config::Builder::from(config).retry_config(calls::sdk_retry_config()).build();
        Self::with_client(sdk::Client::from_conf(conf), calls)
    }

    fn with_client(client: sdk::Client, calls: Calls) -> Self {
        SdkCloudWatch { client, calls }
    }
}

fn missing(operation: &'static str, what: &str) -> AwsError {
    AwsError::new(SERVICE, operation, ErrorKind::Other, format!("the answer has no {what}"))
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// An alarm in ecsop's terms. Fields an alarm of another shape lacks (a metric-math or anomaly-detection
/// alarm has no metric name, statistic or threshold) come back empty or zero, so the engine sees a
/// difference from what it wants instead of an error; only the name and ARN are required.
fn alarm_info(operation: &'static str, alarm: &sdk::types::MetricAlarm) -> AwsResult<AlarmInfo> {
    let name = alarm.alarm_name().ok_or_else(|| missing(operation, "AlarmName"))?;
    let arn = alarm.alarm_arn().ok_or_else(|| missing(operation, "AlarmArn"))?;
    let dimensions: BTreeMap<String, String> = alarm
        .dimensions()
        .iter()
        .filter_map(|d| Some((d.name()?.to_string(), d.value().unwrap_or_default().to_string())))
        .collect();
    let evaluation_periods = alarm.evaluation_periods().unwrap_or_default();
    Ok(AlarmInfo {
        arn: arn.to_string(),
        alarm: MetricAlarm {
            name: name.to_string(),
            description: alarm.alarm_description().unwrap_or_default().to_string(),
            namespace: alarm.namespace().unwrap_or_default().to_string(),
            metric_name: alarm.metric_name().unwrap_or_default().to_string(),
            dimensions,
            statistic: alarm.statistic().map(|s| s.as_str().to_string()).unwrap_or_default(),
            comparison: alarm.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
            threshold: alarm.threshold().unwrap_or_default(),
            period_seconds: alarm.period().unwrap_or_default(),
            evaluation_periods,
            // Unset means "every evaluated period", which is how CloudWatch evaluates such an alarm.
            datapoints_to_alarm: alarm.datapoints_to_alarm().unwrap_or(evaluation_periods),
            treat_missing_data: alarm.treat_missing_data().unwrap_or(DEFAULT_TREAT_MISSING_DATA).to_string(),
            alarm_actions: sorted(alarm.alarm_actions()),
            ok_actions: sorted(alarm.ok_actions()),
        },
        state: alarm.state_value().map(|s| s.as_str().to_string()).unwrap_or_else(|| DEFAULT_STATE.to_string()),
    })
}

#[async_trait]
impl CloudWatch for SdkCloudWatch {
    async fn metric_data(
        &self,
        queries: &[MetricQuery],
        start: std::time::SystemTime,
        end: std::time::SystemTime,
    ) -> AwsResult<Vec<Option<f64>>> {
        const OP: &str = "GetMetricData";
        let seconds = end.duration_since(start).map(|d| d.as_secs()).unwrap_or(0);
        if seconds == 0 || !seconds.is_multiple_of(60) {
            return Err(AwsError::new(
                SERVICE,
                OP,
                ErrorKind::Invalid,
                format!("the period must be a whole number of minutes, not {seconds} s"),
            ));
        }
        let period = i32::try_from(seconds).unwrap_or(i32::MAX);
        // One call (at most 500 queries, AWS's limit, which it enforces); each query's id is its index.
        let stats: Vec<sdk::types::MetricDataQuery> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let dimensions =
                    q.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect();
                let metric = sdk::types::Metric::builder()
                    .namespace(&q.namespace)
                    .metric_name(&q.metric_name)
                    .set_dimensions(Some(dimensions))
                    .build();
                let stat = sdk::types::MetricStat::builder().metric(metric).period(period).stat(&q.stat).build();
                sdk::types::MetricDataQuery::builder().id(format!("q{i}")).metric_stat(stat).build()
            })
            .collect();
        let mut values = vec![None; queries.len()];
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .calls
                .run(SERVICE, OP, || async {
                    self.client
                        .get_metric_data()
                        .set_metric_data_queries(Some(stats.clone()))
                        .start_time(sdk::primitives::DateTime::from(start))
                        .end_time(sdk::primitives::DateTime::from(end))
                        .set_next_token(next_token.clone())
                        .send()
                        .await
                        .map_err(AwsError::sdk(SERVICE, OP))
                })
                .await?;
            for result in out.metric_data_results() {
                let index = result.id().and_then(|id| id.strip_prefix('q')).and_then(|n| n.parse::<usize>().ok());
                if let (Some(index), Some(value)) = (index, result.values().first())
                    && let Some(slot) = values.get_mut(index)
                {
                    *slot = Some(*value);
                }
            }
            match out.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(values),
            }
        }
    }

    async fn alarms(&self, prefix: &str) -> AwsResult<Vec<AlarmInfo>> {
        const OP: &str = "DescribeAlarms";
        let mut alarms = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .calls
                .run(SERVICE, OP, || async {
                    self.client
                        .describe_alarms()
                        .alarm_name_prefix(prefix)
                        .alarm_types(AlarmType::MetricAlarm)
                        .set_next_token(next_token.clone())
                        .send()
                        .await
                        .map_err(AwsError::sdk(SERVICE, OP))
                })
                .await?;
            for alarm in out.metric_alarms() {
                alarms.push(alarm_info(OP, alarm)?);
            }
            match out.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(alarms),
            }
        }
    }

    async fn put_alarm(&self, alarm: &MetricAlarm, tags: &Tags) -> AwsResult<()> {
        const OP: &str = "PutMetricAlarm";
        let dimensions: Vec<Dimension> =
            alarm.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect();
        let tag_list = (!tags.is_empty()).then(|| sdk_tags(tags));
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .put_metric_alarm()
                    .alarm_name(&alarm.name)
                    .alarm_description(&alarm.description)
                    .namespace(&alarm.namespace)
                    .metric_name(&alarm.metric_name)
                    .set_dimensions(Some(dimensions.clone()))
                    .statistic(Statistic::from(alarm.statistic.as_str()))
                    .comparison_operator(ComparisonOperator::from(alarm.comparison.as_str()))
                    .threshold(alarm.threshold)
                    .period(alarm.period_seconds)
                    .evaluation_periods(alarm.evaluation_periods)
                    .datapoints_to_alarm(alarm.datapoints_to_alarm)
                    .treat_missing_data(&alarm.treat_missing_data)
                    .actions_enabled(true)
                    // An empty list clears the actions of an alarm being replaced.
                    .set_alarm_actions(Some(alarm.alarm_actions.clone()))
                    .set_ok_actions(Some(alarm.ok_actions.clone()))
                    // Applied only when this call creates the alarm: CloudWatch ignores Tags on a replace.
                    .set_tags(tag_list.clone())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        if tags.is_empty() {
            return Ok(());
        }
        // PutMetricAlarm cannot tell a create from a replace, and a replaced alarm keeps its old tags, so
        // the tags are set again with TagResource. That needs the ARN, which PutMetricAlarm does not
        // return (and which ecsop cannot build without knowing the account): read it back by name.
        let arn = self.alarm_arn(&alarm.name).await?.ok_or_else(|| {
            AwsError::new(
                SERVICE,
                OP,
                ErrorKind::NotFound,
                format!("alarm {} is not listed right after PutMetricAlarm", alarm.name),
            )
        })?;
        self.tag(&arn, tags).await
    }

    async fn tags(&self, arn: &str) -> AwsResult<Tags> {
        const OP: &str = "ListTagsForResource";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client.list_tags_for_resource().resource_arn(arn).send().await.map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(out
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect())
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        const OP: &str = "TagResource";
        if tags.is_empty() {
            return Ok(());
        }
        let tags = sdk_tags(tags);
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        const OP: &str = "UntagResource";
        if keys.is_empty() {
            return Ok(());
        }
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(keys.to_vec()))
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn delete_alarms(&self, names: &[String]) -> AwsResult<()> {
        const OP: &str = "DeleteAlarms";
        for chunk in names.chunks(DELETE_BATCH) {
            // AWS deletes unknown names silently; should it ever answer ResourceNotFound instead, the
            // alarms are gone all the same.
            self.calls
                .run(SERVICE, OP, || async {
                    self.client
                        .delete_alarms()
                        .set_alarm_names(Some(chunk.to_vec()))
                        .send()
                        .await
                        .map_err(AwsError::sdk(SERVICE, OP))
                })
                .await
                .missing_ok()?;
        }
        Ok(())
    }
}

impl SdkCloudWatch {
    /// The ARN of the metric alarm named exactly `name`, if it exists.
    async fn alarm_arn(&self, name: &str) -> AwsResult<Option<String>> {
        const OP: &str = "DescribeAlarms";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .describe_alarms()
                    .alarm_names(name)
                    .alarm_types(AlarmType::MetricAlarm)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(out
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(name))
            .and_then(|a| a.alarm_arn())
            .map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use sdk::operation::delete_alarms::{DeleteAlarmsError, DeleteAlarmsOutput};
    use sdk::operation::describe_alarms::{DescribeAlarmsError, DescribeAlarmsOutput};
    use sdk::operation::put_metric_alarm::{PutMetricAlarmInput, PutMetricAlarmOutput};
    use sdk::operation::tag_resource::{TagResourceError, TagResourceOutput};
    use sdk::types::StateValue;

    use super::*;
    use crate::aws::Outcome;

    const ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-books-api-cpu";

    fn fast_calls() -> Calls {
        Calls::for_unit_tests()
    }

    fn adapter(client: sdk::Client, calls: &Calls) -> SdkCloudWatch {
        SdkCloudWatch::with_client(client, calls.clone())
    }

    fn error(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(code).build()
    }

    /// The SDK's own retries off, as in [`SdkCloudWatch::new`]: only `Calls` may retry.
    macro_rules! client {
        ($mode:expr, $rules:expr) => {
            mock_client!(aws_sdk_cloudwatch, $mode, $rules, |c| c.retry_config(calls::sdk_retry_config()))
        };
    }

    fn cpu_alarm() -> MetricAlarm {
        MetricAlarm {
            name: "prod-books-api-cpu".into(),
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
                "arn:aws:sns:us-east-1:123456789012:a".into(),
                "arn:aws:sns:us-east-1:123456789012:b".into(),
            ],
            ok_actions: vec!["arn:aws:sns:us-east-1:123456789012:ok".into()],
        }
    }

    fn dimension(name: &str, value: &str) -> Dimension {
        Dimension::builder().name(name).value(value).build()
    }

    // AWS pages DescribeAlarms (50 alarms by default): every page is read, and each answer is mapped with
    // dimensions and actions sorted and the optional fields defaulted as CloudWatch evaluates them.
    #[tokio::test]
    async fn alarms_are_read_over_every_page_and_mapped() {
        let first = mock!(sdk::Client::describe_alarms)
            .match_requests(|r| {
                r.next_token().is_none()
                    && r.alarm_name_prefix() == Some("prod-books-api-")
                    && r.alarm_types() == [AlarmType::MetricAlarm]
            })
            .then_output(|| {
                let full = sdk::types::MetricAlarm::builder()
                    .alarm_name("prod-books-api-cpu")
                    .alarm_arn(ARN)
                    .alarm_description("CPU of prod/books-api")
                    .namespace("AWS/ECS")
                    .metric_name("CPUUtilization")
                    .dimensions(dimension("ServiceName", "books-api"))
                    .dimensions(dimension("ClusterName", "prod"))
                    .statistic(Statistic::Average)
                    .comparison_operator(ComparisonOperator::GreaterThanThreshold)
                    .threshold(80.5)
                    .period(60)
                    .evaluation_periods(5)
                    .datapoints_to_alarm(3)
                    .treat_missing_data("notBreaching")
                    .alarm_actions("arn:aws:sns:us-east-1:123456789012:b")
                    .alarm_actions("arn:aws:sns:us-east-1:123456789012:a")
                    .ok_actions("arn:aws:sns:us-east-1:123456789012:ok")
                    .state_value(StateValue::Alarm)
                    .build();
                DescribeAlarmsOutput::builder().metric_alarms(full).next_token("page-2").build()
            });
        let second = mock!(sdk::Client::describe_alarms)
            .match_requests(|r| r.next_token() == Some("page-2") && r.alarm_name_prefix() == Some("prod-books-api-"))
            .then_output(|| {
                let sparse = sdk::types::MetricAlarm::builder()
                    .alarm_name("prod-books-api-tasks")
                    .alarm_arn("arn:tasks")
                    .namespace("AWS/ECS")
                    .metric_name("RunningTaskCount")
                    .statistic(Statistic::Minimum)
                    .comparison_operator(ComparisonOperator::LessThanThreshold)
                    .threshold(1.0)
                    .period(300)
                    .evaluation_periods(2)
                    .build();
                DescribeAlarmsOutput::builder().metric_alarms(sparse).build()
            });
        let calls = fast_calls();
        let cw = adapter(client!(RuleMode::MatchAny, [&first, &second]), &calls);

        let alarms = cw.alarms("prod-books-api-").await.expect("alarms");
        let tasks = MetricAlarm {
            name: "prod-books-api-tasks".into(),
            description: String::new(),
            namespace: "AWS/ECS".into(),
            metric_name: "RunningTaskCount".into(),
            dimensions: BTreeMap::new(),
            statistic: "Minimum".into(),
            comparison: "LessThanThreshold".into(),
            threshold: 1.0,
            period_seconds: 300,
            evaluation_periods: 2,
            datapoints_to_alarm: 2,
            treat_missing_data: "missing".into(),
            alarm_actions: vec![],
            ok_actions: vec![],
        };
        assert_eq!(
            alarms,
            vec![
                AlarmInfo { arn: ARN.into(), alarm: cpu_alarm(), state: "ALARM".into() },
                AlarmInfo { arn: "arn:tasks".into(), alarm: tasks, state: "INSUFFICIENT_DATA".into() },
            ]
        );
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    // Every field of the alarm goes into PutMetricAlarm, with the tags (kept by AWS on creation only);
    // then the ARN is read back by name and the tags set again with TagResource for a replaced alarm.
    // Without tags, PutMetricAlarm is the only call.
    #[tokio::test]
    async fn put_alarm_sends_every_field_then_tags_the_alarm_by_its_arn() {
        let sent: Arc<Mutex<Vec<PutMetricAlarmInput>>> = Arc::default();
        let seen = sent.clone();
        let put = mock!(sdk::Client::put_metric_alarm)
            .match_requests(move |r| {
                seen.lock().expect("lock").push(r.clone());
                true
            })
            .then_output(|| PutMetricAlarmOutput::builder().build());
        let describe = mock!(sdk::Client::describe_alarms)
            .match_requests(|r| {
                r.alarm_names() == ["prod-books-api-cpu"]
                    && r.alarm_name_prefix().is_none()
                    && r.alarm_types() == [AlarmType::MetricAlarm]
            })
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        sdk::types::MetricAlarm::builder().alarm_name("prod-books-api-cpu").alarm_arn(ARN).build(),
                    )
                    .build()
            });
        let tag = mock!(sdk::Client::tag_resource)
            .match_requests(|r| {
                r.resource_arn() == Some(ARN)
                    && r.tags()
                        == [
                            Tag::builder().key("ecsop.io/managed-by").value("ecsop").build(),
                            Tag::builder().key("ecsop.io/owner").value("prod/books-api").build(),
                        ]
            })
            .then_output(|| TagResourceOutput::builder().build());
        let calls = fast_calls();
        let cw = adapter(client!(RuleMode::MatchAny, [&put, &describe, &tag]), &calls);
        let tags = Tags::from([
            ("ecsop.io/managed-by".to_string(), "ecsop".to_string()),
            ("ecsop.io/owner".to_string(), "prod/books-api".to_string()),
        ]);

        cw.put_alarm(&cpu_alarm(), &tags).await.expect("put");
        let expected = PutMetricAlarmInput::builder()
            .alarm_name("prod-books-api-cpu")
            .alarm_description("CPU of prod/books-api")
            .actions_enabled(true)
            .ok_actions("arn:aws:sns:us-east-1:123456789012:ok")
            .alarm_actions("arn:aws:sns:us-east-1:123456789012:a")
            .alarm_actions("arn:aws:sns:us-east-1:123456789012:b")
            .metric_name("CPUUtilization")
            .namespace("AWS/ECS")
            .statistic(Statistic::Average)
            .dimensions(dimension("ClusterName", "prod"))
            .dimensions(dimension("ServiceName", "books-api"))
            .period(60)
            .evaluation_periods(5)
            .datapoints_to_alarm(3)
            .threshold(80.5)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .treat_missing_data("notBreaching")
            .tags(Tag::builder().key("ecsop.io/managed-by").value("ecsop").build())
            .tags(Tag::builder().key("ecsop.io/owner").value("prod/books-api").build())
            .build()
            .expect("input");
        assert_eq!(sent.lock().expect("lock").len(), 1);
        assert_eq!(sent.lock().expect("lock")[0], expected);
        assert_eq!((put.num_calls(), describe.num_calls(), tag.num_calls()), (1, 1, 1));

        cw.put_alarm(&cpu_alarm(), &Tags::new()).await.expect("put without tags");
        let mut untagged = expected;
        untagged.tags = None;
        assert_eq!(sent.lock().expect("lock")[1], untagged);
        assert_eq!((put.num_calls(), describe.num_calls(), tag.num_calls()), (2, 1, 1), "no tags: Put only");
    }

    // AWS deletes unknown names silently; a ResourceNotFound all the same is success. Names go 100 per
    // call, and no names make no call.
    #[tokio::test]
    async fn deleting_missing_alarms_succeeds_in_batches_of_100() {
        let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
        let seen = sizes.clone();
        let rule = mock!(sdk::Client::delete_alarms)
            .match_requests(move |r| {
                seen.lock().expect("lock").push(r.alarm_names().len());
                true
            })
            .sequence()
            .error(|| {
                DeleteAlarmsError::ResourceNotFound(
                    sdk::types::error::ResourceNotFound::builder()
                        .message("alarm not found")
                        .meta(error("ResourceNotFound"))
                        .build(),
                )
            })
            .output(|| DeleteAlarmsOutput::builder().build())
            .times(2)
            .build();
        let calls = fast_calls();
        let cw = adapter(client!(RuleMode::Sequential, [&rule]), &calls);

        cw.delete_alarms(&[]).await.expect("nothing to delete");
        assert_eq!(rule.num_calls(), 0);
        let names: Vec<String> = (0..250).map(|i| format!("alarm-{i:03}")).collect();
        cw.delete_alarms(&names).await.expect("missing is success");
        assert_eq!(*sizes.lock().expect("lock"), [100, 100, 50]);
        assert_eq!(calls.counts()[&(SERVICE, "DeleteAlarms", Outcome::Error("not_found"))], 1);
    }

    // The SDK does not retry (its retries are off); Calls retries the throttled read until it succeeds.
    #[tokio::test]
    async fn throttling_is_retried_by_calls_until_it_succeeds() {
        let rule = mock!(sdk::Client::describe_alarms)
            .sequence()
            .error(|| DescribeAlarmsError::generic(error("Throttling")))
            .times(2)
            .output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(sdk::types::MetricAlarm::builder().alarm_name("a").alarm_arn("arn:a").build())
                    .build()
            })
            .build();
        let calls = fast_calls();
        let cw = adapter(client!(RuleMode::Sequential, [&rule]), &calls);

        let alarms = cw.alarms("a").await.expect("retried");
        assert_eq!(alarms.iter().map(|a| a.arn.as_str()).collect::<Vec<_>>(), ["arn:a"]);
        assert_eq!(rule.num_calls(), 3);
        let counts = calls.counts();
        assert_eq!(counts[&(SERVICE, "DescribeAlarms", Outcome::Throttled)], 2);
        assert_eq!(counts[&(SERVICE, "DescribeAlarms", Outcome::Ok)], 1);
    }

    #[tokio::test]
    async fn access_denied_fails_at_once() {
        let rule = mock!(sdk::Client::tag_resource)
            .sequence()
            .error(|| TagResourceError::generic(error("AccessDenied")))
            .repeatedly()
            .build();
        let calls = fast_calls();
        let cw = adapter(client!(RuleMode::Sequential, [&rule]), &calls);

        let tags = Tags::from([("k".to_string(), "v".to_string())]);
        let err = cw.tag(ARN, &tags).await.expect_err("denied");
        assert_eq!((err.kind, err.service, err.operation), (ErrorKind::AccessDenied, SERVICE, "TagResource"), "{err}");
        assert_eq!(rule.num_calls(), 1, "never retried");
        assert_eq!(calls.counts().values().sum::<u64>(), 1);
    }
}
