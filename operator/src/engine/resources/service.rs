//! The ECS service: created bound to the task definition, target group and Cloud Map service the
//! kinds before it planned, then updated field by field (never back to a revision that was rolled
//! back); deleted forced (ECS scales it to zero) and waited for. It also carries ecsop's record of what
//! was applied ([`record`]): the last write of every plan.

use super::kind::{Kind, Planned, Scope, ownership_keys};
use super::target_group;
use crate::api::{DnsRecordType, StrategySpec, StrategyType};
use crate::aws::{
    Binding, DeploymentAlarms, DeploymentSettings, MetricAlarm, NetworkSettings, Service as EcsService, ServiceConfig,
    ServiceUpdate, Strategy, Tags, TrafficShift,
};
use crate::engine::describe::tg_name;
use crate::engine::model::{Desired, DiscoveryState, ServiceState, sorted};
use crate::engine::names::{owned_tags, service_tags, tag_value};
use crate::engine::rollout::{Rollout, short_revision};
use crate::engine::target::{PinnedImage, Target, image_source_ref};
use crate::engine::vocabulary::{Action, Change, Created, Ref, Resource};

/// The ECS service kind.
pub struct Service;

/// The service `target` asks for; `alarms` are the owned alarms, which it watches during rollouts when
/// the spec says to roll back on them.
pub fn desired(target: &Target, alarms: &[MetricAlarm]) -> ServiceState {
    let spec = &target.spec;
    let names = &target.names;
    let deployment_alarms = spec.alarms.as_ref().filter(|a| a.rollback_on_alarm).map(|_| {
        let mut names: Vec<String> = alarms.iter().map(|a| a.name.clone()).collect();
        names.sort();
        DeploymentAlarms { names, enable: true, rollback: true }
    });
    let rollout = &spec.service.rollout;
    ServiceState {
        cluster: spec.cluster.clone(),
        name: names.service().to_string(),
        replicas: spec.service.replicas,
        enforce_replicas: spec.service.autoscaling.is_none(),
        network: NetworkSettings {
            subnets: sorted(&spec.service.subnets),
            security_groups: sorted(&spec.service.security_groups),
            assign_public_ip: spec.service.assign_public_ip,
        },
        deployment: DeploymentSettings {
            maximum_percent: rollout.max_percent,
            minimum_healthy_percent: rollout.min_healthy_percent,
            circuit_breaker: rollout.circuit_breaker.enabled,
            rollback: rollout.circuit_breaker.rollback,
            strategy: strategy(&rollout.strategy),
        },
        infrastructure_role: rollout
            .infrastructure_role_arn
            .clone()
            .filter(|_| !rollout.strategy.is_rolling() && spec.load_balancer.is_some()),
        health_check_grace_period_seconds: spec
            .load_balancer
            .as_ref()
            .map(|_| rollout.health_check_grace_period_seconds),
        alarms: deployment_alarms,
        container: names.container().to_string(),
        port: spec.container.port,
    }
}

/// ECS's strategy for the spec's.
fn strategy(spec: &StrategySpec) -> Strategy {
    let bake_minutes = spec.bake_time_minutes.unwrap_or(0);
    match (spec.kind, &spec.canary, &spec.linear) {
        (StrategyType::BlueGreen, ..) => Strategy::BlueGreen { bake_minutes },
        (StrategyType::Canary, Some(c), _) => {
            Strategy::Canary { percent: c.percent, canary_bake_minutes: c.bake_time_minutes, bake_minutes }
        }
        (StrategyType::Linear, _, Some(l)) => {
            Strategy::Linear { step_percent: l.step_percent, step_bake_minutes: l.step_bake_time_minutes, bake_minutes }
        }
        // Validation requires the settings of canary and linear; without them there is nothing to shift.
        _ => Strategy::Rolling,
    }
}

/// The service, when it is tagged as ours.
fn ours<'a>(scope: &Scope<'a>) -> Option<&'a EcsService> {
    scope.observed.service.as_ref().filter(|s| scope.owns(Some(&s.tags)))
}

impl Kind for Service {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let s = scope.observed.service.as_ref()?;
        (!scope.owns(Some(&s.tags)))
            .then(|| scope.not_owned(&format!("ECS service {} in cluster {}", s.name, scope.spec().cluster)))
    }

    // The service, unless the desired revision already failed (a rollback is not retried on resync).
    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        let Some(td_ref) = planned.task_definition.clone() else {
            return;
        };
        let (production, other) = target_group::serving(scope, planned).unzip();
        let bound = Bound {
            task_definition: &td_ref,
            target_group: production.as_ref(),
            alternate: other.flatten(),
            rule: planned.rule.clone(),
            test_rule: planned.test_rule.clone(),
            registry: planned.registry.as_ref(),
            discovery: desired.discovery.as_ref(),
        };
        let traffic = traffic_shift(&desired.service, &bound);
        let service = plan_service(scope, &desired.service, bound, traffic, planned.rolled_back, &mut planned.actions);
        planned.service = Some(service);
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if ours(scope).is_some() {
            let (cluster, name) = (scope.spec().cluster.clone(), scope.names().service().to_string());
            actions.push(Action::DeleteService { cluster: cluster.clone(), name: name.clone() });
            actions.push(Action::WaitServiceGone { cluster, name });
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(s) = ours(scope) {
            let mut keys = ownership_keys();
            keys.extend(service_tags::ALL.map(String::from));
            actions.push(Action::Untag { resource: Resource::Service, arn: s.arn.clone(), keys });
        }
    }
}

