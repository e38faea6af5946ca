//! Rollout tracking: where the ECS service is with the revision ecsop registered. Pure.
//!
//! Success is only the PRIMARY deployment running *our* revision with rolloutState COMPLETED. A
//! circuit-breaker rollback (a new PRIMARY of an older revision, ours FAILED) is a failure, never
//! success, and so is a deadline passed.

use chrono::{DateTime, Utc};

use super::names::{service_tags, tag_value};
use crate::aws::{Deployment, Service, ServiceDeployment};

/// The rollout's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// The service does not run our revision yet and no deployment of it started.
    Pending,
    /// ECS is rolling out our revision.
    InProgress,
    /// Our revision runs everywhere.
    Complete,
    /// ECS stopped our deployment (circuit breaker without rollback).
    Failed,
    /// ECS rolled back from our revision to an earlier one.
    RolledBack,
    /// ecsop's analysis stopped our revision's rollout, and ECS rolled back.
    AnalysisFailed,
    /// Someone stopped our revision's rollout (`ecsop abort`, the `ecsop.io/abort` annotation), and ECS
    /// rolled back.
    Aborted,
    /// Our deployment did not finish within `progressDeadlineSeconds`.
    DeadlineExceeded,
}

impl RolloutState {
    /// Whether the rollout ended in failure.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            RolloutState::Failed
                | RolloutState::RolledBack
                | RolloutState::AnalysisFailed
                | RolloutState::DeadlineExceeded
        )
    }

    /// Whether the service went back to an earlier revision (the revision is not deployed again).
    pub fn rolled_back(&self) -> bool {
        matches!(self, RolloutState::RolledBack | RolloutState::AnalysisFailed | RolloutState::Aborted)
    }
}

/// A rollout assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// The state.
    pub state: RolloutState,
    /// The deployment of our revision (or the PRIMARY one when ours is gone).
    pub deployment: Option<Deployment>,
    /// A sentence for humans, with the ECS events that explain a failure.
    pub message: String,
    /// The revision that last completed, when known.
    pub last_good_revision: Option<String>,
}

