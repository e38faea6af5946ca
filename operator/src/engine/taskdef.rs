//! The task definition an ApiDeployment renders to, in ecsop's own types, with a content hash.
//!
//! The hash is what makes re-applying cheap and safe: a revision tagged with the same hash is reused
//! instead of registering a new one, so an unchanged spec never piles up revisions, and going back to an
//! earlier spec reuses its revision.

use std::collections::BTreeMap;

use serde::Serialize;

use super::names::{Names, short_hash};
use crate::api::{ApiDeploymentSpec, Architecture};

/// A rendered Fargate task definition with one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    /// The family (`<namespace>-<name>`).
    pub family: String,
    /// Fargate CPU units, as ECS takes them (a string).
    pub cpu: String,
    /// Memory in MiB, as ECS takes it.
    pub memory: String,
    /// `X86_64` or `ARM64`.
    pub cpu_architecture: String,
    /// The execution role.
    pub execution_role_arn: Option<String>,
    /// The task role.
    pub task_role_arn: Option<String>,
    /// The container.
    pub container: Container,
}

/// The task's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The container name.
    pub name: String,
    /// The image, pinned by digest (`repo@sha256:...`).
    pub image: String,
    /// The port the API listens on (TCP).
    pub port: i32,
    /// Command override.
    pub command: Vec<String>,
    /// Environment, sorted by name.
    pub environment: BTreeMap<String, String>,
    /// Secrets (name to ARN), sorted by name.
    pub secrets: BTreeMap<String, String>,
    /// Health check.
    pub health_check: Option<HealthCheck>,
    /// awslogs configuration.
    pub logs: Option<Logs>,
}

/// The container health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// The command.
    pub command: Vec<String>,
    /// Interval in seconds.
    pub interval: i32,
    /// Timeout in seconds.
    pub timeout: i32,
    /// Retries.
    pub retries: i32,
    /// Start period in seconds.
    pub start_period: i32,
}

/// The awslogs log driver's options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Logs {
    /// The log group.
    pub group: String,
    /// The region of the log group.
    pub region: String,
    /// Stream prefix (the service name).
    pub stream_prefix: String,
}

impl TaskDefinition {
    /// Render the task definition of `spec` with the image pinned to `image_uri` (`repo@sha256:...`).
    pub fn render(names: &Names, spec: &ApiDeploymentSpec, image_uri: &str, region: &str) -> Self {
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

    /// A hash of everything ECS would run: equal hashes mean the same task. Secret values are ARNs,
    /// never secret material, so hashing them leaks nothing.
    pub fn content_hash(&self) -> String {
        // serde_json writes struct fields in declaration order and BTreeMaps sorted: a canonical form.
        let canonical = serde_json::to_string(self).unwrap_or_default();
        short_hash(&canonical, 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiDeployment;

    fn spec() -> ApiDeploymentSpec {
        let yaml = include_str!("../../tests/valid.yaml");
        let value: serde_json::Value = serde_yaml::from_str(yaml).expect("yaml");
        serde_json::from_value::<ApiDeployment>(value).expect("typed").spec
    }

    const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/books-api@sha256:aa";

    #[test]
    fn renders_the_spec_with_the_pinned_image() {
        let names = Names::new("prod", "books-api");
        let td = TaskDefinition::render(&names, &spec(), IMAGE, "us-east-1");
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
        let base = TaskDefinition::render(&names, &spec(), IMAGE, "us-east-1");
        assert_eq!(base.content_hash(), TaskDefinition::render(&names, &spec(), IMAGE, "us-east-1").content_hash());
        assert_eq!(base.content_hash().len(), 16);

        let other_image = TaskDefinition::render(&names, &spec(), &IMAGE.replace("aa", "bb"), "us-east-1");
        assert_ne!(base.content_hash(), other_image.content_hash());

        let mut s = spec();
        s.container.env.insert("FEATURE".into(), "on".into());
        assert_ne!(base.content_hash(), TaskDefinition::render(&names, &s, IMAGE, "us-east-1").content_hash());

        // Fields that do not reach the task definition do not change it.
        let mut s = spec();
        s.service.replicas = 7;
        s.revision_history_limit = 9;
        assert_eq!(base.content_hash(), TaskDefinition::render(&names, &s, IMAGE, "us-east-1").content_hash());
    }
}
