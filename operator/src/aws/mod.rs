//! The AWS adapters: one small trait per service, speaking ecsop's own types.
//!
//! Only the SDK implementations in this module's submodules call `.send()`; the engine sees the traits,
//! so its tests run against the in-memory fakes in [`fake`] and the CLI and controller against the SDK.
//! Every SDK adapter goes through [`Calls`], which rate-limits writes per operation class, retries
//! throttling with backoff, and records each call for metrics and tests.

pub mod apigateway;
pub mod autoscaling;
pub mod batch;
pub mod calls;
pub mod cloudmap;
pub mod cloudwatch;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod error;
pub mod limiter;
pub mod taskdef;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use calls::{CallRecord, Calls, Outcome};
pub use error::{AwsError, ErrorKind};

use crate::api::{DnsRecordType, TagMutability};
pub use taskdef::TaskDefinition;

/// AWS resource tags, sorted by key.
pub type Tags = BTreeMap<String, String>;

/// The result of an adapter call.
pub type AwsResult<T> = Result<T, AwsError>;

/// One client per service, as the engine uses them. Cheap to clone.
#[derive(Clone)]
pub struct Clients {
    /// ECR.
    pub ecr: Arc<dyn Ecr>,
    /// ECS.
    pub ecs: Arc<dyn Ecs>,
    /// Elastic Load Balancing v2.
    pub elbv2: Arc<dyn Elbv2>,
    /// Cloud Map.
    pub cloudmap: Arc<dyn CloudMap>,
    /// Application Auto Scaling.
    pub autoscaling: Arc<dyn Autoscaling>,
    /// CloudWatch alarms.
    pub cloudwatch: Arc<dyn CloudWatch>,
    /// API Gateway HTTP APIs.
    pub apigateway: Arc<dyn ApiGateway>,
}

impl Clients {
    /// The SDK adapters for one region, sharing `calls` (limiter, retry policy and call counts).
    pub fn from_sdk(config: &aws_config::SdkConfig, calls: Calls) -> Self {
        let calls = calls.for_region(config.region().map(|r| r.as_ref()).unwrap_or_default());
        Clients {
            ecr: Arc::new(ecr::SdkEcr::new(config, calls.clone())),
            ecs: Arc::new(ecs::SdkEcs::new(config, calls.clone())),
            elbv2: Arc::new(elbv2::SdkElbv2::new(config, calls.clone())),
            cloudmap: Arc::new(cloudmap::SdkCloudMap::new(config, calls.clone())),
            autoscaling: Arc::new(autoscaling::SdkAutoscaling::new(config, calls.clone())),
            cloudwatch: Arc::new(cloudwatch::SdkCloudWatch::new(config, calls.clone())),
            apigateway: Arc::new(apigateway::SdkApiGateway::new(config, calls)),
        }
    }
}

// ---- ECR ------------------------------------------------------------------------------------------

/// An ECR repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The name (`books-api`).
    pub name: String,
    /// The ARN.
    pub arn: String,
    /// The URI images are pulled from (`123456789012.dkr.ecr.us-east-1.amazonaws.com/books-api`).
    pub uri: String,
    /// Scan on push.
    pub scan_on_push: bool,
    /// Tag mutability.
    pub tag_mutability: TagMutability,
}

