//! What AWS should look like for one ApiDeployment: derived purely from the spec, its names and the
//! resolved image. No IO.

use std::collections::BTreeMap;

use serde::Serialize;

use super::names::{self, Names, short_hash};
use super::taskdef::TaskDefinition;
use crate::api::{ApiDeploymentSpec, DeletionPolicy, DnsRecordType, TagMutability};
use crate::aws::{
    AuthorizerConfig, Binding, DeploymentAlarms, DeploymentSettings, MetricAlarm, NetworkSettings, ScalingMetric,
    ScalingPolicy, Tags, TargetGroupHealth,
};

/// One ApiDeployment as the engine works on it: identity, generation and spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Names derived from namespace and name.
    pub names: Names,
    /// `metadata.generation` (the controller's; `None` from the CLI).
    pub generation: Option<i64>,
    /// The spec.
    pub spec: ApiDeploymentSpec,
    /// The region everything lives in (the spec's, else the default).
    pub region: String,
}

/// Where the image comes from, parsed from `image.repository`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An ECR repository (in the caller's account when `registry_id` is `None`).
    Ecr {
        /// The 12-digit registry (account) id of a full ECR URI.
        registry_id: Option<String>,
        /// The repository name.
        repository: String,
    },
    /// Another registry: only digests can be pinned, tags cannot be resolved.
    External {
        /// The repository URI.
        uri: String,
    },
}

impl ImageSource {
    /// Parse `image.repository`: a bare name is ECR in the caller's account, an ECR URI names its
    /// account, anything else is an external registry.
    pub fn parse(repository: &str) -> ImageSource {
        let Some((host, path)) = repository.split_once('/') else {
            return ImageSource::Ecr { registry_id: None, repository: repository.to_string() };
        };
        if !(host.contains('.') || host.contains(':')) {
            return ImageSource::Ecr { registry_id: None, repository: repository.to_string() };
        }
        let parts: Vec<&str> = host.split('.').collect();
        let is_ecr = parts.len() >= 6
            && parts[0].len() == 12
            && parts[0].bytes().all(|b| b.is_ascii_digit())
            && parts[1] == "dkr"
            && parts[2] == "ecr"
            && parts[4] == "amazonaws";
        if is_ecr {
            ImageSource::Ecr { registry_id: Some(parts[0].to_string()), repository: path.to_string() }
        } else {
            ImageSource::External { uri: repository.to_string() }
        }
    }
}

/// The image, pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedImage {
    /// Repository URI.
    pub uri: String,
    /// `sha256:...`.
    pub digest: String,
}

impl PinnedImage {
    /// `uri@digest`, as the task definition takes it.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.uri, self.digest)
    }
}

/// The owned ECR repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryState {
    /// Name.
    pub name: String,
    /// Scan on push.
    pub scan_on_push: bool,
    /// Tag mutability.
    #[serde(serialize_with = "ser_debug")]
    pub tag_mutability: TagMutability,
    /// The lifecycle policy text, when images are expired.
    pub lifecycle_policy: Option<String>,
}

impl RepositoryState {
    /// The repository `spec` owns (`ecr.create`), if any.
    pub fn of(spec: &ApiDeploymentSpec) -> Option<RepositoryState> {
        spec.ecr.as_ref().filter(|e| e.create).map(|e| RepositoryState {
            name: spec.image.repository.clone(),
            scan_on_push: e.scan_on_push,
            tag_mutability: e.tag_mutability,
            lifecycle_policy: e.keep_last_images.map(lifecycle_policy),
        })
    }
}

/// The owned target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroupState {
    /// Name.
    pub name: String,
    /// VPC.
    pub vpc_id: String,
    /// Container port.
    pub port: i32,
    /// Health check.
    #[serde(serialize_with = "ser_debug")]
    pub health: TargetGroupHealth,
    /// Attributes ecsop sets.
    pub attributes: BTreeMap<String, String>,
}

