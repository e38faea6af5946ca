//! The planner: `plan(target, observed, now) -> Plan`. Pure: no IO, no clock it is not given.
//!
//! A plan is the ordered list of AWS writes that moves what was observed to what the spec wants, and
//! the status that results. It reads top to bottom: the gates ([`super::gates`]), then every resource
//! kind in dependency order ([`super::resources::KINDS`]), then the record of what was applied and the
//! rollout's assessment. Writes that need an ARN created earlier in the same plan refer to it with
//! [`Ref::Created`](super::vocabulary::Ref); the actor fills it in.

use chrono::{DateTime, Utc};

use super::gates;
use super::model::Desired;
use super::observed::Observed;
use super::resources::{self, KINDS, Planned, RELEASE, Scope, TEARDOWN, repository, service};
use super::rollout::{self, Rollout, RolloutState};
use super::target::Target;
use super::vocabulary::{Action, Assessment, Phase};
use crate::api::DeletionPolicy;

/// A plan: the writes, and the assessment of the observed state.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The desired state, when the image resolved.
    pub desired: Option<Desired>,
    /// The writes, in order.
    pub actions: Vec<Action>,
    /// The desired revision's ARN when it exists already.
    pub revision: Option<String>,
    /// The assessment.
    pub assessment: Assessment,
}

