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

use super::batch::Batcher;
use super::calls::{self, Calls};
use super::{
    AwsError, AwsResult, Binding, Deployment, DeploymentSettings, Ecs, ErrorKind, NetworkSettings, Service,
    ServiceConfig, ServiceEvent, ServiceUpdate, Tags, TaskDefinitionInfo,
};
use crate::engine::taskdef::TaskDefinition;

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
            })
            .collect(),
        registries: s
            .service_registries()
            .iter()
            .map(|r| Binding {
                arn: text(r.registry_arn()),
                container: text(r.container_name()),
                port: r.container_port().unwrap_or_default(),
            })
            .collect(),
        network: map_network(s.network_configuration()),
        deployment: s.deployment_configuration().map(map_deployment_settings),
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

fn deployment_configuration(d: &DeploymentSettings) -> sdk::DeploymentConfiguration {
    sdk::DeploymentConfiguration::builder()
        .maximum_percent(d.maximum_percent)
        .minimum_healthy_percent(d.minimum_healthy_percent)
        .deployment_circuit_breaker(
            sdk::DeploymentCircuitBreaker::builder().enable(d.circuit_breaker).rollback(d.rollback).build(),
        )
        .build()
}

fn load_balancer(b: &Binding) -> sdk::LoadBalancer {
    sdk::LoadBalancer::builder().target_group_arn(&b.arn).container_name(&b.container).container_port(b.port).build()
}

fn service_registry(b: &Binding) -> sdk::ServiceRegistry {
    sdk::ServiceRegistry::builder().registry_arn(&b.arn).container_name(&b.container).container_port(b.port).build()
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
        revisions.sort_by(|a, b| b.0.cmp(&a.0));
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
        let out = call!(
            self.calls,
            "CreateService",
            self.client
                .create_service()
                .cluster(&config.cluster)
                .service_name(&config.name)
                .task_definition(&config.task_definition)
                .desired_count(config.desired_count)
                .launch_type(sdk::LaunchType::Fargate)
                .network_configuration(network)
                .deployment_configuration(deployment_configuration(&config.deployment))
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
                .set_deployment_configuration(update.deployment.as_ref().map(deployment_configuration))
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

    #[test]
    fn smithy_timestamps_become_chrono_utc() {
        let t = aws_smithy_types::DateTime::from_secs_and_nanos(1_700_000_000, 5);
        let c = time(Some(&t)).expect("in range");
        assert_eq!((c.timestamp(), c.timestamp_subsec_nanos()), (1_700_000_000, 5));
        assert_eq!(time(None), None);
    }
}
