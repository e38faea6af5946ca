//! Reporting: one [`Report`] per ApiDeployment, and its translation into the status subresource with
//! Ready / Reconciling / Stalled conditions (kstatus, `kubectl wait`, Flux, Argo CD).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::observed::Observed;
use super::plan::Plan;
use super::target::{PinnedImage, Target, image_source_ref};
use super::vocabulary::{Assessment, Phase};
use crate::api::{
    ApiDeploymentStatus, Condition, ConditionStatus, ReplicaStatus, ResolvedImage, RolloutStatus, StrategySpec,
    StrategyType, TrafficSplit, condition_type,
};

/// What ecsop knows about one ApiDeployment after a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `namespace/name`.
    pub name: String,
    /// Progressing, Ready or Stalled.
    pub phase: Phase,
    /// CamelCase reason.
    pub reason: String,
    /// A sentence for humans.
    pub message: String,
    /// The spec's image reference (`books-api:1.4.2`).
    pub image_ref: String,
    /// The pinned image.
    pub image: Option<PinnedImage>,
    /// The revision for this spec.
    pub task_definition_arn: Option<String>,
    /// The ECS service.
    pub service_arn: Option<String>,
    /// The target group.
    pub target_group_arn: Option<String>,
    /// The listener rule.
    pub listener_rule_arn: Option<String>,
    /// The ECR repository URI.
    pub repository_uri: Option<String>,
    /// Desired, running and pending tasks.
    pub replicas: Option<(i32, i32, i32)>,
    /// The rollout of our revision (or the PRIMARY deployment).
    pub rollout: Option<RolloutStatus>,
    /// The revision that last completed.
    pub last_good_revision: Option<String>,
    /// Writes still needed (0 when in sync).
    pub pending_changes: usize,
    /// Recent ECS service events, newest first.
    pub events: Vec<String>,
}

/// The production rule's weights between the serving target group and the other one, as the new and
/// old revisions' shares: during a blueGreen, canary or linear deployment the new revision runs in the
/// second group (ECS swaps the two when it completes).
fn traffic(observed: &Observed) -> Option<TrafficSplit> {
    let binding = observed.service.as_ref()?.load_balancers.first()?;
    let shift = binding.traffic.as_ref()?;
    let rule = observed.rule()?;
    Some(TrafficSplit {
        new_percent: rule.weight(&shift.alternate_target_group).unwrap_or(0),
        old_percent: rule.weight(&binding.arn).unwrap_or(0),
    })
}

/// Where a traffic-shifting rollout is, from its state and the weights.
fn phase(strategy: &StrategySpec, state: &str, traffic: Option<&TrafficSplit>) -> Option<String> {
    if strategy.is_rolling() {
        return None;
    }
    Some(match state {
        "ROLLED_BACK" => "rolled back".into(),
        "FAILED" => "failed".into(),
        "COMPLETED" => "complete".into(),
        _ => match traffic.map(|t| t.new_percent) {
            None | Some(0) => "starting".into(),
            Some(100) => "baking".into(),
            Some(share) => match (strategy.kind, &strategy.linear) {
                (StrategyType::Canary, _) => format!("canary {share}%"),
                (StrategyType::Linear, Some(l)) if l.step_percent > 0 => {
                    let steps = (100 + l.step_percent - 1) / l.step_percent;
                    let step = (share + l.step_percent - 1) / l.step_percent;
                    format!("step {step} of {steps} ({share}%)")
                }
                _ => format!("shifting ({share}%)"),
            },
        },
    })
}

