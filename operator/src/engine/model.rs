//! The desired model: what ecsop wants in AWS for one ApiDeployment, as plain data, one type per owned
//! resource kind plus the [`Desired`] aggregate. Each kind's module in [`super::resources`] derives its
//! part from the spec; this module only holds the shapes, so every module can speak of them without
//! importing another.
//!
//! The field order and the serialized form are a contract: [`Desired::hash`] is recorded on the ECS
//! service (`ecsop.io/applied-hash`), and a change here makes every deployed ApiDeployment look changed
//! once (one deep read each), so change it only on purpose.

use std::collections::BTreeMap;

use serde::Serialize;

use super::names::short_hash;
use crate::api::{DeletionPolicy, DnsRecordType, TagMutability};
use crate::aws::{
    AuthorizerConfig, DeploymentAlarms, DeploymentSettings, MetricAlarm, NetworkSettings, ScalingPolicy,
    TargetGroupHealth, TaskDefinition,
};

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

/// The owned test-traffic rule: the production rule's hosts and paths plus a header, at its own priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestRuleState {
    /// Listener.
    pub listener_arn: String,
    /// Priority.
    pub priority: i32,
    /// Hosts, sorted.
    pub hosts: Vec<String>,
    /// Paths, sorted.
    pub paths: Vec<String>,
    /// The header.
    #[serde(serialize_with = "ser_debug")]
    pub header: crate::aws::HeaderMatch,
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
    /// The stage the routes go live on (left out of the hash when `$default`, as before stages were
    /// part of the spec).
    #[serde(skip_serializing_if = "is_default_stage")]
    pub stage: String,
}

fn is_default_stage(stage: &str) -> bool {
    stage == "$default"
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
    /// The role ECS moves traffic with, when the strategy shifts traffic between two target groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infrastructure_role: Option<String>,
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
    /// [`TaskDefinition::content_hash`]: revisions tagged with it are reused.
    pub task_definition_hash: String,
    /// The owned target group.
    pub target_group: Option<TargetGroupState>,
    /// The second target group ECS shifts traffic to (blueGreen, canary and linear).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternate_target_group: Option<TargetGroupState>,
    /// The owned listener rule.
    pub rule: Option<RuleState>,
    /// The owned test-traffic rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_rule: Option<TestRuleState>,
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

impl Desired {
    /// A hash of everything above: recorded on the ECS service once every part is applied, so an
    /// unchanged ApiDeployment is recognised from the (batched) service read alone.
    pub fn hash(&self) -> String {
        content_hash(self)
    }
}

/// The first 16 hex digits of the SHA-256 of `value`'s JSON: serde writes struct fields in declaration
/// order and maps sorted, a canonical form that does not depend on the compiler's Debug output.
pub fn content_hash<T: Serialize + ?Sized>(value: &T) -> String {
    short_hash(&serde_json::to_string(value).unwrap_or_default(), 16)
}

/// `values` sorted and without duplicates: the canonical form of the spec's lists.
pub fn sorted(values: &[String]) -> Vec<String> {
    let mut v = values.to_vec();
    v.sort();
    v.dedup();
    v
}