/// ECR, as ecsop uses it.
#[async_trait]
pub trait Ecr: Send + Sync {
    /// The repository `name` in `registry_id` (the caller's account when `None`), if it exists.
    /// Concurrent calls are batched into one DescribeRepositories per registry.
    async fn repository(&self, registry_id: Option<&str>, name: &str) -> AwsResult<Option<Repository>>;
    /// The repository's tags.
    async fn repository_tags(&self, arn: &str) -> AwsResult<Tags>;
    /// The repository's lifecycle policy text, if it has one.
    async fn lifecycle_policy(&self, name: &str) -> AwsResult<Option<String>>;
    /// The digest (`sha256:...`) of `tag` in the repository, if the tag exists.
    async fn resolve_tag(&self, registry_id: Option<&str>, repository: &str, tag: &str) -> AwsResult<Option<String>>;
    /// Whether an image with this digest exists in the repository.
    async fn digest_exists(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<bool>;
    /// Create the repository with these settings and tags.
    async fn create_repository(
        &self,
        name: &str,
        scan_on_push: bool,
        tag_mutability: TagMutability,
        tags: &Tags,
    ) -> AwsResult<Repository>;
    /// Set scan on push.
    async fn set_scan_on_push(&self, name: &str, scan_on_push: bool) -> AwsResult<()>;
    /// Set tag mutability.
    async fn set_tag_mutability(&self, name: &str, tag_mutability: TagMutability) -> AwsResult<()>;
    /// Replace the lifecycle policy.
    async fn put_lifecycle_policy(&self, name: &str, policy: &str) -> AwsResult<()>;
    /// Add or overwrite tags.
    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()>;
    /// Remove tags by key.
    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()>;
    /// Delete the repository and its images. Missing is success.
    async fn delete_repository(&self, name: &str) -> AwsResult<()>;
    /// The state of the image scan of `digest` (DescribeImageScanFindings).
    async fn image_scan(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<ImageScan>;
    /// Start a basic scan of `digest` (for images pushed before scan on push was on).
    async fn start_image_scan(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<()>;
    /// Point `tag` at the image `digest` (BatchGetImage for its manifest, then PutImage), moving the tag
    /// if it is on another image. An IMMUTABLE repository refuses to move a tag.
    async fn put_tag(&self, registry_id: Option<&str>, repository: &str, digest: &str, tag: &str) -> AwsResult<()>;
}

/// The result of an ECR image scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageScan {
    /// The image was never scanned.
    NotScanned,
    /// The scan is running.
    InProgress,
    /// The scan finished: the number of findings by severity (`CRITICAL`, `HIGH`, `MEDIUM`, `LOW`,
    /// `INFORMATIONAL`, `UNDEFINED`), only severities with findings present.
    Complete(BTreeMap<String, i32>),
    /// The scan failed or is not supported for this image, with ECR's reason.
    Failed(String),
}

// ---- ECS ------------------------------------------------------------------------------------------

/// A registered task-definition revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinitionInfo {
    /// The revision's ARN (`arn:aws:ecs:...:task-definition/prod-books-api:7`).
    pub arn: String,
    /// The family.
    pub family: String,
    /// The revision number.
    pub revision: i32,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// The revision's tags (ecsop's ownership and content-hash tags).
    pub tags: Tags,
}

/// ECS's durable record of one deployment of a service (ListServiceDeployments): it outlives the
/// deployment's place in DescribeServices, which a deployment leaves once its tasks are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDeployment {
    /// The service deployment's ARN.
    pub arn: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `STOPPED`, `STOP_REQUESTED`, `ROLLBACK_REQUESTED`,
    /// `ROLLBACK_IN_PROGRESS`, `ROLLBACK_SUCCESSFUL` or `ROLLBACK_FAILED`.
    pub status: String,
    /// Why it ended as it did, when ECS says.
    pub status_reason: Option<String>,
    /// The task definition it deployed (from its target service revision).
    pub task_definition: Option<String>,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
}

/// An ECS deployment of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// `ecs-svc/...`.
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// The task definition ARN it runs.
    pub task_definition: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED` (absent on services without the rolling-update tracking).
    pub rollout_state: Option<String>,
    /// ECS's explanation of the rollout state.
    pub rollout_state_reason: Option<String>,
    /// Desired tasks.
    pub desired_count: i32,
    /// Running tasks.
    pub running_count: i32,
    /// Pending tasks.
    pub pending_count: i32,
    /// Tasks that failed to start.
    pub failed_tasks: i32,
    /// When it started.
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A service event, as ECS writes them (newest first in [`Service::events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    /// The event id.
    pub id: String,
    /// When.
    pub created_at: Option<DateTime<Utc>>,
    /// The message.
    pub message: String,
}

/// The deployment settings of a service (ECS's `deploymentConfiguration` without its alarms).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeploymentSettings {
    /// maximumPercent.
    pub maximum_percent: i32,
    /// minimumHealthyPercent.
    pub minimum_healthy_percent: i32,
    /// Circuit breaker enabled.
    pub circuit_breaker: bool,
    /// Circuit breaker rolls back.
    pub rollback: bool,
    /// The strategy (`strategy`, `bakeTimeInMinutes`, `canaryConfiguration`, `linearConfiguration`).
    pub strategy: Strategy,
}

// The rolling strategy is left out, so the settings of a rolling service read (and hash, in the
// applied-state record) exactly as before strategies existed.
impl std::fmt::Debug for DeploymentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("DeploymentSettings");
        d.field("maximum_percent", &self.maximum_percent)
            .field("minimum_healthy_percent", &self.minimum_healthy_percent)
            .field("circuit_breaker", &self.circuit_breaker)
            .field("rollback", &self.rollback);
        if self.strategy != Strategy::Rolling {
            d.field("strategy", &self.strategy);
        }
        d.finish()
    }
}

