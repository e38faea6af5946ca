//! The ALB target group ecsop owns when the spec has `loadBalancer`: created with the spec's health
//! check and deregistration delay, kept there, and deleted after the service stopped using it (when the
//! spec drops the load balancer, or on deletion).

use std::collections::BTreeMap;

use super::kind::{Kind, Planned, Scope, ownership_keys};
use crate::aws::{TargetGroupConfig, TargetGroupHealth};
use crate::engine::model::{Desired, TargetGroupState};
use crate::engine::names::owned_tags;
use crate::engine::target::Target;
use crate::engine::vocabulary::{Action, Change, Created, Ref, Resource};

/// The target-group kind.
pub struct TargetGroup;

/// The target group `target` asks for, if it has a load balancer.
pub fn desired(target: &Target) -> Option<TargetGroupState> {
    settings(target, target.names.target_group())
}

/// The second target group `target` asks for: one like the first, when the strategy shifts traffic.
pub fn desired_alternate(target: &Target) -> Option<TargetGroupState> {
    settings(target, target.names.alternate_target_group())
        .filter(|_| !target.spec.service.rollout.strategy.is_rolling())
}

fn settings(target: &Target, name: String) -> Option<TargetGroupState> {
    let spec = &target.spec;
    spec.load_balancer.as_ref().map(|lb| TargetGroupState {
        name,
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
    })
}

/// Whether the target group with our name is tagged as ours.
pub fn owned(scope: &Scope) -> bool {
    scope.owns(scope.observed.target_group_tags.as_ref())
}

/// Whether the second target group with our name is tagged as ours.
pub fn owned_alternate(scope: &Scope) -> bool {
    scope.owns(scope.observed.alternate_target_group_tags.as_ref())
}

/// The second target group of a blueGreen, canary or linear service. It is kept when the strategy goes
/// back to rolling (the service may be serving from it: ECS swaps the two at the end of every such
/// deployment), and goes with the load balancer or the ApiDeployment.
pub struct AlternateTargetGroup;

impl Kind for AlternateTargetGroup {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let observed = scope.observed;
        match (&observed.alternate_target_group, &observed.alternate_target_group_tags) {
            (Some(tg), Some(_)) if !owned_alternate(scope) => {
                Some(scope.not_owned(&format!("target group {}", tg.name)))
            }
            _ => None,
        }
    }

    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        let observed = scope.observed;
        planned.alternate_target_group = match (&desired.alternate_target_group, &observed.alternate_target_group) {
            (Some(tg), current) => Some(plan_target_group(
                scope,
                tg,
                Current { group: current.as_ref(), attributes: observed.alternate_target_group_attributes.as_ref() },
                Created::AlternateTargetGroup,
                &mut planned.actions,
            )),
            // Kept while the strategy is rolling again: the service may serve from it.
            (None, Some(current)) if desired.target_group.is_some() && owned_alternate(scope) => {
                Some(Ref::Arn(current.arn.clone()))
            }
            (None, _) => None,
        };
    }

    fn clean_up(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        if desired.target_group.is_none()
            && owned_alternate(scope)
            && let Some(tg) = &scope.observed.alternate_target_group
        {
            planned.actions.push(Action::DeleteTargetGroup { arn: tg.arn.clone() });
        }
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(tg) = scope.observed.alternate_target_group.as_ref().filter(|_| owned_alternate(scope)) {
            actions.push(Action::DeleteTargetGroup { arn: tg.arn.clone() });
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(tg) = scope.observed.alternate_target_group.as_ref().filter(|_| owned_alternate(scope)) {
            actions.push(Action::Untag {
                resource: Resource::TargetGroup,
                arn: tg.arn.clone(),
                keys: ownership_keys(),
            });
        }
    }
}

/// The target group serving production now, and the other one (when there are two): the service's
/// binding says which, since ECS swaps them at the end of every blueGreen, canary or linear deployment.
pub fn serving(scope: &Scope, planned: &Planned) -> Option<(Ref, Option<Ref>)> {
    let main = planned.target_group.clone()?;
    let alternate = planned.alternate_target_group.clone();
    let bound = scope.observed.service.as_ref().and_then(|s| s.load_balancers.first()).map(|b| b.arn.as_str());
    Some(match alternate {
        Some(Ref::Arn(alt)) if bound == Some(alt.as_str()) => (Ref::Arn(alt), Some(main)),
        alternate => (main, alternate),
    })
}

/// A target group as read: itself and its attributes (when read).
#[derive(Clone, Copy)]
struct Current<'a> {
    group: Option<&'a crate::aws::TargetGroup>,
    attributes: Option<&'a BTreeMap<String, String>>,
}

impl Kind for TargetGroup {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let observed = scope.observed;
        match (&observed.target_group, &observed.target_group_tags) {
            (Some(tg), Some(_)) if scope.spec().load_balancer.is_some() && !owned(scope) => {
                Some(scope.not_owned(&format!("target group {}", tg.name)))
            }
            _ => None,
        }
    }

    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        if let Some(tg) = &desired.target_group {
            let observed = scope.observed;
            let current = Current {
                group: observed.target_group.as_ref(),
                attributes: observed.target_group_attributes.as_ref(),
            };
            planned.target_group =
                Some(plan_target_group(scope, tg, current, Created::TargetGroup, &mut planned.actions));
        }
    }

    // The load balancer was dropped from the spec: the service is unbound by then; the owned target
    // group goes after it.
    fn clean_up(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        if desired.target_group.is_none()
            && owned(scope)
            && let Some(tg) = &scope.observed.target_group
        {
            planned.actions.push(Action::DeleteTargetGroup { arn: tg.arn.clone() });
        }
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(tg) = scope.observed.target_group.as_ref().filter(|_| owned(scope)) {
            actions.push(Action::DeleteTargetGroup { arn: tg.arn.clone() });
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(tg) = scope.observed.target_group.as_ref().filter(|_| owned(scope)) {
            actions.push(Action::Untag {
                resource: Resource::TargetGroup,
                arn: tg.arn.clone(),
                keys: ownership_keys(),
            });
        }
    }
}

fn plan_target_group(
    scope: &Scope,
    tg: &TargetGroupState,
    observed: Current,
    created: Created,
    actions: &mut Vec<Action>,
) -> Ref {
    let Some(current) = observed.group else {
        actions.push(Action::CreateTargetGroup {
            config: TargetGroupConfig {
                name: tg.name.clone(),
                vpc_id: tg.vpc_id.clone(),
                port: tg.port,
                health: tg.health.clone(),
                tags: owned_tags(scope.names(), &[]),
            },
            attributes: tg.attributes.clone(),
            created,
        });
        return Ref::Created(created);
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
    if let Some(attrs) = observed.attributes {
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