/// The owned listener rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleState {
    /// Listener.
    pub listener_arn: String,
    /// Priority.
    pub priority: i32,
    /// Hosts, sorted.
    pub hosts: Vec<String>,
    /// Paths, sorted.
    pub paths: Vec<String>,
}

/// The owned HTTP-to-HTTPS redirect rule, on the plain-HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedirectState {
    /// The HTTP listener.
    pub listener_arn: String,
    /// Priority (the main rule's).
    pub priority: i32,
    /// Hosts, sorted (the main rule's).
    pub hosts: Vec<String>,
    /// Paths, sorted (the main rule's).
    pub paths: Vec<String>,
    /// The HTTPS port.
    pub port: String,
}

/// The owned API Gateway pieces on an existing HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayState {
    /// The HTTP API.
    pub api_id: String,
    /// The VPC link.
    pub vpc_link_id: String,
    /// The integration's description: ecsop's ownership marker (integrations take no tags).
    pub marker: String,
    /// Route keys and whether each is public, sorted by key.
    pub routes: Vec<(String, bool)>,
    /// The JWT authorizer.
    #[serde(serialize_with = "ser_debug")]
    pub authorizer: Option<AuthorizerConfig>,
}

/// The owned Cloud Map service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveryState {
    /// Namespace id.
    pub namespace_id: String,
    /// Service name (the ApiDeployment's name).
    pub name: String,
    /// Record type.
    #[serde(serialize_with = "ser_debug")]
    pub record_type: DnsRecordType,
    /// TTL.
    pub ttl_seconds: i64,
}

/// Autoscaling of the service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingState {
    /// `service/<cluster>/<name>`.
    pub resource_id: String,
    /// Fewest tasks.
    pub min: i32,
    /// Most tasks.
    pub max: i32,
    /// Target-tracking policies, by name. Requests-per-target policies need the target group's label,
    /// known only once it exists, so they carry `None` as their label here.
    #[serde(serialize_with = "ser_debug")]
    pub policies: Vec<ScalingPolicy>,
}

/// The ECS service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceState {
    /// Cluster.
    pub cluster: String,
    /// Name.
    pub name: String,
    /// Desired count on creation; also enforced later unless autoscaling owns the count.
    pub replicas: i32,
    /// Whether ecsop enforces `replicas` after creation (false when autoscaling owns it).
    pub enforce_replicas: bool,
    /// Network placement.
    #[serde(serialize_with = "ser_debug")]
    pub network: NetworkSettings,
    /// Rolling-update settings.
    #[serde(serialize_with = "ser_debug")]
    pub deployment: DeploymentSettings,
    /// Grace period (with a load balancer only).
    pub health_check_grace_period_seconds: Option<i32>,
    /// Deployment alarms (ECS rolls back a rollout during which one fires).
    #[serde(serialize_with = "ser_debug", skip_serializing_if = "Option::is_none")]
    pub alarms: Option<DeploymentAlarms>,
    /// Container name and port bound to the target group and Cloud Map.
    pub container: String,
    /// Container port.
    pub port: i32,
}

/// Everything ecsop keeps in AWS for one ApiDeployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    /// The owned repository, when `ecr.create`.
    pub repository: Option<RepositoryState>,
    /// The task definition (with the pinned image) and its content hash.
    pub task_definition: TaskDefinition,
    /// [`TaskDefinition::content_hash`].
    pub task_definition_hash: String,
    /// The owned target group.
    pub target_group: Option<TargetGroupState>,
    /// The owned listener rule.
    pub rule: Option<RuleState>,
    /// The owned redirect rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectState>,
    /// The owned Cloud Map service.
    pub discovery: Option<DiscoveryState>,
    /// The owned API Gateway pieces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayState>,
    /// The owned CloudWatch alarms, by name.
    #[serde(serialize_with = "ser_debug", skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<MetricAlarm>,
    /// The ECS service.
    pub service: ServiceState,
    /// Autoscaling.
    pub scaling: Option<ScalingState>,
    /// How many of our revisions to keep.
    pub revision_history_limit: usize,
    /// Delete or retain on deletion.
    #[serde(serialize_with = "ser_debug")]
    pub deletion_policy: DeletionPolicy,
}

