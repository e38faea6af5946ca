//! What the controller tells Kubernetes: the status subresource (server-side apply) and Events, in
//! words an SRE reads at night.

use chrono::Utc;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};

use crate::Error;
use crate::api::{ApiDeployment, ApiDeploymentStatus, ConditionStatus, condition_type};
use crate::engine::vocabulary::{Action, Phase};

use super::MANAGER;

/// An event's reason and note for a write.
pub fn describe(action: &Action) -> (&'static str, String) {
    let changes = action.change_summary();
    let note = if changes.is_empty() { action.subject() } else { format!("{}: {changes}", action.subject()) };
    let reason = match action {
        Action::RegisterTaskDefinition { .. } => "RevisionRegistered",
        Action::DeregisterTaskDefinition { .. } => "RevisionDeregistered",
        Action::CreateService { .. } => "ServiceCreated",
        Action::UpdateService { .. } => "ServiceUpdated",
        Action::DeleteService { .. } => "ServiceDeleted",
        Action::WaitServiceGone { .. } => "ServiceGone",
        Action::CreateTargetGroup { .. } => "TargetGroupCreated",
        Action::ModifyTargetGroup { .. } | Action::SetTargetGroupAttributes { .. } => "TargetGroupUpdated",
        Action::DeleteTargetGroup { .. } => "TargetGroupDeleted",
        Action::CreateRule { .. } | Action::CreateRedirectRule { .. } => "ListenerRuleCreated",
        Action::ModifyRule { .. } | Action::SetRulePriority { .. } => "ListenerRuleUpdated",
        Action::DeleteRule { .. } => "ListenerRuleDeleted",
        Action::CreateRepository { .. } => "RepositoryCreated",
        Action::SetScanOnPush { .. } | Action::SetTagMutability { .. } | Action::PutLifecyclePolicy { .. } => {
            "RepositoryUpdated"
        }
        Action::DeleteRepository { .. } => "RepositoryDeleted",
        Action::CreateDiscoveryService { .. } => "DiscoveryServiceCreated",
        Action::UpdateDiscoveryTtl { .. } => "DiscoveryServiceUpdated",
        Action::DeleteDiscoveryService { .. } => "DiscoveryServiceDeleted",
        Action::RegisterScalableTarget { .. } | Action::PutScalingPolicy { .. } => "AutoscalingUpdated",
        Action::DeleteScalingPolicy { .. } | Action::DeregisterScalableTarget { .. } => "AutoscalingRemoved",
        Action::TagService { .. } => "Recorded",
        Action::StartImageScan { .. } => "ImageScanStarted",
        Action::PromoteImage { .. } => "ImagePromoted",
        Action::PutAlarm { exists: false, .. } => "AlarmCreated",
        Action::PutAlarm { exists: true, .. } => "AlarmUpdated",
        Action::DeleteAlarms { .. } => "AlarmsDeleted",
        Action::CreateIntegration { .. } | Action::CreateAuthorizer { .. } | Action::CreateRoute { .. } => {
            "ApiGatewayCreated"
        }
        Action::UpdateIntegration { .. } | Action::UpdateAuthorizer { .. } | Action::UpdateRoute { .. } => {
            "ApiGatewayUpdated"
        }
        Action::DeleteIntegration { .. } | Action::DeleteAuthorizer { .. } | Action::DeleteRoute { .. } => {
            "ApiGatewayDeleted"
        }
        Action::DeployApi { .. } => "ApiGatewayDeployed",
        Action::Untag { .. } => "Released",
    };
    (reason, note)
}

pub(super) fn ready_of(status: &ApiDeploymentStatus) -> Option<ConditionStatus> {
    status.conditions.iter().find(|c| c.type_ == condition_type::READY).map(|c| c.status)
}

/// Whether the Ready condition changed status or reason (or generation).
pub(super) fn transitioned(previous: Option<&ApiDeploymentStatus>, new: &ApiDeploymentStatus) -> bool {
    let key = |s: &ApiDeploymentStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == condition_type::READY)
            .map(|c| (c.status, c.reason.clone(), c.observed_generation))
    };
    previous.and_then(key) != key(new)
}

/// A status with Ready=False, Stalled=True for a failure before any report exists.
pub(super) fn stalled_status(
    previous: &Option<ApiDeploymentStatus>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
) -> ApiDeploymentStatus {
    let report = crate::engine::report::Report {
        name: String::new(),
        phase: Phase::Stalled,
        reason: reason.to_string(),
        message: message.to_string(),
        image_ref: String::new(),
        image: None,
        task_definition_arn: None,
        service_arn: None,
        target_group_arn: None,
        listener_rule_arn: None,
        repository_uri: None,
        replicas: None,
        rollout: None,
        last_good_revision: None,
        pending_changes: 0,
        events: Vec::new(),
    };
    let mut status = report.status(generation, previous.as_ref(), Utc::now());
    // Keep what is known about AWS from before.
    if let Some(p) = previous {
        status.image = p.image.clone();
        status.task_definition_arn = p.task_definition_arn.clone();
        status.service_arn = p.service_arn.clone();
        status.target_group_arn = p.target_group_arn.clone();
        status.listener_rule_arn = p.listener_rule_arn.clone();
        status.replicas = p.replicas.clone();
        status.rollout = p.rollout.clone();
        status.last_good_revision = p.last_good_revision.clone();
    }
    status
}

/// Write the status subresource by server-side apply.
pub async fn patch_status(
    api: &Api<ApiDeployment>,
    obj: &ApiDeployment,
    status: &ApiDeploymentStatus,
) -> Result<(), Error> {
    let patch = serde_json::json!({
        "apiVersion": "ecsop.io/v1alpha1",
        "kind": "ApiDeployment",
        "status": status,
    });
    api.patch_status(&obj.name_any(), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

pub(super) async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    // Event notes are at most 1 kB.
    let note: String = note.chars().take(1000).collect();
    let event = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, reason, "publishing an event failed");
    }
}
