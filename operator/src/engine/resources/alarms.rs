//! The CloudWatch alarms ecsop owns on a service (`spec.alarms`): what they should be, and the writes
//! that get them there. ECS also watches them during rollouts (deployment alarms, see
//! [`crate::engine::model::ServiceState::alarms`]), so one firing mid-rollout rolls it back.

use std::collections::BTreeMap;

use super::kind::{Kind, Planned, Scope, ownership_keys};
use crate::aws::{AlarmInfo, AwsError, Clients, MetricAlarm, Tags};
use crate::engine::model::Desired;
use crate::engine::names::{Names, is_owned, owned_tags};
use crate::engine::target::Target;
use crate::engine::vocabulary::{Action, Change, Resource};

/// The alarms kind.
pub struct Alarms;

impl Kind for Alarms {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let wanted = desired(scope.target);
        let observed = scope.observed.alarms.as_ref()?;
        wanted.iter().find_map(|w| {
            observed
                .iter()
                .find(|(a, tags)| a.alarm.name == w.name && !is_owned(tags, scope.names()))
                .map(|(a, _)| scope.not_owned(&format!("CloudWatch alarm {}", a.alarm.name)))
        })
    }

    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        plan(scope.names(), &desired.alarms, scope.observed.alarms.as_ref(), &mut planned.actions);
    }

    // The alarms before the service they watch (and that names them as deployment alarms).
    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        let alarms = owned(scope.names(), scope.observed.alarms.as_ref());
        if !alarms.is_empty() {
            actions.push(Action::DeleteAlarms { names: alarms.iter().map(|a| a.alarm.name.clone()).collect() });
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        for a in owned(scope.names(), scope.observed.alarms.as_ref()) {
            actions.push(Action::Untag { resource: Resource::Alarm, arn: a.arn.clone(), keys: ownership_keys() });
        }
    }
}

/// The alarms that can carry our names, with their tags (ownership), the tags read concurrently: one
/// ListTagsForResource per alarm.
pub async fn read(clients: &Clients, names: &Names) -> Result<Vec<(AlarmInfo, Tags)>, AwsError> {
    let found = clients.cloudwatch.alarms(&format!("{}-", names.family())).await?;
    let ours: Vec<AlarmInfo> = found.into_iter().filter(|a| is_our_name(names, &a.alarm.name)).collect();
    let tags = futures::future::try_join_all(ours.iter().map(|a| clients.cloudwatch.tags(&a.arn))).await?;
    Ok(ours.into_iter().zip(tags).collect())
}

/// The alarm kinds, as the suffixes of their names.
pub const KINDS: [&str; 3] = ["cpu-high", "memory-high", "no-running-tasks"];

/// The name of our alarm of `kind`: `<namespace>-<name>-<kind>`.
pub fn alarm_name(names: &Names, kind: &str) -> String {
    format!("{}-{kind}", names.family())
}

/// Whether `name` is one of the names our alarms can have (whatever the spec wants now).
pub fn is_our_name(names: &Names, name: &str) -> bool {
    KINDS.iter().any(|k| alarm_name(names, k) == name)
}

/// The alarms `target`'s spec asks for, by name.
pub fn desired(target: &Target) -> Vec<MetricAlarm> {
    let Some(spec) = &target.spec.alarms else {
        return Vec::new();
    };
    let names = &target.names;
    let mut topics = spec.sns_topic_arns.clone();
    topics.sort();
    topics.dedup();
    let dimensions = BTreeMap::from([
        ("ClusterName".to_string(), target.spec.cluster.clone()),
        ("ServiceName".to_string(), names.service().to_string()),
    ]);
    let periods = spec.evaluation_periods;
    let alarm = |kind: &str,
                 description: String,
                 namespace: &str,
                 metric: &str,
                 statistic: &str,
                 comparison: &str,
                 threshold: f64| {
        MetricAlarm {
            name: alarm_name(names, kind),
            description,
            namespace: namespace.to_string(),
            metric_name: metric.to_string(),
            dimensions: dimensions.clone(),
            statistic: statistic.to_string(),
            comparison: comparison.to_string(),
            threshold,
            period_seconds: 60,
            evaluation_periods: periods,
            datapoints_to_alarm: periods,
            // No data is not a breach: a service without tasks or Container Insights stays
            // INSUFFICIENT_DATA instead of firing, and so never rolls back a rollout by itself.
            treat_missing_data: "missing".to_string(),
            alarm_actions: topics.clone(),
            ok_actions: topics.clone(),
        }
    };
    let owner = names.owner();
    let mut out = Vec::new();
    if let Some(cpu) = spec.cpu_high_percent {
        out.push(alarm(
            "cpu-high",
            format!("{owner}: average CPU above {cpu}% for {periods} min (managed by ecsop)"),
            "AWS/ECS",
            "CPUUtilization",
            "Average",
            "GreaterThanThreshold",
            f64::from(cpu),
        ));
    }
    if let Some(memory) = spec.memory_high_percent {
        out.push(alarm(
            "memory-high",
            format!("{owner}: average memory above {memory}% for {periods} min (managed by ecsop)"),
            "AWS/ECS",
            "MemoryUtilization",
            "Average",
            "GreaterThanThreshold",
            f64::from(memory),
        ));
    }
    if spec.no_running_tasks {
        out.push(alarm(
            "no-running-tasks",
            format!("{owner}: no task running for {periods} min (managed by ecsop; needs Container Insights)"),
            "ECS/ContainerInsights",
            "RunningTaskCount",
            "Minimum",
            "LessThanThreshold",
            1.0,
        ));
    }
    out
}