fn ser_debug<T: std::fmt::Debug, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{value:?}"))
}

/// The ECR lifecycle policy keeping the newest `keep` images.
pub fn lifecycle_policy(keep: i32) -> String {
    serde_json::json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the last {keep} images (managed by ecsop)"),
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
            "action": {"type": "expire"}
        }]
    })
    .to_string()
}

/// The description ecsop gives its API Gateway integration, marking it as owned (integrations take no
/// tags): `managed by ecsop for <namespace>/<name>`.
pub fn gateway_marker(names: &Names) -> String {
    format!("managed by ecsop for {}", names.owner())
}

/// The name of ecsop's JWT authorizer on an HTTP API (authorizers take no tags either).
pub fn authorizer_name(names: &Names) -> String {
    format!("ecsop-{}", names.family())
}

/// Name of the target-tracking policy on `metric`.
pub fn policy_name(names: &Names, metric: &str) -> String {
    format!("ecsop-{}-{metric}", names.family())
}

impl Desired {
    /// Derive the desired state of `target` with the image pinned as `image`.
    pub fn new(target: &Target, image: &PinnedImage) -> Desired {
        let spec = &target.spec;
        let names = &target.names;
        let task_definition = TaskDefinition::render(names, spec, &image.reference(), &target.region);
        let task_definition_hash = task_definition.content_hash();
        let repository = RepositoryState::of(spec);
        let target_group = spec.load_balancer.as_ref().map(|lb| TargetGroupState {
            name: names.target_group(),
            vpc_id: lb.vpc_id.clone(),
            port: spec.container.port,
            health: TargetGroupHealth {
                path: lb.health_check.path.clone(),
                interval_seconds: lb.health_check.interval_seconds,
                timeout_seconds: lb.health_check.timeout_seconds,
                healthy_threshold: lb.health_check.healthy_threshold,
                unhealthy_threshold: lb.health_check.unhealthy_threshold,
                matcher: lb.health_check.matcher.clone(),
            },
            attributes: BTreeMap::from([(
                "deregistration_delay.timeout_seconds".to_string(),
                lb.deregistration_delay_seconds.to_string(),
            )]),
        });
        let rule = spec.load_balancer.as_ref().map(|lb| RuleState {
            listener_arn: lb.listener_arn.clone(),
            priority: lb.priority,
            hosts: sorted(&lb.hosts),
            paths: sorted(&lb.paths),
        });
        let redirect = spec.load_balancer.as_ref().and_then(|lb| {
            lb.https_redirect.as_ref().map(|r| RedirectState {
                listener_arn: r.listener_arn.clone(),
                priority: lb.priority,
                hosts: sorted(&lb.hosts),
                paths: sorted(&lb.paths),
                port: r.port.to_string(),
            })
        });
        let gateway = Desired::gateway_of(target);
        let alarms = super::alarms::desired(target);
        let deployment_alarms = spec.alarms.as_ref().filter(|a| a.rollback_on_alarm).map(|_| {
            let mut names: Vec<String> = alarms.iter().map(|a| a.name.clone()).collect();
            names.sort();
            DeploymentAlarms { names, enable: true, rollback: true }
        });
        let discovery = spec.service.service_discovery.as_ref().map(|sd| DiscoveryState {
            namespace_id: sd.namespace_id.clone(),
            name: names.service().to_string(),
            record_type: sd.dns_record_type,
            ttl_seconds: i64::from(sd.ttl_seconds),
        });
        let rollout = &spec.service.rollout;
        let service = ServiceState {
            cluster: spec.cluster.clone(),
            name: names.service().to_string(),
            replicas: spec.service.replicas,
            enforce_replicas: spec.service.autoscaling.is_none(),
            network: NetworkSettings {
                subnets: sorted(&spec.service.subnets),
                security_groups: sorted(&spec.service.security_groups),
                assign_public_ip: spec.service.assign_public_ip,
            },
            deployment: DeploymentSettings {
                maximum_percent: rollout.max_percent,
                minimum_healthy_percent: rollout.min_healthy_percent,
                circuit_breaker: rollout.circuit_breaker.enabled,
                rollback: rollout.circuit_breaker.rollback,
            },
            health_check_grace_period_seconds: spec
                .load_balancer
                .as_ref()
                .map(|_| rollout.health_check_grace_period_seconds),
            alarms: deployment_alarms,
            container: names.container().to_string(),
            port: spec.container.port,
        };
        let scaling = spec.service.autoscaling.as_ref().map(|a| {
            let mut policies = Vec::new();
            if let Some(cpu) = a.target_cpu_percent {
                policies.push(ScalingPolicy {
                    name: policy_name(names, "cpu"),
                    metric: ScalingMetric::Cpu,
                    target: f64::from(cpu),
                });
            }
            if let Some(memory) = a.target_memory_percent {
                policies.push(ScalingPolicy {
                    name: policy_name(names, "memory"),
                    metric: ScalingMetric::Memory,
                    target: f64::from(memory),
                });
            }
            if let Some(requests) = a.target_requests_per_target {
                policies.push(ScalingPolicy {
                    name: policy_name(names, "requests"),
                    // The label is filled in once the target group and load balancer are known.
                    metric: ScalingMetric::RequestsPerTarget { resource_label: String::new() },
                    target: f64::from(requests),
                });
            }
            ScalingState {
                resource_id: format!("service/{}/{}", spec.cluster, names.service()),
                min: a.min_replicas,
                max: a.max_replicas,
                policies,
            }
        });
        Desired {
            repository,
            task_definition,
            task_definition_hash,
            target_group,
            rule,
            redirect,
            discovery,
            gateway,
            alarms,
            service,
            scaling,
            revision_history_limit: usize::try_from(spec.revision_history_limit.max(1)).unwrap_or(1),
            deletion_policy: spec.deletion_policy,
        }
    }