/// What the service is bound to, as the kinds before it planned.
#[derive(Debug, Clone)]
struct Bound<'a> {
    task_definition: &'a Ref,
    /// The target group serving production.
    target_group: Option<&'a Ref>,
    /// The other one, when there are two.
    alternate: Option<Ref>,
    /// The listener rule.
    rule: Option<Ref>,
    /// The test-traffic rule.
    test_rule: Option<Ref>,
    registry: Option<&'a Ref>,
    discovery: Option<&'a DiscoveryState>,
}

/// What ECS needs to shift traffic. The second target group or the rule may be created by this plan:
/// their ARNs are then filled in when acting (see [`Ref`]'s placeholders).
fn traffic_shift(wanted: &ServiceState, bound: &Bound) -> Option<TrafficShift> {
    let role = wanted.infrastructure_role.as_ref()?;
    Some(TrafficShift {
        alternate_target_group: bound.alternate.as_ref()?.to_string(),
        production_rule: bound.rule.as_ref()?.to_string(),
        test_rule: bound.test_rule.as_ref().map(Ref::to_string),
        role_arn: role.clone(),
    })
}

fn plan_service(
    scope: &Scope,
    wanted: &ServiceState,
    bound: Bound,
    traffic: Option<TrafficShift>,
    rolled_back: bool,
    actions: &mut Vec<Action>,
) -> Ref {
    let current = scope.observed.service.as_ref();
    let (td_ref, tg_ref, registry_ref) = (bound.task_definition, bound.target_group, bound.registry);
    let lb = tg_ref.map(|r| Binding { traffic, ..lb_binding(wanted, &r.to_string()) });
    let registry = match (registry_ref, bound.discovery) {
        (Some(r), Some(d)) => Some(registry_binding(wanted, d, &r.to_string())),
        _ => None,
    };
    let Some(current) = current else {
        actions.push(Action::CreateService {
            config: Box::new(ServiceConfig {
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
                tags: owned_tags(scope.names(), &[]),
            }),
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
            short_revision(&current.task_definition),
            match td_ref {
                Ref::Arn(a) => short_revision(a),
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
        _ => {
            current.load_balancers.len() != wanted_lbs.len()
                || current.load_balancers.iter().zip(&wanted_lbs).any(|(c, w)| !c.same_pair(w))
        }
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

/// Record on the ECS service what was applied: the last write of a plan, so a crash before it makes the
/// next run look again. Also removes what the service records about pieces the spec dropped.
pub fn record(scope: &Scope, desired: &Desired, image: &PinnedImage, rollout: &Rollout, planned: &mut Planned) {
    let observed = scope.observed;
    if let (false, Some(s)) = (planned.forget.is_empty(), &observed.service) {
        let keys = std::mem::take(&mut planned.forget);
        planned.actions.push(Action::Untag { resource: Resource::Service, arn: s.arn.clone(), keys });
    }
    let (Some(service_ref), Some(revision)) = (planned.service.clone(), planned.task_definition.clone()) else {
        return;
    };
    let mut tags = std::mem::take(&mut planned.record);
    tags.insert(service_tags::APPLIED_HASH.into(), desired.hash());
    tags.insert(service_tags::IMAGE.into(), image.reference());
    tags.insert(service_tags::IMAGE_SOURCE.into(), image_source_ref(scope.spec()));
    if observed.promoted.as_ref().is_some_and(|p| p.as_deref() == Some(image.digest.as_str())) {
        tags.insert(service_tags::PROMOTED.into(), image.digest.clone());
    }
    if rollout.state.rolled_back()
        && let Some(r) = &planned.revision
    {
        tags.insert(service_tags::FAILED_REVISION.into(), r.clone());
    }
    // As AWS can hold them (at most 256 characters).
    let tags: Tags = tags.into_iter().map(|(k, v)| (k, tag_value(&v))).collect();
    let recorded_revision = &planned.revision;
    let redirect_ref = &planned.redirect_rule;
    let current_tags = observed.service.as_ref().map(|s| &s.tags);
    let tags_differ = current_tags.is_none_or(|current| {
        tags.iter().any(|(k, v)| current.get(k) != Some(v))
            || recorded_revision.as_ref().is_none_or(|r| current.get(service_tags::REVISION) != Some(&tag_value(r)))
            || match redirect_ref {
                Some(Ref::Arn(a)) => current.get(service_tags::REDIRECT_RULE) != Some(&tag_value(a)),
                Some(Ref::Created(_)) => true,
                None => false,
            }
    });
    if !planned.actions.is_empty() || tags_differ {
        planned.actions.push(Action::TagService {
            service: service_ref,
            tags,
            revision,
            redirect_rule: redirect_ref.clone(),
        });
    }
}

/// The ECS service binding of the target group.
fn lb_binding(service: &ServiceState, target_group_arn: &str) -> Binding {
    Binding {
        arn: target_group_arn.to_string(),
        container: service.container.clone(),
        port: service.port,
        traffic: None,
    }
}

/// The ECS service binding of the Cloud Map service. SRV records carry the port, so they name the
/// container and its port; A records must not (ECS rejects a containerPort of 0), so they name the
/// registry alone.
fn registry_binding(service: &ServiceState, discovery: &DiscoveryState, arn: &str) -> Binding {
    match discovery.record_type {
        DnsRecordType::Srv => {
            Binding { arn: arn.to_string(), container: service.container.clone(), port: service.port, traffic: None }
        }
        DnsRecordType::A => Binding { arn: arn.to_string(), container: String::new(), port: 0, traffic: None },
    }
}
