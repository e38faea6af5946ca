//! The Application Auto Scaling SDK adapter against moto: an ECS service's scalable target and its
//! target-tracking policies.

use aws_sdk_applicationautoscaling as aas;
use aws_sdk_ecs as ecs;
use ecsop::aws::autoscaling::SdkAutoscaling;
use ecsop::aws::calls::RetryPolicy;
use ecsop::aws::limiter::Limiter;
use ecsop::aws::{Autoscaling, Calls, ErrorKind, ScalableTarget, ScalingMetric, ScalingPolicy};
use ecsop_testkit::{Account, Moto};

const RESOURCE: &str = "service/c1/books-api";

async fn account() -> Account {
    Moto::shared().await.expect("moto starts").new_account()
}

/// The ECS service `books-api` in cluster `c1`: moto registers a scalable target only for a service
/// that exists.
async fn ecs_service(account: &Account) {
    let net = account.network("c1").await.expect("network");
    let client = ecs::Client::new(&account.sdk_config().await);
    let td = client
        .register_task_definition()
        .family("default-books-api")
        .network_mode(ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(ecs::types::ContainerDefinition::builder().name("api").image("repo@sha256:1111").build())
        .send()
        .await
        .expect("register");
    let td_arn = td.task_definition().and_then(|t| t.task_definition_arn()).expect("arn").to_string();
    client
        .create_service()
        .cluster("c1")
        .service_name("books-api")
        .task_definition(td_arn)
        .desired_count(2)
        .launch_type(ecs::types::LaunchType::Fargate)
        .network_configuration(
            ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    ecs::types::AwsVpcConfiguration::builder()
                        .set_subnets(Some(net.subnet_ids.clone()))
                        .security_groups(&net.security_group_id)
                        .build()
                        .expect("awsvpc"),
                )
                .build(),
        )
        .send()
        .await
        .expect("create service");
}

fn policy(name: &str, metric: ScalingMetric, target: f64) -> ScalingPolicy {
    ScalingPolicy { name: name.into(), metric, target }
}

async fn sorted_policies(scaling: &SdkAutoscaling) -> Vec<ScalingPolicy> {
    let mut policies = scaling.policies(RESOURCE).await.expect("policies");
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    policies
}

#[tokio::test]
async fn a_scalable_target_and_its_policies_are_registered_read_back_and_removed() {
    let account = account().await;
    ecs_service(&account).await;
    let config = account.sdk_config().await;
    let scaling = SdkAutoscaling::new(&config, Calls::new(Limiter::unlimited(), RetryPolicy::default()));
    assert_eq!(scaling.scalable_target(RESOURCE).await.expect("describe"), None);
    assert_eq!(scaling.policies(RESOURCE).await.expect("policies"), vec![]);

    let target = ScalableTarget { resource_id: RESOURCE.into(), min_capacity: 2, max_capacity: 10 };
    scaling.register_scalable_target(&target).await.expect("register");
    assert_eq!(scaling.scalable_target(RESOURCE).await.expect("describe"), Some(target.clone()));
    let wider = ScalableTarget { max_capacity: 12, ..target };
    scaling.register_scalable_target(&wider).await.expect("re-register");
    assert_eq!(scaling.scalable_target(RESOURCE).await.expect("describe"), Some(wider));

    let label = "app/ecsop-alb/0123456789abcdef/targetgroup/default-books/fedcba9876543210";
    let cpu = policy("books-api-cpu", ScalingMetric::Cpu, 60.0);
    let memory = policy("books-api-memory", ScalingMetric::Memory, 75.0);
    let requests =
        policy("books-api-requests", ScalingMetric::RequestsPerTarget { resource_label: label.into() }, 1000.0);
    for p in [&cpu, &memory, &requests] {
        scaling.put_policy(RESOURCE, p).await.expect("put policy");
    }
    assert_eq!(sorted_policies(&scaling).await, vec![cpu.clone(), memory.clone(), requests.clone()]);

    // What was sent: target tracking with 60 s cooldowns both ways.
    let raw = aas::Client::new(&config)
        .describe_scaling_policies()
        .service_namespace(aas::types::ServiceNamespace::Ecs)
        .resource_id(RESOURCE)
        .policy_names("books-api-cpu")
        .send()
        .await
        .expect("describe");
    let sent = raw.scaling_policies().iter().find(|p| p.policy_name() == "books-api-cpu").expect("listed");
    assert_eq!(sent.policy_type(), &aas::types::PolicyType::TargetTrackingScaling);
    assert_eq!(sent.scalable_dimension(), &aas::types::ScalableDimension::EcsServiceDesiredCount);
    let tracking = sent.target_tracking_scaling_policy_configuration().expect("target tracking");
    assert_eq!((tracking.scale_in_cooldown(), tracking.scale_out_cooldown()), (Some(60), Some(60)));

    // Put replaces.
    let cpu70 = policy("books-api-cpu", ScalingMetric::Cpu, 70.0);
    scaling.put_policy(RESOURCE, &cpu70).await.expect("replace");
    assert_eq!(sorted_policies(&scaling).await, vec![cpu70, memory.clone(), requests.clone()]);

    scaling.delete_policy(RESOURCE, "books-api-cpu").await.expect("delete policy");
    assert_eq!(sorted_policies(&scaling).await, vec![memory, requests]);

    scaling.deregister_scalable_target(RESOURCE).await.expect("deregister");
    assert_eq!(scaling.scalable_target(RESOURCE).await.expect("describe"), None);
}

/// AWS answers a missing scalable target or policy with ObjectNotFoundException, which the adapter
/// treats as success (its unit tests show that). moto 5.2.5 answers with a ValidationException
/// ("No scalable target found ...", "No scaling policy found ...") instead; the adapter does not paper
/// over that, so against moto these calls fail as invalid. This test pins moto's behaviour so a moto
/// upgrade that fixes it is noticed.
#[tokio::test]
async fn moto_answers_missing_targets_and_policies_with_a_validation_error() {
    let account = account().await;
    let scaling =
        SdkAutoscaling::new(&account.sdk_config().await, Calls::new(Limiter::unlimited(), RetryPolicy::default()));
    let target = scaling.deregister_scalable_target(RESOURCE).await.expect_err("moto: ValidationException");
    assert_eq!((target.kind, target.code.as_deref()), (ErrorKind::Invalid, Some("ValidationException")), "{target}");
    let policy = scaling.delete_policy(RESOURCE, "books-api-cpu").await.expect_err("moto: ValidationException");
    assert_eq!((policy.kind, policy.code.as_deref()), (ErrorKind::Invalid, Some("ValidationException")), "{policy}");
}
