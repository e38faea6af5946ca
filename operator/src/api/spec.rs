//! The `ApiDeployment` spec: what the user asks for.
//!
//! Doc comments here become the CRD's descriptions (`kubectl explain apideployment.spec...`), so they
//! are written for the person reading a manifest. Ranges, patterns and enums live in the schema
//! (`#[schemars(...)]`); cross-field rules are CEL (`#[x_kube(validation = ...)]`). Both run on the API
//! server and, through [`crate::api::validate`], in the CLI before any AWS call.

// The printcolumn(...) entries of #[kube] legitimately repeat keys such as `type_`.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::ApiDeploymentStatus;

/// Valid Fargate (cpu, memory) combinations, as one CEL expression over a container spec.
/// Source: the AWS Fargate task size table.
pub const FARGATE_SIZES_RULE: &str = "(self.cpu == 256 && self.memory in [512, 1024, 2048]) || \
(self.cpu == 512 && self.memory >= 1024 && self.memory <= 4096 && self.memory % 1024 == 0) || \
(self.cpu == 1024 && self.memory >= 2048 && self.memory <= 8192 && self.memory % 1024 == 0) || \
(self.cpu == 2048 && self.memory >= 4096 && self.memory <= 16384 && self.memory % 1024 == 0) || \
(self.cpu == 4096 && self.memory >= 8192 && self.memory <= 30720 && self.memory % 1024 == 0) || \
(self.cpu == 8192 && self.memory >= 16384 && self.memory <= 61440 && self.memory % 4096 == 0) || \
(self.cpu == 16384 && self.memory >= 32768 && self.memory <= 122880 && self.memory % 8192 == 0)";