/// ECS's deployment strategy, with its steps and bake times in whole minutes and percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// `ROLLING`.
    #[default]
    Rolling,
    /// `BLUE_GREEN`: all production traffic at once, then `bake_minutes`.
    BlueGreen {
        /// bakeTimeInMinutes.
        bake_minutes: i32,
    },
    /// `CANARY`: `percent` first, `canary_bake_minutes` later the rest, then `bake_minutes`.
    Canary {
        /// canaryPercent.
        percent: i32,
        /// canaryBakeTimeInMinutes.
        canary_bake_minutes: i32,
        /// bakeTimeInMinutes.
        bake_minutes: i32,
    },
    /// `LINEAR`: `step_percent` every `step_bake_minutes`, then `bake_minutes`.
    Linear {
        /// stepPercent.
        step_percent: i32,
        /// stepBakeTimeInMinutes.
        step_bake_minutes: i32,
        /// bakeTimeInMinutes.
        bake_minutes: i32,
    },
}

impl Strategy {
    /// ECS's name of it.
    pub fn as_ecs(&self) -> &'static str {
        match self {
            Strategy::Rolling => "ROLLING",
            Strategy::BlueGreen { .. } => "BLUE_GREEN",
            Strategy::Canary { .. } => "CANARY",
            Strategy::Linear { .. } => "LINEAR",
        }
    }

    /// Whether ECS shifts traffic between two target groups (every strategy but rolling).
    pub fn shifts_traffic(&self) -> bool {
        *self != Strategy::Rolling
    }

    /// The final bake time (0 for rolling).
    pub fn bake_minutes(&self) -> i32 {
        match *self {
            Strategy::Rolling => 0,
            Strategy::BlueGreen { bake_minutes }
            | Strategy::Canary { bake_minutes, .. }
            | Strategy::Linear { bake_minutes, .. } => bake_minutes,
        }
    }
}

/// The awsvpc network placement of a service's tasks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkSettings {
    /// Subnet IDs, sorted.
    pub subnets: Vec<String>,
    /// Security group IDs, sorted.
    pub security_groups: Vec<String>,
    /// Public IP assignment.
    pub assign_public_ip: bool,
}

/// A container bound to a target group or a Cloud Map service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The target group ARN or the Cloud Map service ARN.
    pub arn: String,
    /// The container name.
    pub container: String,
    /// The container port.
    pub port: i32,
    /// What ECS needs to shift traffic (load balancers of a blueGreen, canary or linear service).
    pub traffic: Option<TrafficShift>,
}

/// A load balancer's `advancedConfiguration`: what ECS moves traffic with in a blue/green, canary or
/// linear deployment. ECS swaps `targetGroupArn` and `alternate_target_group` when one completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficShift {
    /// The second target group (the new revision's during a deployment).
    pub alternate_target_group: String,
    /// The listener rule whose forward weights ECS moves.
    pub production_rule: String,
    /// The rule that reaches the new revision before production traffic, if any.
    pub test_rule: Option<String>,
    /// The role ECS assumes to change the rules.
    pub role_arn: String,
}

impl Binding {
    /// Whether `self` and `other` bind the same pair of target groups with the same rules and role,
    /// whichever of the two is primary now (ECS swaps them at the end of each deployment).
    pub fn same_pair(&self, other: &Binding) -> bool {
        let pair = |b: &Binding| {
            let mut tgs = vec![b.arn.clone()];
            tgs.extend(b.traffic.as_ref().map(|t| t.alternate_target_group.clone()));
            tgs.sort();
            let rest = b.traffic.as_ref().map(|t| (t.production_rule.clone(), t.test_rule.clone(), t.role_arn.clone()));
            (tgs, b.container.clone(), b.port, rest)
        };
        pair(self) == pair(other)
    }
}

/// An ECS service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The ARN.
    pub arn: String,
    /// The name.
    pub name: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// The task definition the service is set to.
    pub task_definition: String,
    /// Desired tasks.
    pub desired_count: i32,
    /// Running tasks.
    pub running_count: i32,
    /// Pending tasks.
    pub pending_count: i32,
    /// Deployments, PRIMARY first.
    pub deployments: Vec<Deployment>,
    /// Recent service events, newest first.
    pub events: Vec<ServiceEvent>,
    /// Load-balancer bindings.
    pub load_balancers: Vec<Binding>,
    /// Cloud Map bindings.
    pub registries: Vec<Binding>,
    /// Network placement.
    pub network: NetworkSettings,
    /// Rolling-update settings, when ECS reports them.
    pub deployment: Option<DeploymentSettings>,
    /// CloudWatch alarms watched during deployments, when set.
    pub alarms: Option<DeploymentAlarms>,
    /// Health-check grace period.
    pub health_check_grace_period_seconds: Option<i32>,
    /// Tags.
    pub tags: Tags,
}

