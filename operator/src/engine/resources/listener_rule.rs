//! The listener rule ecsop owns: at the spec's priority on the spec's listener, matching its hosts and
//! paths, forwarding to the owned target group. The service records the listener
//! (`ecsop.io/listener`) so that a rule left on a listener the spec no longer names is found and
//! removed, not orphaned.

use super::kind::{Kind, Planned, Scope, ownership_keys};
use super::target_group;
use crate::api::ApiDeploymentSpec;
use crate::aws::{Rule, RuleAction};
use crate::engine::model::{Desired, RuleState, sorted};
use crate::engine::names::{MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_OWNER, owned_tags, service_tags};
use crate::engine::vocabulary::{Action, Change, Created, Ref, Resource};

/// The listener-rule kind.
pub struct ListenerRule;

/// The rule the spec asks for, if it has a load balancer.
pub fn desired(spec: &ApiDeploymentSpec) -> Option<RuleState> {
    spec.load_balancer.as_ref().map(|lb| RuleState {
        listener_arn: lb.listener_arn.clone(),
        priority: lb.priority,
        hosts: sorted(&lb.hosts),
        paths: sorted(&lb.paths),
    })
}

/// Our rule (the one forwarding to the target group with our name), when that target group is ours.
fn ours<'a>(scope: &Scope<'a>) -> Option<&'a Rule> {
    scope.observed.rule().filter(|_| target_group::owned(scope))
}

impl Kind for ListenerRule {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let (lb, rules) = (scope.spec().load_balancer.as_ref()?, scope.observed.listener_rules.as_ref()?);
        let ours = scope.observed.rule().map(|r| r.arn.as_str());
        let taken =
            rules.iter().find(|r| r.priority == Some(lb.priority) && Some(r.arn.as_str()) != ours).map(|other| {
                format!(
                    "priority {} on listener {} is taken by rule {}; choose a free loadBalancer.priority",
                    lb.priority, lb.listener_arn, other.arn
                )
            });
        // Another ApiDeployment's rule that matches some of the same requests: whichever priority is
        // lower would take them from the other. The later claim is refused.
        let me = scope.names().owner();
        taken.or_else(|| {
            scope.observed.overlapping_rules.iter().find_map(|(rule, tags)| {
                let owner = tags.get(TAG_OWNER).filter(|_| tags.get(TAG_MANAGED_BY).is_some_and(|m| m == MANAGED_BY_VALUE));
                owner.filter(|o| **o != me).map(|owner| {
                    format!(
                        "loadBalancer.hosts/paths overlap rule {} (priority {}, hosts [{}], paths [{}]) of ApiDeployment \
                         {owner} on listener {}; claim hosts or paths it does not match",
                        rule.arn,
                        rule.priority.unwrap_or_default(),
                        rule.hosts.join(", "),
                        rule.paths.join(", "),
                        lb.listener_arn
                    )
                })
            })
        })
    }

    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        // Our rule on a listener the spec left goes first: a target group serves one load balancer
        // only, so the rule on a new listener (possibly of another load balancer) can only follow it.
        if target_group::owned(scope) {
            for rule in &scope.observed.stale_rules {
                planned.actions.push(Action::DeleteRule { arn: rule.arn.clone() });
            }
        }
        let Some(rule) = &desired.rule else {
            return;
        };
        planned.record.insert(service_tags::LISTENER.into(), rule.listener_arn.clone());
        let Some((production, other)) = target_group::serving(scope, planned) else {
            return;
        };
        let shifting = desired.alternate_target_group.is_some();
        match scope.observed.rule() {
            None => {
                planned.actions.push(Action::CreateRule {
                    listener_arn: rule.listener_arn.clone(),
                    priority: rule.priority,
                    hosts: rule.hosts.clone(),
                    paths: rule.paths.clone(),
                    target_group: production,
                    alternate: other.filter(|_| shifting),
                    header: None,
                    tags: owned_tags(scope.names(), &[]),
                });
                planned.rule = Some(Ref::Created(Created::Rule));
            }
            Some(current) => {
                planned.rule = Some(Ref::Arn(current.arn.clone()));
                let service_shifts = scope
                    .observed
                    .service
                    .as_ref()
                    .and_then(|s| s.deployment)
                    .is_some_and(|d| d.strategy.shifts_traffic());
                let (action, action_change) = forward(current, &production, other.as_ref(), shifting, service_shifts);
                let wanted = Conditions { hosts: &rule.hosts, paths: &rule.paths, priority: rule.priority };
                update_rule(current, wanted, action, action_change, &mut planned.actions);
            }
        }
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(r) = ours(scope) {
            actions.push(Action::DeleteRule { arn: r.arn.clone() });
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(r) = ours(scope) {
            actions.push(Action::Untag { resource: Resource::Rule, arn: r.arn.clone(), keys: ownership_keys() });
        }
    }
}

