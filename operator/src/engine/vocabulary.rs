//! The words every part of the engine speaks: the writes ([`Action`]), what a write changes
//! ([`Change`]), references to what a plan creates ([`Ref`], [`Created`]), and the verdict on an
//! ApiDeployment ([`Phase`], [`Assessment`]). This module imports none of the modules that use it;
//! how an action reads to humans is in [`super::describe`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::model::{DiscoveryState, RepositoryState};
use super::rollout::Rollout;
use crate::api::TagMutability;
use crate::aws::{
    AuthorizerConfig, HeaderMatch, IntegrationConfig, MetricAlarm, RuleAction, ScalableTarget, ScalingPolicy,
    ServiceConfig, ServiceUpdate, Tags, TargetGroupConfig, TargetGroupHealth, TaskDefinition,
};

/// A resource created earlier in the same plan, whose ARN the actor knows only once it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Created {
    /// The task-definition revision registered by this plan.
    TaskDefinition,
    /// The target group created by this plan.
    TargetGroup,
    /// The second target group created by this plan.
    AlternateTargetGroup,
    /// The listener rule created by this plan.
    Rule,
    /// The test-traffic listener rule created by this plan.
    TestRule,
    /// The Cloud Map service created by this plan.
    Discovery,
    /// The ECS service created by this plan.
    Service,
    /// The API Gateway integration created by this plan (its id).
    Integration,
    /// The API Gateway authorizer created by this plan (its id).
    Authorizer,
    /// The HTTPS redirect rule created by this plan.
    RedirectRule,
}

/// An ARN: known, or of a resource this plan creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Ref {
    /// Known.
    Arn(String),
    /// Created earlier in this plan.
    Created(Created),
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Arn(a) => f.write_str(a),
            Ref::Created(c) => write!(f, "(new {c:?})"),
        }
    }
}

/// One field that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The field (`desiredCount`, `healthCheck.path`).
    pub field: String,
    /// The value now (`-` when absent).
    pub from: String,
    /// The value after.
    pub to: String,
}

impl Change {
    /// `field` changes `from` `to`.
    pub fn new(field: &str, from: impl fmt::Display, to: impl fmt::Display) -> Change {
        Change { field: field.to_string(), from: from.to_string(), to: to.to_string() }
    }
}

