//! The harness against a real moto server: fixture, isolation, call log, faults, deployment driver.

use aws_sdk_ecs as ecs;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use ecsop_testkit::{Account, Drive, Fault, Moto};

async fn account() -> Account {
    Moto::shared().await.expect("moto starts").new_account()
}

/// An ECS client that does not retry, so a test sees each injected fault.
async fn ecs_no_retry(account: &Account) -> ecs::Client {
    let config = account.sdk_config().await;
    let conf = ecs::config::Builder::from(&config).retry_config(aws_config::retry::RetryConfig::disabled()).build();
    ecs::Client::from_conf(conf)
}

/// A Fargate service of two tasks on revision 1 of family `f`; returns the two revision ARNs.
async fn service(account: &Account) -> (ecs::Client, String, String) {
    let net = account.network("c1").await.expect("network fixture");
    let client = ecs::Client::new(&account.sdk_config().await);
    let mut arns = Vec::new();
    for image in ["repo@sha256:1111", "repo@sha256:2222"] {
        let td = client
            .register_task_definition()
            .family("f")
            .network_mode(ecs::types::NetworkMode::Awsvpc)
            .requires_compatibilities(ecs::types::Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(ecs::types::ContainerDefinition::builder().name("api").image(image).build())
            .send()
            .await
            .expect("register");
        arns.push(td.task_definition().and_then(|t| t.task_definition_arn()).expect("arn").to_string());
    }
    client
        .create_service()
        .cluster("c1")
        .service_name("api")
        .task_definition(&arns[0])
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
        .deployment_configuration(
            ecs::types::DeploymentConfiguration::builder()
                .maximum_percent(200)
                .minimum_healthy_percent(100)
                .deployment_circuit_breaker(
                    ecs::types::DeploymentCircuitBreaker::builder().enable(true).rollback(true).build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create service");
    (client, arns[0].clone(), arns[1].clone())
}

async fn deployments(client: &ecs::Client) -> Vec<ecs::types::Deployment> {
    let out = client.describe_services().cluster("c1").services("api").send().await.expect("describe");
    out.services()[0].deployments().to_vec()
}

#[tokio::test]
async fn network_fixture_creates_vpc_subnets_alb_listener_and_cluster() {
    let account = account().await;
    let net = account.network("cluster-a").await.expect("fixture");
    assert!(net.vpc_id.starts_with("vpc-"), "{net:?}");
    assert_eq!(net.subnet_ids.len(), 2);
    assert!(net.security_group_id.starts_with("sg-"));
    assert!(net.listener_arn.contains(":listener/app/ecsop-alb/"), "{}", net.listener_arn);
    assert!(net.listener_arn.contains(account.id()), "listener lives in the test's account");

    let config = account.sdk_config().await;
    let clusters = ecs::Client::new(&config).describe_clusters().clusters("cluster-a").send().await.expect("clusters");
    assert_eq!(clusters.clusters()[0].status(), Some("ACTIVE"));

    // Another account sees none of it.
    let other = Moto::shared().await.expect("moto").new_account();
    let other_clusters = ecs::Client::new(&other.sdk_config().await).list_clusters().send().await.expect("list");
    assert!(other_clusters.cluster_arns().is_empty(), "accounts are isolated");
}

#[tokio::test]
async fn a_throttling_fault_fails_one_call_then_the_call_succeeds() {
    let account = account().await;
    let client = ecs_no_retry(&account).await;
    account.inject(Fault::throttle().service("ecs").operation("ListClusters").count(1)).await.expect("inject");

    let err = client.list_clusters().send().await.expect_err("first call is throttled");
    assert_eq!(err.code(), Some("ThrottlingException"), "{err:?}");
    client.list_clusters().send().await.expect("second call passes");

    // The SDK's standard retry rides over the same fault without the caller seeing it.
    account.inject(Fault::throttle().operation("ListClusters").count(1)).await.expect("inject");
    ecs::Client::new(&account.sdk_config().await).list_clusters().send().await.expect("retried");

    let calls = account.calls().await.expect("calls");
    let throttled = calls.iter().filter(|c| c.fault.as_deref() == Some("throttle")).count();
    assert_eq!(throttled, 2, "{calls:?}");
    assert!(calls.iter().all(|c| c.operation == "ListClusters" && !c.is_write()));
}

#[tokio::test]
async fn access_denied_and_server_errors_use_the_protocols_error_shapes() {
    let account = account().await;
    let client = ecs_no_retry(&account).await;
    account.inject(Fault::access_denied().operation("ListClusters").count(1)).await.expect("inject");
    let err = client.list_clusters().send().await.expect_err("denied");
    assert_eq!(err.code(), Some("AccessDeniedException"));

    account.inject(Fault::server_error().operation("ListClusters").count(1)).await.expect("inject");
    let err = client.list_clusters().send().await.expect_err("500");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));

    // ELBv2 speaks the Query protocol: its throttling code is `Throttling`.
    let config = account.sdk_config().await;
    let conf = aws_sdk_elasticloadbalancingv2::config::Builder::from(&config)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let lb = aws_sdk_elasticloadbalancingv2::Client::from_conf(conf);
    account.inject(Fault::throttle().service("elasticloadbalancing").count(1)).await.expect("inject");
    let err = lb.describe_load_balancers().send().await.expect_err("throttled");
    assert_eq!(err.code(), Some("Throttling"));
    account.clear_faults().await.expect("clear");
    lb.describe_load_balancers().send().await.expect("no faults left");
}

#[tokio::test]
async fn the_driver_moves_the_primary_deployment_to_completed() {
    let account = account().await;
    let (client, _, rev2) = service(&account).await;
    let first = deployments(&client).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].rollout_state(), Some(&ecs::types::DeploymentRolloutState::InProgress));

    account.drive("c1", "api", Drive::Complete).await.expect("complete");
    let done = deployments(&client).await;
    assert_eq!(done[0].rollout_state(), Some(&ecs::types::DeploymentRolloutState::Completed));
    assert_eq!(done[0].running_count(), 2);

    // An update starts a new PRIMARY deployment of the new revision; the old one stays ACTIVE.
    client.update_service().cluster("c1").service("api").task_definition(&rev2).send().await.expect("update");
    let rolling = deployments(&client).await;
    assert_eq!(rolling.len(), 2);
    assert_eq!(rolling[0].status(), Some("PRIMARY"));
    assert_eq!(rolling[0].task_definition(), Some(rev2.as_str()));
    assert_eq!(rolling[0].rollout_state(), Some(&ecs::types::DeploymentRolloutState::InProgress));
    assert_eq!(rolling[1].status(), Some("ACTIVE"));

    account.drive("c1", "api", Drive::Progress { running: Some(1) }).await.expect("progress");
    assert_eq!(deployments(&client).await[0].running_count(), 1);
    account.drive("c1", "api", Drive::Complete).await.expect("complete");
    let steady = deployments(&client).await;
    assert_eq!(steady.len(), 1, "old deployment drained");
    assert_eq!(steady[0].task_definition(), Some(rev2.as_str()));

    let described = client.describe_services().cluster("c1").services("api").send().await.expect("describe");
    let svc = &described.services()[0];
    let breaker = svc.deployment_configuration().and_then(|d| d.deployment_circuit_breaker()).expect("kept");
    assert!(breaker.rollback(), "deploymentConfiguration survives CreateService");
    assert!(svc.events().iter().any(|e| e.message().unwrap_or("").contains("has reached a steady state")));
}