/// Assess `service`'s rollout of `revision`, with the deadline counted from the deployment's start.
/// `history` is ECS's durable record of the service's deployments, when it was read: it tells what
/// became of a deployment of `revision` that has already left DescribeServices.
pub fn assess(
    service: Option<&Service>,
    revision: Option<&str>,
    deadline_seconds: i64,
    now: DateTime<Utc>,
    history: Option<&[ServiceDeployment]>,
) -> Rollout {
    let pending = |message: String, last_good: Option<String>| Rollout {
        state: RolloutState::Pending,
        deployment: None,
        message,
        last_good_revision: last_good,
    };
    let Some(service) = service else {
        return pending("the ECS service does not exist yet".into(), None);
    };
    let primary = service.deployments.iter().find(|d| d.status == "PRIMARY");
    let last_good = service
        .deployments
        .iter()
        .find(|d| d.rollout_state.as_deref() == Some("COMPLETED"))
        .map(|d| d.task_definition.clone());
    let Some(revision) = revision else {
        return pending("the task definition is not registered yet".into(), last_good);
    };
    let ours = service.deployments.iter().find(|d| d.task_definition == revision);
    match primary {
        Some(p) if p.task_definition == revision => match p.rollout_state.as_deref() {
            Some("COMPLETED") => Rollout {
                state: RolloutState::Complete,
                deployment: Some(p.clone()),
                message: format!(
                    "{} of {} tasks run revision {}",
                    p.running_count,
                    p.desired_count,
                    short_revision(revision)
                ),
                last_good_revision: Some(revision.to_string()),
            },
            Some("FAILED") => Rollout {
                state: RolloutState::Failed,
                deployment: Some(p.clone()),
                message: format!(
                    "ECS deployment {} of revision {} failed: {}{}",
                    p.id,
                    short_revision(revision),
                    p.rollout_state_reason.as_deref().unwrap_or("no reason given"),
                    explain(service)
                ),
                last_good_revision: last_good,
            },
            _ => {
                let started = p.created_at.unwrap_or(now);
                let elapsed = (now - started).num_seconds();
                if elapsed > deadline_seconds {
                    Rollout {
                        state: RolloutState::DeadlineExceeded,
                        deployment: Some(p.clone()),
                        message: format!(
                            "revision {} has not finished rolling out after {elapsed}s (progressDeadlineSeconds \
                             {deadline_seconds}): {} of {} tasks running{}",
                            short_revision(revision),
                            p.running_count,
                            p.desired_count,
                            explain(service)
                        ),
                        last_good_revision: last_good,
                    }
                } else {
                    Rollout {
                        state: RolloutState::InProgress,
                        deployment: Some(p.clone()),
                        message: format!(
                            "rolling out revision {}: {} of {} tasks running, {} pending",
                            short_revision(revision),
                            p.running_count,
                            p.desired_count,
                            p.pending_count
                        ),
                        last_good_revision: last_good,
                    }
                }
            }
        },
        _ => {
            let failed_ours = ours.filter(|d| d.rollout_state.as_deref() == Some("FAILED"));
            let recorded = service.tags.get(service_tags::FAILED_REVISION) == Some(&tag_value(revision));
            // The newest recorded deployment of our revision, when it has left DescribeServices.
            let ended = history
                .filter(|_| ours.is_none())
                .into_iter()
                .flatten()
                .find(|d| d.task_definition.as_deref() == Some(revision));
            let rolled_back_before = ended.is_some_and(|d| d.status.starts_with("ROLLBACK"));
            if let Some(d) = ended.filter(|d| d.status == "STOPPED") {
                return Rollout {
                    state: RolloutState::Failed,
                    deployment: None,
                    message: format!(
                        "ECS stopped the deployment of revision {}{}; the service runs {}",
                        short_revision(revision),
                        d.status_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default(),
                        primary.map(|p| short_revision(&p.task_definition)).unwrap_or_else(|| "nothing".into())
                    ),
                    last_good_revision: primary.map(|p| p.task_definition.clone()).or(last_good),
                };
            }
            let back_to = primary.map(|p| short_revision(&p.task_definition)).unwrap_or_else(|| "?".into());
            if let Some(verdict) = analysis_verdict(service, revision) {
                let (state, message) = match verdict.strip_prefix(ABORTED) {
                    Some(why) => (
                        RolloutState::Aborted,
                        format!(
                            "the rollout of revision {} was aborted ({}) and ECS rolled back to {back_to}",
                            short_revision(revision),
                            why.trim()
                        ),
                    ),
                    None => (
                        RolloutState::AnalysisFailed,
                        format!(
                            "analysis stopped revision {} and ECS rolled back to {back_to}: {verdict}",
                            short_revision(revision)
                        ),
                    ),
                };
                return Rollout {
                    state,
                    deployment: failed_ours.or(primary).cloned(),
                    message,
                    last_good_revision: primary.map(|p| p.task_definition.clone()).or(last_good),
                };
            }
            if failed_ours.is_some() || recorded || rolled_back_before {
                Rollout {
                    state: RolloutState::RolledBack,
                    deployment: failed_ours.or(primary).cloned(),
                    message: format!(
                        "the circuit breaker rolled back from revision {} to {back_to}{}",
                        short_revision(revision),
                        explain(service)
                    ),
                    last_good_revision: primary.map(|p| p.task_definition.clone()).or(last_good),
                }
            } else {
                pending(
                    format!(
                        "the service runs {}, not revision {}",
                        primary.map(|p| short_revision(&p.task_definition)).unwrap_or_else(|| "nothing".into()),
                        short_revision(revision)
                    ),
                    last_good,
                )
            }
        }
    }
}

/// How the record of a stop says it was asked for by a person, not by analysis.
pub const ABORTED: &str = "aborted:";

/// What the service records of analysis (or a person) stopping `revision`, if one did.
fn analysis_verdict<'a>(service: &'a Service, revision: &str) -> Option<&'a str> {
    let recorded = service.tags.get(service_tags::ANALYSIS_FAILED)?;
    let (which, verdict) = recorded.split_once(' ')?;
    (which == super::names::short_hash(revision, 16)).then_some(verdict)
}

/// The value recorded when analysis stops `revision`'s rollout (see [`service_tags::ANALYSIS_FAILED`]):
/// a hash of the revision, then the verdict in what a tag value may hold (letters, digits, spaces and
/// `_.:/=+-@`; other characters become spaces), cut to AWS's 256 characters.
pub fn analysis_record(revision: &str, verdict: &str) -> String {
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    let text: String = verdict.chars().map(|c| if allowed(c) { c } else { ' ' }).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{} {text}", super::names::short_hash(revision, 16)).chars().take(256).collect()
}

/// The service events that explain a failure: stopped tasks and failures first, at most three.
fn explain(service: &Service) -> String {
    let relevant: Vec<&str> = service
        .events
        .iter()
        .map(|e| e.message.as_str())
        .filter(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("stopped") || m.contains("fail") || m.contains("unable") || m.contains("rolling back")
        })
        .take(3)
        .collect();
    if relevant.is_empty() { String::new() } else { format!(". ECS events: {}", relevant.join(" | ")) }
}