    /// The API Gateway pieces `target` asks for.
    pub fn gateway_of(target: &Target) -> Option<GatewayState> {
        let names = &target.names;
        target.spec.api_gateway.as_ref().map(|g| {
            let mut routes: Vec<(String, bool)> = g.routes.iter().map(|r| (r.key.clone(), r.public)).collect();
            routes.sort();
            GatewayState {
                api_id: g.api_id.clone(),
                vpc_link_id: g.vpc_link_id.clone(),
                marker: gateway_marker(names),
                routes,
                authorizer: g.authorizer.as_ref().map(|a| AuthorizerConfig {
                    name: authorizer_name(names),
                    issuer: a.issuer.clone(),
                    audience: sorted(&a.audience),
                    identity_source: a.identity_source.clone(),
                }),
            }
        })
    }
    /// A hash of everything above: recorded on the ECS service once every part is applied, so an
    /// unchanged ApiDeployment is recognised from the (batched) service read alone.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_string(self).unwrap_or_default();
        short_hash(&canonical, 16)
    }
}

fn sorted(values: &[String]) -> Vec<String> {
    let mut v = values.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Tag keys ecsop writes on the ECS service to resume statelessly.
pub mod service_tags {
    /// Hash of the [`super::Desired`] state last applied in full.
    pub const APPLIED_HASH: &str = "ecsop.io/applied-hash";
    /// ARN of the task-definition revision ecsop last set.
    pub const REVISION: &str = "ecsop.io/revision";
    /// The pinned image (`uri@sha256:...`) of that revision.
    pub const IMAGE: &str = "ecsop.io/image";
    /// The spec's image reference that resolved to it (`repository:tag` or `repository@digest`).
    pub const IMAGE_SOURCE: &str = "ecsop.io/image-source";
    /// A revision whose rollout failed or was rolled back; not retried until the spec changes.
    pub const FAILED_REVISION: &str = "ecsop.io/failed-revision";
    /// The listener the owned rule was put on, to find it again when the spec moves or drops it.
    pub const LISTENER: &str = "ecsop.io/listener";
    /// The owned HTTP-to-HTTPS redirect rule, to find it again when the spec drops it.
    pub const REDIRECT_RULE: &str = "ecsop.io/redirect-rule";
    /// The HTTP API ecsop wired, to find its pieces again when the spec moves or drops it.
    pub const API: &str = "ecsop.io/api";
    /// The digest the promotion tag was last put on.
    pub const PROMOTED: &str = "ecsop.io/promoted";
    /// The Cloud Map namespace of the owned Cloud Map service, to find it again when the spec drops
    /// `serviceDiscovery` or moves it to another namespace.
    pub const DISCOVERY_NAMESPACE: &str = "ecsop.io/discovery-namespace";

    /// Every key above, for untagging.
    pub const ALL: [&str; 10] = [
        APPLIED_HASH,
        REVISION,
        IMAGE,
        IMAGE_SOURCE,
        FAILED_REVISION,
        LISTENER,
        REDIRECT_RULE,
        API,
        PROMOTED,
        DISCOVERY_NAMESPACE,
    ];
}

/// Ownership tags plus `extra`.
pub fn owned_tags(names: &Names, extra: &[(&str, &str)]) -> Tags {
    let mut tags: Tags = names.ownership_tags().into_iter().collect();
    for (k, v) in extra {
        tags.insert((*k).to_string(), (*v).to_string());
    }
    tags
}

/// Whether `tags` mark the resource as owned by `names`.
pub fn is_owned(tags: &Tags, names: &Names) -> bool {
    tags.get(names::TAG_MANAGED_BY).map(String::as_str) == Some(names::MANAGED_BY_VALUE)
        && tags.get(names::TAG_OWNER) == Some(&names.owner())
}

/// The spec's image reference, as recorded in [`service_tags::IMAGE_SOURCE`].
pub fn image_source_ref(spec: &ApiDeploymentSpec) -> String {
    match (&spec.image.tag, &spec.image.digest) {
        (_, Some(digest)) => format!("{}@{digest}", spec.image.repository),
        (Some(tag), None) => format!("{}:{tag}", spec.image.repository),
        (None, None) => spec.image.repository.clone(),
    }
}

/// The ECS service binding of the target group.
pub fn lb_binding(service: &ServiceState, target_group_arn: &str) -> Binding {
    Binding { arn: target_group_arn.to_string(), container: service.container.clone(), port: service.port }
}

/// The ECS service binding of the Cloud Map service (SRV records need the port; A records must not
/// have one).
pub fn registry_binding(service: &ServiceState, discovery: &DiscoveryState, arn: &str) -> Binding {
    let port = if discovery.record_type == DnsRecordType::Srv { service.port } else { 0 };
    Binding { arn: arn.to_string(), container: service.container.clone(), port }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sources_are_parsed() {
        assert_eq!(
            ImageSource::parse("books-api"),
            ImageSource::Ecr { registry_id: None, repository: "books-api".into() }
        );
        assert_eq!(
            ImageSource::parse("team/books-api"),
            ImageSource::Ecr { registry_id: None, repository: "team/books-api".into() }
        );
        assert_eq!(
            ImageSource::parse("210987654321.dkr.ecr.eu-west-1.amazonaws.com/team/books-api"),
            ImageSource::Ecr { registry_id: Some("210987654321".into()), repository: "team/books-api".into() }
        );
        assert_eq!(
            ImageSource::parse("ghcr.io/acme/books-api"),
            ImageSource::External { uri: "ghcr.io/acme/books-api".into() }
        );
    }

    #[test]
    fn the_lifecycle_policy_keeps_the_last_n_images() {
        let policy: serde_json::Value = serde_json::from_str(&lifecycle_policy(30)).expect("json");
        assert_eq!(policy["rules"][0]["selection"]["countNumber"], 30);
        assert_eq!(policy["rules"][0]["action"]["type"], "expire");
    }
}
