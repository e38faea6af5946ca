//! The test-traffic listener rule of a blueGreen, canary or linear rollout
//! (`spec.service.rollout.strategy.testTraffic`): the production rule's hosts and paths plus an
//! http-header condition, at a priority evaluated before the production rule's, forwarding to both
//! target groups. ECS moves its weights to the new revision before any production traffic moves
//! (TEST_TRAFFIC_SHIFT), so requests carrying the header reach only the new revision during a rollout.
//!
//! ECS names it by ARN in the load balancer's advancedConfiguration: a change of its conditions replaces
//! it, and the service update of the same plan names the new one.

use super::kind::{Kind, Planned, Scope, ownership_keys};
use super::listener_rule::forward;
use super::target_group;
use crate::api::ApiDeploymentSpec;
use crate::aws::HeaderMatch;
use crate::engine::model::{Desired, TestRuleState, sorted};
use crate::engine::names::owned_tags;
use crate::engine::vocabulary::{Action, Created, Ref, Resource};

/// The test-traffic rule kind.
pub struct TestRule;

/// The test rule the spec asks for: a traffic-shifting strategy with `testTraffic`, behind a load balancer.
pub fn desired(spec: &ApiDeploymentSpec) -> Option<TestRuleState> {
    let lb = spec.load_balancer.as_ref()?;
    let strategy = &spec.service.rollout.strategy;
    let test = strategy.test_traffic.as_ref().filter(|_| !strategy.is_rolling())?;
    Some(TestRuleState {
        listener_arn: lb.listener_arn.clone(),
        priority: test.priority,
        hosts: sorted(&lb.hosts),
        paths: sorted(&lb.paths),
        header: HeaderMatch { name: test.header.name.clone(), values: vec![test.header.value.clone()] },
    })
}

/// Whether `current` matches what `wanted` asks for (its priority aside).
fn same_conditions(current: &crate::aws::Rule, wanted: &TestRuleState) -> bool {
    let (mut hosts, mut paths) = (current.hosts.clone(), current.paths.clone());
    hosts.sort();
    paths.sort();
    let header = current.header.as_ref().map(|h| (h.name.to_ascii_lowercase(), &h.values));
    hosts == wanted.hosts
        && paths == wanted.paths
        && header == Some((wanted.header.name.to_ascii_lowercase(), &wanted.header.values))
}

impl Kind for TestRule {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let wanted = desired(scope.spec())?;
        let rules = scope.observed.listener_rules.as_ref()?;
        let ours: Vec<&str> =
            [scope.observed.rule(), scope.observed.test_rule()].into_iter().flatten().map(|r| r.arn.as_str()).collect();
        rules.iter().find(|r| r.priority == Some(wanted.priority) && !ours.contains(&r.arn.as_str())).map(|other| {
            format!(
                "priority {} on listener {} is taken by rule {}; choose a free \
                 service.rollout.strategy.testTraffic.priority",
                wanted.priority, wanted.listener_arn, other.arn
            )
        })
    }

    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        let (Some(wanted), Some((production, other))) = (&desired.test_rule, target_group::serving(scope, planned))
        else {
            return;
        };
        let create = |actions: &mut Vec<Action>| {
            actions.push(Action::CreateRule {
                listener_arn: wanted.listener_arn.clone(),
                priority: wanted.priority,
                hosts: wanted.hosts.clone(),
                paths: wanted.paths.clone(),
                target_group: production.clone(),
                alternate: other.clone(),
                header: Some(wanted.header.clone()),
                tags: owned_tags(scope.names(), &[]),
            });
            Ref::Created(Created::TestRule)
        };
        let service_shifts =
            scope.observed.service.as_ref().and_then(|s| s.deployment).is_some_and(|d| d.strategy.shifts_traffic());
        planned.test_rule = Some(match scope.observed.test_rule() {
            // Conditions changed, or it does not forward to both groups: the rule is replaced, never
            // modified (ModifyRule sets hosts and paths only, and a test rule without its header would
            // take production requests). The new one may need the same priority, so the old one goes
            // first; meanwhile test requests meet the production rule. The service names the new one.
            Some(current)
                if !same_conditions(current, wanted)
                    || forward(current, &production, other.as_ref(), true, service_shifts).1.is_some() =>
            {
                planned.actions.push(Action::DeleteRule { arn: current.arn.clone() });
                create(&mut planned.actions)
            }
            Some(current) => {
                if current.priority != Some(wanted.priority) {
                    planned.actions.push(Action::SetRulePriority {
                        arn: current.arn.clone(),
                        priority: wanted.priority,
                        was: current.priority,
                    });
                }
                Ref::Arn(current.arn.clone())
            }
            None => create(&mut planned.actions),
        });
    }

    // A test rule the spec dropped: after the service no longer names it.
    fn clean_up(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        if desired.test_rule.is_none()
            && let Some(current) = scope.observed.test_rule().filter(|_| target_group::owned(scope))
        {
            planned.actions.push(Action::DeleteRule { arn: current.arn.clone() });
        }
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(r) = scope.observed.test_rule().filter(|_| target_group::owned(scope)) {
            actions.push(Action::DeleteRule { arn: r.arn.clone() });
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(r) = scope.observed.test_rule().filter(|_| target_group::owned(scope)) {
            actions.push(Action::Untag { resource: Resource::Rule, arn: r.arn.clone(), keys: ownership_keys() });
        }
    }
}
