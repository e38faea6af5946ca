//! The planner: `plan(target, observed, now) -> Plan`. Pure: no IO, no clock it is not given.
//!
//! A plan is the ordered list of AWS writes that moves what was observed to what the spec wants, and
//! the status that results. Writes that need an ARN created earlier in the same plan refer to it with
//! [`Ref::Created`]; the actor fills it in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::desired::{
    Desired, DiscoveryState, RepositoryState, ServiceState, Target, TargetGroupState, is_owned, lb_binding, owned_tags,
    registry_binding, service_tags,
};
use super::names::{self, Names, TAG_SPEC_HASH};
use super::observe::{ImageState, Observed};
use super::rollout::{self, Rollout, RolloutState};
use super::taskdef::TaskDefinition;
use crate::api::TagMutability;
use crate::aws::{
    AuthorizerConfig, Binding, DeploymentAlarms, ImageScan, IntegrationConfig, MetricAlarm, Redirect, Rule, RuleAction,
    ScalableTarget, ScalingMetric, ScalingPolicy, Service, ServiceConfig, ServiceUpdate, Tags, TargetGroupConfig,
    TargetGroupHealth,
};

/// A resource created earlier in the same plan, whose ARN the actor knows only once it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Created {
    /// The task-definition revision registered by this plan.
    TaskDefinition,
    /// The target group created by this plan.
    TargetGroup,
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
    fn new(field: &str, from: impl fmt::Display, to: impl fmt::Display) -> Change {
        Change { field: field.to_string(), from: from.to_string(), to: to.to_string() }
    }
}