impl Plan {
    /// Whether the plan writes anything.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Plan the writes that bring AWS to `target`'s spec from `observed`, at time `now`.
pub fn plan(target: &Target, observed: &Observed, now: DateTime<Utc>) -> Plan {
    let scope = Scope { target, observed };
    let stopped = |actions, assessment| Plan { desired: None, actions, revision: None, assessment };

    // 1. Ownership: never write next to a resource with one of our names that someone else owns.
    if let Some(conflict) = gates::ownership(&scope) {
        return stopped(Vec::new(), conflict);
    }
    // 2. Writes that need no image: the repository, so that a pipeline can push the first image.
    let mut actions = Vec::new();
    for kind in KINDS {
        kind.prepare(&scope, &mut actions);
    }
    // 3. The image: resolved to a digest, and scanned clean when the spec has a scan gate.
    let image = match gates::image(&scope, &mut actions) {
        Ok(image) => image,
        Err(assessment) => return stopped(actions, *assessment),
    };

    // 4. Every kind, in dependency order; then the removals that wait for the service.
    let desired = resources::desired(target, &image);
    let revision = observed.matching_revision.as_ref().map(|td| td.arn.as_str());
    let rollout_spec = &target.spec.service.rollout;
    let deadline = i64::from(rollout_spec.progress_deadline_seconds) + rollout_spec.strategy.bake_seconds();
    let history = observed.service_deployments.as_deref();
    let rollout = rollout::assess(observed.service.as_ref(), revision, deadline, now, history);
    let mut planned = Planned { actions, rolled_back: rollout.state.rolled_back(), ..Default::default() };
    for kind in KINDS {
        kind.plan(&scope, &desired, &mut planned);
    }
    for kind in KINDS {
        kind.clean_up(&scope, &desired, &mut planned);
    }

    // 5. The record of what was applied, on the service: the last write.
    service::record(&scope, &desired, &image, &rollout, &mut planned);

    // 6. The assessment; a completed rollout then moves the promotion tag.
    let assessment = assess(target, observed, &planned.actions, rollout, now);
    let ready = assessment.phase == Phase::Ready;
    repository::promote(&scope, &image, planned.service.as_ref(), ready, &mut planned.actions);
    Plan { desired: Some(desired), actions: planned.actions, revision: planned.revision, assessment }
}

/// The assessment: what the conditions say about the observed state and the planned writes.
fn assess(
    target: &Target,
    observed: &Observed,
    actions: &[Action],
    rollout: Rollout,
    _now: DateTime<Utc>,
) -> Assessment {
    let writes_service = actions.iter().any(|a| match a {
        Action::CreateService { .. } => true,
        Action::UpdateService { task_definition, .. } => task_definition.is_some(),
        _ => false,
    });
    if target.spec.suspend {
        return Assessment {
            phase: if rollout.state == RolloutState::Complete { Phase::Ready } else { Phase::Progressing },
            reason: "Suspended".into(),
            message: format!("suspended: ecsop observes and writes nothing; {}", rollout.message),
            rollout: Some(rollout),
        };
    }
    if writes_service {
        let creating = observed.service.is_none();
        return Assessment {
            phase: Phase::Progressing,
            reason: if creating { "Creating".into() } else { "RolloutStarted".into() },
            message: if creating {
                "creating the ECS service".into()
            } else {
                "updating the ECS service to the new revision".into()
            },
            rollout: Some(rollout),
        };
    }
    let (phase, reason) = match rollout.state {
        RolloutState::Complete if actions.is_empty() => (Phase::Ready, "RolloutComplete"),
        RolloutState::Complete => (Phase::Progressing, "Updating"),
        RolloutState::InProgress | RolloutState::Pending => (Phase::Progressing, "RolloutInProgress"),
        RolloutState::Failed => (Phase::Stalled, "RolloutFailed"),
        RolloutState::RolledBack => (Phase::Stalled, "RolledBack"),
        RolloutState::AnalysisFailed => (Phase::Stalled, "AnalysisFailed"),
        RolloutState::Aborted => (Phase::Stalled, "Aborted"),
        RolloutState::DeadlineExceeded => (Phase::Stalled, "ProgressDeadlineExceeded"),
    };
    Assessment { phase, reason: reason.into(), message: rollout.message.clone(), rollout: Some(rollout) }
}

/// Plan the ordered teardown of everything `target` owns ([`TEARDOWN`]; docs/naming.md): traffic stops
/// first, then the service (scaled to zero, deleted, waited for), then what it used. With
/// deletionPolicy Retain, ecsop's tags are removed instead ([`RELEASE`]) and everything keeps running.
pub fn teardown(target: &Target, observed: &Observed) -> Vec<Action> {
    let scope = Scope { target, observed };
    let mut actions = Vec::new();
    if target.spec.deletion_policy == DeletionPolicy::Retain {
        for kind in RELEASE {
            kind.release(&scope, &mut actions);
        }
    } else {
        for kind in TEARDOWN {
            kind.teardown(&scope, &mut actions);
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiDeployment;
    use crate::api::TagMutability;
    use crate::aws::{Deployment, Repository, Service, TaskDefinitionInfo};
    use crate::engine::names::{Names, TAG_SPEC_HASH, is_owned, owned_tags, service_tags};
    use crate::engine::observed::ImageState;
    use crate::engine::target::PinnedImage;
    use crate::engine::vocabulary::{Created, Ref};

    fn target() -> Target {
        let value: serde_json::Value = serde_yaml::from_str(include_str!("../../tests/valid.yaml")).expect("yaml");
        let spec = serde_json::from_value::<ApiDeployment>(value).expect("typed").spec;
        Target { names: Names::new("prod", "books-api"), generation: Some(1), spec, region: "us-east-1".into() }
    }

    fn image() -> PinnedImage {
        PinnedImage {
            uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/books-api".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
        }
    }

    fn empty_account() -> Observed {
        Observed {
            deep: true,
            image: Some(ImageState::Pinned(image())),
            revisions: Some(vec![]),
            listener_rules: Some(vec![]),
            ..Default::default()
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").expect("time").with_timezone(&Utc)
    }

    fn kinds(plan: &Plan) -> Vec<String> {
        plan.actions
            .iter()
            .map(|a| serde_json::to_value(a).expect("json")["action"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    fn service(target: &Target, td: &str, deployments: Vec<Deployment>) -> Service {
        Service {
            arn: "arn:aws:ecs:us-east-1:123456789012:service/api-cluster/books-api".into(),
            name: "books-api".into(),
            status: "ACTIVE".into(),
            task_definition: td.into(),
            desired_count: 2,
            running_count: 2,
            pending_count: 0,
            deployments,
            events: vec![],
            load_balancers: vec![],
            registries: vec![],
            network: Default::default(),
            deployment: None,
            alarms: None,
            health_check_grace_period_seconds: None,
            tags: owned_tags(&target.names, &[]),
        }
    }

    fn deployment(status: &str, td: &str, state: &str) -> Deployment {
        Deployment {
            id: format!("ecs-svc/{status}{state}"),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: Some(state.into()),
            rollout_state_reason: None,
            desired_count: 2,
            running_count: 2,
            pending_count: 0,
            failed_tasks: 0,
            created_at: Some(now()),
            updated_at: Some(now()),
        }
    }

    fn revision(target: &Target, n: i32, hash: &str) -> TaskDefinitionInfo {
        TaskDefinitionInfo {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/prod-books-api:{n}"),
            family: "prod-books-api".into(),
            revision: n,
            status: "ACTIVE".into(),
            tags: owned_tags(&target.names, &[(TAG_SPEC_HASH, hash)]),
        }
    }

    #[test]
    fn an_empty_account_gets_everything_in_dependency_order() {
        let t = target();
        let p = plan(&t, &empty_account(), now());
        assert_eq!(
            kinds(&p),
            [
                "createRepository",
                "registerTaskDefinition",
                "createTargetGroup",
                "createRule",
                "createDiscoveryService",
                "createService",
                "registerScalableTarget",
                "putScalingPolicy",
                "tagService"
            ]
        );
        assert_eq!(p.assessment.phase, Phase::Progressing);
        assert_eq!(p.assessment.reason, "Creating");
        // The service and rule point at what this plan creates.
        let create = p.actions.iter().find(|a| matches!(a, Action::CreateService { .. })).expect("create");
        let Action::CreateService { task_definition, target_group, registry, config } = create else { unreachable!() };
        assert_eq!(task_definition, &Ref::Created(Created::TaskDefinition));
        assert_eq!(target_group, &Some(Ref::Created(Created::TargetGroup)));
        assert_eq!(registry, &Some(Ref::Created(Created::Discovery)));
        assert!(is_owned(&config.tags, &t.names));
        // Tags: every created resource is owned.
        for a in &p.actions {
            if let Action::RegisterTaskDefinition { tags, .. } | Action::CreateRule { tags, .. } = a {
                assert!(is_owned(tags, &t.names), "{a:?}");
            }
        }
    }

    #[test]
    fn a_missing_image_creates_only_the_repository_and_stalls() {
        let t = target();
        let observed = Observed {
            deep: true,
            image: Some(ImageState::NotFound("image books-api:1.4.2 not found".into())),
            ..Default::default()
        };
        let p = plan(&t, &observed, now());
        // One creation, the lifecycle policy one of its fields.
        assert_eq!(kinds(&p), ["createRepository"]);
        let Action::CreateRepository { repository, .. } = &p.actions[0] else { unreachable!() };
        assert!(
            repository.lifecycle_policy.as_deref().is_some_and(|l| l.contains("\"countNumber\":30")),
            "{repository:?}"
        );
        assert_eq!((p.assessment.phase, p.assessment.reason.as_str()), (Phase::Stalled, "ImageNotFound"));
        assert!(p.assessment.message.contains("books-api:1.4.2"));
    }

    #[test]
    fn a_service_owned_by_someone_else_is_never_touched() {
        let t = target();
        let mut s = service(&t, "arn:x:1", vec![]);
        s.tags.clear();
        let observed = Observed { service: Some(s), ..empty_account() };
        let p = plan(&t, &observed, now());
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.assessment.reason, "ResourceConflict");
        assert!(p.assessment.message.contains("not owned by prod/books-api"), "{}", p.assessment.message);
    }

    #[test]
    fn a_taken_priority_is_a_conflict_naming_the_field() {
        let t = target();
        let mut observed = empty_account();
        observed.listener_rules = Some(vec![crate::aws::Rule {
            arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/a/1/2/3".into(),
            priority: Some(10),
            hosts: vec![],
            paths: vec!["/other*".into()],
            target_groups: vec!["arn:other".into()],
            weights: vec![],
            header: None,
            redirect: None,
        }]);
        let p = plan(&t, &observed, now());
        assert!(p.actions.is_empty());
        assert!(p.assessment.message.contains("loadBalancer.priority"), "{}", p.assessment.message);
    }

    #[test]
    fn a_rolled_back_revision_is_not_retried_and_is_recorded() {
        let t = target();
        let desired = resources::desired(&t, &image());
        let ours = revision(&t, 2, &desired.task_definition_hash);
        let old = "arn:aws:ecs:us-east-1:123456789012:task-definition/prod-books-api:1";
        let s = service(
            &t,
            old,
            vec![deployment("PRIMARY", old, "IN_PROGRESS"), deployment("ACTIVE", &ours.arn, "FAILED")],
        );
        let observed = Observed { service: Some(s), matching_revision: Some(ours.clone()), ..empty_account() };
        let p = plan(&t, &observed, now());
        let updates_td = p.actions.iter().any(|a| matches!(a, Action::UpdateService { task_definition: Some(_), .. }));
        assert!(!updates_td, "{:?}", p.actions);
        assert_eq!((p.assessment.phase, p.assessment.reason.as_str()), (Phase::Stalled, "RolledBack"));
        let tags = p.actions.iter().find_map(|a| match a {
            Action::TagService { tags, .. } => Some(tags.clone()),
            _ => None,
        });
        assert_eq!(tags.expect("tagged").get(service_tags::FAILED_REVISION), Some(&ours.arn));
    }

    #[test]
    fn an_identical_spec_reuses_its_revision_and_old_ones_are_pruned() {
        let t = target();
        let desired = resources::desired(&t, &image());
        // Revisions 1..=8 of ours, newest first; revision 3 matches the spec.
        let revisions: Vec<_> = (1..=8)
            .rev()
            .map(|n| revision(&t, n, if n == 3 { &desired.task_definition_hash } else { "other" }))
            .collect();
        let current = revisions[0].arn.clone(); // :8 runs now
        let s = service(&t, &current, vec![deployment("PRIMARY", &current, "COMPLETED")]);
        let observed = Observed {
            service: Some(s),
            matching_revision: Some(revisions[5].clone()),
            revisions: Some(revisions.clone()),
            ..empty_account()
        };
        let p = plan(&t, &observed, now());
        assert!(!p.actions.iter().any(|a| matches!(a, Action::RegisterTaskDefinition { .. })));
        let update = p.actions.iter().find_map(|a| match a {
            Action::UpdateService { task_definition, .. } => task_definition.clone(),
            _ => None,
        });
        assert_eq!(update, Some(Ref::Arn(revisions[5].arn.clone())), "back to revision 3");
        let pruned: Vec<i32> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::DeregisterTaskDefinition { arn } => Some(resources::task_definition::revision_of(arn)),
                _ => None,
            })
            .collect();
        // Keep 5: the running :8 and the reused :3 plus the newest others (:7, :6, :5); prune :4, :2, :1.
        assert_eq!(pruned, [4, 2, 1]);
    }

    #[test]
    fn teardown_goes_rule_service_target_group_then_the_rest() {
        let t = target();
        let tg_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/prod-books-api-x/1";
        let observed = Observed {
            service: Some(service(&t, "arn:td:1", vec![])),
            target_group: Some(crate::aws::TargetGroup {
                arn: tg_arn.into(),
                name: "prod-books-api-x".into(),
                vpc_id: "vpc-1".into(),
                port: 8080,
                health: resources::desired(&t, &image()).target_group.expect("tg").health,
                load_balancer_arns: vec![],
            }),
            target_group_tags: Some(owned_tags(&t.names, &[])),
            listener_rules: Some(vec![crate::aws::Rule {
                arn: "arn:rule/1".into(),
                priority: Some(10),
                hosts: vec![],
                paths: vec![],
                target_groups: vec![tg_arn.into()],
                weights: vec![],
                header: None,
                redirect: None,
            }]),
            repository: Some(Repository {
                name: "books-api".into(),
                arn: "arn:aws:ecr:us-east-1:123456789012:repository/books-api".into(),
                uri: image().uri,
                scan_on_push: true,
                tag_mutability: TagMutability::Immutable,
            }),
            repository_tags: Some(owned_tags(&t.names, &[])),
            revisions: Some(vec![revision(&t, 1, "h")]),
            ..Default::default()
        };
        let order: Vec<String> = teardown(&t, &observed)
            .iter()
            .map(|a| serde_json::to_value(a).expect("json")["action"].as_str().unwrap_or("?").to_string())
            .collect();
        assert_eq!(
            order,
            [
                "deleteRule",
                "deleteService",
                "waitServiceGone",
                "deleteTargetGroup",
                "deregisterTaskDefinition",
                "deleteRepository"
            ]
        );

        let mut retain = t.clone();
        retain.spec.deletion_policy = crate::api::DeletionPolicy::Retain;
        let actions = teardown(&retain, &observed);
        assert!(actions.iter().all(|a| matches!(a, Action::Untag { .. })), "{actions:?}");
        assert_eq!(actions.len(), 5, "rule, target group, repository, revision, service");
    }
}