/// An HTTP API service on ECS Fargate: image, task, service, rollout and load-balancer routing.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecsop.io",
    version = "v1alpha1",
    kind = "ApiDeployment",
    plural = "apideployments",
    shortname = "apid",
    namespaced,
    status = "ApiDeploymentStatus",
    doc = "An HTTP API service deployed to AWS ECS Fargate by ecsop.",
    printcolumn(name = "Image", type_ = "string", description = "The image running", json_path = ".status.image.ref"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the rollout of the current generation finished",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "string",
        description = "Running over desired tasks",
        json_path = ".status.replicas.summary"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new(
    "!has(self.ecr) || !self.ecr.create || !self.image.repository.matches('^[^/]+[.:][^/]*/')"
).message("ecr.create needs image.repository to be a repository name in this account, not a registry URI").field_path(".image.repository"))]
#[x_kube(validation = Rule::new(
    "!(has(self.image.scanGate) || has(self.image.promotionTag)) || !self.image.repository.matches('^[^/]+[.:][^/]*/') || self.image.repository.matches('^[0-9]{12}[.]dkr[.]ecr[.][a-z0-9-]+[.]amazonaws[.]com(?:[.]cn)?/')"
).message("image.scanGate and image.promotionTag need an ECR repository").field_path(".image.repository"))]
#[x_kube(validation = Rule::new(
    "!has(self.image.promotionTag) || !has(self.ecr) || !self.ecr.create || (has(self.ecr.tagMutability) && self.ecr.tagMutability == 'MUTABLE')"
).message("image.promotionTag moves a tag from image to image, which needs ecr.tagMutability: MUTABLE").field_path(".image.promotionTag"))]
#[x_kube(validation = Rule::new(
    "!has(self.apiGateway) || (has(self.service.serviceDiscovery) && (!has(self.service.serviceDiscovery.dnsRecordType) || self.service.serviceDiscovery.dnsRecordType == 'SRV'))"
).message("apiGateway reaches the tasks through Cloud Map SRV records: set service.serviceDiscovery with dnsRecordType SRV").field_path(".apiGateway"))]
#[x_kube(validation = Rule::new(
    "!has(self.service.rollout) || !has(self.service.rollout.strategy) || self.service.rollout.strategy.type == 'rolling' || has(self.loadBalancer)"
).message("blueGreen, canary and linear shift a load balancer's traffic: set loadBalancer, or use strategy type rolling").field_path(".service.rollout.strategy.type"))]
#[x_kube(validation = Rule::new(
    "!has(self.service.rollout) || !has(self.service.rollout.strategy) || self.service.rollout.strategy.type == 'rolling' || !has(self.service.autoscaling) || !has(self.service.autoscaling.targetRequestsPerTarget)"
).message("targetRequestsPerTarget follows one target group, and blueGreen, canary and linear move traffic between two: scale on CPU or memory instead").field_path(".service.autoscaling.targetRequestsPerTarget"))]
#[x_kube(validation = Rule::new(
    "!has(self.service.rollout) || !has(self.service.rollout.strategy) || !has(self.service.rollout.strategy.testTraffic) || !has(self.loadBalancer) || self.service.rollout.strategy.testTraffic.priority < self.loadBalancer.priority"
).message("testTraffic.priority must be below loadBalancer.priority: the listener evaluates lower numbers first, so a higher one would never see a test request").field_path(".service.rollout.strategy.testTraffic.priority"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiDeploymentSpec {
    /// AWS region of every resource of this deployment; the operator's default region when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$"))]
    pub region: Option<String>,

    /// When true, ecsop observes and reports but writes nothing to AWS.
    #[serde(default)]
    pub suspend: bool,

    /// Name of the existing ECS cluster the service runs in.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,255}$"))]
    pub cluster: String,

    /// The container image: repository plus exactly one of tag or digest.
    pub image: ImageSpec,

    /// When set, ecsop owns the ECR repository: creates it with these settings and deletes it with the
    /// deployment (deletionPolicy permitting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr: Option<EcrSpec>,

    /// The task's single container.
    pub container: ContainerSpec,

    /// The ECS service: size, network placement, rollout and scaling.
    pub service: ServiceSpec,

    /// Routing from an existing ALB listener: ecsop owns a target group and a listener rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSpec>,

    /// Routing from an existing API Gateway HTTP API over a VPC link to the service's Cloud Map SRV
    /// records: ecsop owns the integration, the routes listed and an optional JWT authorizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_gateway: Option<ApiGatewaySpec>,

    /// CloudWatch alarms ecsop owns on the service (CPU high, memory high, no running tasks), notifying
    /// SNS topics and, optionally, rolling back a rollout during which one fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<AlarmsSpec>,

    /// How many task-definition revisions registered by ecsop to keep; older ones are deregistered.
    #[serde(default = "default_revision_history_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub revision_history_limit: i32,

    /// What deleting the ApiDeployment does to AWS: Delete removes what ecsop owns; Retain leaves it
    /// running and removes ecsop's ownership tags.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_revision_history_limit() -> i32 {
    5
}

/// The container image.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.tag) != has(self.digest)").message("set exactly one of image.tag or image.digest"))]
#[x_kube(validation = Rule::new("!has(self.promotionTag) || !has(self.tag) || self.promotionTag != self.tag")
    .message("promotionTag must differ from tag: ecsop moves it onto the image it deployed").field_path(".promotionTag"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSpec {
    /// ECR repository name in the deployment's account (`books-api`), or a full image repository URI
    /// (`123456789012.dkr.ecr.us-east-1.amazonaws.com/books-api`).
    #[schemars(length(min = 2, max = 512))]
    #[schemars(regex(
        pattern = r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
    ))]
    pub repository: String,

    /// Image tag; ecsop resolves it to a digest and pins that digest in the task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"))]
    pub tag: Option<String>,

    /// Image digest (`sha256:` and 64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
    pub digest: Option<String>,

    /// Refuse to roll out an image whose ECR scan found vulnerabilities at or above a severity. A new
    /// image waits for its scan (ecsop starts one when the image was never scanned); a refused image
    /// leaves the service on what it runs, with Stalled/`ImageRejected` and the findings counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_gate: Option<ScanGateSpec>,

    /// After a rollout of this image completes, ecsop points this ECR tag at the deployed digest
    /// (moving it from the image it was on), so the registry records what runs where: `staging-passed`,
    /// `prod-current`. Another ApiDeployment can deploy that tag: the promotion from one environment to
    /// the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"))]
    pub promotion_tag: Option<String>,
}

/// The image scan gate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanGateSpec {
    /// The lowest severity that refuses an image.
    #[serde(default)]
    pub fail_on_severity: Severity,
}

/// An ECR finding severity, from most to least severe.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Critical.
    Critical,
    /// High.
    #[default]
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
    /// Informational.
    Informational,
}

impl Severity {
    /// ECR's name of the severity.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
            Severity::Informational => "INFORMATIONAL",
        }
    }

    /// The severity ECR names `name`, if it is one of the ranked ones (`UNDEFINED` is not).
    pub fn parse(name: &str) -> Option<Severity> {
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Informational]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// Settings of an ECR repository owned by ecsop.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EcrSpec {
    /// Create the repository when missing, and own it.
    #[serde(default)]
    pub create: bool,

    /// Scan images on push.
    #[serde(default = "default_true")]
    pub scan_on_push: bool,

    /// Whether tags can be moved to another image.
    #[serde(default)]
    pub tag_mutability: TagMutability,

    /// Lifecycle policy: keep this many most recent images, expire older ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub keep_last_images: Option<i32>,
}

fn default_true() -> bool {
    true
}