#[tokio::test]
async fn the_driver_fails_and_rolls_back_the_primary_deployment() {
    let account = account().await;
    let (client, rev1, rev2) = service(&account).await;
    account.drive("c1", "api", Drive::Complete).await.expect("complete");
    client.update_service().cluster("c1").service("api").task_definition(&rev2).send().await.expect("update");

    account
        .drive("c1", "api", Drive::Fail { reason: "Essential container in task exited".into() })
        .await
        .expect("fail");
    let failed = deployments(&client).await;
    assert_eq!(failed[0].status(), Some("PRIMARY"));
    assert_eq!(failed[0].rollout_state(), Some(&ecs::types::DeploymentRolloutState::Failed));
    assert!(failed[0].failed_tasks() > 0);

    // Start over for the rollback case: a fresh service in another account.
    let account = Moto::shared().await.expect("moto").new_account();
    let (client, rev1b, rev2b) = service(&account).await;
    account.drive("c1", "api", Drive::Complete).await.expect("complete");
    client.update_service().cluster("c1").service("api").task_definition(&rev2b).send().await.expect("update");
    account.drive("c1", "api", Drive::Rollback { reason: "failed container health checks".into() }).await.expect("rb");
    let rolled = deployments(&client).await;
    assert_eq!(rolled[0].status(), Some("PRIMARY"));
    assert_eq!(rolled[0].task_definition(), Some(rev1b.as_str()), "rolled back to the previous revision");
    // The failed deployment, without tasks, has left DescribeServices; ECS's deployment record keeps it.
    assert_eq!(rolled.len(), 1, "{rolled:?}");
    let record = client.list_service_deployments().cluster("c1").service("api").send().await.expect("record");
    let statuses: Vec<_> = record.service_deployments().iter().filter_map(|d| d.status()).map(|s| s.as_str()).collect();
    assert!(statuses.contains(&"ROLLBACK_IN_PROGRESS"), "{statuses:?}");
    let described = client.describe_services().cluster("c1").services("api").send().await.expect("describe");
    let messages: Vec<&str> = described.services()[0].events().iter().filter_map(|e| e.message()).collect();
    assert!(messages.iter().any(|m| m.contains("rolling back to deployment")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("failed container health checks")), "{messages:?}");
    assert_ne!(rev1, rev2);
}

#[tokio::test]
async fn latency_delays_only_the_matching_operation() {
    let account = account().await;
    let client = ecs_no_retry(&account).await;
    account
        .inject(Fault::latency(std::time::Duration::from_millis(400)).operation("ListClusters").count(1))
        .await
        .expect("inject");
    let started = std::time::Instant::now();
    client.list_clusters().send().await.expect("delayed, then answered");
    let delayed = started.elapsed();
    let started = std::time::Instant::now();
    client.list_clusters().send().await.expect("answered");
    let plain = started.elapsed();
    assert!(delayed >= std::time::Duration::from_millis(400), "{delayed:?}");
    assert!(plain < delayed, "the rule was used up after one hit: {plain:?} vs {delayed:?}");
    let calls = account.calls().await.expect("calls");
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.status == Some(200) && c.fault.is_none()), "{calls:?}");
}
