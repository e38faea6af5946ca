//! The shape of a task definition as the adapters register it, in ecsop's own types, with a content
//! hash. The engine renders it from the spec (`engine::resources::task_definition`).
//!
//! The hash is what makes re-applying cheap and safe: a revision tagged with the same hash is reused
//! instead of registering a new one, so an unchanged spec never piles up revisions, and going back to an
//! earlier spec reuses its revision.

use std::collections::BTreeMap;

use serde::Serialize;

use sha2::{Digest, Sha256};

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
    /// A hash of everything ECS would run: equal hashes mean the same task. Secret values are ARNs,
    /// never secret material, so hashing them leaks nothing.
    pub fn content_hash(&self) -> String {
        // serde_json writes struct fields in declaration order and BTreeMaps sorted: a canonical form.
        let canonical = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(canonical.as_bytes())).chars().take(16).collect()
    }
}