/// `family:revision` from a task-definition ARN.
pub fn short_revision(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ServiceEvent;

    const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/prod-books-api:1";
    const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/prod-books-api:2";

    fn deployment(id: &str, status: &str, td: &str, state: &str, age_seconds: i64) -> Deployment {
        let now = now();
        Deployment {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: Some(state.into()),
            rollout_state_reason: Some(format!("ECS deployment {id} {state}")),
            desired_count: 2,
            running_count: if state == "COMPLETED" { 2 } else { 1 },
            pending_count: 1,
            failed_tasks: 0,
            created_at: Some(now - chrono::Duration::seconds(age_seconds)),
            updated_at: Some(now),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").expect("time").with_timezone(&Utc)
    }

    fn service(deployments: Vec<Deployment>) -> Service {
        Service {
            arn: "arn:aws:ecs:us-east-1:123456789012:service/c/books-api".into(),
            name: "books-api".into(),
            status: "ACTIVE".into(),
            task_definition: deployments[0].task_definition.clone(),
            desired_count: 2,
            running_count: 2,
            pending_count: 0,
            deployments,
            events: vec![ServiceEvent {
                id: "e1".into(),
                created_at: None,
                message: "(service books-api) (task 1) stopped: Essential container in task exited.".into(),
            }],
            load_balancers: vec![],
            registries: vec![],
            network: Default::default(),
            deployment: None,
            alarms: None,
            health_check_grace_period_seconds: None,
            tags: Default::default(),
        }
    }

    #[test]
    fn complete_only_when_the_primary_runs_our_revision_and_completed() {
        let s = service(vec![deployment("d2", "PRIMARY", NEW, "COMPLETED", 30)]);
        let r = assess(Some(&s), Some(NEW), 600, now(), None);
        assert_eq!(r.state, RolloutState::Complete);
        assert_eq!(r.last_good_revision.as_deref(), Some(NEW));

        // The old revision completed, ours not started: not Ready.
        let s = service(vec![deployment("d1", "PRIMARY", OLD, "COMPLETED", 3000)]);
        assert_eq!(assess(Some(&s), Some(NEW), 600, now(), None).state, RolloutState::Pending);
    }

    #[test]
    fn in_progress_until_the_deadline_then_exceeded() {
        let s = service(vec![
            deployment("d2", "PRIMARY", NEW, "IN_PROGRESS", 100),
            deployment("d1", "ACTIVE", OLD, "COMPLETED", 3000),
        ]);
        let r = assess(Some(&s), Some(NEW), 600, now(), None);
        assert_eq!(r.state, RolloutState::InProgress);
        assert_eq!(r.last_good_revision.as_deref(), Some(OLD));
        let r = assess(Some(&s), Some(NEW), 60, now(), None);
        assert_eq!(r.state, RolloutState::DeadlineExceeded);
        assert!(r.message.contains("progressDeadlineSeconds 60"), "{}", r.message);
    }

    #[test]
    fn a_rollback_is_a_failure_naming_the_revisions_and_the_events() {
        let s = service(vec![
            deployment("d3", "PRIMARY", OLD, "IN_PROGRESS", 5),
            deployment("d2", "ACTIVE", NEW, "FAILED", 100),
        ]);
        let r = assess(Some(&s), Some(NEW), 600, now(), None);
        assert_eq!(r.state, RolloutState::RolledBack);
        assert!(r.state.is_failure());
        assert!(r.message.contains("prod-books-api:2") && r.message.contains("prod-books-api:1"), "{}", r.message);
        assert!(r.message.contains("Essential container"), "{}", r.message);

        // Once the failed deployment has left DescribeServices and nothing recorded it, ECS's own
        // record of its deployments still says what became of it.
        let s = service(vec![deployment("d3", "PRIMARY", OLD, "COMPLETED", 5)]);
        let record = |status: &str| ServiceDeployment {
            arn: "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/books-api/d2".into(),
            status: status.into(),
            status_reason: Some("circuit breaker".into()),
            task_definition: Some(NEW.into()),
            created_at: Some(now()),
        };
        let history = [record("ROLLBACK_SUCCESSFUL")];
        assert_eq!(assess(Some(&s), Some(NEW), 600, now(), Some(&history)).state, RolloutState::RolledBack);
        let history = [record("STOPPED")];
        let r = assess(Some(&s), Some(NEW), 600, now(), Some(&history));
        assert_eq!(r.state, RolloutState::Failed, "{}", r.message);
        // Deployed once and replaced since: deploying it again is what the spec asks.
        let history = [record("SUCCESSFUL")];
        assert_eq!(assess(Some(&s), Some(NEW), 600, now(), Some(&history)).state, RolloutState::Pending);

        // Once the failed deployment is gone, the recorded tag still says so.
        let mut s = service(vec![deployment("d3", "PRIMARY", OLD, "COMPLETED", 5)]);
        s.tags.insert(service_tags::FAILED_REVISION.into(), NEW.into());
        assert_eq!(assess(Some(&s), Some(NEW), 600, now(), None).state, RolloutState::RolledBack);
    }

    #[test]
    fn a_failed_primary_without_rollback_is_failed() {
        let s = service(vec![deployment("d2", "PRIMARY", NEW, "FAILED", 100)]);
        assert_eq!(assess(Some(&s), Some(NEW), 600, now(), None).state, RolloutState::Failed);
    }
}
