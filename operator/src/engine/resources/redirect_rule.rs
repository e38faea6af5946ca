//! The HTTP-to-HTTPS redirect rule ecsop owns when the spec has `loadBalancer.httpsRedirect`: on the
//! plain-HTTP listener, at the main rule's priority and conditions, answering 301 to HTTPS. The service
//! records it (`ecsop.io/redirect-rule`), so dropping or moving it removes the old one.

use super::kind::{Kind, Planned, Scope, ownership_keys};
use super::listener_rule::{Conditions, update_rule};
use crate::api::ApiDeploymentSpec;
use crate::aws::{Redirect, Rule, RuleAction};
use crate::engine::model::{Desired, RedirectState, sorted};
use crate::engine::names::{Names, is_owned, owned_tags, service_tags};
use crate::engine::observed::Observed;
use crate::engine::vocabulary::{Action, Change, Created, Ref, Resource};

/// The redirect-rule kind.
pub struct RedirectRule;

/// The redirect rule the spec asks for, if any.
pub fn desired(spec: &ApiDeploymentSpec) -> Option<RedirectState> {
    spec.load_balancer.as_ref().and_then(|lb| {
        lb.https_redirect.as_ref().map(|r| RedirectState {
            listener_arn: r.listener_arn.clone(),
            priority: lb.priority,
            hosts: sorted(&lb.hosts),
            paths: sorted(&lb.paths),
            port: r.port.to_string(),
        })
    })
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

/// Ours as [`redirect_rule`] finds it, for the spec's priority.
fn ours<'a>(scope: &Scope<'a>) -> Option<&'a Rule> {
    let lb = scope.spec().load_balancer.as_ref()?;
    redirect_rule(scope.names(), lb.priority, scope.observed)
}

impl Kind for RedirectRule {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let observed = scope.observed;
        let lb = scope.spec().load_balancer.as_ref()?;
        let r = lb.https_redirect.as_ref()?;
        // The tags of the rule at our priority are read (deep) only when there is one.
        let tags = observed.redirect_rule_tags.as_ref()?;
        let other =
            observed.redirect_listener_rules.as_ref()?.iter().find(|rule| rule.priority == Some(lb.priority))?;
        (!scope.owns(Some(tags))).then(|| {
            format!(
                "priority {} on listener {} is taken by rule {}; choose a free loadBalancer.priority",
                lb.priority, r.listener_arn, other.arn
            )
        })
    }

    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        let observed = scope.observed;
        let recorded = observed.service.as_ref().and_then(|s| s.tags.get(service_tags::REDIRECT_RULE)).cloned();
        let redirect_ref = desired.redirect.as_ref().map(|r| plan_redirect(scope, r, &mut planned.actions));
        if let Some(old) = &recorded
            && !matches!(&redirect_ref, Some(Ref::Arn(a)) if a == old)
        {
            // The spec dropped the redirect or moved it to another listener.
            planned.actions.push(Action::DeleteRule { arn: old.clone() });
        }
        if recorded.is_some() && redirect_ref.is_none() {
            planned.forget.push(service_tags::REDIRECT_RULE.to_string());
        }
        planned.redirect_rule = redirect_ref;
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        let service = scope.observed.service.as_ref().filter(|s| scope.owns(Some(&s.tags)));
        match (ours(scope), service.and_then(|s| s.tags.get(service_tags::REDIRECT_RULE))) {
            (Some(r), _) => actions.push(Action::DeleteRule { arn: r.arn.clone() }),
            (None, Some(recorded)) => actions.push(Action::DeleteRule { arn: recorded.clone() }),
            (None, None) => {}
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(r) = ours(scope) {
            actions.push(Action::Untag { resource: Resource::Rule, arn: r.arn.clone(), keys: ownership_keys() });
        }
    }
}

fn plan_redirect(scope: &Scope, wanted: &RedirectState, actions: &mut Vec<Action>) -> Ref {
    let redirect = Redirect::https(&wanted.port);
    let Some(current) = redirect_rule(scope.names(), wanted.priority, scope.observed) else {
        actions.push(Action::CreateRedirectRule {
            listener_arn: wanted.listener_arn.clone(),
            priority: wanted.priority,
            hosts: wanted.hosts.clone(),
            paths: wanted.paths.clone(),
            port: wanted.port.clone(),
            tags: owned_tags(scope.names(), &[]),
        });
        return Ref::Created(Created::RedirectRule);
    };
    let action_change = (current.redirect.as_ref() != Some(&redirect)).then(|| {
        let was = current.redirect.as_ref().map(|r| format!("{}:{} ({})", r.protocol, r.port, r.status_code));
        Change::new("redirect", was.unwrap_or("-".into()), format!("HTTPS:{} (HTTP_301)", wanted.port))
    });
    let action = Some(RuleAction::Redirect(redirect));
    let conditions = Conditions { hosts: &wanted.hosts, paths: &wanted.paths, priority: wanted.priority };
    update_rule(current, conditions, action, action_change, actions);
    Ref::Arn(current.arn.clone())
}