/// What differs between an alarm as it is and as it should be.
fn changes(current: &MetricAlarm, wanted: &MetricAlarm) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut diff = |field: &str, a: String, b: String| {
        if a != b {
            changes.push(Change { field: field.to_string(), from: a, to: b });
        }
    };
    diff("namespace", current.namespace.clone(), wanted.namespace.clone());
    diff("metric", current.metric_name.clone(), wanted.metric_name.clone());
    diff("dimensions", format!("{:?}", current.dimensions), format!("{:?}", wanted.dimensions));
    diff("statistic", current.statistic.clone(), wanted.statistic.clone());
    diff("comparison", current.comparison.clone(), wanted.comparison.clone());
    diff("threshold", current.threshold.to_string(), wanted.threshold.to_string());
    diff("period", current.period_seconds.to_string(), wanted.period_seconds.to_string());
    diff("evaluationPeriods", current.evaluation_periods.to_string(), wanted.evaluation_periods.to_string());
    diff("datapointsToAlarm", current.datapoints_to_alarm.to_string(), wanted.datapoints_to_alarm.to_string());
    diff("treatMissingData", current.treat_missing_data.clone(), wanted.treat_missing_data.clone());
    diff("alarmActions", current.alarm_actions.join(","), wanted.alarm_actions.join(","));
    diff("okActions", current.ok_actions.join(","), wanted.ok_actions.join(","));
    diff("description", current.description.clone(), wanted.description.clone());
    changes
}

/// The writes that bring our alarms to `wanted`; nothing when they were not read (fast path).
fn plan(names: &Names, wanted: &[MetricAlarm], observed: Option<&Vec<(AlarmInfo, Tags)>>, actions: &mut Vec<Action>) {
    let Some(observed) = observed else {
        return;
    };
    for w in wanted {
        let current = observed.iter().find(|(a, _)| a.alarm.name == w.name);
        let changes = match current {
            Some((a, _)) => changes(&a.alarm, w),
            None => vec![Change { field: "threshold".into(), from: "-".into(), to: w.threshold.to_string() }],
        };
        if !changes.is_empty() {
            actions.push(Action::PutAlarm {
                alarm: w.clone(),
                name: w.name.clone(),
                tags: owned_tags(names, &[]),
                exists: current.is_some(),
                changes,
            });
        }
    }
    let unwanted = owned_unwanted(names, wanted, observed);
    if !unwanted.is_empty() {
        actions.push(Action::DeleteAlarms { names: unwanted });
    }
}

/// Our alarms the spec no longer asks for.
fn owned_unwanted(names: &Names, wanted: &[MetricAlarm], observed: &[(AlarmInfo, Tags)]) -> Vec<String> {
    observed
        .iter()
        .filter(|(a, tags)| is_owned(tags, names) && !wanted.iter().any(|w| w.name == a.alarm.name))
        .map(|(a, _)| a.alarm.name.clone())
        .collect()
}

/// Every alarm we own, for teardown.
fn owned(names: &Names, observed: Option<&Vec<(AlarmInfo, Tags)>>) -> Vec<AlarmInfo> {
    observed.into_iter().flatten().filter(|(_, tags)| is_owned(tags, names)).map(|(a, _)| a.clone()).collect()
}
