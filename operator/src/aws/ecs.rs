//! [`Ecs`] on the AWS SDK.
//!
//! Every call goes through [`Calls`]; service lookups from concurrent reconciles are coalesced by a
//! [`Batcher`] into DescribeServices calls of up to 10 services per cluster.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types as sdk;
use chrono::{DateTime, Utc};

use super::TaskDefinition;
use super::batch::Batcher;
use super::calls::{self, Calls};
use super::{
    AwsError, AwsResult, Binding, Deployment, DeploymentAlarms, DeploymentSettings, Ecs, ErrorKind, NetworkSettings,
    Service, ServiceConfig, ServiceDeployment, ServiceEvent, ServiceUpdate, Strategy, Tags, TaskDefinitionInfo,
    TrafficShift,
};

const SERVICE: &str = "ecs";
/// DescribeServices takes at most 10 services.
const DESCRIBE_SERVICES_MAX: usize = 10;
/// How long a lookup waits for others to share its DescribeServices call.
const BATCH_WINDOW: Duration = Duration::from_millis(3);

/// One SDK call through [`Calls`]: the request is built once and cloned for each attempt.
macro_rules! call {
    ($calls:expr, $op:literal, $request:expr) => {{
        let request = $request;
        $calls
            .run(SERVICE, $op, || {
                let request = request.clone();
                async move { request.send().await.map_err(|e| AwsError::from_sdk(SERVICE, $op, e)) }
            })
            .await
    }};
}

/// A service lookup's answer: the service, or the failure DescribeServices reported for that name alone.
type Lookup = Result<Service, AwsError>;

/// [`Ecs`] on `aws-sdk-ecs`.
///
/// `create_service` and `update_service` return the service as the write's own answer describes it
/// (its tags only where ECS includes them there); [`Ecs::service`] always asks for tags.
pub struct SdkEcs {
    client: Client,
    calls: Calls,
    services: Batcher<String, String, Lookup>,
}

impl std::fmt::Debug for SdkEcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkEcs").field("calls", &self.calls).finish_non_exhaustive()
    }
}

impl SdkEcs {
    /// An ECS adapter for `config`'s account and region, calling through `calls`. The SDK's own retries
    /// are switched off: [`Calls`] retries and counts every attempt.
    pub fn new(config: &aws_config::SdkConfig, calls: Calls) -> Self {
        let conf = aws_sdk_ecs::config::Builder::from(config).retry_config(calls::sdk_retry_config()).build();
        Self::from_client(Client::from_conf(conf), calls)
    }

    /// An ECS adapter on an existing client (which should not retry by itself).
    pub fn from_client(client: Client, calls: Calls) -> Self {
        let services = {
            let client = client.clone();
            let calls = calls.clone();
            Batcher::new(DESCRIBE_SERVICES_MAX, BATCH_WINDOW, move |cluster: String, names: Vec<String>| {
                let client = client.clone();
                let calls = calls.clone();
                Box::pin(async move { describe_services(&client, &calls, &cluster, names).await })
            })
        };
        SdkEcs { client, calls, services }
    }
}