/// CloudWatch alarms ECS watches during a deployment (`deploymentConfiguration.alarms`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentAlarms {
    /// Alarm names, sorted.
    pub names: Vec<String>,
    /// Whether ECS watches them.
    pub enable: bool,
    /// Whether an alarm in ALARM during a deployment rolls it back.
    pub rollback: bool,
}

/// A service as ecsop creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// Task definition ARN.
    pub task_definition: String,
    /// Desired tasks.
    pub desired_count: i32,
    /// Network placement.
    pub network: NetworkSettings,
    /// Rolling-update settings.
    pub deployment: DeploymentSettings,
    /// Deployment alarms.
    pub alarms: Option<DeploymentAlarms>,
    /// Grace period (only sent with a load balancer).
    pub health_check_grace_period_seconds: Option<i32>,
    /// Target-group binding.
    pub load_balancer: Option<Binding>,
    /// Cloud Map binding.
    pub registry: Option<Binding>,
    /// Tags.
    pub tags: Tags,
}

/// An UpdateService call: only the fields set are changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceUpdate {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// New task definition ARN.
    pub task_definition: Option<String>,
    /// New desired count.
    pub desired_count: Option<i32>,
    /// New network placement.
    pub network: Option<NetworkSettings>,
    /// New rolling-update settings (sent with the deployment alarms, which share ECS's
    /// `deploymentConfiguration`).
    pub deployment: Option<DeploymentSettings>,
    /// New deployment alarms (`Some(default)` turns them off); sent only together with `deployment`.
    pub alarms: Option<DeploymentAlarms>,
    /// New grace period.
    pub health_check_grace_period_seconds: Option<i32>,
    /// New target-group bindings (`Some(vec![])` removes them).
    pub load_balancers: Option<Vec<Binding>>,
    /// New Cloud Map bindings (`Some(vec![])` removes them).
    pub registries: Option<Vec<Binding>>,
}

/// ECS, as ecsop uses it.
#[async_trait]
pub trait Ecs: Send + Sync {
    /// The service `name` in `cluster` with its tags, if it exists and is not INACTIVE. Concurrent calls
    /// for one cluster are batched into DescribeServices calls of up to 10 services.
    async fn service(&self, cluster: &str, name: &str) -> AwsResult<Option<Service>>;
    /// ARNs of the ACTIVE revisions of `family`, newest first.
    async fn list_task_definitions(&self, family: &str) -> AwsResult<Vec<String>>;
    /// One revision with its tags.
    async fn task_definition(&self, arn: &str) -> AwsResult<TaskDefinitionInfo>;
    /// Register a revision of `definition` with these tags.
    async fn register_task_definition(&self, definition: &TaskDefinition, tags: &Tags)
    -> AwsResult<TaskDefinitionInfo>;
    /// Deregister a revision. Already inactive or missing is success.
    async fn deregister_task_definition(&self, arn: &str) -> AwsResult<()>;
    /// Create a Fargate service.
    async fn create_service(&self, config: &ServiceConfig) -> AwsResult<Service>;
    /// Update a service.
    async fn update_service(&self, update: &ServiceUpdate) -> AwsResult<Service>;
    /// Delete a service (forced: ECS stops its tasks). Missing is success.
    async fn delete_service(&self, cluster: &str, name: &str) -> AwsResult<()>;
    /// Add or overwrite tags of a service or task definition.
    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()>;
    /// Remove tags by key.
    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()>;
    /// The service's recent deployments as ECS records them (ListServiceDeployments, with each one's
    /// task definition from DescribeServiceRevisions), newest first; none for a missing service.
    async fn service_deployments(&self, cluster: &str, name: &str) -> AwsResult<Vec<ServiceDeployment>>;
    /// Stop a service deployment in progress (StopServiceDeployment), rolling back to the revision
    /// before it when `rollback`. A deployment that already ended answers `Conflict`.
    async fn stop_service_deployment(&self, arn: &str, rollback: bool) -> AwsResult<()>;
}

// ---- ELBv2 ----------------------------------------------------------------------------------------