/// ECR tag mutability.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagMutability {
    /// Tags may be moved.
    Mutable,
    /// Tags are fixed once pushed.
    #[default]
    Immutable,
}

/// The container of the task.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new(FARGATE_SIZES_RULE).message(
    "memory is not a valid Fargate size for this cpu (256: 512-2048; 512: 1024-4096; 1024: 2048-8192; \
     2048: 4096-16384; 4096: 8192-30720 MiB, in steps of 1024)"
).field_path(".memory"))]
#[x_kube(validation = Rule::new("!has(self.secrets) || !has(self.env) || self.secrets.all(k, !(k in self.env))")
    .message("a name may be in env or in secrets, not both").field_path(".secrets"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSpec {
    /// The port the API listens on.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// Fargate CPU units (256 = a quarter vCPU).
    #[schemars(extend("enum" = [256, 512, 1024, 2048, 4096, 8192, 16384]))]
    pub cpu: i32,

    /// Memory in MiB; must be a valid Fargate size for the cpu.
    #[schemars(range(min = 512, max = 122880))]
    pub memory: i32,

    /// Overrides the image's command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub command: Vec<String>,

    /// Plain environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))")
        .message("environment variable names must match [A-Za-z_][A-Za-z0-9_]*"))]
    pub env: BTreeMap<String, String>,

    /// Environment variables filled by ECS from Secrets Manager or SSM Parameter Store ARNs; the values
    /// never pass through ecsop.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))")
        .message("secret variable names must match [A-Za-z_][A-Za-z0-9_]*"))]
    #[x_kube(validation = Rule::new(
        "self.all(k, self[k].matches('^arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:[0-9]{12}:.+$'))"
    ).message("secret values must be Secrets Manager or SSM parameter ARNs"))]
    pub secrets: BTreeMap<String, String>,

    /// Container health check run by ECS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<ContainerHealthCheck>,

    /// CloudWatch Logs group for the awslogs driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_/.#-]{1,512}$"))]
    pub log_group: Option<String>,

    /// IAM role ECS uses to pull the image, write logs and read secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"))]
    pub execution_role_arn: Option<String>,

    /// IAM role the API itself runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"))]
    pub task_role_arn: Option<String>,

    /// CPU architecture of the image.
    #[serde(default)]
    pub architecture: Architecture,
}

/// A container health check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.command[0] in ['CMD', 'CMD-SHELL']")
    .message("healthCheck.command must start with CMD or CMD-SHELL").field_path(".command"))]
#[x_kube(validation = Rule::new("self.timeoutSeconds < self.intervalSeconds")
    .message("timeoutSeconds must be shorter than intervalSeconds").field_path(".timeoutSeconds"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerHealthCheck {
    /// The command, `["CMD", "/api-service", "healthcheck"]` or `["CMD-SHELL", "..."]`.
    #[schemars(length(min = 2, max = 32))]
    pub command: Vec<String>,
    /// Seconds between checks.
    #[serde(default = "default_hc_interval")]
    #[schemars(range(min = 5, max = 300))]
    pub interval_seconds: i32,
    /// Seconds before a check counts as failed.
    #[serde(default = "default_hc_timeout")]
    #[schemars(range(min = 2, max = 120))]
    pub timeout_seconds: i32,
    /// Failures before the container is unhealthy.
    #[serde(default = "default_hc_retries")]
    #[schemars(range(min = 1, max = 10))]
    pub retries: i32,
    /// Grace period after start before failures count.
    #[serde(default)]
    #[schemars(range(min = 0, max = 300))]
    pub start_period_seconds: i32,
}

fn default_hc_interval() -> i32 {
    30
}
fn default_hc_timeout() -> i32 {
    5
}
fn default_hc_retries() -> i32 {
    3
}

/// CPU architecture.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Architecture {
    /// 64-bit x86.
    #[default]
    #[serde(rename = "X86_64")]
    X86_64,
    /// 64-bit ARM (Graviton).
    #[serde(rename = "ARM64")]
    Arm64,
}

/// The ECS service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new(
    "!has(self.autoscaling) || (self.replicas >= self.autoscaling.minReplicas && self.replicas <= self.autoscaling.maxReplicas)"
).message("replicas is the starting count and must lie within autoscaling.minReplicas..maxReplicas").field_path(".replicas"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// Desired number of tasks (the starting count when autoscaling is set).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// Subnets the tasks run in (IDs, `subnet-...`).
    #[schemars(length(min = 1, max = 16))]
    #[schemars(inner(regex(pattern = r"^subnet-[0-9a-f]{8,17}$")))]
    pub subnets: Vec<String>,

    /// Security groups of the tasks (IDs, `sg-...`).
    #[serde(default)]
    #[schemars(length(max = 5))]
    #[schemars(inner(regex(pattern = r"^sg-[0-9a-f]{8,17}$")))]
    pub security_groups: Vec<String>,

    /// Give each task a public IP (needed in public subnets without a NAT gateway).
    #[serde(default)]
    pub assign_public_ip: bool,

    /// How updates roll out and when they count as failed.
    #[serde(default)]
    pub rollout: RolloutSpec,

    /// Target-tracking autoscaling of the task count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,

    /// Cloud Map registration of the tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_discovery: Option<ServiceDiscoverySpec>,
}

