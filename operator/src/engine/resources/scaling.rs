//! The service's autoscaling, when the spec has `service.autoscaling`: the scalable target (min and max
//! tasks) and one target-tracking policy per metric (CPU, memory, ALB requests per target). Once
//! autoscaling owns the task count ecsop stops enforcing `replicas`; removing autoscaling from the spec
//! gives the count back.

use super::kind::{Kind, Planned, Scope};
use crate::aws::{AwsError, Clients, ScalableTarget, ScalingMetric, ScalingPolicy};
use crate::engine::model::{Desired, ScalingState};
use crate::engine::names::Names;
use crate::engine::target::Target;
use crate::engine::vocabulary::{Action, Change, Ref};

/// The autoscaling kind.
pub struct Scaling;

/// Name of the target-tracking policy on `metric`.
pub fn policy_name(names: &Names, metric: &str) -> String {
    format!("ecsop-{}-{metric}", names.family())
}

/// `service/<cluster>/<name>`: Application Auto Scaling's id of the ECS service.
pub fn resource_id(target: &Target) -> String {
    format!("service/{}/{}", target.spec.cluster, target.names.service())
}

/// The autoscaling `target` asks for, if any.
pub fn desired(target: &Target) -> Option<ScalingState> {
    let names = &target.names;
    target.spec.service.autoscaling.as_ref().map(|a| {
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
        ScalingState { resource_id: resource_id(target), min: a.min_replicas, max: a.max_replicas, policies }
    })
}

/// The scalable target and, when there is one, its policies.
pub async fn read(
    clients: &Clients,
    resource_id: &str,
) -> Result<(Option<ScalableTarget>, Option<Vec<ScalingPolicy>>), AwsError> {
    let target = clients.autoscaling.scalable_target(resource_id).await?;
    let policies = match &target {
        Some(_) => Some(clients.autoscaling.policies(resource_id).await?),
        None => None,
    };
    Ok((target, policies))
}

impl Kind for Scaling {
    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        let observed = scope.observed;
        let Some(scaling) = &desired.scaling else {
            if let Some(t) = &observed.scalable_target {
                // Autoscaling was removed from the spec: give the count back to ecsop.
                planned.actions.push(Action::DeregisterScalableTarget { resource_id: t.resource_id.clone() });
            }
            return;
        };
        let resource_id = scaling.resource_id.clone();
        let wanted =
            ScalableTarget { resource_id: resource_id.clone(), min_capacity: scaling.min, max_capacity: scaling.max };
        let known = observed.deep || observed.scalable_target.is_some();
        if !known {
            return;
        }
        if observed.scalable_target.as_ref() != Some(&wanted) {
            let changes = match &observed.scalable_target {
                Some(t) => vec![
                    Change::new("minReplicas", t.min_capacity, wanted.min_capacity),
                    Change::new("maxReplicas", t.max_capacity, wanted.max_capacity),
                ],
                None => vec![Change::new("min/max", "-", format!("{}/{}", wanted.min_capacity, wanted.max_capacity))],
            };
            planned.actions.push(Action::RegisterScalableTarget { target: wanted, changes });
        }
        let tg_ref = planned.target_group.clone();
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
                planned.actions.push(Action::PutScalingPolicy {
                    resource_id: resource_id.clone(),
                    policy: policy.clone(),
                    target_group: if needs_tg { tg_ref.clone() } else { None },
                    listener_arn: if needs_tg { desired.rule.as_ref().map(|r| r.listener_arn.clone()) } else { None },
                });
            }
        }
        let prefix = policy_name(scope.names(), "");
        for p in &existing {
            if p.name.starts_with(&prefix) && !scaling.policies.iter().any(|w| w.name == p.name) {
                planned
                    .actions
                    .push(Action::DeleteScalingPolicy { resource_id: resource_id.clone(), name: p.name.clone() });
            }
        }
    }

    // Before the service it scales.
    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        let observed = scope.observed;
        if let Some(t) = &observed.scalable_target
            && observed.service.as_ref().is_some_and(|s| scope.owns(Some(&s.tags)))
        {
            actions.push(Action::DeregisterScalableTarget { resource_id: t.resource_id.clone() });
        }
    }
}
