//! How an [`Action`] reads to humans: the subject (`ecs service books-api`), the verb (`+ ~ -`) and the
//! field-level changes that `diff`, `apply`'s progress lines and Kubernetes Events print.

use super::names::TAG_SPEC_HASH;
use super::rollout;
use super::vocabulary::{Action, Change};
use crate::aws::ScalingMetric;

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
            Action::CreateRule { priority, header: Some(_), .. } => format!("test listener rule (priority {priority})"),
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
            Action::DeployApi { api_id, stage, .. } => format!("api gateway {api_id} stage {stage}"),
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
            Action::DeleteService { name, .. } => format!("ecs service {name}"),
            Action::WaitServiceGone { name, .. } => format!("ecs service {name} (wait until its tasks are gone)"),
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
            | Action::DeployApi { .. }
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
            Action::CreateRepository { repository, .. } => {
                let mut changes = vec![
                    Change::new("scanOnPush", "-", repository.scan_on_push),
                    Change::new("tagMutability", "-", format!("{:?}", repository.tag_mutability).to_uppercase()),
                ];
                if let Some(policy) = &repository.lifecycle_policy {
                    changes.push(Change::new("lifecyclePolicy", "-", policy));
                }
                changes
            }
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
            Action::CreateRule { hosts, paths, target_group, alternate, header, .. } => {
                let mut changes =
                    vec![Change::new("hosts", "-", hosts.join(",")), Change::new("paths", "-", paths.join(","))];
                if let Some(h) = header {
                    changes.push(Change::new("header", "-", format!("{}: {}", h.name, h.values.join(","))));
                }
                changes.push(match alternate {
                    Some(alternate) => Change::new("forward", "-", format!("{target_group} (100), {alternate} (0)")),
                    None => Change::new("forward", "-", target_group),
                });
                changes
            }
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
            Action::DeployApi { .. } => vec![Change::new("deployment", "-", "the routes as the API now has them")],
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

/// The name part of a target-group ARN.
pub fn tg_name(arn: &str) -> &str {
    arn.split('/').nth(1).unwrap_or(arn)
}

fn metric_name(m: &ScalingMetric) -> &'static str {
    match m {
        ScalingMetric::Cpu => "targetCpuPercent",
        ScalingMetric::Memory => "targetMemoryPercent",
        ScalingMetric::RequestsPerTarget { .. } => "targetRequestsPerTarget",
    }
}