/// One AWS write.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Create the owned ECR repository, with its lifecycle policy: one creation, one change.
    CreateRepository {
        /// Settings, the lifecycle policy included.
        repository: RepositoryState,
        /// Tags.
        tags: Tags,
    },
    /// Change scan-on-push.
    SetScanOnPush {
        /// Repository.
        name: String,
        /// New value.
        scan_on_push: bool,
        /// Old value.
        was: bool,
    },
    /// Change tag mutability.
    SetTagMutability {
        /// Repository.
        name: String,
        /// New value.
        #[serde(skip)]
        tag_mutability: TagMutability,
    },
    /// Set the lifecycle policy.
    PutLifecyclePolicy {
        /// Repository.
        name: String,
        /// Policy text.
        policy: String,
    },
    /// Register a task-definition revision.
    RegisterTaskDefinition {
        /// The definition.
        definition: Box<TaskDefinition>,
        /// Tags (ownership and content hash).
        tags: Tags,
    },
    /// Create the target group.
    CreateTargetGroup {
        /// Config.
        #[serde(skip)]
        config: TargetGroupConfig,
        /// Attributes to set right after.
        attributes: BTreeMap<String, String>,
        /// Which of the two target groups it is.
        #[serde(skip)]
        created: Created,
    },
    /// Change the target group's health check.
    ModifyTargetGroup {
        /// Target group.
        arn: String,
        /// New health check.
        #[serde(skip)]
        health: TargetGroupHealth,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Set target-group attributes.
    SetTargetGroupAttributes {
        /// Target group.
        arn: String,
        /// Attributes.
        attributes: BTreeMap<String, String>,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Create the listener rule.
    CreateRule {
        /// Listener.
        listener_arn: String,
        /// Priority.
        priority: i32,
        /// Hosts.
        hosts: Vec<String>,
        /// Paths.
        paths: Vec<String>,
        /// Target group.
        target_group: Ref,
        /// The second target group, forwarded to with weight 0 (blueGreen, canary, linear).
        #[serde(skip_serializing_if = "Option::is_none")]
        alternate: Option<Ref>,
        /// The http-header condition of a test-traffic rule.
        #[serde(skip)]
        header: Option<HeaderMatch>,
        /// Tags.
        tags: Tags,
    },
    /// Create the HTTP-to-HTTPS redirect rule on the plain-HTTP listener.
    CreateRedirectRule {
        /// The HTTP listener.
        listener_arn: String,
        /// Priority.
        priority: i32,
        /// Hosts.
        hosts: Vec<String>,
        /// Paths.
        paths: Vec<String>,
        /// The HTTPS port.
        port: String,
        /// Tags.
        tags: Tags,
    },
    /// Change a rule's conditions or action.
    ModifyRule {
        /// Rule.
        arn: String,
        /// Hosts.
        hosts: Vec<String>,
        /// Paths.
        paths: Vec<String>,
        /// What the rule does.
        #[serde(skip)]
        action: RuleAction,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Change the rule's priority.
    SetRulePriority {
        /// Rule.
        arn: String,
        /// New priority.
        priority: i32,
        /// Old priority.
        was: Option<i32>,
    },
    /// Create the Cloud Map service.
    CreateDiscoveryService {
        /// Settings.
        #[serde(skip)]
        discovery: DiscoveryState,
        /// Tags.
        tags: Tags,
    },
    /// Change the Cloud Map TTL.
    UpdateDiscoveryTtl {
        /// Service id.
        id: String,
        /// Settings.
        #[serde(skip)]
        discovery: DiscoveryState,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Create the ECS service.
    CreateService {
        /// Config (task definition, bindings filled from the refs).
        #[serde(skip)]
        config: Box<ServiceConfig>,
        /// Task definition.
        task_definition: Ref,
        /// Target group.
        target_group: Option<Ref>,
        /// Cloud Map service.
        registry: Option<Ref>,
    },
    /// Update the ECS service.
    UpdateService {
        /// Fields to change (task definition from `task_definition`).
        #[serde(skip)]
        update: ServiceUpdate,
        /// New task definition.
        task_definition: Option<Ref>,
        /// New target-group binding.
        target_group: Option<Ref>,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Start the ECR scan of an image never scanned (the scan gate waits for it).
    StartImageScan {
        /// Registry (account) of the repository, `None` for the caller's.
        registry_id: Option<String>,
        /// Repository.
        repository: String,
        /// Image.
        digest: String,
    },
    /// After a completed rollout: point the promotion tag at the deployed digest in ECR, and record it
    /// on the ECS service.
    PromoteImage {
        /// Registry (account) of the repository, `None` for the caller's.
        registry_id: Option<String>,
        /// Repository.
        repository: String,
        /// The deployed image.
        digest: String,
        /// The promotion tag.
        tag: String,
        /// The ECS service, to record the promotion on.
        service: String,
        /// The digest the tag was on (`-` when new).
        was: String,
    },
    /// Create or replace a CloudWatch alarm.
    PutAlarm {
        /// The alarm.
        #[serde(skip)]
        alarm: MetricAlarm,
        /// Its name.
        name: String,
        /// Tags.
        tags: Tags,
        /// Whether it exists already.
        exists: bool,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Delete CloudWatch alarms.
    DeleteAlarms {
        /// Alarm names.
        names: Vec<String>,
    },
    /// Create the API Gateway integration to the Cloud Map service.
    CreateIntegration {
        /// HTTP API.
        api_id: String,
        /// Settings (the service ARN from `service`).
        #[serde(skip)]
        config: IntegrationConfig,
        /// The Cloud Map service.
        service: Ref,
    },
    /// Change the API Gateway integration.
    UpdateIntegration {
        /// HTTP API.
        api_id: String,
        /// Integration id.
        id: String,
        /// Settings (the service ARN from `service`).
        #[serde(skip)]
        config: IntegrationConfig,
        /// The Cloud Map service.
        service: Ref,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Create the JWT authorizer.
    CreateAuthorizer {
        /// HTTP API.
        api_id: String,
        /// Settings.
        #[serde(skip)]
        config: AuthorizerConfig,
    },
    /// Change the JWT authorizer.
    UpdateAuthorizer {
        /// HTTP API.
        api_id: String,
        /// Authorizer id.
        id: String,
        /// Settings.
        #[serde(skip)]
        config: AuthorizerConfig,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Create a route to the integration.
    CreateRoute {
        /// HTTP API.
        api_id: String,
        /// Route key.
        key: String,
        /// The integration.
        integration: Ref,
        /// The authorizer, unless the route is public.
        authorizer: Option<Ref>,
    },
    /// Change a route's target or authorization.
    UpdateRoute {
        /// HTTP API.
        api_id: String,
        /// Route id.
        id: String,
        /// Route key.
        key: String,
        /// The integration.
        integration: Ref,
        /// The authorizer, unless the route is public.
        authorizer: Option<Ref>,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Deploy the HTTP API as it now is to a stage that does not deploy by itself.
    DeployApi {
        /// HTTP API.
        api_id: String,
        /// The stage.
        stage: String,
        /// The deployment's description.
        description: String,
    },
    /// Delete a route.
    DeleteRoute {
        /// HTTP API.
        api_id: String,
        /// Route id.
        id: String,
        /// Route key.
        key: String,
    },
    /// Delete the JWT authorizer.
    DeleteAuthorizer {
        /// HTTP API.
        api_id: String,
        /// Authorizer id.
        id: String,
    },
    /// Delete the integration.
    DeleteIntegration {
        /// HTTP API.
        api_id: String,
        /// Integration id.
        id: String,
    },
    /// Register the scalable target.
    RegisterScalableTarget {
        /// Target.
        #[serde(skip)]
        target: ScalableTarget,
        /// What changes.
        changes: Vec<Change>,
    },
    /// Create or replace a target-tracking policy.
    PutScalingPolicy {
        /// `service/<cluster>/<name>`.
        resource_id: String,
        /// Policy (a requests-per-target label is completed from `target_group`).
        #[serde(skip)]
        policy: ScalingPolicy,
        /// Target group, for requests-per-target policies.
        target_group: Option<Ref>,
        /// The listener (its load balancer is part of the metric's label).
        listener_arn: Option<String>,
    },
    /// Delete a scaling policy ecsop no longer wants.
    DeleteScalingPolicy {
        /// Resource.
        resource_id: String,
        /// Policy.
        name: String,
    },
    /// Deregister the scalable target.
    DeregisterScalableTarget {
        /// Resource.
        resource_id: String,
    },
    /// Deregister an old revision of ours.
    DeregisterTaskDefinition {
        /// Revision.
        arn: String,
    },
    /// Record on the ECS service what was applied (the last write of a plan).
    TagService {
        /// Service.
        service: Ref,
        /// Tags, the revision and redirect-rule tags excepted.
        tags: Tags,
        /// The revision to record.
        revision: Ref,
        /// The redirect rule to record.
        redirect_rule: Option<Ref>,
    },
    /// Delete the listener rule.
    DeleteRule {
        /// Rule.
        arn: String,
    },
    /// Delete the service (forced: ECS scales it to zero and stops its tasks).
    DeleteService {
        /// Cluster.
        cluster: String,
        /// Service.
        name: String,
    },
    /// Wait until the deleted service is gone (its tasks stopped and deregistered).
    WaitServiceGone {
        /// Cluster.
        cluster: String,
        /// Service.
        name: String,
    },
    /// Delete the target group.
    DeleteTargetGroup {
        /// Target group.
        arn: String,
    },
    /// Delete the Cloud Map service.
    DeleteDiscoveryService {
        /// Service id.
        id: String,
    },
    /// Delete the owned repository and its images.
    DeleteRepository {
        /// Repository.
        name: String,
    },
    /// Remove ecsop's tags (deletionPolicy Retain).
    Untag {
        /// Which kind of resource.
        resource: Resource,
        /// Its ARN.
        arn: String,
        /// Tag keys.
        keys: Vec<String>,
    },
}

/// A kind of AWS resource ecsop owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Resource {
    /// ECR repository.
    Repository,
    /// Task-definition revision.
    TaskDefinition,
    /// ECS service.
    Service,
    /// Target group.
    TargetGroup,
    /// Listener rule.
    Rule,
    /// Cloud Map service.
    Discovery,
    /// CloudWatch alarm.
    Alarm,
}

/// Overall health of an ApiDeployment, as the conditions report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// Changes are being applied or rolled out (`Ready=Unknown`, `Reconciling=True`).
    Progressing,
    /// The desired revision is rolled out (`Ready=True`).
    Ready,
    /// Progress stopped on something a human must fix (`Ready=False`, `Stalled=True`).
    Stalled,
}

/// What the plan concludes about the ApiDeployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The phase.
    pub phase: Phase,
    /// CamelCase reason (`RolloutComplete`, `RolledBack`, `ImageNotFound`, ...).
    pub reason: String,
    /// A sentence for humans.
    pub message: String,
    /// The rollout of the desired revision, when assessed.
    pub rollout: Option<Rollout>,
}
