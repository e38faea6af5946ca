//! The Application Auto Scaling adapter over `aws-sdk-applicationautoscaling`, for ECS services only:
//! service namespace `ecs`, scalable dimension `ecs:service:DesiredCount`.

use async_trait::async_trait;
use aws_sdk_applicationautoscaling as sdk;
use sdk::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};

use super::calls::{self, Calls};
use super::error::MissingOk;
use super::{Autoscaling, AwsError, AwsResult, ErrorKind, ScalableTarget, ScalingMetric, ScalingPolicy};

const SERVICE: &str = "application-autoscaling";
const NAMESPACE: ServiceNamespace = ServiceNamespace::Ecs;
const DIMENSION: ScalableDimension = ScalableDimension::EcsServiceDesiredCount;
/// Seconds between scaling activities, in and out.
const COOLDOWN_SECONDS: i32 = 60;

/// [`Autoscaling`] through the AWS SDK.
#[derive(Debug)]
pub struct SdkAutoscaling {
    client: sdk::Client,
    calls: Calls,
}

impl SdkAutoscaling {
    /// An adapter using `config` (region, endpoint, credentials), with the SDK's own retries off:
    /// `calls` rate-limits, retries and counts every call.
    pub fn new(config: &aws_config::SdkConfig, calls: Calls) -> Self {
        let conf = sdk::config::Builder::from(config).retry_config(calls::sdk_retry_config()).build();
        Self::with_client(sdk::Client::from_conf(conf), calls)
    }

    fn with_client(client: sdk::Client, calls: Calls) -> Self {
        SdkAutoscaling { client, calls }
    }
}

fn build_err(operation: &'static str) -> impl FnOnce(sdk::error::BuildError) -> AwsError {
    move |e| AwsError::new(SERVICE, operation, ErrorKind::Invalid, e.to_string())
}

/// Missing is success.
fn ignore_not_found<T>(result: AwsResult<T>) -> AwsResult<()> {
    result.missing_ok()
}

/// The predefined metric of a policy, as AWS takes it.
fn metric_specification(operation: &'static str, metric: &ScalingMetric) -> AwsResult<PredefinedMetricSpecification> {
    let builder = match metric {
        ScalingMetric::Cpu => {
            PredefinedMetricSpecification::builder().predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
        }
        ScalingMetric::Memory => PredefinedMetricSpecification::builder()
            .predefined_metric_type(MetricType::EcsServiceAverageMemoryUtilization),
        ScalingMetric::RequestsPerTarget { resource_label } => PredefinedMetricSpecification::builder()
            .predefined_metric_type(MetricType::AlbRequestCountPerTarget)
            .resource_label(resource_label),
    };
    builder.build().map_err(build_err(operation))
}

/// A target-tracking policy on one of the predefined metrics ecsop uses; `None` for anything else
/// (step scaling, custom metrics, other predefined metrics), which ecsop leaves alone.
fn policy_from_sdk(policy: &sdk::types::ScalingPolicy) -> Option<ScalingPolicy> {
    if policy.policy_type() != &PolicyType::TargetTrackingScaling {
        return None;
    }
    let config = policy.target_tracking_scaling_policy_configuration()?;
    let spec = config.predefined_metric_specification()?;
    let metric = match spec.predefined_metric_type() {
        MetricType::EcsServiceAverageCpuUtilization => ScalingMetric::Cpu,
        MetricType::EcsServiceAverageMemoryUtilization => ScalingMetric::Memory,
        MetricType::AlbRequestCountPerTarget => {
            ScalingMetric::RequestsPerTarget { resource_label: spec.resource_label()?.to_string() }
        }
        _ => return None,
    };
    Some(ScalingPolicy { name: policy.policy_name().to_string(), metric, target: config.target_value() })
}