fn default_replicas() -> i32 {
    1
}

/// Rolling-update settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.maxPercent > self.minHealthyPercent")
    .message("maxPercent must exceed minHealthyPercent, or a rolling update can never start a new task")
    .field_path(".maxPercent"))]
#[x_kube(validation = Rule::new("!has(self.analysis) || (has(self.strategy) && self.strategy.type != 'rolling')")
    .message("analysis judges the new revision while ECS shifts traffic to it: use strategy blueGreen, canary or linear")
    .field_path(".analysis"))]
#[x_kube(validation = Rule::new("!has(self.strategy) || self.strategy.type == 'rolling' || has(self.infrastructureRoleArn)")
    .message("blueGreen, canary and linear need infrastructureRoleArn: the role ECS assumes to move the load balancer's traffic")
    .field_path(".infrastructureRoleArn"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutSpec {
    /// Upper bound of running tasks during a deployment, in percent of replicas.
    #[serde(default = "default_max_percent")]
    #[schemars(range(min = 100, max = 400))]
    pub max_percent: i32,
    /// Lower bound of healthy tasks during a deployment, in percent of replicas.
    #[serde(default = "default_min_healthy_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub min_healthy_percent: i32,
    /// ECS deployment circuit breaker.
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerSpec,
    /// A rollout not finished after this many seconds is failed (`ProgressDeadlineExceeded`). The bake
    /// times of a blueGreen, canary or linear strategy are added to it.
    #[serde(default = "default_progress_deadline")]
    #[schemars(range(min = 60, max = 86400))]
    pub progress_deadline_seconds: i32,
    /// Seconds ECS ignores load-balancer health checks after a task starts.
    #[serde(default)]
    #[schemars(range(min = 0, max = 7200))]
    pub health_check_grace_period_seconds: i32,
    /// How a new revision takes over from the old one: `rolling` (the default) replaces tasks behind
    /// the one target group; `blueGreen`, `canary` and `linear` are ECS's own traffic-shifting
    /// deployments, where the new revision starts in full beside the old one in a second target group
    /// that ecsop owns, and ECS moves the listener rule's weights from the old group to the new one.
    #[serde(default, skip_serializing_if = "StrategySpec::is_rolling")]
    pub strategy: StrategySpec,
    /// IAM role ECS assumes to move the listener rule's weights during a blueGreen, canary or linear
    /// rollout (ECS's "infrastructure role"; it needs the managed policy
    /// AmazonECSInfrastructureRolePolicyForLoadBalancers or the same permissions, and a trust policy for
    /// ecs.amazonaws.com). Required by those strategies, unused by rolling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"))]
    pub infrastructure_role_arn: Option<String>,
    /// Checks ecsop runs while ECS shifts traffic (blueGreen, canary, linear), comparing the new revision
    /// with the old on the same window; enough failed intervals of one check stop the rollout with
    /// rollback (`StopServiceDeployment`) and the ApiDeployment becomes Stalled with reason
    /// AnalysisFailed. Passing checks let ECS finish: ecsop never moves traffic itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
}

/// The analysis of a traffic-shifting rollout.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.intervalSeconds % 60 == 0")
    .message("intervalSeconds must be whole minutes: the load balancer's metrics are per minute")
    .field_path(".intervalSeconds"))]
#[x_kube(validation = Rule::new("self.checks.all(c, self.checks.exists_one(d, d.name == c.name))")
    .message("check names must be unique: status and events name the check that failed").field_path(".checks"))]
#[x_kube(validation = Rule::new("has(self.prometheus) || self.checks.all(c, !has(c.prometheus))")
    .message("a check with a prometheus query needs analysis.prometheus.address").field_path(".prometheus"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisSpec {
    /// Seconds between two judgements; each judges the window of this length that just ended.
    #[serde(default = "default_analysis_interval")]
    #[schemars(range(min = 60, max = 3600))]
    pub interval_seconds: i32,
    /// The Prometheus server PromQL checks query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    /// The checks; any one of them can stop the rollout.
    #[schemars(length(min = 1, max = 10))]
    pub checks: Vec<AnalysisCheckSpec>,
}

fn default_analysis_interval() -> i32 {
    60
}

/// Where PromQL checks are sent.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusSpec {
    /// The server's base URL (`http://prometheus.monitoring:9090`).
    #[schemars(regex(pattern = r"^https?://[^\s/]+(/.*)?$"))]
    pub address: String,
}

