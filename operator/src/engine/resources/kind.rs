//! What a resource kind is ([`Kind`]) and what it works with: the [`Scope`] it reads and the [`Planned`]
//! pass it adds to. Every kind module imports this; it imports none of them.

use crate::api::ApiDeploymentSpec;
use crate::aws::Tags;
use crate::engine::model::Desired;
use crate::engine::names::{self, Names};
use crate::engine::observed::Observed;
use crate::engine::target::Target;
use crate::engine::vocabulary::{Action, Ref};

/// What every kind sees: the ApiDeployment and what was observed.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The ApiDeployment.
    pub target: &'a Target,
    /// What AWS holds.
    pub observed: &'a Observed,
}

impl<'a> Scope<'a> {
    /// The names derived from the ApiDeployment.
    pub fn names(&self) -> &'a Names {
        &self.target.names
    }

    /// The spec.
    pub fn spec(&self) -> &'a ApiDeploymentSpec {
        &self.target.spec
    }

    /// Whether `tags` (when read) mark a resource as ours.
    pub fn owns(&self, tags: Option<&Tags>) -> bool {
        tags.is_some_and(|t| names::is_owned(t, self.names()))
    }

    /// `what` exists and is not ours: the conflict message, with how to hand it over.
    pub fn not_owned(&self, what: &str) -> String {
        let owner = self.names().owner();
        format!(
            "{what} exists and is not owned by {owner}; ecsop never takes over what it did not create (tag it \
             {}={} and {}={owner} to hand it over)",
            names::TAG_MANAGED_BY,
            names::MANAGED_BY_VALUE,
            names::TAG_OWNER,
        )
    }
}

/// What the planning pass has built so far: the writes in order, and what later kinds refer to.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// The writes, in order.
    pub actions: Vec<Action>,
    /// Whether the desired revision was rolled back (the service is not sent to it again).
    pub rolled_back: bool,
    /// The task-definition revision the service should run.
    pub task_definition: Option<Ref>,
    /// That revision's ARN when it exists already.
    pub revision: Option<String>,
    /// The owned target group.
    pub target_group: Option<Ref>,
    /// The owned second target group (blueGreen, canary, linear, and after a switch back to rolling).
    pub alternate_target_group: Option<Ref>,
    /// The owned listener rule.
    pub rule: Option<Ref>,
    /// The owned test-traffic rule.
    pub test_rule: Option<Ref>,
    /// The owned HTTPS redirect rule.
    pub redirect_rule: Option<Ref>,
    /// The owned Cloud Map service the service registers in.
    pub registry: Option<Ref>,
    /// The ECS service.
    pub service: Option<Ref>,
    /// What the service should record about the pieces (`ecsop.io/listener`, `ecsop.io/api`, ...).
    pub record: Tags,
    /// Keys the service records about pieces the spec dropped: removed with them, or every later run
    /// would look for them again.
    pub forget: Vec<String>,
}

/// One kind of AWS resource ecsop owns. Every step has a default that does nothing, so a kind
/// implements only the steps it takes part in.
pub trait Kind: Sync {
    /// Which of our names someone else's resource holds, as a message for the `ResourceConflict`
    /// condition.
    fn conflict(&self, _scope: &Scope) -> Option<String> {
        None
    }

    /// Writes that need no image (run before the image gates).
    fn prepare(&self, _scope: &Scope, _actions: &mut Vec<Action>) {}

    /// The writes that bring this kind to `desired`, in dependency order with the kinds before it.
    fn plan(&self, _scope: &Scope, _desired: &Desired, _planned: &mut Planned) {}

    /// Removals that must wait until every kind is planned (after the service stopped using them).
    fn clean_up(&self, _scope: &Scope, _desired: &Desired, _planned: &mut Planned) {}

    /// The deletion of what we own of this kind.
    fn teardown(&self, _scope: &Scope, _actions: &mut Vec<Action>) {}

    /// deletionPolicy Retain: the removal of ecsop's tags, everything left running.
    fn release(&self, _scope: &Scope, _actions: &mut Vec<Action>) {}
}

/// The ownership tag keys Retain removes from every kind.
pub fn ownership_keys() -> Vec<String> {
    vec![names::TAG_MANAGED_BY.into(), names::TAG_OWNER.into()]
}