#[async_trait]
impl Autoscaling for SdkAutoscaling {
    async fn scalable_target(&self, resource_id: &str) -> AwsResult<Option<ScalableTarget>> {
        const OP: &str = "DescribeScalableTargets";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .describe_scalable_targets()
                    .service_namespace(NAMESPACE)
                    .scalable_dimension(DIMENSION)
                    .resource_ids(resource_id)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(out
            .scalable_targets()
            .iter()
            .find(|t| t.resource_id() == resource_id && t.scalable_dimension() == &DIMENSION)
            .map(|t| ScalableTarget {
                resource_id: t.resource_id().to_string(),
                min_capacity: t.min_capacity(),
                max_capacity: t.max_capacity(),
            }))
    }

    async fn register_scalable_target(&self, target: &ScalableTarget) -> AwsResult<()> {
        const OP: &str = "RegisterScalableTarget";
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .register_scalable_target()
                    .service_namespace(NAMESPACE)
                    .scalable_dimension(DIMENSION)
                    .resource_id(&target.resource_id)
                    .min_capacity(target.min_capacity)
                    .max_capacity(target.max_capacity)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn deregister_scalable_target(&self, resource_id: &str) -> AwsResult<()> {
        const OP: &str = "DeregisterScalableTarget";
        ignore_not_found(
            self.calls
                .run(SERVICE, OP, || async {
                    self.client
                        .deregister_scalable_target()
                        .service_namespace(NAMESPACE)
                        .scalable_dimension(DIMENSION)
                        .resource_id(resource_id)
                        .send()
                        .await
                        .map_err(AwsError::sdk(SERVICE, OP))
                })
                .await,
        )
    }

    async fn policies(&self, resource_id: &str) -> AwsResult<Vec<ScalingPolicy>> {
        const OP: &str = "DescribeScalingPolicies";
        let mut policies = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .calls
                .run(SERVICE, OP, || async {
                    self.client
                        .describe_scaling_policies()
                        .service_namespace(NAMESPACE)
                        .scalable_dimension(DIMENSION)
                        .resource_id(resource_id)
                        .set_next_token(next_token.clone())
                        .send()
                        .await
                        .map_err(AwsError::sdk(SERVICE, OP))
                })
                .await?;
            // AWS filters by exact resource id already; the check keeps a policy of another service out
            // should an answer ever hold one.
            policies.extend(
                out.scaling_policies().iter().filter(|p| p.resource_id() == resource_id).filter_map(policy_from_sdk),
            );
            match out.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(policies),
            }
        }
    }

    async fn put_policy(&self, resource_id: &str, policy: &ScalingPolicy) -> AwsResult<()> {
        const OP: &str = "PutScalingPolicy";
        let config = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(policy.target)
            .predefined_metric_specification(metric_specification(OP, &policy.metric)?)
            .scale_in_cooldown(COOLDOWN_SECONDS)
            .scale_out_cooldown(COOLDOWN_SECONDS)
            .build()
            .map_err(build_err(OP))?;
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .put_scaling_policy()
                    .service_namespace(NAMESPACE)
                    .scalable_dimension(DIMENSION)
                    .resource_id(resource_id)
                    .policy_name(&policy.name)
                    .policy_type(PolicyType::TargetTrackingScaling)
                    .target_tracking_scaling_policy_configuration(config.clone())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn delete_policy(&self, resource_id: &str, name: &str) -> AwsResult<()> {
        const OP: &str = "DeleteScalingPolicy";
        ignore_not_found(
            self.calls
                .run(SERVICE, OP, || async {
                    self.client
                        .delete_scaling_policy()
                        .service_namespace(NAMESPACE)
                        .scalable_dimension(DIMENSION)
                        .resource_id(resource_id)
                        .policy_name(name)
                        .send()
                        .await
                        .map_err(AwsError::sdk(SERVICE, OP))
                })
                .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(metric: MetricType, label: Option<&str>, policy_type: PolicyType) -> sdk::types::ScalingPolicy {
        let spec = PredefinedMetricSpecification::builder()
            .predefined_metric_type(metric)
            .set_resource_label(label.map(str::to_string))
            .build()
            .expect("spec");
        sdk::types::ScalingPolicy::builder()
            .policy_arn("arn:policy")
            .policy_name("p")
            .service_namespace(NAMESPACE)
            .resource_id("service/c/s")
            .scalable_dimension(DIMENSION)
            .policy_type(policy_type)
            .target_tracking_scaling_policy_configuration(
                TargetTrackingScalingPolicyConfiguration::builder()
                    .target_value(60.0)
                    .predefined_metric_specification(spec)
                    .build()
                    .expect("config"),
            )
            .creation_time(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .expect("policy")
    }

    #[test]
    fn predefined_target_tracking_policies_map_back_and_others_are_skipped() {
        let cpu = policy(MetricType::EcsServiceAverageCpuUtilization, None, PolicyType::TargetTrackingScaling);
        assert_eq!(
            policy_from_sdk(&cpu),
            Some(ScalingPolicy { name: "p".into(), metric: ScalingMetric::Cpu, target: 60.0 })
        );
        let mem = policy(MetricType::EcsServiceAverageMemoryUtilization, None, PolicyType::TargetTrackingScaling);
        assert_eq!(policy_from_sdk(&mem).map(|p| p.metric), Some(ScalingMetric::Memory));
        let req = policy(
            MetricType::AlbRequestCountPerTarget,
            Some("app/x/1/targetgroup/y/2"),
            PolicyType::TargetTrackingScaling,
        );
        assert_eq!(
            policy_from_sdk(&req).map(|p| p.metric),
            Some(ScalingMetric::RequestsPerTarget { resource_label: "app/x/1/targetgroup/y/2".into() })
        );
        let step = policy(MetricType::EcsServiceAverageCpuUtilization, None, PolicyType::StepScaling);
        assert_eq!(policy_from_sdk(&step), None);
        let other = policy(MetricType::DynamoDbReadCapacityUtilization, None, PolicyType::TargetTrackingScaling);
        assert_eq!(policy_from_sdk(&other), None);
    }

    #[test]
    fn requests_per_target_carries_its_resource_label() {
        let spec = metric_specification(
            "PutScalingPolicy",
            &ScalingMetric::RequestsPerTarget { resource_label: "app/lb/1/targetgroup/tg/2".into() },
        )
        .expect("spec");
        assert_eq!(spec.predefined_metric_type(), &MetricType::AlbRequestCountPerTarget);
        assert_eq!(spec.resource_label(), Some("app/lb/1/targetgroup/tg/2"));
    }

    /// AWS answers a missing target or policy with ObjectNotFoundException (moto with a
    /// ValidationException, see tests/aws_autoscaling.rs).
    #[tokio::test]
    async fn deregistering_or_deleting_what_is_missing_succeeds() {
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        use sdk::operation::delete_scaling_policy::DeleteScalingPolicyError;
        use sdk::operation::deregister_scalable_target::DeregisterScalableTargetError;
        let meta = || {
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("ObjectNotFoundException")
                .message("No scalable target registered")
                .build()
        };
        let target = mock!(sdk::Client::deregister_scalable_target)
            .then_error(move || DeregisterScalableTargetError::generic(meta()));
        let policy =
            mock!(sdk::Client::delete_scaling_policy).then_error(move || DeleteScalingPolicyError::generic(meta()));
        let client = mock_client!(aws_sdk_applicationautoscaling, RuleMode::Sequential, [&target, &policy]);
        let scaling = SdkAutoscaling::with_client(
            client,
            Calls::new(crate::aws::limiter::Limiter::unlimited(), crate::aws::calls::RetryPolicy::default()),
        );
        scaling.deregister_scalable_target("service/c/s").await.expect("missing target is success");
        scaling.delete_policy("service/c/s", "cpu").await.expect("missing policy is success");
        assert_eq!((target.num_calls(), policy.num_calls()), (1, 1));
    }
}