/// One AWS write.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Create the owned ECR repository.
    CreateRepository {
        /// Settings.
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
        config: ServiceConfig,
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

impl Action {
    /// The AWS resource the action writes, for humans (`ecs service books-api`).
    pub fn subject(&self) -> String {
        match self {
            Action::CreateRepository { repository, .. } => format!("ecr repository {}", repository.name),
            Action::SetScanOnPush { name, .. }
            | Action::SetTagMutability { name, .. }
            | Action::PutLifecyclePolicy { name, .. }
            | Action::DeleteRepository { name } => format!("ecr repository {name}"),
            Action::RegisterTaskDefinition { definition, .. } => format!("task definition {}", definition.family),
            Action::DeregisterTaskDefinition { arn } => format!("task definition {}", rollout::short_revision(arn)),
            Action::CreateTargetGroup { config, .. } => format!("target group {}", config.name),
            Action::ModifyTargetGroup { arn, .. }
            | Action::SetTargetGroupAttributes { arn, .. }
            | Action::DeleteTargetGroup { arn } => format!("target group {}", tg_name(arn)),
            Action::CreateRule { priority, .. } => format!("listener rule (priority {priority})"),
            Action::CreateRedirectRule { priority, .. } => format!("https redirect rule (priority {priority})"),
            Action::StartImageScan { repository, digest, .. } => {
                format!("ecr image scan {repository}@{}", short_digest(digest))
            }
            Action::PromoteImage { repository, tag, .. } => format!("ecr tag {repository}:{tag}"),
            Action::PutAlarm { name, .. } => format!("cloudwatch alarm {name}"),
            Action::DeleteAlarms { names } => format!("cloudwatch alarms {}", names.join(",")),
            Action::CreateIntegration { api_id, .. } => format!("api gateway {api_id} integration"),
            Action::UpdateIntegration { api_id, id, .. } | Action::DeleteIntegration { api_id, id } => {
                format!("api gateway {api_id} integration {id}")
            }
            Action::CreateAuthorizer { api_id, config } => format!("api gateway {api_id} authorizer {}", config.name),
            Action::UpdateAuthorizer { api_id, id, .. } | Action::DeleteAuthorizer { api_id, id } => {
                format!("api gateway {api_id} authorizer {id}")
            }
            Action::CreateRoute { api_id, key, .. }
            | Action::UpdateRoute { api_id, key, .. }
            | Action::DeleteRoute { api_id, key, .. } => format!("api gateway {api_id} route {key}"),
            Action::ModifyRule { arn, .. } | Action::SetRulePriority { arn, .. } | Action::DeleteRule { arn } => {
                format!("listener rule {}", arn.rsplit('/').next().unwrap_or(arn))
            }
            Action::CreateDiscoveryService { discovery, .. } => format!("cloud map service {}", discovery.name),
            Action::UpdateDiscoveryTtl { discovery, .. } => format!("cloud map service {}", discovery.name),
            Action::DeleteDiscoveryService { id } => format!("cloud map service {id}"),
            Action::CreateService { config, .. } => format!("ecs service {}", config.name),
            Action::UpdateService { update, .. } => format!("ecs service {}", update.name),
            Action::DeleteService { name, .. } | Action::WaitServiceGone { name, .. } => format!("ecs service {name}"),
            Action::TagService { .. } => "ecs service tags".to_string(),
            Action::RegisterScalableTarget { target, .. } => format!("scalable target {}", target.resource_id),
            Action::PutScalingPolicy { policy, .. } => format!("scaling policy {}", policy.name),
            Action::DeleteScalingPolicy { name, .. } => format!("scaling policy {name}"),
            Action::DeregisterScalableTarget { resource_id } => format!("scalable target {resource_id}"),
            Action::Untag { resource, arn, .. } => {
                format!("{resource:?} {}", arn.rsplit(['/', ':']).next().unwrap_or(arn))
            }
        }
    }

    /// `+` create, `~` change, `-` delete.
    pub fn verb(&self) -> char {
        match self {
            Action::CreateRepository { .. }
            | Action::RegisterTaskDefinition { .. }
            | Action::CreateTargetGroup { .. }
            | Action::CreateRule { .. }
            | Action::CreateDiscoveryService { .. }
            | Action::CreateRedirectRule { .. }
            | Action::CreateIntegration { .. }
            | Action::CreateAuthorizer { .. }
            | Action::CreateRoute { .. }
            | Action::PutAlarm { exists: false, .. }
            | Action::CreateService { .. } => '+',
            Action::DeleteRepository { .. }
            | Action::DeregisterTaskDefinition { .. }
            | Action::DeleteTargetGroup { .. }
            | Action::DeleteRule { .. }
            | Action::DeleteDiscoveryService { .. }
            | Action::DeleteService { .. }
            | Action::DeleteScalingPolicy { .. }
            | Action::DeleteAlarms { .. }
            | Action::DeleteRoute { .. }
            | Action::DeleteAuthorizer { .. }
            | Action::DeleteIntegration { .. }
            | Action::DeregisterScalableTarget { .. } => '-',
            _ => '~',
        }
    }

    /// The changes on one line (`field=new` for new fields, `field: old -> new` otherwise), for progress
    /// output and Events.
    pub fn change_summary(&self) -> String {
        self.changes()
            .iter()
            .map(|c| {
                if c.from == "-" {
                    format!("{}={}", c.field, c.to)
                } else {
                    format!("{}: {} -> {}", c.field, c.from, c.to)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The field-level changes, for `diff`.
    pub fn changes(&self) -> Vec<Change> {
        match self {
            Action::CreateRepository { repository, .. } => vec![
                Change::new("scanOnPush", "-", repository.scan_on_push),
                Change::new("tagMutability", "-", format!("{:?}", repository.tag_mutability).to_uppercase()),
            ],
            Action::SetScanOnPush { scan_on_push, was, .. } => vec![Change::new("scanOnPush", was, scan_on_push)],
            Action::SetTagMutability { tag_mutability, .. } => {
                vec![Change::new("tagMutability", "?", format!("{tag_mutability:?}").to_uppercase())]
            }
            Action::PutLifecyclePolicy { policy, .. } => vec![Change::new("lifecyclePolicy", "?", policy)],
            Action::RegisterTaskDefinition { definition, tags } => vec![
                Change::new("image", "-", &definition.container.image),
                Change::new("cpu/memory", "-", format!("{}/{}", definition.cpu, definition.memory)),
                Change::new(TAG_SPEC_HASH, "-", tags.get(TAG_SPEC_HASH).map(String::as_str).unwrap_or("")),
            ],
            Action::CreateTargetGroup { config, .. } => {
                vec![Change::new("port", "-", config.port), Change::new("healthCheck.path", "-", &config.health.path)]
            }
            Action::CreateRule { hosts, paths, target_group, .. } => vec![
                Change::new("hosts", "-", hosts.join(",")),
                Change::new("paths", "-", paths.join(",")),
                Change::new("forward", "-", target_group),
            ],
            Action::CreateRedirectRule { hosts, paths, port, .. } => vec![
                Change::new("hosts", "-", hosts.join(",")),
                Change::new("paths", "-", paths.join(",")),
                Change::new("redirect", "-", format!("HTTPS:{port} (301)")),
            ],
            Action::PromoteImage { digest, was, .. } => vec![Change::new("digest", was, short_digest(digest))],
            Action::CreateIntegration { config, service, .. } => {
                vec![Change::new("vpcLink", "-", &config.vpc_link_id), Change::new("cloudMapService", "-", service)]
            }
            Action::CreateAuthorizer { config, .. } => vec![
                Change::new("issuer", "-", &config.issuer),
                Change::new("audience", "-", config.audience.join(",")),
            ],
            Action::CreateRoute { integration, authorizer, .. } => vec![
                Change::new("target", "-", integration),
                Change::new("authorization", "-", if authorizer.is_some() { "JWT" } else { "NONE" }),
            ],
            Action::SetRulePriority { priority, was, .. } => {
                vec![Change::new("priority", was.map(|p| p.to_string()).unwrap_or("-".into()), priority)]
            }
            Action::CreateService { config, task_definition, .. } => vec![
                Change::new("taskDefinition", "-", task_definition),
                Change::new("desiredCount", "-", config.desired_count),
            ],
            Action::ModifyTargetGroup { changes, .. }
            | Action::SetTargetGroupAttributes { changes, .. }
            | Action::ModifyRule { changes, .. }
            | Action::UpdateDiscoveryTtl { changes, .. }
            | Action::UpdateService { changes, .. }
            | Action::PutAlarm { changes, .. }
            | Action::UpdateIntegration { changes, .. }
            | Action::UpdateAuthorizer { changes, .. }
            | Action::UpdateRoute { changes, .. }
            | Action::RegisterScalableTarget { changes, .. } => changes.clone(),
            Action::PutScalingPolicy { policy, .. } => {
                vec![Change::new(metric_name(&policy.metric), "?", policy.target)]
            }
            _ => Vec::new(),
        }
    }
}

/// `sha256:` and the first 12 hex digits, as `docker images` shows digests.
pub fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

fn tg_name(arn: &str) -> &str {
    arn.split('/').nth(1).unwrap_or(arn)
}

fn metric_name(m: &ScalingMetric) -> &'static str {
    match m {
        ScalingMetric::Cpu => "targetCpuPercent",
        ScalingMetric::Memory => "targetMemoryPercent",
        ScalingMetric::RequestsPerTarget { .. } => "targetRequestsPerTarget",
    }
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

/// A plan: the writes, and the assessment of the observed state.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The desired state, when the image resolved.
    pub desired: Option<Desired>,
    /// The writes, in order.
    pub actions: Vec<Action>,
    /// The desired revision's ARN when it exists already.
    pub revision: Option<String>,
    /// The assessment.
    pub assessment: Assessment,
}

impl Plan {
    /// Whether the plan writes anything.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

fn stalled(reason: &str, message: String) -> Assessment {
    Assessment { phase: Phase::Stalled, reason: reason.to_string(), message, rollout: None }
}

/// Plan the writes that bring AWS to `target`'s spec from `observed`, at time `now`.
pub fn plan(target: &Target, observed: &Observed, now: DateTime<Utc>) -> Plan {
    let names = &target.names;
    let spec = &target.spec;
    let mut actions = Vec::new();

    // Ownership first: never write next to a resource with our name that someone else owns.
    if let Some(conflict) = conflict(target, observed) {
        return Plan { desired: None, actions, revision: None, assessment: stalled("ResourceConflict", conflict) };
    }

    // The repository comes before the image: owning it lets a pipeline push the first image.
    let owned_repo = RepositoryState::of(spec);
    if let Some(repo) = &owned_repo {
        plan_repository(names, repo, observed, &mut actions);
    }

    let image = match &observed.image {
        Some(ImageState::Pinned(p)) => p.clone(),
        Some(ImageState::NotFound(m)) => {
            // The observation predates this plan: say that the repository is being created, and what to push.
            let m = if actions.iter().any(|a| matches!(a, Action::CreateRepository { .. })) {
                format!("{m} yet: apply creates it; push {} to it", super::desired::image_source_ref(spec))
            } else {
                m.clone()
            };
            return Plan { desired: None, actions, revision: None, assessment: stalled("ImageNotFound", m) };
        }
        Some(ImageState::Unresolvable(m)) => {
            return Plan { desired: None, actions, revision: None, assessment: stalled("InvalidSpec", m.clone()) };
        }
        None => {
            return Plan {
                desired: None,
                actions,
                revision: None,
                assessment: stalled("ImageNotFound", "the image was not resolved".into()),
            };
        }
    };
    // The scan gate: an image the service does not run yet must have a finished scan under the bar.
    if let (Some(gate), Some(scan)) = (&spec.image.scan_gate, &observed.scan) {
        let short = short_digest(&image.digest).to_string();
        let waiting = |m: String| Assessment {
            phase: Phase::Progressing,
            reason: "ImageScanInProgress".into(),
            message: m,
            rollout: None,
        };
        match scan {
            ImageScan::NotScanned => {
                if let super::desired::ImageSource::Ecr { registry_id, repository } =
                    super::desired::ImageSource::parse(&spec.image.repository)
                {
                    actions.push(Action::StartImageScan { registry_id, repository, digest: image.digest.clone() });
                }
                let assessment =
                    waiting(format!("image {short} was never scanned: started its ECR scan, the rollout waits for it"));
                return Plan { desired: None, actions, revision: None, assessment };
            }
            ImageScan::InProgress => {
                let assessment = waiting(format!("waiting for the ECR scan of image {short} before rolling it out"));
                return Plan { desired: None, actions, revision: None, assessment };
            }
            ImageScan::Failed(reason) => {
                let message = format!(
                    "the ECR scan of image {short} did not complete ({reason}); the service keeps its current image"
                );
                return Plan {
                    desired: None,
                    actions,
                    revision: None,
                    assessment: stalled("ImageScanFailed", message),
                };
            }
            ImageScan::Complete(counts) => {
                let bar = gate.fail_on_severity;
                let blocking: Vec<(crate::api::Severity, i32)> = counts
                    .iter()
                    .filter_map(|(name, n)| crate::api::Severity::parse(name).map(|s| (s, *n)))
                    .filter(|(s, n)| *s <= bar && *n > 0)
                    .collect();
                let total: i32 = blocking.iter().map(|(_, n)| n).sum();
                if total > 0 {
                    let detail =
                        blocking.iter().map(|(s, n)| format!("{} {n}", s.as_str())).collect::<Vec<_>>().join(", ");
                    let message = format!(
                        "image {short} has {total} finding{} at {} or above ({detail}); the rollout is refused and the service keeps its current image",
                        if total == 1 { "" } else { "s" },
                        bar.as_str()
                    );
                    return Plan {
                        desired: None,
                        actions,
                        revision: None,
                        assessment: stalled("ImageRejected", message),
                    };
                }
            }
        }
    }

    let desired = Desired::new(target, &image);

    // Task definition: reuse the revision with our content hash, else register one.
    let (td_ref, revision) = match &observed.matching_revision {
        Some(td) => (Ref::Arn(td.arn.clone()), Some(td.arn.clone())),
        None => {
            let tags = owned_tags(names, &[(TAG_SPEC_HASH, &desired.task_definition_hash)]);
            actions
                .push(Action::RegisterTaskDefinition { definition: Box::new(desired.task_definition.clone()), tags });
            (Ref::Created(Created::TaskDefinition), None)
        }
    };

    // Our rule on a listener the spec left goes first: a target group serves one load balancer only,
    // so the rule on a new listener (possibly of another load balancer) can only follow it.
    let owns_tg = observed.target_group_tags.as_ref().is_some_and(|t| is_owned(t, names));
    if owns_tg {
        for rule in &observed.stale_rules {
            actions.push(Action::DeleteRule { arn: rule.arn.clone() });
        }
    }

    // Target group and rule.
    let tg_ref = desired.target_group.as_ref().map(|tg| plan_target_group(names, tg, observed, &mut actions));
    if let (Some(rule), Some(tg_ref)) = (&desired.rule, &tg_ref) {
        plan_rule(names, rule, tg_ref, observed, &mut actions);
    }
    let recorded_redirect = observed.service.as_ref().and_then(|s| s.tags.get(service_tags::REDIRECT_RULE)).cloned();
    let redirect_ref = desired.redirect.as_ref().map(|r| plan_redirect(names, r, observed, &mut actions));
    if let Some(old) = &recorded_redirect
        && !matches!(&redirect_ref, Some(Ref::Arn(a)) if a == old)
    {
        // The spec dropped the redirect or moved it to another listener.
        actions.push(Action::DeleteRule { arn: old.clone() });
    }
    // What the service records about pieces the spec dropped goes with them, or every later run
    // would look for them again.
    let mut forget = Vec::new();
    if recorded_redirect.is_some() && redirect_ref.is_none() {
        forget.push(service_tags::REDIRECT_RULE.to_string());
    }
    if desired.gateway.is_none() && observed.service.as_ref().is_some_and(|s| s.tags.contains_key(service_tags::API)) {
        forget.push(service_tags::API.to_string());
    }
    // A Cloud Map service the spec left (dropped, or moved to another namespace): the service update
    // below stops registering in it; once that rollout has finished, no task is registered any more
    // and it can go. Until then it is kept, and so is the record of its namespace.
    let mut stale_namespace_kept = false;
    if observed.stale_discovery_namespace.is_some() {
        let stale = observed
            .stale_discovery
            .as_ref()
            .filter(|_| observed.stale_discovery_tags.as_ref().is_some_and(|t| is_owned(t, names)));
        match stale {
            Some(d) if observed.service.as_ref().is_some_and(drained_of_registries) => {
                actions.push(Action::DeleteDiscoveryService { id: d.id.clone() });
                forget.push(service_tags::DISCOVERY_NAMESPACE.to_string());
            }
            Some(_) => stale_namespace_kept = true,
            None => forget.push(service_tags::DISCOVERY_NAMESPACE.to_string()),
        }
    }

    // Alarms before the service, which names them as deployment alarms.
    super::alarms::plan(names, &desired.alarms, observed.alarms.as_ref(), &mut actions);

    // Cloud Map.
    let registry_ref = desired.discovery.as_ref().map(|d| plan_discovery(names, d, observed, &mut actions));

    // The service, unless the desired revision already failed (a rollback is not retried on resync).
    let rollout = rollout::assess(
        observed.service.as_ref(),
        revision.as_deref(),
        i64::from(spec.service.rollout.progress_deadline_seconds),
        now,
    );
    let rolled_back = rollout.state == RolloutState::RolledBack;
    let service_ref = plan_service(
        &desired.service,
        observed.service.as_ref(),
        &td_ref,
        tg_ref.as_ref(),
        registry_ref.as_ref(),
        desired.discovery.as_ref(),
        rolled_back,
        names,
        &mut actions,
    );

    // API Gateway: the integration to the Cloud Map service, the authorizer, the routes. An HTTP API
    // the spec left loses our pieces.
    if let (Some(g), Some(registry)) = (&desired.gateway, &registry_ref) {
        super::gateway::plan(names, g, observed.gateway.as_ref(), registry, &mut actions);
    }
    if let Some(stale) = &observed.stale_gateway {
        super::gateway::teardown(names, stale, &mut actions);
    }
    if let (false, Some(s)) = (forget.is_empty(), &observed.service) {
        actions.push(Action::Untag { resource: Resource::Service, arn: s.arn.clone(), keys: forget });
    }

    // The load balancer was dropped from the spec: the service is unbound above; the owned target
    // group goes after it.
    if desired.target_group.is_none()
        && owns_tg
        && let Some(tg) = &observed.target_group
    {
        actions.push(Action::DeleteTargetGroup { arn: tg.arn.clone() });
    }

    // Autoscaling.
    if let Some(scaling) = &desired.scaling {
        let resource_id = scaling.resource_id.clone();
        let wanted =
            ScalableTarget { resource_id: resource_id.clone(), min_capacity: scaling.min, max_capacity: scaling.max };
        let known = observed.deep || observed.scalable_target.is_some();
        if known && observed.scalable_target.as_ref() != Some(&wanted) {
            let changes = match &observed.scalable_target {
                Some(t) => vec![
                    Change::new("minReplicas", t.min_capacity, wanted.min_capacity),
                    Change::new("maxReplicas", t.max_capacity, wanted.max_capacity),
                ],
                None => vec![Change::new("min/max", "-", format!("{}/{}", wanted.min_capacity, wanted.max_capacity))],
            };
            actions.push(Action::RegisterScalableTarget { target: wanted, changes });
        }
        if known {
            let existing = observed.scaling_policies.clone().unwrap_or_default();
            for policy in &scaling.policies {
                let current = existing.iter().find(|p| p.name == policy.name);
                let same = current.is_some_and(|c| {
                    c.target == policy.target
                        && match (&c.metric, &policy.metric) {
                            (ScalingMetric::RequestsPerTarget { .. }, ScalingMetric::RequestsPerTarget { .. }) => {
                                // The label follows the target group, which keeps its ARN while it lives.
                                matches!(tg_ref, Some(Ref::Arn(_)))
                            }
                            (a, b) => a == b,
                        }
                });
                if !same {
                    let needs_tg = matches!(policy.metric, ScalingMetric::RequestsPerTarget { .. });
                    actions.push(Action::PutScalingPolicy {
                        resource_id: resource_id.clone(),
                        policy: policy.clone(),
                        target_group: if needs_tg { tg_ref.clone() } else { None },
                        listener_arn: if needs_tg {
                            desired.rule.as_ref().map(|r| r.listener_arn.clone())
                        } else {
                            None
                        },
                    });
                }
            }
            let prefix = super::desired::policy_name(names, "");
            for p in &existing {
                if p.name.starts_with(&prefix) && !scaling.policies.iter().any(|w| w.name == p.name) {
                    actions
                        .push(Action::DeleteScalingPolicy { resource_id: resource_id.clone(), name: p.name.clone() });
                }
            }
        }
    } else if let Some(t) = &observed.scalable_target {
        // Autoscaling was removed from the spec: give the count back to ecsop.
        actions.push(Action::DeregisterScalableTarget { resource_id: t.resource_id.clone() });
    }

    // Prune our old revisions beyond the history limit; never one a deployment still uses.
    if let Some(revisions) = &observed.revisions {
        let mut in_use: BTreeSet<&str> = BTreeSet::new();
        if let Some(s) = &observed.service {
            in_use.insert(s.task_definition.as_str());
            in_use.extend(s.deployments.iter().map(|d| d.task_definition.as_str()));
        }
        if let Some(r) = &revision {
            in_use.insert(r.as_str());
        }
        // The limit counts every revision kept: the ones in use first, then the newest others.
        let keep = desired.revision_history_limit.saturating_sub(usize::from(revision.is_none()));
        let active: Vec<_> = revisions.iter().filter(|td| td.status == "ACTIVE").collect();
        let in_use_count = active.iter().filter(|td| in_use.contains(td.arn.as_str())).count();
        let mut slots = keep.saturating_sub(in_use_count);
        for td in active {
            if in_use.contains(td.arn.as_str()) {
                continue;
            }
            if slots > 0 {
                slots -= 1;
            } else {
                actions.push(Action::DeregisterTaskDefinition { arn: td.arn.clone() });
            }
        }
    }

    // Record what was applied: the last write, so a crash before it makes the next run look again.
    let mut tags = Tags::new();
    tags.insert(service_tags::APPLIED_HASH.into(), desired.hash());
    tags.insert(service_tags::IMAGE.into(), image.reference());
    tags.insert(service_tags::IMAGE_SOURCE.into(), super::desired::image_source_ref(spec));
    if let Some(rule) = &desired.rule {
        tags.insert(service_tags::LISTENER.into(), rule.listener_arn.clone());
    }
    if let Some(g) = &desired.gateway {
        tags.insert(service_tags::API.into(), g.api_id.clone());
    }
    if let Some(d) = &desired.discovery
        && !stale_namespace_kept
    {
        tags.insert(service_tags::DISCOVERY_NAMESPACE.into(), d.namespace_id.clone());
    }
    if observed.promoted.as_ref().is_some_and(|p| p.as_deref() == Some(image.digest.as_str())) {
        tags.insert(service_tags::PROMOTED.into(), image.digest.clone());
    }
    if rollout.state == RolloutState::RolledBack
        && let Some(r) = &revision
    {
        tags.insert(service_tags::FAILED_REVISION.into(), r.clone());
    }
    let current_tags = observed.service.as_ref().map(|s| &s.tags);
    let tags_differ = current_tags.is_none_or(|current| {
        tags.iter().any(|(k, v)| current.get(k) != Some(v))
            || revision.as_ref().is_none_or(|r| current.get(service_tags::REVISION) != Some(r))
            || match &redirect_ref {
                Some(Ref::Arn(a)) => current.get(service_tags::REDIRECT_RULE) != Some(a),
                Some(Ref::Created(_)) => true,
                None => false,
            }
    });
    if !actions.is_empty() || tags_differ {
        actions.push(Action::TagService {
            service: service_ref.clone(),
            tags,
            revision: td_ref.clone(),
            redirect_rule: redirect_ref.clone(),
        });
    }

    let assessment = assess(target, observed, &actions, rollout, now);

    // Promotion: once the rollout of this image completed, the promotion tag follows it. Bookkeeping,
    // not part of the rollout: it does not hold Ready back.
    if let (Some(tag), Some(promoted), Phase::Ready, Ref::Arn(service)) =
        (&spec.image.promotion_tag, &observed.promoted, assessment.phase, &service_ref)
        && promoted.as_deref() != Some(image.digest.as_str())
        && let super::desired::ImageSource::Ecr { registry_id, repository } =
            super::desired::ImageSource::parse(&spec.image.repository)
    {
        actions.push(Action::PromoteImage {
            registry_id,
            repository,
            digest: image.digest.clone(),
            tag: tag.clone(),
            service: service.clone(),
            was: promoted.as_deref().map(short_digest).unwrap_or("-").to_string(),
        });
    }
    Plan { desired: Some(desired), actions, revision, assessment }
}

/// Which of our names is held by something we do not own.
fn conflict(target: &Target, observed: &Observed) -> Option<String> {
    let names = &target.names;
    let owner = names.owner();
    let adopt = format!(
        "; ecsop never takes over what it did not create (tag it {}={} and {}={} to hand it over)",
        names::TAG_MANAGED_BY,
        names::MANAGED_BY_VALUE,
        names::TAG_OWNER,
        owner
    );
    if let Some(s) = &observed.service
        && !is_owned(&s.tags, names)
    {
        return Some(format!(
            "ECS service {} in cluster {} exists and is not owned by {owner}{adopt}",
            s.name, target.spec.cluster
        ));
    }
    if let (Some(repo), Some(tags)) = (&observed.repository, &observed.repository_tags)
        && target.spec.ecr.as_ref().is_some_and(|e| e.create)
        && !is_owned(tags, names)
    {
        return Some(format!("ECR repository {} exists and is not owned by {owner}{adopt}", repo.name));
    }
    if let (Some(tg), Some(tags)) = (&observed.target_group, &observed.target_group_tags)
        && target.spec.load_balancer.is_some()
        && !is_owned(tags, names)
    {
        return Some(format!("target group {} exists and is not owned by {owner}{adopt}", tg.name));
    }
    if let (Some(d), Some(tags)) = (&observed.discovery, &observed.discovery_tags)
        && !is_owned(tags, names)
    {
        return Some(format!("Cloud Map service {} exists and is not owned by {owner}{adopt}", d.name));
    }
    if let Some(c) = super::alarms::conflict(names, &super::alarms::desired(target), observed.alarms.as_ref()) {
        return Some(format!("{c}{adopt}"));
    }
    if let Some(g) = &Desired::gateway_of(target)
        && let Some(c) = super::gateway::conflict(names, g, observed.gateway.as_ref())
    {
        return Some(c);
    }
    if let (Some(lb), Some(rules), Some(tags)) =
        (&target.spec.load_balancer, &observed.redirect_listener_rules, &observed.redirect_rule_tags)
        && let Some(r) = &lb.https_redirect
        && let Some(other) = rules.iter().find(|rule| rule.priority == Some(lb.priority))
        && !is_owned(tags, names)
    {
        return Some(format!(
            "priority {} on listener {} is taken by rule {}; choose a free loadBalancer.priority",
            lb.priority, r.listener_arn, other.arn
        ));
    }
    if let (Some(lb), Some(rules)) = (&target.spec.load_balancer, &observed.listener_rules) {
        let ours = observed.rule().map(|r| r.arn.as_str());
        if let Some(other) = rules.iter().find(|r| r.priority == Some(lb.priority) && Some(r.arn.as_str()) != ours) {
            return Some(format!(
                "priority {} on listener {} is taken by rule {}; choose a free loadBalancer.priority",
                lb.priority, lb.listener_arn, other.arn
            ));
        }
    }
    None
}

fn plan_repository(names: &Names, repo: &RepositoryState, observed: &Observed, actions: &mut Vec<Action>) {
    match &observed.repository {
        None if observed.deep => {
            actions.push(Action::CreateRepository { repository: repo.clone(), tags: owned_tags(names, &[]) });
            if let Some(policy) = &repo.lifecycle_policy {
                actions.push(Action::PutLifecyclePolicy { name: repo.name.clone(), policy: policy.clone() });
            }
        }
        None => {}
        Some(current) => {
            if current.scan_on_push != repo.scan_on_push {
                actions.push(Action::SetScanOnPush {
                    name: repo.name.clone(),
                    scan_on_push: repo.scan_on_push,
                    was: current.scan_on_push,
                });
            }
            if current.tag_mutability != repo.tag_mutability {
                actions.push(Action::SetTagMutability { name: repo.name.clone(), tag_mutability: repo.tag_mutability });
            }
            if let (Some(policy), Some(current_policy)) = (&repo.lifecycle_policy, &observed.lifecycle_policy)
                && !same_json(current_policy.as_deref(), policy)
            {
                actions.push(Action::PutLifecyclePolicy { name: repo.name.clone(), policy: policy.clone() });
            }
        }
    }
}

fn same_json(a: Option<&str>, b: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    a.and_then(parse).is_some_and(|a| Some(a) == parse(b))
}

fn plan_target_group(names: &Names, tg: &TargetGroupState, observed: &Observed, actions: &mut Vec<Action>) -> Ref {
    let Some(current) = &observed.target_group else {
        actions.push(Action::CreateTargetGroup {
            config: TargetGroupConfig {
                name: tg.name.clone(),
                vpc_id: tg.vpc_id.clone(),
                port: tg.port,
                health: tg.health.clone(),
                tags: owned_tags(names, &[]),
            },
            attributes: tg.attributes.clone(),
        });
        return Ref::Created(Created::TargetGroup);
    };
    let (a, b) = (&current.health, &tg.health);
    let mut changes = Vec::new();
    let mut diff = |field: &str, x: String, y: String| {
        if x != y {
            changes.push(Change::new(field, x, y));
        }
    };
    diff("healthCheck.path", a.path.clone(), b.path.clone());
    diff("healthCheck.intervalSeconds", a.interval_seconds.to_string(), b.interval_seconds.to_string());
    diff("healthCheck.timeoutSeconds", a.timeout_seconds.to_string(), b.timeout_seconds.to_string());
    diff("healthCheck.healthyThreshold", a.healthy_threshold.to_string(), b.healthy_threshold.to_string());
    diff("healthCheck.unhealthyThreshold", a.unhealthy_threshold.to_string(), b.unhealthy_threshold.to_string());
    diff("healthCheck.matcher", a.matcher.clone(), b.matcher.clone());
    if !changes.is_empty() {
        actions.push(Action::ModifyTargetGroup { arn: current.arn.clone(), health: tg.health.clone(), changes });
    }
    if let Some(attrs) = &observed.target_group_attributes {
        let changes: Vec<Change> = tg
            .attributes
            .iter()
            .filter(|(k, v)| attrs.get(*k) != Some(v))
            .map(|(k, v)| Change::new(k, attrs.get(k).map(String::as_str).unwrap_or("-"), v))
            .collect();
        if !changes.is_empty() {
            actions.push(Action::SetTargetGroupAttributes {
                arn: current.arn.clone(),
                attributes: tg.attributes.clone(),
                changes,
            });
        }
    }
    Ref::Arn(current.arn.clone())
}

fn plan_rule(
    names: &Names,
    rule: &super::desired::RuleState,
    tg_ref: &Ref,
    observed: &Observed,
    actions: &mut Vec<Action>,
) {
    match observed.rule() {
        None => actions.push(Action::CreateRule {
            listener_arn: rule.listener_arn.clone(),
            priority: rule.priority,
            hosts: rule.hosts.clone(),
            paths: rule.paths.clone(),
            target_group: tg_ref.clone(),
            tags: owned_tags(names, &[]),
        }),
        Some(current) => {
            // A target group created by this plan has no ARN yet: the rule is changed next time.
            let (action, action_change) = match tg_ref {
                Ref::Arn(tg) => (
                    Some(RuleAction::Forward(tg.clone())),
                    (current.target_groups != [tg.clone()])
                        .then(|| Change::new("forward", current.target_groups.join(","), tg)),
                ),
                Ref::Created(_) => (None, None),
            };
            update_rule(current, &rule.hosts, &rule.paths, rule.priority, action, action_change, actions);
        }
    }
}

/// Bring an existing rule (forward or redirect) to `hosts`, `paths` and `priority`, and to `action`
/// when it is known; `action_change` says how the action differs, if it does.
fn update_rule(
    current: &Rule,
    hosts: &[String],
    paths: &[String],
    priority: i32,
    action: Option<RuleAction>,
    action_change: Option<Change>,
    actions: &mut Vec<Action>,
) {
    let (mut current_hosts, mut current_paths) = (current.hosts.clone(), current.paths.clone());
    current_hosts.sort();
    current_paths.sort();
    let mut changes = Vec::new();
    if current_hosts != hosts {
        changes.push(Change::new("hosts", current_hosts.join(","), hosts.join(",")));
    }
    if current_paths != paths {
        changes.push(Change::new("paths", current_paths.join(","), paths.join(",")));
    }
    changes.extend(action_change);
    if let (false, Some(action)) = (changes.is_empty(), action) {
        actions.push(Action::ModifyRule {
            arn: current.arn.clone(),
            hosts: hosts.to_vec(),
            paths: paths.to_vec(),
            action,
            changes,
        });
    }
    if current.priority != Some(priority) {
        actions.push(Action::SetRulePriority { arn: current.arn.clone(), priority, was: current.priority });
    }
}

/// Our redirect rule: the one the service records, or (deep) the owned one at our priority.
pub fn redirect_rule<'a>(names: &Names, priority: i32, observed: &'a Observed) -> Option<&'a Rule> {
    let rules = observed.redirect_listener_rules.as_ref()?;
    let recorded = observed.service.as_ref().and_then(|s| s.tags.get(service_tags::REDIRECT_RULE));
    rules.iter().find(|r| Some(&r.arn) == recorded).or_else(|| {
        observed
            .redirect_rule_tags
            .as_ref()
            .filter(|t| is_owned(t, names))
            .and_then(|_| rules.iter().find(|r| r.priority == Some(priority)))
    })
}

fn plan_redirect(
    names: &Names,
    wanted: &super::desired::RedirectState,
    observed: &Observed,
    actions: &mut Vec<Action>,
) -> Ref {
    let redirect = Redirect::https(&wanted.port);
    let Some(current) = redirect_rule(names, wanted.priority, observed) else {
        actions.push(Action::CreateRedirectRule {
            listener_arn: wanted.listener_arn.clone(),
            priority: wanted.priority,
            hosts: wanted.hosts.clone(),
            paths: wanted.paths.clone(),
            port: wanted.port.clone(),
            tags: owned_tags(names, &[]),
        });
        return Ref::Created(Created::RedirectRule);
    };
    let action_change = (current.redirect.as_ref() != Some(&redirect)).then(|| {
        let was = current.redirect.as_ref().map(|r| format!("{}:{} ({})", r.protocol, r.port, r.status_code));
        Change::new("redirect", was.unwrap_or("-".into()), format!("HTTPS:{} (HTTP_301)", wanted.port))
    });
    let action = Some(RuleAction::Redirect(redirect));
    update_rule(current, &wanted.hosts, &wanted.paths, wanted.priority, action, action_change, actions);
    Ref::Arn(current.arn.clone())
}

/// The service registers in no Cloud Map service and runs one finished deployment: the tasks of the
/// deployments that did register are gone, and ECS deregistered their instances with them.
fn drained_of_registries(service: &crate::aws::Service) -> bool {
    service.registries.is_empty()
        && matches!(service.deployments.as_slice(), [only] if only.rollout_state.as_deref() == Some("COMPLETED"))
}

fn plan_discovery(names: &Names, d: &DiscoveryState, observed: &Observed, actions: &mut Vec<Action>) -> Ref {
    // In the fast path Cloud Map is not read; the service's registry binding names it.
    if !observed.deep
        && let Some(binding) = observed.service.as_ref().and_then(|s| s.registries.first())
    {
        return Ref::Arn(binding.arn.clone());
    }
    match &observed.discovery {
        None => {
            actions.push(Action::CreateDiscoveryService { discovery: d.clone(), tags: owned_tags(names, &[]) });
            Ref::Created(Created::Discovery)
        }
        Some(current) => {
            if current.ttl_seconds != d.ttl_seconds {
                actions.push(Action::UpdateDiscoveryTtl {
                    id: current.id.clone(),
                    discovery: d.clone(),
                    changes: vec![Change::new("serviceDiscovery.ttlSeconds", current.ttl_seconds, d.ttl_seconds)],
                });
            }
            Ref::Arn(current.arn.clone())
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_service(
    wanted: &ServiceState,
    current: Option<&Service>,
    td_ref: &Ref,
    tg_ref: Option<&Ref>,
    registry_ref: Option<&Ref>,
    discovery: Option<&DiscoveryState>,
    rolled_back: bool,
    names: &Names,
    actions: &mut Vec<Action>,
) -> Ref {
    let lb = tg_ref.map(|r| lb_binding(wanted, &r.to_string()));
    let registry = match (registry_ref, discovery) {
        (Some(r), Some(d)) => Some(registry_binding(wanted, d, &r.to_string())),
        _ => None,
    };
    let Some(current) = current else {
        actions.push(Action::CreateService {
            config: ServiceConfig {
                cluster: wanted.cluster.clone(),
                name: wanted.name.clone(),
                task_definition: td_ref.to_string(),
                desired_count: wanted.replicas,
                network: wanted.network.clone(),
                deployment: wanted.deployment,
                alarms: wanted.alarms.clone(),
                health_check_grace_period_seconds: wanted.health_check_grace_period_seconds,
                load_balancer: lb,
                registry,
                tags: owned_tags(names, &[]),
            },
            task_definition: td_ref.clone(),
            target_group: tg_ref.cloned(),
            registry: registry_ref.cloned(),
        });
        return Ref::Created(Created::Service);
    };
    let mut update = ServiceUpdate { cluster: wanted.cluster.clone(), name: wanted.name.clone(), ..Default::default() };
    let mut changes = Vec::new();
    let mut td_change = None;
    let td_differs = match td_ref {
        Ref::Arn(arn) => &current.task_definition != arn,
        Ref::Created(_) => true,
    };
    if td_differs && !rolled_back {
        changes.push(Change::new(
            "taskDefinition",
            rollout::short_revision(&current.task_definition),
            match td_ref {
                Ref::Arn(a) => rollout::short_revision(a),
                Ref::Created(_) => "(new revision)".into(),
            },
        ));
        td_change = Some(td_ref.clone());
    }
    if wanted.enforce_replicas && current.desired_count != wanted.replicas {
        changes.push(Change::new("desiredCount", current.desired_count, wanted.replicas));
        update.desired_count = Some(wanted.replicas);
    }
    if current.network != wanted.network {
        changes.push(Change::new("network", format!("{:?}", current.network), format!("{:?}", wanted.network)));
        update.network = Some(wanted.network.clone());
    }
    if let Some(d) = current.deployment
        && d != wanted.deployment
    {
        changes.push(Change::new("deploymentConfiguration", format!("{d:?}"), format!("{:?}", wanted.deployment)));
        update.deployment = Some(wanted.deployment);
    }
    // A disabled, empty alarm list is the same as none.
    let effective = |a: Option<&DeploymentAlarms>| a.filter(|a| a.enable || !a.names.is_empty()).cloned();
    let (current_alarms, wanted_alarms) = (effective(current.alarms.as_ref()), effective(wanted.alarms.as_ref()));
    if current_alarms != wanted_alarms {
        let show = |a: &Option<DeploymentAlarms>| a.as_ref().map(|a| a.names.join(",")).unwrap_or("-".into());
        changes.push(Change::new("deploymentAlarms", show(&current_alarms), show(&wanted_alarms)));
    }
    if update.deployment.is_some() || current_alarms != wanted_alarms {
        // ECS replaces deploymentConfiguration as a whole: settings and alarms always go together.
        update.deployment = Some(wanted.deployment);
        update.alarms = Some(wanted_alarms.unwrap_or_default());
    }
    if wanted.health_check_grace_period_seconds.is_some()
        && current.health_check_grace_period_seconds.unwrap_or(0)
            != wanted.health_check_grace_period_seconds.unwrap_or(0)
    {
        changes.push(Change::new(
            "healthCheckGracePeriodSeconds",
            current.health_check_grace_period_seconds.unwrap_or(0),
            wanted.health_check_grace_period_seconds.unwrap_or(0),
        ));
        update.health_check_grace_period_seconds = wanted.health_check_grace_period_seconds;
    }
    let mut tg_change = None;
    let wanted_lbs: Vec<Binding> = lb.into_iter().collect();
    let lb_differs = match tg_ref {
        Some(Ref::Created(_)) => true,
        _ => current.load_balancers != wanted_lbs,
    };
    if lb_differs {
        changes.push(Change::new(
            "loadBalancers",
            current.load_balancers.iter().map(|b| tg_name(&b.arn).to_string()).collect::<Vec<_>>().join(","),
            wanted_lbs.iter().map(|b| tg_name(&b.arn).to_string()).collect::<Vec<_>>().join(","),
        ));
        update.load_balancers = Some(wanted_lbs);
        tg_change = tg_ref.cloned();
    }
    let wanted_registries: Vec<Binding> = registry.into_iter().collect();
    let registry_known = !matches!(registry_ref, Some(Ref::Created(_)));
    if !registry_known || current.registries != wanted_registries {
        changes.push(Change::new("serviceRegistries", current.registries.len(), wanted_registries.len()));
        update.registries = Some(wanted_registries);
    }
    if !changes.is_empty() {
        actions.push(Action::UpdateService { update, task_definition: td_change, target_group: tg_change, changes });
    }
    Ref::Arn(current.arn.clone())
}

/// The assessment: what the conditions say about the observed state and the planned writes.
fn assess(
    target: &Target,
    observed: &Observed,
    actions: &[Action],
    rollout: Rollout,
    _now: DateTime<Utc>,
) -> Assessment {
    let writes_service = actions.iter().any(|a| match a {
        Action::CreateService { .. } => true,
        Action::UpdateService { task_definition, .. } => task_definition.is_some(),
        _ => false,
    });
    if target.spec.suspend {
        return Assessment {
            phase: if rollout.state == RolloutState::Complete { Phase::Ready } else { Phase::Progressing },
            reason: "Suspended".into(),
            message: format!("suspended: ecsop observes and writes nothing; {}", rollout.message),
            rollout: Some(rollout),
        };
    }
    if writes_service {
        let creating = observed.service.is_none();
        return Assessment {
            phase: Phase::Progressing,
            reason: if creating { "Creating".into() } else { "RolloutStarted".into() },
            message: if creating {
                "creating the ECS service".into()
            } else {
                "updating the ECS service to the new revision".into()
            },
            rollout: Some(rollout),
        };
    }
    let (phase, reason) = match rollout.state {
        RolloutState::Complete if actions.is_empty() => (Phase::Ready, "RolloutComplete"),
        RolloutState::Complete => (Phase::Progressing, "Updating"),
        RolloutState::InProgress | RolloutState::Pending => (Phase::Progressing, "RolloutInProgress"),
        RolloutState::Failed => (Phase::Stalled, "RolloutFailed"),
        RolloutState::RolledBack => (Phase::Stalled, "RolledBack"),
        RolloutState::DeadlineExceeded => (Phase::Stalled, "ProgressDeadlineExceeded"),
    };
    Assessment { phase, reason: reason.into(), message: rollout.message.clone(), rollout: Some(rollout) }
}

/// Plan the ordered teardown of everything `target` owns (DESIGN.md section 3): the rule first (traffic
/// stops), then the service (scaled to zero, deleted, waited for), the target group, Cloud Map, our
/// revisions, and the repository if ecsop created it. With deletionPolicy Retain, ecsop's tags are
/// removed instead and everything keeps running.
pub fn teardown(target: &Target, observed: &Observed) -> Vec<Action> {
    let names = &target.names;
    let spec = &target.spec;
    let mut actions = Vec::new();
    let owned = |tags: Option<&Tags>| tags.is_some_and(|t| is_owned(t, names));
    let service = observed.service.as_ref().filter(|s| owned(Some(&s.tags)));
    let tg = observed.target_group.as_ref().filter(|_| owned(observed.target_group_tags.as_ref()));
    let rule = observed.rule().filter(|_| tg.is_some());
    let discovery = observed.discovery.as_ref().filter(|_| owned(observed.discovery_tags.as_ref()));
    let stale_discovery = observed.stale_discovery.as_ref().filter(|_| owned(observed.stale_discovery_tags.as_ref()));
    let repo = observed
        .repository
        .as_ref()
        .filter(|_| spec.ecr.as_ref().is_some_and(|e| e.create) && owned(observed.repository_tags.as_ref()));
    let revisions: Vec<&str> =
        observed.revisions.iter().flatten().filter(|td| td.status == "ACTIVE").map(|td| td.arn.as_str()).collect();
    // redirect_rule() finds only the rule the service records or one tagged as ours.
    let redirect = spec.load_balancer.as_ref().and_then(|lb| redirect_rule(names, lb.priority, observed));
    let alarms = super::alarms::owned(names, observed.alarms.as_ref());

    if spec.deletion_policy == crate::api::DeletionPolicy::Retain {
        let mut keys: Vec<String> = vec![names::TAG_MANAGED_BY.into(), names::TAG_OWNER.into()];
        if let Some(r) = rule {
            actions.push(Action::Untag { resource: Resource::Rule, arn: r.arn.clone(), keys: keys.clone() });
        }
        if let Some(t) = tg {
            actions.push(Action::Untag { resource: Resource::TargetGroup, arn: t.arn.clone(), keys: keys.clone() });
        }
        for d in [discovery, stale_discovery].into_iter().flatten() {
            actions.push(Action::Untag { resource: Resource::Discovery, arn: d.arn.clone(), keys: keys.clone() });
        }
        if let Some(r) = repo {
            actions.push(Action::Untag { resource: Resource::Repository, arn: r.arn.clone(), keys: keys.clone() });
        }
        if let Some(r) = redirect {
            actions.push(Action::Untag { resource: Resource::Rule, arn: r.arn.clone(), keys: keys.clone() });
        }
        for a in &alarms {
            actions.push(Action::Untag { resource: Resource::Alarm, arn: a.arn.clone(), keys: keys.clone() });
        }
        for arn in &revisions {
            actions.push(Action::Untag {
                resource: Resource::TaskDefinition,
                arn: (*arn).to_string(),
                keys: [keys.clone(), vec![TAG_SPEC_HASH.into()]].concat(),
            });
        }
        if let Some(s) = service {
            keys.extend(service_tags::ALL.map(String::from));
            actions.push(Action::Untag { resource: Resource::Service, arn: s.arn.clone(), keys });
        }
        return actions;
    }

    // Traffic stops first: the API Gateway routes (then the authorizer and integration they use), the
    // listener rule and its HTTPS redirect.
    for g in [&observed.gateway, &observed.stale_gateway].into_iter().flatten() {
        super::gateway::teardown(names, g, &mut actions);
    }
    if let Some(r) = rule {
        actions.push(Action::DeleteRule { arn: r.arn.clone() });
    }
    match (redirect, service.and_then(|s| s.tags.get(service_tags::REDIRECT_RULE))) {
        (Some(r), _) => actions.push(Action::DeleteRule { arn: r.arn.clone() }),
        (None, Some(recorded)) => actions.push(Action::DeleteRule { arn: recorded.clone() }),
        (None, None) => {}
    }
    // The alarms before the service they watch (and that names them as deployment alarms).
    if !alarms.is_empty() {
        actions.push(Action::DeleteAlarms { names: alarms.iter().map(|a| a.alarm.name.clone()).collect() });
    }
    if let Some(t) = &observed.scalable_target
        && service.is_some()
    {
        actions.push(Action::DeregisterScalableTarget { resource_id: t.resource_id.clone() });
    }
    if service.is_some() {
        actions.push(Action::DeleteService { cluster: spec.cluster.clone(), name: names.service().to_string() });
        actions.push(Action::WaitServiceGone { cluster: spec.cluster.clone(), name: names.service().to_string() });
    }
    if let Some(t) = tg {
        actions.push(Action::DeleteTargetGroup { arn: t.arn.clone() });
    }
    for d in [discovery, stale_discovery].into_iter().flatten() {
        actions.push(Action::DeleteDiscoveryService { id: d.id.clone() });
    }
    for arn in revisions {
        actions.push(Action::DeregisterTaskDefinition { arn: arn.to_string() });
    }
    if let Some(r) = repo {
        actions.push(Action::DeleteRepository { name: r.name.clone() });
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiDeployment;
    use crate::aws::{Deployment, Repository, TaskDefinitionInfo};
    use crate::engine::desired::PinnedImage;

    fn target() -> Target {
        let value: serde_json::Value = serde_yaml::from_str(include_str!("../../tests/valid.yaml")).expect("yaml");
        let spec = serde_json::from_value::<ApiDeployment>(value).expect("typed").spec;
        Target { names: Names::new("prod", "books-api"), generation: Some(1), spec, region: "us-east-1".into() }
    }

    fn image() -> PinnedImage {
        PinnedImage {
            uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/books-api".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
        }
    }

    fn empty_account() -> Observed {
        Observed {
            deep: true,
            image: Some(ImageState::Pinned(image())),
            revisions: Some(vec![]),
            listener_rules: Some(vec![]),
            ..Default::default()
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").expect("time").with_timezone(&Utc)
    }

    fn kinds(plan: &Plan) -> Vec<String> {
        plan.actions
            .iter()
            .map(|a| serde_json::to_value(a).expect("json")["action"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    fn service(target: &Target, td: &str, deployments: Vec<Deployment>) -> Service {
        Service {
            arn: "arn:aws:ecs:us-east-1:123456789012:service/api-cluster/books-api".into(),
            name: "books-api".into(),
            status: "ACTIVE".into(),
            task_definition: td.into(),
            desired_count: 2,
            running_count: 2,
            pending_count: 0,
            deployments,
            events: vec![],
            load_balancers: vec![],
            registries: vec![],
            network: Default::default(),
            deployment: None,
            alarms: None,
            health_check_grace_period_seconds: None,
            tags: owned_tags(&target.names, &[]),
        }
    }

    fn deployment(status: &str, td: &str, state: &str) -> Deployment {
        Deployment {
            id: format!("ecs-svc/{status}{state}"),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: Some(state.into()),
            rollout_state_reason: None,
            desired_count: 2,
            running_count: 2,
            pending_count: 0,
            failed_tasks: 0,
            created_at: Some(now()),
            updated_at: Some(now()),
        }
    }

    fn revision(target: &Target, n: i32, hash: &str) -> TaskDefinitionInfo {
        TaskDefinitionInfo {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/prod-books-api:{n}"),
            family: "prod-books-api".into(),
            revision: n,
            status: "ACTIVE".into(),
            tags: owned_tags(&target.names, &[(TAG_SPEC_HASH, hash)]),
        }
    }

    #[test]
    fn an_empty_account_gets_everything_in_dependency_order() {
        let t = target();
        let p = plan(&t, &empty_account(), now());
        assert_eq!(
            kinds(&p),
            [
                "createRepository",
                "putLifecyclePolicy",
                "registerTaskDefinition",
                "createTargetGroup",
                "createRule",
                "createDiscoveryService",
                "createService",
                "registerScalableTarget",
                "putScalingPolicy",
                "tagService"
            ]
        );
        assert_eq!(p.assessment.phase, Phase::Progressing);
        assert_eq!(p.assessment.reason, "Creating");
        // The service and rule point at what this plan creates.
        let create = p.actions.iter().find(|a| matches!(a, Action::CreateService { .. })).expect("create");
        let Action::CreateService { task_definition, target_group, registry, config } = create else { unreachable!() };
        assert_eq!(task_definition, &Ref::Created(Created::TaskDefinition));
        assert_eq!(target_group, &Some(Ref::Created(Created::TargetGroup)));
        assert_eq!(registry, &Some(Ref::Created(Created::Discovery)));
        assert!(is_owned(&config.tags, &t.names));
        // Tags: every created resource is owned.
        for a in &p.actions {
            if let Action::RegisterTaskDefinition { tags, .. } | Action::CreateRule { tags, .. } = a {
                assert!(is_owned(tags, &t.names), "{a:?}");
            }
        }
    }

    #[test]
    fn a_missing_image_creates_only_the_repository_and_stalls() {
        let t = target();
        let observed = Observed {
            deep: true,
            image: Some(ImageState::NotFound("image books-api:1.4.2 not found".into())),
            ..Default::default()
        };
        let p = plan(&t, &observed, now());
        assert_eq!(kinds(&p), ["createRepository", "putLifecyclePolicy"]);
        assert_eq!((p.assessment.phase, p.assessment.reason.as_str()), (Phase::Stalled, "ImageNotFound"));
        assert!(p.assessment.message.contains("books-api:1.4.2"));
    }

    #[test]
    fn a_service_owned_by_someone_else_is_never_touched() {
        let t = target();
        let mut s = service(&t, "arn:x:1", vec![]);
        s.tags.clear();
        let observed = Observed { service: Some(s), ..empty_account() };
        let p = plan(&t, &observed, now());
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.assessment.reason, "ResourceConflict");
        assert!(p.assessment.message.contains("not owned by prod/books-api"), "{}", p.assessment.message);
    }

    #[test]
    fn a_taken_priority_is_a_conflict_naming_the_field() {
        let t = target();
        let mut observed = empty_account();
        observed.listener_rules = Some(vec![crate::aws::Rule {
            arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/a/1/2/3".into(),
            priority: Some(10),
            hosts: vec![],
            paths: vec!["/other*".into()],
            target_groups: vec!["arn:other".into()],
            redirect: None,
        }]);
        let p = plan(&t, &observed, now());
        assert!(p.actions.is_empty());
        assert!(p.assessment.message.contains("loadBalancer.priority"), "{}", p.assessment.message);
    }

    #[test]
    fn a_rolled_back_revision_is_not_retried_and_is_recorded() {
        let t = target();
        let desired = Desired::new(&t, &image());
        let ours = revision(&t, 2, &desired.task_definition_hash);
        let old = "arn:aws:ecs:us-east-1:123456789012:task-definition/prod-books-api:1";
        let s = service(
            &t,
            old,
            vec![deployment("PRIMARY", old, "IN_PROGRESS"), deployment("ACTIVE", &ours.arn, "FAILED")],
        );
        let observed = Observed { service: Some(s), matching_revision: Some(ours.clone()), ..empty_account() };
        let p = plan(&t, &observed, now());
        let updates_td = p.actions.iter().any(|a| matches!(a, Action::UpdateService { task_definition: Some(_), .. }));
        assert!(!updates_td, "{:?}", p.actions);
        assert_eq!((p.assessment.phase, p.assessment.reason.as_str()), (Phase::Stalled, "RolledBack"));
        let tags = p.actions.iter().find_map(|a| match a {
            Action::TagService { tags, .. } => Some(tags.clone()),
            _ => None,
        });
        assert_eq!(tags.expect("tagged").get(service_tags::FAILED_REVISION), Some(&ours.arn));
    }

    #[test]
    fn an_identical_spec_reuses_its_revision_and_old_ones_are_pruned() {
        let t = target();
        let desired = Desired::new(&t, &image());
        // Revisions 1..=8 of ours, newest first; revision 3 matches the spec.
        let revisions: Vec<_> = (1..=8)
            .rev()
            .map(|n| revision(&t, n, if n == 3 { &desired.task_definition_hash } else { "other" }))
            .collect();
        let current = revisions[0].arn.clone(); // :8 runs now
        let s = service(&t, &current, vec![deployment("PRIMARY", &current, "COMPLETED")]);
        let observed = Observed {
            service: Some(s),
            matching_revision: Some(revisions[5].clone()),
            revisions: Some(revisions.clone()),
            ..empty_account()
        };
        let p = plan(&t, &observed, now());
        assert!(!p.actions.iter().any(|a| matches!(a, Action::RegisterTaskDefinition { .. })));
        let update = p.actions.iter().find_map(|a| match a {
            Action::UpdateService { task_definition, .. } => task_definition.clone(),
            _ => None,
        });
        assert_eq!(update, Some(Ref::Arn(revisions[5].arn.clone())), "back to revision 3");
        let pruned: Vec<i32> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::DeregisterTaskDefinition { arn } => Some(super::super::observe::revision_of(arn)),
                _ => None,
            })
            .collect();
        // Keep 5: the running :8 and the reused :3 plus the newest others (:7, :6, :5); prune :4, :2, :1.
        assert_eq!(pruned, [4, 2, 1]);
    }

    #[test]
    fn teardown_goes_rule_service_target_group_then_the_rest() {
        let t = target();
        let tg_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/prod-books-api-x/1";
        let observed = Observed {
            service: Some(service(&t, "arn:td:1", vec![])),
            target_group: Some(crate::aws::TargetGroup {
                arn: tg_arn.into(),
                name: "prod-books-api-x".into(),
                vpc_id: "vpc-1".into(),
                port: 8080,
                health: Desired::new(&t, &image()).target_group.expect("tg").health,
                load_balancer_arns: vec![],
            }),
            target_group_tags: Some(owned_tags(&t.names, &[])),
            listener_rules: Some(vec![crate::aws::Rule {
                arn: "arn:rule/1".into(),
                priority: Some(10),
                hosts: vec![],
                paths: vec![],
                target_groups: vec![tg_arn.into()],
                redirect: None,
            }]),
            repository: Some(Repository {
                name: "books-api".into(),
                arn: "arn:aws:ecr:us-east-1:123456789012:repository/books-api".into(),
                uri: image().uri,
                scan_on_push: true,
                tag_mutability: TagMutability::Immutable,
            }),
            repository_tags: Some(owned_tags(&t.names, &[])),
            revisions: Some(vec![revision(&t, 1, "h")]),
            ..Default::default()
        };
        let order: Vec<String> = teardown(&t, &observed)
            .iter()
            .map(|a| serde_json::to_value(a).expect("json")["action"].as_str().unwrap_or("?").to_string())
            .collect();
        assert_eq!(
            order,
            [
                "deleteRule",
                "deleteService",
                "waitServiceGone",
                "deleteTargetGroup",
                "deregisterTaskDefinition",
                "deleteRepository"
            ]
        );

        let mut retain = t.clone();
        retain.spec.deletion_policy = crate::api::DeletionPolicy::Retain;
        let actions = teardown(&retain, &observed);
        assert!(actions.iter().all(|a| matches!(a, Action::Untag { .. })), "{actions:?}");
        assert_eq!(actions.len(), 5, "rule, target group, repository, revision, service");
    }
}
