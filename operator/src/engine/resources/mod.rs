//! The AWS resources ecsop owns: one module per kind, and the registry that orders them.
//!
//! Each module holds everything about its kind: the part of the desired state it derives from the spec,
//! how it reads AWS for it (where the reading is its own), the ownership check, the comparison that
//! yields writes, and its teardown. The planner ([`super::plan`]) knows no kind by name: it runs the
//! gates, then every kind of [`KINDS`] in order.
//!
//! Adding a kind: write its module, implement [`Kind`], and register it here (the three lists below and
//! [`desired`] when it has desired state). CONTRIBUTING.md walks through it.

pub mod alarms;
pub mod discovery;
pub mod gateway;
pub mod listener_rule;
pub mod redirect_rule;
pub mod repository;
pub mod scaling;
pub mod service;
pub mod target_group;
pub mod task_definition;
pub mod test_rule;

pub mod kind;

pub use kind::{Kind, Planned, Scope, ownership_keys};

use super::model::Desired;
use super::target::{PinnedImage, Target};

/// The kinds in dependency order: a kind's writes may use what the kinds before it planned (the task
/// definition, target group and Cloud Map service before the ECS service that names them; the ECS
/// service before its autoscaling). Ownership conflicts are checked in this order too.
pub static KINDS: &[&dyn Kind] = &[
    &repository::Repository,
    &task_definition::TaskDefinitions,
    &target_group::TargetGroup,
    &target_group::AlternateTargetGroup,
    &listener_rule::ListenerRule,
    &test_rule::TestRule,
    &redirect_rule::RedirectRule,
    // Before the service, which names them as deployment alarms.
    &alarms::Alarms,
    &discovery::Discovery,
    &service::Service,
    // After the Cloud Map service, which the integration sends to.
    &gateway::Gateway,
    &scaling::Scaling,
];

/// The kinds in teardown order: traffic stops first (API Gateway routes, the listener rule and its
/// redirect), then the alarms watching the service, its autoscaling, the service itself (deleted and
/// waited for), and what it used: the target group, Cloud Map, the revisions, the repository.
pub static TEARDOWN: &[&dyn Kind] = &[
    &gateway::Gateway,
    &test_rule::TestRule,
    &listener_rule::ListenerRule,
    &redirect_rule::RedirectRule,
    &alarms::Alarms,
    &scaling::Scaling,
    &service::Service,
    &target_group::TargetGroup,
    &target_group::AlternateTargetGroup,
    &discovery::Discovery,
    &task_definition::TaskDefinitions,
    &repository::Repository,
];

/// The kinds in the order deletionPolicy Retain untags them. The service goes last: it records where
/// the other pieces are, so an interrupted release can still find them.
pub static RELEASE: &[&dyn Kind] = &[
    &test_rule::TestRule,
    &listener_rule::ListenerRule,
    &target_group::TargetGroup,
    &target_group::AlternateTargetGroup,
    &discovery::Discovery,
    &repository::Repository,
    &redirect_rule::RedirectRule,
    &alarms::Alarms,
    &task_definition::TaskDefinitions,
    &service::Service,
];

/// The desired state of `target` with its image pinned as `image`, each part from its kind.
pub fn desired(target: &Target, image: &PinnedImage) -> Desired {
    let spec = &target.spec;
    let task_definition = task_definition::render(&target.names, spec, &image.reference(), &target.region);
    let task_definition_hash = task_definition.content_hash();
    let alarms = alarms::desired(target);
    Desired {
        repository: repository::desired(spec),
        task_definition,
        task_definition_hash,
        target_group: target_group::desired(target),
        alternate_target_group: target_group::desired_alternate(target),
        rule: listener_rule::desired(spec),
        test_rule: test_rule::desired(spec),
        redirect: redirect_rule::desired(spec),
        discovery: discovery::desired(target),
        gateway: gateway::desired(target),
        service: service::desired(target, &alarms),
        alarms,
        scaling: scaling::desired(target),
        revision_history_limit: usize::try_from(spec.revision_history_limit.max(1)).unwrap_or(1),
        deletion_policy: spec.deletion_policy,
    }
}
