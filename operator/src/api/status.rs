//! The `ApiDeployment` status: what ecsop observed, written for kstatus, `kubectl wait`, Flux and Argo CD.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition types ecsop sets.
pub mod condition_type {
    /// True only when ECS finished rolling out the exact revision registered for this generation.
    pub const READY: &str = "Ready";
    /// True while a change is being applied or rolled out.
    pub const RECONCILING: &str = "Reconciling";
    /// True when progress stopped on an error that needs a human (bad spec, rollback, deadline).
    pub const STALLED: &str = "Stalled";
}

/// Observed state of an ApiDeployment.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiDeploymentStatus {
    /// The generation whose plan was last submitted to AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled, in the Kubernetes condition format.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The image the task definition pins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ResolvedImage>,
    /// ARN of the task-definition revision registered for this generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    /// ARN of the ECS service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_arn: Option<String>,
    /// ARN of the owned target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    /// ARN of the owned listener rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_rule_arn: Option<String>,
    /// Task counts of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaStatus>,
    /// The rollout in progress or last finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
    /// The last task-definition revision that finished rolling out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good_revision: Option<String>,
}

/// A Kubernetes-style condition.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready, Reconciling or Stalled.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// A CamelCase reason (`RolloutComplete`, `RolledBack`, `ProgressDeadlineExceeded`, ...).
    pub reason: String,
    /// A sentence for humans.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation the condition describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The status of a condition.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// The pinned image.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedImage {
    /// Full image URI pinned by digest (`...amazonaws.com/books-api@sha256:...`).
    pub uri: String,
    /// The digest.
    pub digest: String,
    /// Short form for display (`books-api:1.4.2`).
    #[serde(rename = "ref")]
    pub reference: String,
}

/// Task counts.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// Desired tasks.
    pub desired: i32,
    /// Running tasks.
    pub running: i32,
    /// Pending tasks.
    pub pending: i32,
    /// `running/desired`, for the printer column.
    pub summary: String,
}

/// A rollout.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The ECS deployment id.
    pub id: String,
    /// IN_PROGRESS, COMPLETED, FAILED or ROLLED_BACK.
    pub state: String,
    /// When it started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// The latest explanation (ECS rollout reason or service event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The deployment strategy: rolling, blueGreen, canary or linear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Where a blueGreen, canary or linear rollout is: `starting` (the new revision scales up, or takes
    /// test traffic), `canary 10%`, `step 2 of 4`, `shifting`, `baking` (all traffic on the new revision,
    /// the old one kept ready to take it back), `complete` or `rolled back`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The production listener rule's weights, in percent of traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSplit>,
    /// The last window analysis judged, one entry per check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis: Vec<CheckStatus>,
}

/// The production traffic of a rollout between two target groups.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSplit {
    /// Percent on the revision being rolled out.
    pub new_percent: i32,
    /// Percent on the revision serving before it.
    pub old_percent: i32,
}

/// One analysis check's verdict on the last window judged.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    /// The check.
    pub name: String,
    /// Passed, Failed or Inconclusive.
    pub result: String,
    /// The verdict with both revisions' values, requests and the window.
    pub message: String,
    /// Failed windows of this check so far in the rollout.
    pub failed_windows: u32,
    /// The failed windows that stop the rollout.
    pub limit: u32,
    /// The end of the window (RFC 3339).
    pub window_end: String,
}