/// A target group's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupHealth {
    /// HTTP path.
    pub path: String,
    /// Seconds between probes.
    pub interval_seconds: i32,
    /// Probe timeout.
    pub timeout_seconds: i32,
    /// Successes to healthy.
    pub healthy_threshold: i32,
    /// Failures to unhealthy.
    pub unhealthy_threshold: i32,
    /// Healthy HTTP codes.
    pub matcher: String,
}

/// An ip-target HTTP target group as ecsop creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupConfig {
    /// The name (at most 32 characters).
    pub name: String,
    /// The VPC.
    pub vpc_id: String,
    /// The port traffic goes to.
    pub port: i32,
    /// The health check.
    pub health: TargetGroupHealth,
    /// Tags.
    pub tags: Tags,
}

/// A target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// The ARN.
    pub arn: String,
    /// The name.
    pub name: String,
    /// The VPC.
    pub vpc_id: String,
    /// The port.
    pub port: i32,
    /// The health check.
    pub health: TargetGroupHealth,
    /// Load balancers routing to it.
    pub load_balancer_arns: Vec<String>,
}

/// A listener rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The ARN.
    pub arn: String,
    /// Its priority; `None` for the listener's default rule.
    pub priority: Option<i32>,
    /// Host-header values.
    pub hosts: Vec<String>,
    /// Path-pattern values.
    pub paths: Vec<String>,
    /// Target groups the forward action sends to.
    pub target_groups: Vec<String>,
    /// Their weights, in the same order, when the forward action has several target groups.
    pub weights: Vec<i32>,
    /// The http-header condition, when the rule has one.
    pub header: Option<HeaderMatch>,
    /// The redirect action, when the rule redirects instead of forwarding.
    pub redirect: Option<Redirect>,
}

impl Rule {
    /// The weight the rule gives `target_group` (100 when it forwards to that group alone).
    pub fn weight(&self, target_group: &str) -> Option<i32> {
        let i = self.target_groups.iter().position(|t| t == target_group)?;
        Some(self.weights.get(i).copied().unwrap_or(if self.target_groups.len() == 1 { 100 } else { 1 }))
    }
}

/// A listener rule's redirect action (to HTTPS on the same host, path and query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `HTTPS` (or `HTTP`, `#{protocol}`).
    pub protocol: String,
    /// The port (`443`).
    pub port: String,
    /// `HTTP_301` or `HTTP_302`.
    pub status_code: String,
}

impl Redirect {
    /// A permanent (301) redirect to HTTPS on `port`.
    pub fn https(port: &str) -> Self {
        Redirect { protocol: "HTTPS".into(), port: port.to_string(), status_code: "HTTP_301".into() }
    }
}

/// What a rule does with a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAction {
    /// Forward to this target group.
    Forward(String),
    /// Forward to several target groups by weight (`ForwardConfig.TargetGroups`).
    Weighted(Vec<(String, i32)>),
    /// Redirect (host, path and query kept).
    Redirect(Redirect),
}

/// A listener rule's http-header condition: the header and the values it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// The header's name.
    pub name: String,
    /// The values (any one matches).
    pub values: Vec<String>,
}

/// What a listener rule matches and where it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    /// The listener.
    pub listener_arn: String,
    /// The priority.
    pub priority: i32,
    /// Host-header values.
    pub hosts: Vec<String>,
    /// Path-pattern values.
    pub paths: Vec<String>,
    /// An http-header condition too.
    pub header: Option<HeaderMatch>,
    /// What the rule does.
    pub action: RuleAction,
    /// Tags.
    pub tags: Tags,
}