/// One check of an analysis.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.alb) != has(self.prometheus)")
    .message("set exactly one source: alb or prometheus"))]
#[x_kube(validation = Rule::new("has(self.max) || has(self.maxRatioToOld)")
    .message("set max, maxRatioToOld or both: the bound the new revision must stay within"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisCheckSpec {
    /// The check's name, as status and events show it.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"))]
    pub name: String,
    /// A metric of the load balancer per target group, from CloudWatch: `errorRatio` (share of requests
    /// the targets answered 5xx; 0.05 is 5%) or `latencyP99` (99th percentile of TargetResponseTime, in
    /// seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbMetric>,
    /// PromQL queries, `$revision` standing for the task-definition revision number measured and
    /// `$window` for the window (`intervalSeconds`, as `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PromQuerySpec>,
    /// Fail when the new revision's value is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max: Option<f64>,
    /// Fail when the new revision's value is above this many times the old revision's. With `max` too,
    /// both must be exceeded: a problem both revisions share is not the release's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0))]
    pub max_ratio_to_old: Option<f64>,
    /// Requests the new revision must have served in a window before the check may judge it.
    #[serde(default = "default_min_requests")]
    #[schemars(range(min = 1, max = 1000000000))]
    pub min_requests: i64,
    /// Failed windows of this check (over the whole rollout) that stop it.
    #[serde(default = "default_failed_intervals")]
    #[schemars(range(min = 1, max = 100))]
    pub failed_intervals: i32,
}

fn default_min_requests() -> i64 {
    100
}
fn default_failed_intervals() -> i32 {
    2
}

/// A load-balancer metric of a check.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum AlbMetric {
    /// `HTTPCode_Target_5XX_Count` over `RequestCount`.
    ErrorRatio,
    /// `TargetResponseTime` p99, seconds.
    LatencyP99,
}

/// The PromQL of a check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromQuerySpec {
    /// The value judged, e.g. the 5xx ratio of one revision.
    #[schemars(length(min = 1, max = 2000))]
    pub query: String,
    /// The requests one revision served in the window (the minimum sample).
    #[schemars(length(min = 1, max = 2000))]
    pub requests_query: String,
}

/// The deployment strategy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("(self.type == 'canary') == has(self.canary)")
    .message("canary settings go with type canary, and type canary needs them").field_path(".canary"))]
#[x_kube(validation = Rule::new("(self.type == 'linear') == has(self.linear)")
    .message("linear settings go with type linear, and type linear needs them").field_path(".linear"))]
#[x_kube(validation = Rule::new("self.type != 'rolling' || !has(self.testTraffic)")
    .message("testTraffic applies to blueGreen, canary and linear: a rolling update has one target group")
    .field_path(".testTraffic"))]
#[x_kube(validation = Rule::new("self.type != 'rolling' || !has(self.bakeTimeMinutes)")
    .message("bakeTimeMinutes applies to blueGreen, canary and linear; a rolling update has no bake time")
    .field_path(".bakeTimeMinutes"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StrategySpec {
    /// `rolling`, `blueGreen` (all traffic at once), `canary` (a share first, the rest after a bake) or
    /// `linear` (equal steps with a bake after each).
    #[serde(rename = "type")]
    pub kind: StrategyType,
    /// Minutes the old revision keeps running, ready to take all traffic back, after the new one has
    /// all of it (ECS's bakeTimeInMinutes; 0 ends the rollout at once). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1440))]
    pub bake_time_minutes: Option<i32>,
    /// The canary step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySpec>,
    /// The linear steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<LinearSpec>,
    /// A listener rule that sends requests carrying a header to the new revision before any production
    /// traffic moves (ECS's test listener rule): the same hosts and paths as `loadBalancer`, plus the
    /// header, at a priority evaluated before the production rule's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_traffic: Option<TestTrafficSpec>,
}

/// The test-traffic rule of a blueGreen, canary or linear rollout.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestTrafficSpec {
    /// Its priority on the listener; lower than `loadBalancer.priority`, so it is evaluated first.
    #[schemars(range(min = 1, max = 50000))]
    pub priority: i32,
    /// The header that marks test requests.
    pub header: TestHeaderSpec,
}

/// The header of test requests.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestHeaderSpec {
    /// Its name (`X-Canary`).
    #[schemars(regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$"))]
    pub name: String,
    /// The value it must have (ALB wildcards `*` and `?` allowed).
    #[schemars(length(min = 1, max = 128))]
    pub value: String,
}

