//! The ECR repository ecsop owns when `ecr.create` is set: created before any image exists (so a
//! pipeline can push the first one), kept at the spec's scan-on-push, tag mutability and lifecycle
//! policy, deleted last. Also the promotion tag, which ecsop moves in the image's repository after a
//! completed rollout whether or not it owns the repository.

use super::kind::{Kind, Scope, ownership_keys};
use crate::api::ApiDeploymentSpec;
use crate::engine::describe::short_digest;
use crate::engine::model::RepositoryState;
use crate::engine::names::owned_tags;
use crate::engine::target::{ImageSource, PinnedImage};
use crate::engine::vocabulary::{Action, Ref, Resource};

/// The repository kind.
pub struct Repository;

/// The repository `spec` owns (`ecr.create`), if any.
pub fn desired(spec: &ApiDeploymentSpec) -> Option<RepositoryState> {
    spec.ecr.as_ref().filter(|e| e.create).map(|e| RepositoryState {
        name: spec.image.repository.clone(),
        scan_on_push: e.scan_on_push,
        tag_mutability: e.tag_mutability,
        lifecycle_policy: e.keep_last_images.map(lifecycle_policy),
    })
}

/// The ECR lifecycle policy keeping the newest `keep` images.
pub fn lifecycle_policy(keep: i32) -> String {
    serde_json::json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the last {keep} images (managed by ecsop)"),
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
            "action": {"type": "expire"}
        }]
    })
    .to_string()
}

fn owned(scope: &Scope) -> bool {
    scope.spec().ecr.as_ref().is_some_and(|e| e.create)
}

impl Kind for Repository {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let observed = scope.observed;
        match (&observed.repository, &observed.repository_tags) {
            (Some(repo), Some(_)) if owned(scope) && !scope.owns(observed.repository_tags.as_ref()) => {
                Some(scope.not_owned(&format!("ECR repository {}", repo.name)))
            }
            _ => None,
        }
    }

    // The repository comes before the image: owning it lets a pipeline push the first image.
    fn prepare(&self, scope: &Scope, actions: &mut Vec<Action>) {
        let Some(repo) = desired(scope.spec()) else {
            return;
        };
        let observed = scope.observed;
        match &observed.repository {
            None if observed.deep => {
                actions
                    .push(Action::CreateRepository { repository: repo.clone(), tags: owned_tags(scope.names(), &[]) });
            }
            None => {}
            Some(current) => {
                if current.scan_on_push != repo.scan_on_push {
                    actions.push(Action::SetScanOnPush {
                        name: repo.name.clone(),
                        scan_on_push: repo.scan_on_push,
                        was: current.scan_on_push,
                    });
                }
                if current.tag_mutability != repo.tag_mutability {
                    actions.push(Action::SetTagMutability {
                        name: repo.name.clone(),
                        tag_mutability: repo.tag_mutability,
                    });
                }
                if let (Some(policy), Some(current_policy)) = (&repo.lifecycle_policy, &observed.lifecycle_policy)
                    && !same_json(current_policy.as_deref(), policy)
                {
                    actions.push(Action::PutLifecyclePolicy { name: repo.name.clone(), policy: policy.clone() });
                }
            }
        }
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(r) = ours(scope) {
            actions.push(Action::DeleteRepository { name: r.name.clone() });
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        if let Some(r) = ours(scope) {
            actions.push(Action::Untag { resource: Resource::Repository, arn: r.arn.clone(), keys: ownership_keys() });
        }
    }
}

/// The repository, when the spec owns it and it is tagged as ours.
fn ours<'a>(scope: &Scope<'a>) -> Option<&'a crate::aws::Repository> {
    let observed = scope.observed;
    observed.repository.as_ref().filter(|_| owned(scope) && scope.owns(observed.repository_tags.as_ref()))
}

fn same_json(a: Option<&str>, b: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    a.and_then(parse).is_some_and(|a| Some(a) == parse(b))
}

/// After a completed rollout of `image` (`ready`), the promotion tag follows it, and the service
/// records where it put it. Bookkeeping, not part of the rollout: it never holds Ready back.
pub fn promote(scope: &Scope, image: &PinnedImage, service: Option<&Ref>, ready: bool, actions: &mut Vec<Action>) {
    let spec = scope.spec();
    if let (Some(tag), Some(promoted), true, Some(Ref::Arn(service))) =
        (&spec.image.promotion_tag, &scope.observed.promoted, ready, service)
        && promoted.as_deref() != Some(image.digest.as_str())
        && let ImageSource::Ecr { registry_id, repository } = ImageSource::parse(&spec.image.repository)
    {
        actions.push(Action::PromoteImage {
            registry_id,
            repository,
            digest: image.digest.clone(),
            tag: tag.clone(),
            service: service.clone(),
            was: promoted.as_deref().map(short_digest).unwrap_or("-").to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_policy_keeps_the_last_n_images() {
        let policy: serde_json::Value = serde_json::from_str(&lifecycle_policy(30)).expect("json");
        assert_eq!(policy["rules"][0]["selection"]["countNumber"], 30);
        assert_eq!(policy["rules"][0]["action"]["type"], "expire");
    }
}