/// One DescribeServices call for up to 10 names of one cluster. Missing and INACTIVE services are left
/// out (answered `None`); any other per-service failure is that service's error.
async fn describe_services(
    client: &Client,
    calls: &Calls,
    cluster: &str,
    names: Vec<String>,
) -> AwsResult<HashMap<String, Lookup>> {
    let out = call!(
        calls,
        "DescribeServices",
        client.describe_services().cluster(cluster).set_services(Some(names.clone())).include(sdk::ServiceField::Tags)
    )?;
    let mut found = HashMap::new();
    for svc in out.services() {
        if svc.status() == Some("INACTIVE") {
            continue;
        }
        let service = map_service(svc);
        // Callers may ask by name or by ARN: answer both.
        for key in [&service.name, &service.arn] {
            if names.contains(key) {
                found.insert(key.clone(), Ok(service.clone()));
            }
        }
    }
    for failure in out.failures() {
        if failure.reason() == Some("MISSING") {
            continue;
        }
        let Some(arn) = failure.arn() else { continue };
        let name = arn.rsplit('/').next().unwrap_or(arn);
        let error = AwsError::new(
            SERVICE,
            "DescribeServices",
            ErrorKind::Other,
            format!(
                "service {arn}: {}{}",
                failure.reason().unwrap_or("failure"),
                failure.detail().map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        );
        for key in [arn, name] {
            if names.iter().any(|n| n == key) {
                found.insert(key.to_string(), Err(error.clone()));
            }
        }
    }
    Ok(found)
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

fn text(s: Option<&str>) -> String {
    s.unwrap_or_default().to_string()
}

fn tags_of(tags: &[sdk::Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

fn sdk_tags(tags: &Tags) -> Vec<sdk::Tag> {
    tags.iter().map(|(k, v)| sdk::Tag::builder().key(k).value(v).build()).collect()
}

fn map_deployment(d: &sdk::Deployment) -> Deployment {
    Deployment {
        id: text(d.id()),
        status: text(d.status()),
        task_definition: text(d.task_definition()),
        rollout_state: d.rollout_state().map(|s| s.as_str().to_string()),
        rollout_state_reason: d.rollout_state_reason().map(str::to_string),
        desired_count: d.desired_count(),
        running_count: d.running_count(),
        pending_count: d.pending_count(),
        failed_tasks: d.failed_tasks(),
        created_at: time(d.created_at()),
        updated_at: time(d.updated_at()),
    }
}

fn map_network(n: Option<&sdk::NetworkConfiguration>) -> NetworkSettings {
    let Some(vpc) = n.and_then(|n| n.awsvpc_configuration()) else {
        return NetworkSettings::default();
    };
    let mut subnets = vpc.subnets().to_vec();
    subnets.sort();
    let mut security_groups = vpc.security_groups().to_vec();
    security_groups.sort();
    NetworkSettings {
        subnets,
        security_groups,
        assign_public_ip: vpc.assign_public_ip() == Some(&sdk::AssignPublicIp::Enabled),
    }
}

fn map_deployment_settings(d: &sdk::DeploymentConfiguration) -> DeploymentSettings {
    let breaker = d.deployment_circuit_breaker();
    DeploymentSettings {
        // ECS's defaults for a REPLICA service when a field is absent.
        maximum_percent: d.maximum_percent().unwrap_or(200),
        minimum_healthy_percent: d.minimum_healthy_percent().unwrap_or(100),
        circuit_breaker: breaker.is_some_and(|b| b.enable()),
        rollback: breaker.is_some_and(|b| b.rollback()),
        strategy: map_strategy(d),
    }
}

/// The strategy of a deployment configuration; ECS's percentages are doubles, ecsop's whole percent.
fn map_strategy(d: &sdk::DeploymentConfiguration) -> Strategy {
    let bake_minutes = d.bake_time_in_minutes().unwrap_or(0);
    let percent = |p: Option<f64>| p.map(|p| p.round() as i32).unwrap_or(0);
    match d.strategy() {
        Some(sdk::DeploymentStrategy::BlueGreen) => Strategy::BlueGreen { bake_minutes },
        Some(sdk::DeploymentStrategy::Canary) => {
            let c = d.canary_configuration();
            Strategy::Canary {
                percent: percent(c.and_then(|c| c.canary_percent())),
                canary_bake_minutes: c.and_then(|c| c.canary_bake_time_in_minutes()).unwrap_or(0),
                bake_minutes,
            }
        }
        Some(sdk::DeploymentStrategy::Linear) => {
            let l = d.linear_configuration();
            Strategy::Linear {
                step_percent: percent(l.and_then(|l| l.step_percent())),
                step_bake_minutes: l.and_then(|l| l.step_bake_time_in_minutes()).unwrap_or(0),
                bake_minutes,
            }
        }
        _ => Strategy::Rolling,
    }
}

/// Map an SDK service to ecsop's. Deployments and events keep ECS's order (PRIMARY first, newest first).
fn map_service(s: &sdk::Service) -> Service {
    Service {
        arn: text(s.service_arn()),
        name: text(s.service_name()),
        status: text(s.status()),
        task_definition: text(s.task_definition()),
        desired_count: s.desired_count(),
        running_count: s.running_count(),
        pending_count: s.pending_count(),
        deployments: s.deployments().iter().map(map_deployment).collect(),
        events: s
            .events()
            .iter()
            .map(|e| ServiceEvent { id: text(e.id()), created_at: time(e.created_at()), message: text(e.message()) })
            .collect(),
        load_balancers: s
            .load_balancers()
            .iter()
            .map(|lb| Binding {
                arn: text(lb.target_group_arn()),
                container: text(lb.container_name()),
                port: lb.container_port().unwrap_or_default(),
                traffic: lb.advanced_configuration().map(|a| TrafficShift {
                    alternate_target_group: text(a.alternate_target_group_arn()),
                    production_rule: text(a.production_listener_rule()),
                    test_rule: a.test_listener_rule().map(str::to_string),
                    role_arn: text(a.role_arn()),
                }),
            })
            .collect(),
        registries: s
            .service_registries()
            .iter()
            .map(|r| Binding {
                arn: text(r.registry_arn()),
                container: text(r.container_name()),
                port: r.container_port().unwrap_or_default(),
                traffic: None,
            })
            .collect(),
        network: map_network(s.network_configuration()),
        deployment: s.deployment_configuration().map(map_deployment_settings),
        alarms: s.deployment_configuration().and_then(|d| d.alarms()).map(|a| {
            let mut names = a.alarm_names().to_vec();
            names.sort();
            DeploymentAlarms { names, enable: a.enable(), rollback: a.rollback() }
        }),
        health_check_grace_period_seconds: s.health_check_grace_period_seconds(),
        tags: tags_of(s.tags()),
    }
}

fn map_task_definition(
    operation: &'static str,
    td: Option<&sdk::TaskDefinition>,
    tags: &[sdk::Tag],
) -> AwsResult<TaskDefinitionInfo> {
    let td = td.ok_or_else(|| AwsError::new(SERVICE, operation, ErrorKind::Other, "answer has no taskDefinition"))?;
    let arn = td
        .task_definition_arn()
        .ok_or_else(|| AwsError::new(SERVICE, operation, ErrorKind::Other, "answer has no taskDefinitionArn"))?;
    Ok(TaskDefinitionInfo {
        arn: arn.to_string(),
        family: text(td.family()),
        revision: td.revision(),
        status: td.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        tags: tags_of(tags),
    })
}

/// The family and revision of a task-definition ARN (`...:task-definition/<family>:<revision>`).
fn family_and_revision(arn: &str) -> Option<(&str, i32)> {
    let (_, rest) = arn.split_once(":task-definition/")?;
    let (family, revision) = rest.rsplit_once(':')?;
    Some((family, revision.parse().ok()?))
}

fn invalid(operation: &'static str, e: impl std::fmt::Display) -> AwsError {
    AwsError::new(SERVICE, operation, ErrorKind::Invalid, e.to_string())
}

fn network_configuration(operation: &'static str, n: &NetworkSettings) -> AwsResult<sdk::NetworkConfiguration> {
    let vpc = sdk::AwsVpcConfiguration::builder()
        .set_subnets(Some(n.subnets.clone()))
        .set_security_groups(Some(n.security_groups.clone()))
        .assign_public_ip(if n.assign_public_ip { sdk::AssignPublicIp::Enabled } else { sdk::AssignPublicIp::Disabled })
        .build()
        .map_err(|e| invalid(operation, e))?;
    Ok(sdk::NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
}

/// ECS's `deploymentConfiguration`: rolling-update settings, circuit breaker and deployment alarms.
/// UpdateService replaces the whole structure, so the alarms always travel with the settings.
fn deployment_configuration(
    operation: &'static str,
    d: &DeploymentSettings,
    alarms: Option<&DeploymentAlarms>,
) -> AwsResult<sdk::DeploymentConfiguration> {
    let alarms = match alarms {
        Some(a) => Some(
            sdk::DeploymentAlarms::builder()
                .set_alarm_names(Some(a.names.clone()))
                .enable(a.enable)
                .rollback(a.rollback)
                .build()
                .map_err(|e| invalid(operation, e))?,
        ),
        None => None,
    };
    let builder = sdk::DeploymentConfiguration::builder()
        .maximum_percent(d.maximum_percent)
        .minimum_healthy_percent(d.minimum_healthy_percent)
        .deployment_circuit_breaker(
            sdk::DeploymentCircuitBreaker::builder().enable(d.circuit_breaker).rollback(d.rollback).build(),
        )
        .set_alarms(alarms)
        // Always named, so an update of the other settings never falls back to ECS's default strategy.
        .strategy(sdk::DeploymentStrategy::from(d.strategy.as_ecs()));
    let builder = match d.strategy {
        Strategy::Rolling => builder,
        Strategy::BlueGreen { bake_minutes } => builder.bake_time_in_minutes(bake_minutes),
        Strategy::Canary { percent, canary_bake_minutes, bake_minutes } => {
            builder.bake_time_in_minutes(bake_minutes).canary_configuration(
                sdk::CanaryConfiguration::builder()
                    .canary_percent(f64::from(percent))
                    .canary_bake_time_in_minutes(canary_bake_minutes)
                    .build(),
            )
        }
        Strategy::Linear { step_percent, step_bake_minutes, bake_minutes } => {
            builder.bake_time_in_minutes(bake_minutes).linear_configuration(
                sdk::LinearConfiguration::builder()
                    .step_percent(f64::from(step_percent))
                    .step_bake_time_in_minutes(step_bake_minutes)
                    .build(),
            )
        }
    };
    Ok(builder.build())
}

fn load_balancer(b: &Binding) -> sdk::LoadBalancer {
    let advanced = b.traffic.as_ref().map(|t| {
        sdk::AdvancedConfiguration::builder()
            .alternate_target_group_arn(&t.alternate_target_group)
            .production_listener_rule(&t.production_rule)
            .set_test_listener_rule(t.test_rule.clone())
            .role_arn(&t.role_arn)
            .build()
    });
    sdk::LoadBalancer::builder()
        .target_group_arn(&b.arn)
        .container_name(&b.container)
        .container_port(b.port)
        .set_advanced_configuration(advanced)
        .build()
}

/// A client token unique to this call (36 characters at most, as ECS takes them): the parts, the time
/// and the process, hashed.
fn client_token(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = format!("{}|{}|{}", parts.join("|"), now.as_nanos(), std::process::id());
    hex::encode(Sha256::digest(seed.as_bytes())).chars().take(32).collect()
}

/// A Cloud Map binding: the container and its port for SRV records, the registry alone for A records
/// (a binding with port 0), which ECS would refuse a containerPort of 0 for.
fn service_registry(b: &Binding) -> sdk::ServiceRegistry {
    let builder = sdk::ServiceRegistry::builder().registry_arn(&b.arn);
    if b.port > 0 { builder.container_name(&b.container).container_port(b.port).build() } else { builder.build() }
}

/// The single essential container of a rendered task definition.
fn container_definition(td: &TaskDefinition) -> AwsResult<sdk::ContainerDefinition> {
    const OP: &str = "RegisterTaskDefinition";
    let c = &td.container;
    let mut builder = sdk::ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .essential(true)
        .port_mappings(sdk::PortMapping::builder().container_port(c.port).protocol(sdk::TransportProtocol::Tcp).build())
        .set_environment(Some(
            c.environment.iter().map(|(k, v)| sdk::KeyValuePair::builder().name(k).value(v).build()).collect(),
        ))
        .set_secrets(Some(
            c.secrets
                .iter()
                .map(|(k, v)| sdk::Secret::builder().name(k).value_from(v).build().map_err(|e| invalid(OP, e)))
                .collect::<AwsResult<Vec<_>>>()?,
        ));
    if !c.command.is_empty() {
        builder = builder.set_command(Some(c.command.clone()));
    }
    if let Some(h) = &c.health_check {
        builder = builder.health_check(
            sdk::HealthCheck::builder()
                .set_command(Some(h.command.clone()))
                .interval(h.interval)
                .timeout(h.timeout)
                .retries(h.retries)
                .start_period(h.start_period)
                .build()
                .map_err(|e| invalid(OP, e))?,
        );
    }
    if let Some(logs) = &c.logs {
        builder = builder.log_configuration(
            sdk::LogConfiguration::builder()
                .log_driver(sdk::LogDriver::Awslogs)
                .options("awslogs-group", &logs.group)
                .options("awslogs-region", &logs.region)
                .options("awslogs-stream-prefix", &logs.stream_prefix)
                .build()
                .map_err(|e| invalid(OP, e))?,
        );
    }
    Ok(builder.build())
}

#[async_trait]
impl Ecs for SdkEcs {
    async fn service(&self, cluster: &str, name: &str) -> AwsResult<Option<Service>> {
        self.services.load(cluster.to_string(), name.to_string()).await?.transpose()
    }

    async fn list_task_definitions(&self, family: &str) -> AwsResult<Vec<String>> {
        let mut revisions = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = call!(
                self.calls,
                "ListTaskDefinitions",
                self.client
                    .list_task_definitions()
                    .family_prefix(family)
                    .status(sdk::TaskDefinitionStatus::Active)
                    .sort(sdk::SortOrder::Desc)
                    .set_next_token(next_token.clone())
            )?;
            // familyPrefix matches every family starting with `family`: keep the exact family only.
            for arn in out.task_definition_arns() {
                if let Some((f, revision)) = family_and_revision(arn)
                    && f == family
                {
                    revisions.push((revision, arn.clone()));
                }
            }
            match out.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => break,
            }
        }
        // sort=DESC already lists them newest first; sorting by the revision parsed for the family filter
        // makes "newest first" hold whatever order the pages come in.
        revisions.sort_by_key(|r| std::cmp::Reverse(r.0));
        Ok(revisions.into_iter().map(|(_, arn)| arn).collect())
    }

    async fn task_definition(&self, arn: &str) -> AwsResult<TaskDefinitionInfo> {
        let out = call!(
            self.calls,
            "DescribeTaskDefinition",
            self.client.describe_task_definition().task_definition(arn).include(sdk::TaskDefinitionField::Tags)
        )?;
        map_task_definition("DescribeTaskDefinition", out.task_definition(), out.tags())
    }

    async fn register_task_definition(
        &self,
        definition: &TaskDefinition,
        tags: &Tags,
    ) -> AwsResult<TaskDefinitionInfo> {
        let container = container_definition(definition)?;
        let out = call!(
            self.calls,
            "RegisterTaskDefinition",
            self.client
                .register_task_definition()
                .family(&definition.family)
                .network_mode(sdk::NetworkMode::Awsvpc)
                .requires_compatibilities(sdk::Compatibility::Fargate)
                .cpu(&definition.cpu)
                .memory(&definition.memory)
                .runtime_platform(
                    sdk::RuntimePlatform::builder()
                        .cpu_architecture(sdk::CpuArchitecture::from(definition.cpu_architecture.as_str()))
                        .operating_system_family(sdk::OsFamily::Linux)
                        .build(),
                )
                .set_execution_role_arn(definition.execution_role_arn.clone())
                .set_task_role_arn(definition.task_role_arn.clone())
                .container_definitions(container)
                .set_tags((!tags.is_empty()).then(|| sdk_tags(tags)))
        )?;
        map_task_definition("RegisterTaskDefinition", out.task_definition(), out.tags())
    }

    async fn deregister_task_definition(&self, arn: &str) -> AwsResult<()> {
        let result = call!(
            self.calls,
            "DeregisterTaskDefinition",
            self.client.deregister_task_definition().task_definition(arn)
        );
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            // Deregistering an INACTIVE revision is answered with a ClientException naming its state.
            Err(e) if e.kind == ErrorKind::Invalid && e.message.to_ascii_lowercase().contains("inactive") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create_service(&self, config: &ServiceConfig) -> AwsResult<Service> {
        const OP: &str = "CreateService";
        let network = network_configuration(OP, &config.network)?;
        let deployment = deployment_configuration(OP, &config.deployment, config.alarms.as_ref())?;
        // One token per creation, the same in each repetition of the call: ECS answers a repeated
        // CreateService with the service it made instead of failing it as "not idempotent", so a
        // lost answer is safe to repeat.
        let token = client_token(&[&config.cluster, &config.name, &config.task_definition]);
        let out = call!(
            self.calls,
            "CreateService",
            self.client
                .create_service()
                .client_token(token)
                .cluster(&config.cluster)
                .service_name(&config.name)
                .task_definition(&config.task_definition)
                .desired_count(config.desired_count)
                .launch_type(sdk::LaunchType::Fargate)
                .network_configuration(network)
                .deployment_configuration(deployment)
                .set_load_balancers(config.load_balancer.as_ref().map(|b| vec![load_balancer(b)]))
                .set_service_registries(config.registry.as_ref().map(|b| vec![service_registry(b)]))
                // ECS rejects a grace period on a service without a load balancer.
                .set_health_check_grace_period_seconds(
                    config.load_balancer.as_ref().and(config.health_check_grace_period_seconds),
                )
                .set_tags((!config.tags.is_empty()).then(|| sdk_tags(&config.tags)))
                .propagate_tags(sdk::PropagateTags::Service)
        )?;
        out.service()
            .map(map_service)
            .ok_or_else(|| AwsError::new(SERVICE, OP, ErrorKind::Other, "answer has no service"))
    }

    async fn update_service(&self, update: &ServiceUpdate) -> AwsResult<Service> {
        const OP: &str = "UpdateService";
        let network = update.network.as_ref().map(|n| network_configuration(OP, n)).transpose()?;
        let deployment =
            update.deployment.as_ref().map(|d| deployment_configuration(OP, d, update.alarms.as_ref())).transpose()?;
        let out = call!(
            self.calls,
            "UpdateService",
            self.client
                .update_service()
                .cluster(&update.cluster)
                .service(&update.name)
                .set_task_definition(update.task_definition.clone())
                .set_desired_count(update.desired_count)
                .set_network_configuration(network)
                .set_deployment_configuration(deployment)
                .set_health_check_grace_period_seconds(update.health_check_grace_period_seconds)
                .set_load_balancers(update.load_balancers.as_ref().map(|v| v.iter().map(load_balancer).collect()))
                .set_service_registries(update.registries.as_ref().map(|v| v.iter().map(service_registry).collect()))
        )?;
        out.service()
            .map(map_service)
            .ok_or_else(|| AwsError::new(SERVICE, OP, ErrorKind::Other, "answer has no service"))
    }

    async fn delete_service(&self, cluster: &str, name: &str) -> AwsResult<()> {
        let result =
            call!(self.calls, "DeleteService", self.client.delete_service().cluster(cluster).service(name).force(true));
        match result {
            // ServiceNotFoundException, ServiceNotActiveException and ClientException "not found".
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn service_deployments(&self, cluster: &str, name: &str) -> AwsResult<Vec<ServiceDeployment>> {
        let listed = call!(
            self.calls,
            "ListServiceDeployments",
            self.client.list_service_deployments().cluster(cluster).service(name).max_results(20)
        );
        let listed = match listed {
            Ok(out) => out,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let briefs = listed.service_deployments();
        // Each deployment names its target service revision; the revision names the task definition.
        let revision_arns: Vec<String> =
            briefs.iter().filter_map(|b| b.target_service_revision_arn().map(str::to_string)).collect();
        let mut task_definitions = HashMap::new();
        for chunk in revision_arns.chunks(20) {
            let out = call!(
                self.calls,
                "DescribeServiceRevisions",
                self.client.describe_service_revisions().set_service_revision_arns(Some(chunk.to_vec()))
            )?;
            for r in out.service_revisions() {
                if let (Some(arn), Some(td)) = (r.service_revision_arn(), r.task_definition()) {
                    task_definitions.insert(arn.to_string(), td.to_string());
                }
            }
        }
        let mut deployments: Vec<ServiceDeployment> = briefs
            .iter()
            .map(|b| ServiceDeployment {
                arn: text(b.service_deployment_arn()),
                status: b.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                status_reason: b.status_reason().map(str::to_string),
                task_definition: b.target_service_revision_arn().and_then(|r| task_definitions.get(r).cloned()),
                created_at: time(b.created_at()),
            })
            .collect();
        deployments.sort_by_key(|d| std::cmp::Reverse(d.created_at));
        Ok(deployments)
    }

    async fn stop_service_deployment(&self, arn: &str, rollback: bool) -> AwsResult<()> {
        let stop_type = if rollback {
            sdk::StopServiceDeploymentStopType::Rollback
        } else {
            sdk::StopServiceDeploymentStopType::Abort
        };
        call!(
            self.calls,
            "StopServiceDeployment",
            self.client.stop_service_deployment().service_deployment_arn(arn).stop_type(stop_type)
        )?;
        Ok(())
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        call!(self.calls, "TagResource", self.client.tag_resource().resource_arn(arn).set_tags(Some(sdk_tags(tags))))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        call!(
            self.calls,
            "UntagResource",
            self.client.untag_resource().resource_arn(arn).set_tag_keys(Some(keys.to_vec()))
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definition_arns_split_into_family_and_revision() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/prod-books-api:7";
        assert_eq!(family_and_revision(arn), Some(("prod-books-api", 7)));
        assert_eq!(family_and_revision("arn:aws:ecs:us-east-1:1:task-definition/a-b:c"), None);
        assert_eq!(family_and_revision("prod-books-api:7"), None);
    }

    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput;
    use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use crate::aws::calls::RetryPolicy;
    use crate::aws::limiter::Limiter;

    fn adapter(client: Client) -> SdkEcs {
        SdkEcs::from_client(client, Calls::new(Limiter::unlimited(), RetryPolicy::default()))
    }

    const TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/";

    // moto treats familyPrefix as an exact family, ignores `sort` and never pages: this is where the
    // adapter's own filtering, ordering and paging are checked.
    #[tokio::test]
    async fn task_definitions_are_listed_over_all_pages_for_the_exact_family_newest_first() {
        let first = mock!(Client::list_task_definitions)
            .match_requests(|r| {
                r.next_token().is_none()
                    && r.family_prefix() == Some("prod-api")
                    && r.status() == Some(&sdk::TaskDefinitionStatus::Active)
                    && r.sort() == Some(&sdk::SortOrder::Desc)
            })
            .then_output(|| {
                ListTaskDefinitionsOutput::builder()
                    .task_definition_arns(format!("{TD}prod-api-v2:4"))
                    .task_definition_arns(format!("{TD}prod-api:12"))
                    .task_definition_arns(format!("{TD}prod-api:9"))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::list_task_definitions)
            .match_requests(|r| r.next_token() == Some("page-2") && r.family_prefix() == Some("prod-api"))
            .then_output(|| {
                ListTaskDefinitionsOutput::builder()
                    .task_definition_arns(format!("{TD}prod-api:10"))
                    .task_definition_arns(format!("{TD}prod-apiary:3"))
                    .build()
            });
        let ecs = adapter(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&first, &second]));
        let arns = ecs.list_task_definitions("prod-api").await.expect("list");
        assert_eq!(arns, [format!("{TD}prod-api:12"), format!("{TD}prod-api:10"), format!("{TD}prod-api:9")]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    // moto's RegisterTaskDefinition answer has no tags; AWS's has them.
    #[tokio::test]
    async fn a_registered_revision_reports_the_tags_of_the_answer() {
        let rule = mock!(Client::register_task_definition)
            .match_requests(|r| {
                r.family() == Some("prod-api")
                    && r.network_mode() == Some(&sdk::NetworkMode::Awsvpc)
                    && r.tags().len() == 1
                    && r.container_definitions().len() == 1
                    && r.container_definitions()[0].command().is_empty()
            })
            .then_output(|| {
                RegisterTaskDefinitionOutput::builder()
                    .task_definition(
                        sdk::TaskDefinition::builder()
                            .task_definition_arn(format!("{TD}prod-api:3"))
                            .family("prod-api")
                            .revision(3)
                            .status(sdk::TaskDefinitionStatus::Active)
                            .build(),
                    )
                    .tags(sdk::Tag::builder().key("ecsop.io/spec-hash").value("abc").build())
                    .build()
            });
        let ecs = adapter(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&rule]));
        let td = TaskDefinition {
            family: "prod-api".into(),
            cpu: "256".into(),
            memory: "512".into(),
            cpu_architecture: "ARM64".into(),
            execution_role_arn: None,
            task_role_arn: None,
            container: crate::aws::taskdef::Container {
                name: "api".into(),
                image: "repo@sha256:aa".into(),
                port: 8080,
                command: vec![],
                environment: Default::default(),
                secrets: Default::default(),
                health_check: None,
                logs: None,
            },
        };
        let tags = Tags::from([("ecsop.io/spec-hash".to_string(), "abc".to_string())]);
        let info = ecs.register_task_definition(&td, &tags).await.expect("register");
        assert_eq!(
            info,
            TaskDefinitionInfo {
                arn: format!("{TD}prod-api:3"),
                family: "prod-api".into(),
                revision: 3,
                status: "ACTIVE".into(),
                tags,
            }
        );
        assert_eq!(rule.num_calls(), 1);
    }

    fn at(secs: i64) -> aws_smithy_types::DateTime {
        aws_smithy_types::DateTime::from_secs(secs)
    }

    // Fields moto never fills (events, rollout reasons, failed tasks, public IPs) mapped from a full
    // answer; INACTIVE services and MISSING failures are `None`, another failure errs that name only.
    #[tokio::test]
    async fn described_services_map_every_field_and_failures_stay_per_name() {
        let rule = mock!(Client::describe_services)
            .match_requests(|r| r.cluster() == Some("c1") && r.include() == [sdk::ServiceField::Tags])
            .then_output(|| {
                let vpc = sdk::AwsVpcConfiguration::builder()
                    .subnets("subnet-b")
                    .subnets("subnet-a")
                    .security_groups("sg-2")
                    .security_groups("sg-1")
                    .assign_public_ip(sdk::AssignPublicIp::Enabled)
                    .build()
                    .expect("vpc");
                let api = sdk::Service::builder()
                    .service_arn("arn:aws:ecs:us-east-1:1:service/c1/api")
                    .service_name("api")
                    .status("ACTIVE")
                    .task_definition("td:2")
                    .desired_count(3)
                    .running_count(2)
                    .pending_count(1)
                    .deployments(
                        sdk::Deployment::builder()
                            .id("ecs-svc/2")
                            .status("PRIMARY")
                            .task_definition("td:2")
                            .rollout_state(sdk::DeploymentRolloutState::Failed)
                            .rollout_state_reason("circuit breaker")
                            .desired_count(3)
                            .running_count(0)
                            .failed_tasks(4)
                            .created_at(at(1_700_000_100))
                            .build(),
                    )
                    .deployments(
                        sdk::Deployment::builder().id("ecs-svc/1").status("ACTIVE").task_definition("td:1").build(),
                    )
                    .events(
                        sdk::ServiceEvent::builder().id("e2").created_at(at(1_700_000_200)).message("newer").build(),
                    )
                    .events(
                        sdk::ServiceEvent::builder().id("e1").created_at(at(1_700_000_100)).message("older").build(),
                    )
                    .load_balancers(load_balancer(&Binding {
                        arn: "tg".into(),
                        container: "api".into(),
                        port: 8080,
                        traffic: None,
                    }))
                    .service_registries(service_registry(&Binding {
                        arn: "srv".into(),
                        container: "api".into(),
                        port: 8080,
                        traffic: None,
                    }))
                    .network_configuration(sdk::NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
                    .deployment_configuration(
                        sdk::DeploymentConfiguration::builder()
                            .maximum_percent(150)
                            .minimum_healthy_percent(50)
                            .deployment_circuit_breaker(
                                sdk::DeploymentCircuitBreaker::builder().enable(true).rollback(false).build(),
                            )
                            .build(),
                    )
                    .health_check_grace_period_seconds(45)
                    .tags(sdk::Tag::builder().key("k").value("v").build())
                    .build();
                let gone = sdk::Service::builder().service_name("gone").status("INACTIVE").build();
                DescribeServicesOutput::builder()
                    .services(api)
                    .services(gone)
                    .failures(
                        sdk::Failure::builder()
                            .arn("arn:aws:ecs:us-east-1:1:service/c1/missing")
                            .reason("MISSING")
                            .build(),
                    )
                    .failures(
                        sdk::Failure::builder().arn("arn:aws:ecs:us-east-1:1:service/c1/odd").reason("ODD").build(),
                    )
                    .build()
            });
        let ecs = adapter(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&rule]));
        let (api, gone, missing, odd) = tokio::join!(
            ecs.service("c1", "api"),
            ecs.service("c1", "gone"),
            ecs.service("c1", "missing"),
            ecs.service("c1", "odd")
        );
        assert_eq!(rule.num_calls(), 1, "one batch");
        assert_eq!(gone.expect("gone"), None);
        assert_eq!(missing.expect("missing"), None);
        assert!(odd.expect_err("odd").message.contains("ODD"));
        let api = api.expect("api").expect("exists");
        assert_eq!(api.deployments.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["ecs-svc/2", "ecs-svc/1"]);
        let primary = &api.deployments[0];
        assert_eq!(primary.rollout_state.as_deref(), Some("FAILED"));
        assert_eq!(primary.rollout_state_reason.as_deref(), Some("circuit breaker"));
        assert_eq!(primary.failed_tasks, 4);
        assert_eq!(primary.created_at.map(|t| t.timestamp()), Some(1_700_000_100));
        assert_eq!(api.events.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["newer", "older"]);
        assert_eq!(api.events[0].created_at.map(|t| t.timestamp()), Some(1_700_000_200));
        assert_eq!(
            api.load_balancers,
            [Binding { arn: "tg".into(), container: "api".into(), port: 8080, traffic: None }]
        );
        assert_eq!(api.registries, [Binding { arn: "srv".into(), container: "api".into(), port: 8080, traffic: None }]);
        assert_eq!(
            api.network,
            NetworkSettings {
                subnets: vec!["subnet-a".into(), "subnet-b".into()],
                security_groups: vec!["sg-1".into(), "sg-2".into()],
                assign_public_ip: true,
            }
        );
        assert_eq!(
            api.deployment,
            Some(DeploymentSettings {
                maximum_percent: 150,
                minimum_healthy_percent: 50,
                circuit_breaker: true,
                rollback: false,
                strategy: Strategy::Rolling,
            })
        );
        assert_eq!(api.health_check_grace_period_seconds, Some(45));
        assert_eq!(api.tags, Tags::from([("k".to_string(), "v".to_string())]));
        assert_eq!((api.desired_count, api.running_count, api.pending_count), (3, 2, 1));
    }

    #[test]
    fn smithy_timestamps_become_chrono_utc() {
        let t = aws_smithy_types::DateTime::from_secs_and_nanos(1_700_000_000, 5);
        let c = time(Some(&t)).expect("in range");
        assert_eq!((c.timestamp(), c.timestamp_subsec_nanos()), (1_700_000_000, 5));
        assert_eq!(time(None), None);
    }
}