impl StrategySpec {
    /// Whether this is the rolling update (the default).
    pub fn is_rolling(&self) -> bool {
        self.kind == StrategyType::Rolling
    }

    /// The seconds a rollout spends baking by design (each canary or linear step's bake and the final
    /// bake): added to `progressDeadlineSeconds`, so a long bake is never mistaken for a stuck rollout.
    pub fn bake_seconds(&self) -> i64 {
        let minutes = i64::from(self.bake_time_minutes.unwrap_or(0))
            + self.canary.as_ref().map_or(0, |c| i64::from(c.bake_time_minutes))
            + self.linear.as_ref().map_or(0, |l| {
                let steps = (100 + i64::from(l.step_percent) - 1) / i64::from(l.step_percent.max(1));
                steps * i64::from(l.step_bake_time_minutes)
            });
        minutes * 60
    }
}

/// The kinds of deployment strategy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum StrategyType {
    /// ECS's rolling update behind one target group.
    #[default]
    Rolling,
    /// All production traffic moves to the new revision at once.
    BlueGreen,
    /// A share of the traffic first, then the rest.
    Canary,
    /// The traffic moves in equal steps.
    Linear,
}

/// A canary step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanarySpec {
    /// Percent of production traffic the new revision gets first.
    #[schemars(range(min = 1, max = 99))]
    pub percent: i32,
    /// Minutes at that share before the rest moves.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1440))]
    pub bake_time_minutes: i32,
}

/// Linear steps.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinearSpec {
    /// Percent of production traffic each step moves (ECS takes 3 to 100).
    #[schemars(range(min = 3, max = 99))]
    pub step_percent: i32,
    /// Minutes after each step before the next.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1440))]
    pub step_bake_time_minutes: i32,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        RolloutSpec {
            max_percent: default_max_percent(),
            min_healthy_percent: default_min_healthy_percent(),
            circuit_breaker: CircuitBreakerSpec::default(),
            progress_deadline_seconds: default_progress_deadline(),
            health_check_grace_period_seconds: 0,
            strategy: StrategySpec::default(),
            infrastructure_role_arn: None,
            analysis: None,
        }
    }
}

fn default_max_percent() -> i32 {
    200
}
fn default_min_healthy_percent() -> i32 {
    100
}
fn default_progress_deadline() -> i32 {
    600
}

/// The ECS deployment circuit breaker.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.enabled || !self.rollback")
    .message("rollback needs the circuit breaker enabled").field_path(".rollback"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreakerSpec {
    /// Stop a deployment whose tasks keep failing.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Roll back to the last completed deployment when the breaker trips (reported as `RolledBack`,
    /// never as success).
    #[serde(default = "default_true")]
    pub rollback: bool,
}

impl Default for CircuitBreakerSpec {
    fn default() -> Self {
        CircuitBreakerSpec { enabled: true, rollback: true }
    }
}

/// Target-tracking autoscaling.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("minReplicas must not exceed maxReplicas").field_path(".minReplicas"))]
#[x_kube(validation = Rule::new("has(self.targetCpuPercent) || has(self.targetMemoryPercent) || has(self.targetRequestsPerTarget)")
    .message("set at least one target: targetCpuPercent, targetMemoryPercent or targetRequestsPerTarget"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoscalingSpec {
    /// Fewest tasks.
    #[schemars(range(min = 0, max = 1000))]
    pub min_replicas: i32,
    /// Most tasks.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Keep average CPU near this percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_percent: Option<i32>,
    /// Keep average memory near this percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub target_memory_percent: Option<i32>,
    /// Keep ALB requests per task near this count (needs loadBalancer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub target_requests_per_target: Option<i32>,
}

/// Cloud Map registration.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceDiscoverySpec {
    /// The Cloud Map namespace ID (`ns-...`).
    #[schemars(regex(pattern = r"^ns-[a-z0-9]{16,32}$"))]
    pub namespace_id: String,
    /// DNS record type of the registrations.
    #[serde(default)]
    pub dns_record_type: DnsRecordType,
    /// TTL of the DNS records.
    #[serde(default = "default_dns_ttl")]
    #[schemars(range(min = 0, max = 86400))]
    pub ttl_seconds: i32,
}

fn default_dns_ttl() -> i32 {
    10
}

/// Cloud Map DNS record type.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DnsRecordType {
    /// IPv4 address records.
    A,
    /// Service records with port (for API Gateway VPC links).
    #[default]
    #[serde(rename = "SRV")]
    Srv,
}