/// ELBv2, as ecsop uses it. Targets are never registered here: ECS does that.
#[async_trait]
pub trait Elbv2: Send + Sync {
    /// The target group named `name`, if it exists. Concurrent calls are batched.
    async fn target_group(&self, name: &str) -> AwsResult<Option<TargetGroup>>;
    /// A target group's attributes (`deregistration_delay.timeout_seconds`, ...).
    async fn target_group_attributes(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;
    /// Tags of a target group or rule. Concurrent calls are batched (20 ARNs per DescribeTags).
    async fn tags(&self, arn: &str) -> AwsResult<Tags>;
    /// Create a target group.
    async fn create_target_group(&self, config: &TargetGroupConfig) -> AwsResult<TargetGroup>;
    /// Change a target group's health check.
    async fn modify_target_group(&self, arn: &str, health: &TargetGroupHealth) -> AwsResult<()>;
    /// Set target-group attributes.
    async fn set_target_group_attributes(&self, arn: &str, attributes: &BTreeMap<String, String>) -> AwsResult<()>;
    /// Delete a target group. Missing is success.
    async fn delete_target_group(&self, arn: &str) -> AwsResult<()>;
    /// Every rule of a listener. Concurrent calls for one listener share one answer.
    async fn rules(&self, listener_arn: &str) -> AwsResult<Vec<Rule>>;
    /// Create a forward rule.
    async fn create_rule(&self, config: &RuleConfig) -> AwsResult<Rule>;
    /// Change a rule's conditions and action.
    async fn modify_rule(&self, arn: &str, hosts: &[String], paths: &[String], action: &RuleAction) -> AwsResult<()>;
    /// Change a rule's priority.
    async fn set_rule_priority(&self, arn: &str, priority: i32) -> AwsResult<()>;
    /// Delete a rule. Missing is success.
    async fn delete_rule(&self, arn: &str) -> AwsResult<()>;
    /// Add or overwrite tags of a target group or rule.
    async fn add_tags(&self, arn: &str, tags: &Tags) -> AwsResult<()>;
    /// Remove tags by key.
    async fn remove_tags(&self, arn: &str, keys: &[String]) -> AwsResult<()>;
}

// ---- Cloud Map ------------------------------------------------------------------------------------

/// A Cloud Map service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryService {
    /// The id (`srv-...`).
    pub id: String,
    /// The ARN (what ECS's service registry takes).
    pub arn: String,
    /// The name.
    pub name: String,
    /// The namespace id.
    pub namespace_id: String,
    /// The DNS record type.
    pub record_type: DnsRecordType,
    /// The DNS TTL.
    pub ttl_seconds: i64,
}

/// Cloud Map, as ecsop uses it.
#[async_trait]
pub trait CloudMap: Send + Sync {
    /// The service `name` in namespace `namespace_id`, if it exists.
    async fn find_service(&self, namespace_id: &str, name: &str) -> AwsResult<Option<DiscoveryService>>;
    /// Tags of a service.
    async fn tags(&self, arn: &str) -> AwsResult<Tags>;
    /// Create a DNS-registered service with a custom health check (ECS reports task health).
    async fn create_service(
        &self,
        namespace_id: &str,
        name: &str,
        record_type: DnsRecordType,
        ttl_seconds: i64,
        tags: &Tags,
    ) -> AwsResult<DiscoveryService>;
    /// Change the DNS TTL.
    async fn update_ttl(&self, id: &str, record_type: DnsRecordType, ttl_seconds: i64) -> AwsResult<()>;
    /// Delete a service. Missing is success.
    async fn delete_service(&self, id: &str) -> AwsResult<()>;
    /// Add or overwrite tags.
    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()>;
    /// Remove tags by key.
    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()>;
}

// ---- Application Auto Scaling ----------------------------------------------------------------------

/// The metric a target-tracking policy follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScalingMetric {
    /// ECSServiceAverageCPUUtilization.
    Cpu,
    /// ECSServiceAverageMemoryUtilization.
    Memory,
    /// ALBRequestCountPerTarget, with its resource label (`app/<lb>/<id>/targetgroup/<tg>/<id>`).
    RequestsPerTarget {
        /// The resource label.
        resource_label: String,
    },
}

/// A target-tracking scaling policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicy {
    /// The policy name.
    pub name: String,
    /// The metric.
    pub metric: ScalingMetric,
    /// The target value.
    pub target: f64,
}

/// The scalable target of an ECS service (`service/<cluster>/<service>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalableTarget {
    /// `service/<cluster>/<service>`.
    pub resource_id: String,
    /// Fewest tasks.
    pub min_capacity: i32,
    /// Most tasks.
    pub max_capacity: i32,
}

/// Application Auto Scaling for ECS services, as ecsop uses it.
#[async_trait]
pub trait Autoscaling: Send + Sync {
    /// The scalable target of `resource_id`, if registered.
    async fn scalable_target(&self, resource_id: &str) -> AwsResult<Option<ScalableTarget>>;
    /// Register (or update) the scalable target.
    async fn register_scalable_target(&self, target: &ScalableTarget) -> AwsResult<()>;
    /// Deregister the scalable target (and with it its policies). Missing is success.
    async fn deregister_scalable_target(&self, resource_id: &str) -> AwsResult<()>;
    /// The target-tracking policies on `resource_id`.
    async fn policies(&self, resource_id: &str) -> AwsResult<Vec<ScalingPolicy>>;
    /// Create or replace a target-tracking policy.
    async fn put_policy(&self, resource_id: &str, policy: &ScalingPolicy) -> AwsResult<()>;
    /// Delete a policy. Missing is success.
    async fn delete_policy(&self, resource_id: &str, name: &str) -> AwsResult<()>;
}

