//! The task-definition revisions of the family `<namespace>-<name>`: rendered from the spec with the
//! image pinned, registered once per distinct content (the `ecsop.io/spec-hash` tag lets an identical
//! spec reuse its revision, so re-applying never piles up revisions), and pruned beyond
//! `revisionHistoryLimit`, never one a deployment still uses.

use std::collections::BTreeSet;

use super::kind::{Kind, Planned, Scope, ownership_keys};
use crate::api::{ApiDeploymentSpec, Architecture};
use crate::aws::taskdef::{Container, HealthCheck, Logs};
use crate::aws::{AwsError, Clients, ErrorKind, TaskDefinition, TaskDefinitionInfo};
use crate::engine::model::Desired;
use crate::engine::names::{Names, TAG_SPEC_HASH, is_owned, owned_tags};
use crate::engine::vocabulary::{Action, Created, Ref, Resource};

/// The task-definition kind.
pub struct TaskDefinitions;

/// Render the task definition of `spec` with the image pinned to `image_uri` (`repo@sha256:...`).
pub fn render(names: &Names, spec: &ApiDeploymentSpec, image_uri: &str, region: &str) -> TaskDefinition {
    let c = &spec.container;
    TaskDefinition {
        family: names.family(),
        cpu: c.cpu.to_string(),
        memory: c.memory.to_string(),
        cpu_architecture: match c.architecture {
            Architecture::X86_64 => "X86_64".into(),
            Architecture::Arm64 => "ARM64".into(),
        },
        execution_role_arn: c.execution_role_arn.clone(),
        task_role_arn: c.task_role_arn.clone(),
        container: Container {
            name: names.container().to_string(),
            image: image_uri.to_string(),
            port: c.port,
            command: c.command.clone(),
            environment: c.env.clone(),
            secrets: c.secrets.clone(),
            health_check: c.health_check.as_ref().map(|h| HealthCheck {
                command: h.command.clone(),
                interval: h.interval_seconds,
                timeout: h.timeout_seconds,
                retries: h.retries,
                start_period: h.start_period_seconds,
            }),
            logs: c.log_group.as_ref().map(|group| Logs {
                group: group.clone(),
                region: region.to_string(),
                stream_prefix: names.service().to_string(),
            }),
        },
    }
}

impl Kind for TaskDefinitions {
    // Reuse the revision with our content hash, else register one.
    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        match &scope.observed.matching_revision {
            Some(td) => {
                planned.task_definition = Some(Ref::Arn(td.arn.clone()));
                planned.revision = Some(td.arn.clone());
            }
            None => {
                let tags = owned_tags(scope.names(), &[(TAG_SPEC_HASH, &desired.task_definition_hash)]);
                planned.actions.push(Action::RegisterTaskDefinition {
                    definition: Box::new(desired.task_definition.clone()),
                    tags,
                });
                planned.task_definition = Some(Ref::Created(Created::TaskDefinition));
            }
        }
    }

    // Prune our old revisions beyond the history limit; never one a deployment still uses.
    fn clean_up(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        let observed = scope.observed;
        let Some(revisions) = &observed.revisions else {
            return;
        };
        let revision = &planned.revision;
        let mut in_use: BTreeSet<&str> = BTreeSet::new();
        if let Some(s) = &observed.service {
            in_use.insert(s.task_definition.as_str());
            in_use.extend(s.deployments.iter().map(|d| d.task_definition.as_str()));
        }
        if let Some(r) = revision {
            in_use.insert(r.as_str());
        }
        // The limit counts every revision kept: the ones in use first, then the newest others.
        let keep = desired.revision_history_limit.saturating_sub(usize::from(revision.is_none()));
        let active: Vec<_> = revisions.iter().filter(|td| td.status == "ACTIVE").collect();
        let in_use_count = active.iter().filter(|td| in_use.contains(td.arn.as_str())).count();
        let mut slots = keep.saturating_sub(in_use_count);
        for td in active {
            if in_use.contains(td.arn.as_str()) {
                continue;
            }
            if slots > 0 {
                slots -= 1;
            } else {
                planned.actions.push(Action::DeregisterTaskDefinition { arn: td.arn.clone() });
            }
        }
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        for arn in active(scope) {
            actions.push(Action::DeregisterTaskDefinition { arn: arn.to_string() });
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        for arn in active(scope) {
            actions.push(Action::Untag {
                resource: Resource::TaskDefinition,
                arn: arn.to_string(),
                keys: [ownership_keys(), vec![TAG_SPEC_HASH.into()]].concat(),
            });
        }
    }
}