/// Routing from an existing ALB listener.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("size(self.hosts) + size(self.paths) >= 1")
    .message("set at least one of loadBalancer.hosts or loadBalancer.paths").field_path(".hosts"))]
#[x_kube(validation = Rule::new("size(self.hosts) + size(self.paths) <= 5")
    .message("an ALB rule takes at most 5 host and path values in total").field_path(".paths"))]
#[x_kube(validation = Rule::new(
    "size((self.hosts + self.paths).join('')) - size((self.hosts + self.paths).join('').replace('*', '').replace('?', '')) <= 5"
).message("an ALB rule takes at most 5 wildcards (* and ?) across its hosts and paths").field_path(".paths"))]
#[x_kube(validation = Rule::new("!has(self.httpsRedirect) || self.httpsRedirect.listenerArn != self.listenerArn")
    .message("httpsRedirect.listenerArn must be the HTTP listener, not the HTTPS listener of listenerArn")
    .field_path(".httpsRedirect.listenerArn"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSpec {
    /// ARN of the existing ALB listener the rule is added to.
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener/app/[A-Za-z0-9-]+/[0-9a-f]+/[0-9a-f]+$"
    ))]
    pub listener_arn: String,
    /// The VPC of the listener's load balancer (`vpc-...`).
    #[schemars(regex(pattern = r"^vpc-[0-9a-f]{8,17}$"))]
    pub vpc_id: String,
    /// Listener rule priority, unique on the listener.
    #[schemars(range(min = 1, max = 50000))]
    pub priority: i32,
    /// Host headers the rule matches (`books.example.com`, `*.example.com`): at most 3, as an ALB
    /// condition takes.
    #[serde(default)]
    #[schemars(length(max = 3))]
    #[schemars(inner(regex(pattern = r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")))]
    pub hosts: Vec<String>,
    /// Path patterns the rule matches (`/books*`): at most 3, as an ALB condition takes.
    #[serde(default)]
    #[schemars(length(max = 3))]
    #[schemars(inner(regex(pattern = r"^/[A-Za-z0-9_./~$@:+*?&=-]{0,127}$")))]
    pub paths: Vec<String>,
    /// Target-group health check.
    #[serde(default)]
    pub health_check: TargetHealthCheck,
    /// Seconds a deregistering task keeps draining connections.
    #[serde(default = "default_deregistration_delay")]
    #[schemars(range(min = 0, max = 3600))]
    pub deregistration_delay_seconds: i32,
    /// With `listenerArn` an HTTPS listener: also own a rule on this plain-HTTP listener that redirects
    /// the same hosts and paths to HTTPS (301), at the same priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<HttpsRedirectSpec>,
}

/// The HTTP-to-HTTPS redirect rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpsRedirectSpec {
    /// ARN of the existing plain-HTTP listener (usually port 80) of the same load balancer.
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener/app/[A-Za-z0-9-]+/[0-9a-f]+/[0-9a-f]+$"
    ))]
    pub listener_arn: String,
    /// The HTTPS port requests are redirected to.
    #[serde(default = "default_https_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

fn default_https_port() -> i32 {
    443
}

/// API Gateway HTTP API wiring.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.routes.all(r, self.routes.exists_one(s, s.key == r.key))")
    .message("route keys must be unique").field_path(".routes"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiGatewaySpec {
    /// The id of the existing HTTP API.
    #[schemars(regex(pattern = r"^[a-z0-9]{1,32}$"))]
    pub api_id: String,
    /// The id of the existing VPC link (in the service's VPC) the integration goes through.
    #[schemars(regex(pattern = r"^[a-z0-9]{1,32}$"))]
    pub vpc_link_id: String,
    /// The existing stage the routes go live on. Unless the stage deploys automatically, ecsop creates a
    /// deployment to it after changing routes, the integration or the authorizer, and reports Ready only
    /// once that deployment exists.
    #[serde(default = "default_stage")]
    #[schemars(regex(pattern = r"^(\$default|[A-Za-z0-9_-]{1,128})$"))]
    pub stage: String,
    /// The routes sent to this service.
    #[schemars(length(min = 1, max = 50))]
    pub routes: Vec<ApiRouteSpec>,
    /// A JWT authorizer checking every route that is not `public`; it accepts the api-service's
    /// tokens when they are signed with `JWT_SIGNING_KEY` and `issuer` serves its OpenID discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<JwtAuthorizerSpec>,
}

fn default_stage() -> String {
    "$default".into()
}

/// One API Gateway route.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiRouteSpec {
    /// The route key: a method and a path (`GET /api/v1/movies`, `ANY /api/v1/movies/{proxy+}`).
    #[schemars(regex(pattern = r"^(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /[A-Za-z0-9_./~{}+-]{0,255}$"))]
    pub key: String,
    /// Serve the route without the authorizer (login, registration, OpenID discovery).
    #[serde(default)]
    pub public: bool,
}