// ---- CloudWatch alarms -------------------------------------------------------------------------------

/// One statistic of one metric (a MetricStat of GetMetricData), for rollout analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    /// `AWS/ApplicationELB`.
    pub namespace: String,
    /// `RequestCount`, `HTTPCode_Target_5XX_Count`, `TargetResponseTime`.
    pub metric_name: String,
    /// Every dimension of the metric (CloudWatch matches the whole set).
    pub dimensions: BTreeMap<String, String>,
    /// `Sum`, `Average`, `SampleCount`, `Minimum`, `Maximum`, or a percentile such as `p99`.
    pub stat: String,
}

/// A metric alarm, as ecsop sets it (PutMetricAlarm) and reads it back (DescribeAlarms).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAlarm {
    /// The alarm name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Metric namespace (`AWS/ECS`, `ECS/ContainerInsights`).
    pub namespace: String,
    /// Metric name (`CPUUtilization`, `MemoryUtilization`, `RunningTaskCount`).
    pub metric_name: String,
    /// Metric dimensions (`ClusterName`, `ServiceName`), sorted.
    pub dimensions: BTreeMap<String, String>,
    /// Statistic (`Average`, `Minimum`, `Maximum`, `Sum`, `SampleCount`).
    pub statistic: String,
    /// Comparison operator (`GreaterThanThreshold`, `LessThanThreshold`, ...).
    pub comparison: String,
    /// The threshold.
    pub threshold: f64,
    /// Seconds per evaluated period.
    pub period_seconds: i32,
    /// Periods evaluated.
    pub evaluation_periods: i32,
    /// Periods out of `evaluation_periods` that must breach.
    pub datapoints_to_alarm: i32,
    /// `missing`, `breaching`, `notBreaching` or `ignore`.
    pub treat_missing_data: String,
    /// Actions (SNS topic ARNs) on entering ALARM, sorted.
    pub alarm_actions: Vec<String>,
    /// Actions on returning to OK, sorted.
    pub ok_actions: Vec<String>,
}

/// An alarm as CloudWatch reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmInfo {
    /// The ARN.
    pub arn: String,
    /// Its settings.
    pub alarm: MetricAlarm,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
}

/// CloudWatch metric alarms, as ecsop uses them.
#[async_trait]
pub trait CloudWatch: Send + Sync {
    /// Every metric alarm whose name starts with `prefix` (DescribeAlarms by prefix, all pages).
    async fn alarms(&self, prefix: &str) -> AwsResult<Vec<AlarmInfo>>;
    /// Create or replace an alarm; `tags` are applied too (PutMetricAlarm only tags on creation, so an
    /// existing alarm is tagged with TagResource).
    async fn put_alarm(&self, alarm: &MetricAlarm, tags: &Tags) -> AwsResult<()>;
    /// Tags of an alarm.
    async fn tags(&self, arn: &str) -> AwsResult<Tags>;
    /// Add or overwrite tags.
    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()>;
    /// Remove tags by key.
    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()>;
    /// Delete alarms by name. Missing is success.
    async fn delete_alarms(&self, names: &[String]) -> AwsResult<()>;
    /// Each query's statistic over the one period `[start, end)` (GetMetricData, all pages), in the
    /// order of `queries`; `None` where the metric has no datapoint in it. The period, `end - start`,
    /// must be a whole number of minutes, as CloudWatch requires of standard-resolution metrics.
    async fn metric_data(
        &self,
        queries: &[MetricQuery],
        start: std::time::SystemTime,
        end: std::time::SystemTime,
    ) -> AwsResult<Vec<Option<f64>>>;
}

// ---- API Gateway (HTTP APIs) -------------------------------------------------------------------------

/// A private integration of an HTTP API: HTTP_PROXY over a VPC link to a Cloud Map service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationConfig {
    /// The VPC link id.
    pub vpc_link_id: String,
    /// The Cloud Map service ARN requests go to.
    pub service_arn: String,
    /// The description; ecsop writes its ownership marker here (integrations take no tags).
    pub description: String,
}