/// Our ACTIVE revisions, as observed (every one listed is ours).
fn active<'a>(scope: &Scope<'a>) -> Vec<&'a str> {
    scope.observed.revisions.iter().flatten().filter(|td| td.status == "ACTIVE").map(|td| td.arn.as_str()).collect()
}

/// Find our ACTIVE revision whose content hash matches `desired`'s, and list our ACTIVE revisions
/// (newest first).
pub async fn find(
    clients: &Clients,
    names: &Names,
    desired: &Desired,
) -> Result<(Option<TaskDefinitionInfo>, Vec<TaskDefinitionInfo>), AwsError> {
    let hash = &desired.task_definition_hash;
    let revisions = owned_revisions(clients, names).await?;
    let found = revisions
        .iter()
        .find(|td| td.family == names.family() && td.status == "ACTIVE" && td.tags.get(TAG_SPEC_HASH) == Some(hash))
        .cloned();
    Ok((found, revisions))
}

/// Our ACTIVE revisions of the family, newest first, with their tags.
pub async fn owned_revisions(clients: &Clients, names: &Names) -> Result<Vec<TaskDefinitionInfo>, AwsError> {
    let mut revisions = Vec::new();
    each_revision(clients, &names.family(), |td| {
        if is_owned(&td.tags, names) {
            revisions.push(td);
        }
        true
    })
    .await?;
    Ok(revisions)
}

/// The ACTIVE revision of `family` tagged with `spec_hash`, newest first: what a registration whose
/// answer was lost made.
pub async fn registered(
    clients: &Clients,
    family: &str,
    spec_hash: &str,
) -> Result<Option<TaskDefinitionInfo>, AwsError> {
    let mut found = None;
    each_revision(clients, family, |td| {
        if td.status == "ACTIVE" && td.tags.get(TAG_SPEC_HASH).map(String::as_str) == Some(spec_hash) {
            found = Some(td);
        }
        found.is_none()
    })
    .await?;
    Ok(found)
}

/// Describe the ACTIVE revisions of `family` one by one, newest first, while `visit` answers true; a
/// revision deregistered meanwhile is skipped.
async fn each_revision(
    clients: &Clients,
    family: &str,
    mut visit: impl FnMut(TaskDefinitionInfo) -> bool,
) -> Result<(), AwsError> {
    for arn in clients.ecs.list_task_definitions(family).await? {
        match clients.ecs.task_definition(&arn).await {
            Ok(td) => {
                if !visit(td) {
                    break;
                }
            }
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The revision number at the end of a task-definition ARN.
pub fn revision_of(arn: &str) -> i32 {
    arn.rsplit(':').next().and_then(|r| r.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiDeployment;

    fn spec() -> ApiDeploymentSpec {
        let yaml = include_str!("../../../tests/valid.yaml");
        let value: serde_json::Value = serde_yaml::from_str(yaml).expect("yaml");
        serde_json::from_value::<ApiDeployment>(value).expect("typed").spec
    }

    const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/books-api@sha256:aa";

    #[test]
    fn renders_the_spec_with_the_pinned_image() {
        let names = Names::new("prod", "books-api");
        let td = render(&names, &spec(), IMAGE, "us-east-1");
        assert_eq!(td.family, "prod-books-api");
        assert_eq!((td.cpu.as_str(), td.memory.as_str()), ("256", "512"));
        assert_eq!(td.container.image, IMAGE);
        assert_eq!(td.container.port, 8080);
        assert_eq!(td.container.secrets.len(), 1);
        assert_eq!(td.container.logs.as_ref().map(|l| l.stream_prefix.as_str()), Some("books-api"));
        assert_eq!(td.container.health_check.as_ref().map(|h| h.interval), Some(10));
    }

    #[test]
    fn the_hash_is_stable_and_follows_every_change() {
        let names = Names::new("prod", "books-api");
        let base = render(&names, &spec(), IMAGE, "us-east-1");
        assert_eq!(base.content_hash(), render(&names, &spec(), IMAGE, "us-east-1").content_hash());
        assert_eq!(base.content_hash().len(), 16);

        let other_image = render(&names, &spec(), &IMAGE.replace("aa", "bb"), "us-east-1");
        assert_ne!(base.content_hash(), other_image.content_hash());

        let mut s = spec();
        s.container.env.insert("FEATURE".into(), "on".into());
        assert_ne!(base.content_hash(), render(&names, &s, IMAGE, "us-east-1").content_hash());

        // Fields that do not reach the task definition do not change it.
        let mut s = spec();
        s.service.replicas = 7;
        s.revision_history_limit = 9;
        assert_eq!(base.content_hash(), render(&names, &s, IMAGE, "us-east-1").content_hash());
    }
}