/// An API Gateway JWT authorizer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtAuthorizerSpec {
    /// The token issuer (`iss`): an HTTPS URL serving `/.well-known/openid-configuration`.
    #[schemars(regex(pattern = r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$"))]
    pub issuer: String,
    /// Accepted audiences (`aud`).
    #[schemars(length(min = 1, max = 10))]
    #[schemars(inner(length(min = 1, max = 256)))]
    pub audience: Vec<String>,
    /// Where the token is read from.
    #[serde(default = "default_identity_source")]
    #[schemars(regex(pattern = r"^\$request\.header\.[A-Za-z0-9-]+$"))]
    pub identity_source: String,
}

fn default_identity_source() -> String {
    "$request.header.Authorization".into()
}

/// CloudWatch alarms on the service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.cpuHighPercent) || has(self.memoryHighPercent) || (has(self.noRunningTasks) && self.noRunningTasks)")
    .message("set at least one alarm: cpuHighPercent, memoryHighPercent or noRunningTasks"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmsSpec {
    /// SNS topics notified when an alarm fires and when it clears.
    #[serde(default)]
    #[schemars(length(max = 5))]
    #[schemars(inner(regex(pattern = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$")))]
    pub sns_topic_arns: Vec<String>,
    /// Alarm when the service's average CPU stays above this percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub cpu_high_percent: Option<i32>,
    /// Alarm when the service's average memory stays above this percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub memory_high_percent: Option<i32>,
    /// Alarm when the service runs no task (Container Insights' RunningTaskCount; needs Container
    /// Insights on the cluster, and stays INSUFFICIENT_DATA without it).
    #[serde(default)]
    pub no_running_tasks: bool,
    /// Consecutive one-minute periods that must breach before an alarm fires.
    #[serde(default = "default_evaluation_periods")]
    #[schemars(range(min = 1, max = 60))]
    pub evaluation_periods: i32,
    /// Give the alarms to ECS as deployment alarms: one firing during a rollout rolls it back
    /// (reported as `RolledBack`).
    #[serde(default = "default_true")]
    pub rollback_on_alarm: bool,
}

fn default_evaluation_periods() -> i32 {
    3
}

fn default_deregistration_delay() -> i32 {
    30
}

/// The target group's health check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.timeoutSeconds < self.intervalSeconds")
    .message("timeoutSeconds must be shorter than intervalSeconds").field_path(".timeoutSeconds"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetHealthCheck {
    /// HTTP path probed.
    #[serde(default = "default_health_path")]
    #[schemars(regex(pattern = r"^/[A-Za-z0-9_./~$@:+*?&=%-]{0,1023}$"))]
    pub path: String,
    /// Seconds between probes.
    #[serde(default = "default_tg_interval")]
    #[schemars(range(min = 5, max = 300))]
    pub interval_seconds: i32,
    /// Seconds before a probe counts as failed.
    #[serde(default = "default_tg_timeout")]
    #[schemars(range(min = 2, max = 120))]
    pub timeout_seconds: i32,
    /// Successes before a target is healthy.
    #[serde(default = "default_healthy_threshold")]
    #[schemars(range(min = 2, max = 10))]
    pub healthy_threshold: i32,
    /// Failures before a target is unhealthy.
    #[serde(default = "default_unhealthy_threshold")]
    #[schemars(range(min = 2, max = 10))]
    pub unhealthy_threshold: i32,
    /// HTTP codes counted as healthy (`200`, `200-399`, `200,204`).
    #[serde(default = "default_matcher")]
    #[schemars(regex(pattern = r"^[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*$"))]
    pub matcher: String,
}

impl Default for TargetHealthCheck {
    fn default() -> Self {
        TargetHealthCheck {
            path: default_health_path(),
            interval_seconds: default_tg_interval(),
            timeout_seconds: default_tg_timeout(),
            healthy_threshold: default_healthy_threshold(),
            unhealthy_threshold: default_unhealthy_threshold(),
            matcher: default_matcher(),
        }
    }
}

fn default_health_path() -> String {
    "/healthz".into()
}
fn default_tg_interval() -> i32 {
    15
}
fn default_tg_timeout() -> i32 {
    5
}
fn default_healthy_threshold() -> i32 {
    2
}
fn default_unhealthy_threshold() -> i32 {
    3
}
fn default_matcher() -> String {
    "200-399".into()
}

/// What deletion does to AWS.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Delete everything ecsop owns, in order.
    #[default]
    Delete,
    /// Leave everything running; remove ecsop's ownership tags.
    Retain,
}