impl Report {
    /// Build the report from what was observed and planned; `revision` overrides the plan's when
    /// acting registered one.
    pub fn new(target: &Target, observed: &Observed, plan: &Plan, revision: Option<String>, pending: usize) -> Report {
        let service = observed.service.as_ref();
        let a: &Assessment = &plan.assessment;
        let rollout = a.rollout.as_ref().and_then(|r| r.deployment.as_ref()).map(|d| {
            let state = match a.rollout.as_ref().map(|r| &r.state) {
                Some(r) if r.rolled_back() => "ROLLED_BACK".to_string(),
                _ => d.rollout_state.clone().unwrap_or_else(|| "IN_PROGRESS".into()),
            };
            let strategy = target.spec.service.rollout.strategy.kind;
            let traffic = traffic(observed);
            RolloutStatus {
                id: d.id.clone(),
                phase: phase(&target.spec.service.rollout.strategy, &state, traffic.as_ref()),
                state,
                started: d.created_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                message: d.rollout_state_reason.clone(),
                strategy: Some(
                    serde_json::to_value(strategy)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                ),
                traffic,
                analysis: Vec::new(),
            }
        });
        Report {
            name: target.names.owner(),
            phase: a.phase,
            reason: a.reason.clone(),
            message: a.message.clone(),
            image_ref: image_source_ref(&target.spec),
            image: observed.pinned().cloned(),
            task_definition_arn: revision.or_else(|| plan.revision.clone()),
            service_arn: service.map(|s| s.arn.clone()),
            target_group_arn: observed.target_group.as_ref().map(|t| t.arn.clone()),
            listener_rule_arn: observed.rule().map(|r| r.arn.clone()),
            // The fast path does not read the repository; the pinned image names it.
            repository_uri: observed
                .repository
                .as_ref()
                .map(|r| r.uri.clone())
                .or_else(|| observed.pinned().map(|p| p.uri.clone())),
            replicas: service.map(|s| (s.desired_count, s.running_count, s.pending_count)),
            rollout,
            last_good_revision: a.rollout.as_ref().and_then(|r| r.last_good_revision.clone()),
            pending_changes: pending,
            events: service.map(|s| s.events.iter().take(5).map(|e| e.message.clone()).collect()).unwrap_or_default(),
        }
    }

    /// The status subresource for `generation`, keeping each condition's lastTransitionTime when its
    /// status did not change.
    pub fn status(
        &self,
        generation: Option<i64>,
        previous: Option<&ApiDeploymentStatus>,
        now: DateTime<Utc>,
    ) -> ApiDeploymentStatus {
        let (ready, reconciling, stalled) = match self.phase {
            Phase::Ready => (ConditionStatus::True, ConditionStatus::False, ConditionStatus::False),
            Phase::Progressing => (ConditionStatus::Unknown, ConditionStatus::True, ConditionStatus::False),
            Phase::Stalled => (ConditionStatus::False, ConditionStatus::False, ConditionStatus::True),
        };
        let condition = |type_: &str, status: ConditionStatus, reason: &str, message: &str| {
            let since = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.to_rfc3339_opts(SecondsFormat::Secs, true));
            Condition {
                type_: type_.to_string(),
                status,
                reason: reason.to_string(),
                message: message.to_string(),
                last_transition_time: since,
                observed_generation: generation,
            }
        };
        let idle = match self.phase {
            Phase::Ready => "RolloutComplete",
            Phase::Stalled => self.reason.as_str(),
            Phase::Progressing => self.reason.as_str(),
        };
        let conditions = vec![
            condition(condition_type::READY, ready, &self.reason, &self.message),
            condition(
                condition_type::RECONCILING,
                reconciling,
                if reconciling == ConditionStatus::True { &self.reason } else { idle },
                if reconciling == ConditionStatus::True { &self.message } else { "" },
            ),
            condition(
                condition_type::STALLED,
                stalled,
                if stalled == ConditionStatus::True { &self.reason } else { "NotStalled" },
                if stalled == ConditionStatus::True { &self.message } else { "" },
            ),
        ];
        ApiDeploymentStatus {
            observed_generation: generation,
            conditions,
            image: self.image.as_ref().map(|i| ResolvedImage {
                uri: i.reference(),
                digest: i.digest.clone(),
                reference: self.image_ref.rsplit('/').next().unwrap_or(&self.image_ref).to_string(),
            }),
            task_definition_arn: self.task_definition_arn.clone(),
            service_arn: self.service_arn.clone(),
            target_group_arn: self.target_group_arn.clone(),
            listener_rule_arn: self.listener_rule_arn.clone(),
            replicas: self.replicas.map(|(desired, running, pending)| ReplicaStatus {
                desired,
                running,
                pending,
                summary: format!("{running}/{desired}"),
            }),
            rollout: self.rollout.clone(),
            last_good_revision: self.last_good_revision.clone(),
        }
    }
}