/// An integration of an HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// The id.
    pub id: String,
    /// `HTTP_PROXY`, `AWS_PROXY`, ...
    pub integration_type: String,
    /// `VPC_LINK` or `INTERNET`.
    pub connection_type: Option<String>,
    /// The VPC link id.
    pub connection_id: Option<String>,
    /// The integration URI (the Cloud Map service ARN for ecsop's).
    pub uri: Option<String>,
    /// The HTTP method used towards the backend (`ANY`).
    pub method: Option<String>,
    /// The payload format version (`1.0`).
    pub payload_format_version: Option<String>,
    /// The description.
    pub description: Option<String>,
}

/// A route as ecsop sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The route key (`GET /api/v1/movies`, `ANY /api/v1/movies/{proxy+}`).
    pub key: String,
    /// The target (`integrations/<id>`).
    pub target: String,
    /// The JWT authorizer checking requests, or `None` for a public route.
    pub authorizer_id: Option<String>,
}

/// A route of an HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The id.
    pub id: String,
    /// The route key.
    pub key: String,
    /// The target, if any.
    pub target: Option<String>,
    /// `NONE`, `JWT`, `AWS_IAM` or `CUSTOM`.
    pub authorization_type: String,
    /// The authorizer id, if any.
    pub authorizer_id: Option<String>,
}

/// A JWT authorizer as ecsop sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// The name; ecsop's marks ownership (authorizers take no tags).
    pub name: String,
    /// The token issuer (`iss`), an HTTPS URL with OpenID discovery.
    pub issuer: String,
    /// Accepted audiences (`aud`), sorted.
    pub audience: Vec<String>,
    /// Where the token is (`$request.header.Authorization`).
    pub identity_source: String,
}

/// An authorizer of an HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    /// The id.
    pub id: String,
    /// `JWT` or `REQUEST`.
    pub authorizer_type: String,
    /// Its settings (issuer and audience empty for non-JWT authorizers).
    pub config: AuthorizerConfig,
}

/// A stage of an HTTP API: where routes go live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Its name (`$default`, `prod`).
    pub name: String,
    /// Whether API Gateway deploys every change to it by itself.
    pub auto_deploy: bool,
    /// The deployment it serves, if any.
    pub deployment_id: Option<String>,
}

/// API Gateway HTTP APIs (apigatewayv2), as ecsop uses them: on an existing API, ecsop owns one
/// integration, the routes targeting it and optionally one JWT authorizer.
#[async_trait]
pub trait ApiGateway: Send + Sync {
    /// Every integration of the API (all pages). A missing API is `NotFound`.
    async fn integrations(&self, api_id: &str) -> AwsResult<Vec<Integration>>;
    /// Create a private HTTP_PROXY integration (method ANY, payload format 1.0).
    async fn create_integration(&self, api_id: &str, config: &IntegrationConfig) -> AwsResult<Integration>;
    /// Change an integration to `config`.
    async fn update_integration(&self, api_id: &str, id: &str, config: &IntegrationConfig) -> AwsResult<()>;
    /// Delete an integration. Missing is success.
    async fn delete_integration(&self, api_id: &str, id: &str) -> AwsResult<()>;
    /// Every route of the API (all pages).
    async fn routes(&self, api_id: &str) -> AwsResult<Vec<Route>>;
    /// Create a route.
    async fn create_route(&self, api_id: &str, config: &RouteConfig) -> AwsResult<Route>;
    /// Change a route's target and authorization.
    async fn update_route(&self, api_id: &str, id: &str, config: &RouteConfig) -> AwsResult<()>;
    /// Delete a route. Missing is success.
    async fn delete_route(&self, api_id: &str, id: &str) -> AwsResult<()>;
    /// Every authorizer of the API (all pages).
    async fn authorizers(&self, api_id: &str) -> AwsResult<Vec<Authorizer>>;
    /// Create a JWT authorizer.
    async fn create_authorizer(&self, api_id: &str, config: &AuthorizerConfig) -> AwsResult<Authorizer>;
    /// Change a JWT authorizer.
    async fn update_authorizer(&self, api_id: &str, id: &str, config: &AuthorizerConfig) -> AwsResult<()>;
    /// Delete an authorizer. Missing is success.
    async fn delete_authorizer(&self, api_id: &str, id: &str) -> AwsResult<()>;
    /// The stage `name` of the API, if it exists.
    async fn stage(&self, api_id: &str, name: &str) -> AwsResult<Option<Stage>>;
    /// Deploy the API's routes and integrations as they are now to `stage`; returns the deployment id.
    async fn create_deployment(&self, api_id: &str, stage: &str, description: &str) -> AwsResult<String>;
}
