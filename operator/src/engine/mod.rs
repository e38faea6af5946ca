//! The engine: observe, plan, act, report. Free of Kubernetes and of the CLI.
//!
//! [`observe`](observe::observe) reads AWS into [`observed`] data, [`plan`](plan::plan) is pure: the
//! [`gates`], then every owned resource kind of [`resources`] in dependency order, then the
//! [`rollout`] assessment. [`act`](act::act) writes, [`report`] turns the outcome into a status.
//! [`Engine`] ties them together for one region. docs/architecture.md draws the map.
//!
//! Layers, lowest first (no module imports one above it, and a test keeps it so): [`names`] and
//! [`target`]; the [`model`], [`observed`] and [`vocabulary`] data with [`rollout`] and [`describe`];
//! the [`resources`]; [`gates`], [`observe`] and [`plan`]; [`act`] and [`report`].

pub mod act;
pub mod describe;
pub mod gates;
pub mod lost;
pub mod model;
pub mod names;
pub mod observe;
pub mod observed;
pub mod overlap;
pub mod plan;
pub mod report;
pub mod resources;
pub mod rollout;
pub mod target;
pub mod vocabulary;

use chrono::{DateTime, Utc};

use crate::api::ApiDeployment;
use crate::aws::{AwsError, Clients};
use act::{Outputs, Progress, WaitSettings};
use names::Names;
use observed::Observed;
use plan::Plan;
use report::Report;
use target::Target;
use vocabulary::{Action, Created};

/// The outcome of one reconcile.
#[derive(Debug, Clone)]
pub struct Reconciled {
    /// What was observed.
    pub observed: Observed,
    /// What was planned.
    pub plan: Plan,
    /// What acting created.
    pub outputs: Outputs,
    /// The revision the service should run (known once registered).
    pub revision: Option<String>,
    /// The report, as of the observation plus the writes made.
    pub report: Report,
}

/// Options of a reconcile.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Read hidden state too (see [`observe`]).
    pub deep: bool,
    /// Plan only: write nothing (`diff`, `status`, `suspend`).
    pub dry_run: bool,
    /// Waits inside actions (service deletion).
    pub wait: WaitSettings,
}

/// The engine for one AWS region.
#[derive(Clone)]
pub struct Engine {
    clients: Clients,
    region: String,
}

impl Engine {
    /// An engine acting through `clients` in `region`.
    pub fn new(clients: Clients, region: impl Into<String>) -> Self {
        Engine { clients, region: region.into() }
    }

    /// The region it acts in when a spec names none.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The clients.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The engine's view of an ApiDeployment.
    pub fn target(&self, resource: &ApiDeployment) -> Target {
        let namespace = resource.metadata.namespace.as_deref().unwrap_or("default");
        let name = resource.metadata.name.as_deref().unwrap_or_default();
        Target {
            names: Names::new(namespace, name),
            generation: resource.metadata.generation,
            spec: resource.spec.clone(),
            region: resource.spec.region.clone().unwrap_or_else(|| self.region.clone()),
        }
    }

    /// Observe, plan and (unless dry-run or suspended) act.
    pub async fn reconcile(
        &self,
        target: &Target,
        options: Options,
        progress: &dyn Progress,
        now: DateTime<Utc>,
    ) -> Result<Reconciled, AwsError> {
        let observed = observe::observe(&self.clients, target, options.deep).await?;
        let plan = plan::plan(target, &observed, now);
        let write = !options.dry_run && !target.spec.suspend;
        let outputs = if write {
            act::act(&self.clients, &plan.actions, progress, options.wait).await?
        } else {
            Outputs::default()
        };
        let revision = plan.revision.clone().or_else(|| outputs.get(Created::TaskDefinition).map(str::to_string));
        let pending = if write { 0 } else { plan.actions.len() };
        let report = Report::new(target, &observed, &plan, revision.clone(), pending);
        Ok(Reconciled { observed, plan, outputs, revision, report })
    }

    /// Observe the service alone and assess the rollout of `revision` (the `--wait` loop's step).
    pub async fn rollout(
        &self,
        target: &Target,
        revision: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(rollout::Rollout, Option<crate::aws::Service>), AwsError> {
        let (cluster, name) = (&target.spec.cluster, target.names.service());
        let service = self.clients.ecs.service(cluster, name).await?;
        let deadline = i64::from(target.spec.service.rollout.progress_deadline_seconds);
        // Between two looks the failed deployment may have left DescribeServices already.
        let history = match (&service, revision) {
            (Some(s), Some(r)) if observe::needs_history(s, r) => {
                Some(self.clients.ecs.service_deployments(cluster, name).await?)
            }
            _ => None,
        };
        Ok((rollout::assess(service.as_ref(), revision, deadline, now, history.as_deref()), service))
    }

    /// Observe everything `target` owns, for deletion.
    pub async fn observe_owned(&self, target: &Target) -> Result<Observed, AwsError> {
        let mut observed = observe::observe(&self.clients, target, true).await?;
        if observed.revisions.is_none() {
            observed.revisions = Some(resources::task_definition::owned_revisions(&self.clients, &target.names).await?);
        }
        if observed.target_group.is_some() && observed.target_group_tags.is_none() {
            let tg = observed.target_group.as_ref().map(|t| t.arn.clone()).unwrap_or_default();
            observed.target_group_tags = Some(self.clients.elbv2.tags(&tg).await?);
        }
        if observed.alternate_target_group.is_none() {
            observed.alternate_target_group =
                self.clients.elbv2.target_group(&target.names.alternate_target_group()).await?;
        }
        if let Some(tg) = &observed.alternate_target_group
            && observed.alternate_target_group_tags.is_none()
        {
            observed.alternate_target_group_tags = Some(self.clients.elbv2.tags(&tg.arn).await?);
        }
        Ok(observed)
    }

    /// Tear down what `target` owns, in order (or untag it with deletionPolicy Retain). With
    /// `dry_run`, only plan. Returns the actions (taken or planned).
    pub async fn delete(
        &self,
        target: &Target,
        options: Options,
        progress: &dyn Progress,
    ) -> Result<Vec<Action>, AwsError> {
        let observed = self.observe_owned(target).await?;
        let actions = plan::teardown(target, &observed);
        if !options.dry_run {
            act::act(&self.clients, &actions, progress, options.wait).await?;
        }
        Ok(actions)
    }
}