/// The forward action our rule should have, and how it differs from `current`'s. A serving target
/// group created by this plan has no ARN yet: the rule follows on the next run.
///
/// While traffic shifts (`shifting`, or the service still shifting it after a switch back to rolling),
/// ECS owns the weights: a rule forwarding to both groups is left as it is, whatever its weights, and one
/// that does not is set to the serving group 100, the other 0. A rolling service's rule forwards to the
/// serving group alone.
pub fn forward(
    current: &Rule,
    production: &Ref,
    other: Option<&Ref>,
    shifting: bool,
    service_shifts: bool,
) -> (Option<RuleAction>, Option<Change>) {
    let kept = || {
        let weighted = current.target_groups.iter().map(|t| (t.clone(), current.weight(t).unwrap_or(0))).collect();
        (Some(RuleAction::Weighted(weighted)), None)
    };
    let Ref::Arn(production) = production else {
        return (None, None);
    };
    // A second target group this plan creates is named by its placeholder, filled in when acting.
    let other = other.map(Ref::to_string);
    let other = other.as_deref();
    let both =
        |o: &str| current.target_groups.len() == 2 && current.target_groups.iter().all(|t| t == production || t == o);
    match (shifting, other) {
        (true, Some(o)) if both(o) => kept(),
        (true, Some(o)) => (
            Some(RuleAction::Weighted(vec![(production.clone(), 100), (o.to_string(), 0)])),
            Some(Change::new("forward", current.target_groups.join(","), format!("{production} (100), {o} (0)"))),
        ),
        // Back to rolling, but the service has not left its traffic-shifting strategy yet.
        (false, Some(o)) if service_shifts && both(o) => kept(),
        _ => (
            Some(RuleAction::Forward(production.clone())),
            (current.target_groups != [production.clone()])
                .then(|| Change::new("forward", current.target_groups.join(","), production)),
        ),
    }
}

/// Where a rule should match, and at which priority.
#[derive(Debug, Clone, Copy)]
pub struct Conditions<'a> {
    /// Hosts, sorted.
    pub hosts: &'a [String],
    /// Paths, sorted.
    pub paths: &'a [String],
    /// Priority.
    pub priority: i32,
}

/// Bring an existing rule (forward or redirect) to `wanted`, and to `action` when it is known;
/// `action_change` says how the action differs, if it does.
pub fn update_rule(
    current: &Rule,
    wanted: Conditions,
    action: Option<RuleAction>,
    action_change: Option<Change>,
    actions: &mut Vec<Action>,
) {
    let (mut current_hosts, mut current_paths) = (current.hosts.clone(), current.paths.clone());
    current_hosts.sort();
    current_paths.sort();
    let mut changes = Vec::new();
    if current_hosts != wanted.hosts {
        changes.push(Change::new("hosts", current_hosts.join(","), wanted.hosts.join(",")));
    }
    if current_paths != wanted.paths {
        changes.push(Change::new("paths", current_paths.join(","), wanted.paths.join(",")));
    }
    changes.extend(action_change);
    if let (false, Some(action)) = (changes.is_empty(), action) {
        actions.push(Action::ModifyRule {
            arn: current.arn.clone(),
            hosts: wanted.hosts.to_vec(),
            paths: wanted.paths.to_vec(),
            action,
            changes,
        });
    }
    if current.priority != Some(wanted.priority) {
        actions.push(Action::SetRulePriority {
            arn: current.arn.clone(),
            priority: wanted.priority,
            was: current.priority,
        });
    }
}
