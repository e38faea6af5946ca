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

use crate::analysis::cloudwatch::AlbTraffic;
use crate::analysis::watch::{Outcome, Subject, Watch};
use crate::api::ApiDeployment;
use crate::aws::{AwsError, Clients};
use act::{Outputs, Progress, WaitSettings};
use names::Names;
use observed::Observed;
use plan::Plan;
use report::Report;
use target::Target;
use vocabulary::{Action, Created};

/// What analysis judges of `service`'s rollout of `revision`: the deployment of `revision` in progress
/// beside an older one, with the second target group ECS shifts traffic to (the new revision's during a
/// deployment; ECS swaps the two when it completes).
fn subject(target: &Target, service: &crate::aws::Service, revision: &str) -> Option<Subject> {
    let new = service.deployments.iter().find(|d| {
        d.status == "PRIMARY" && d.task_definition == revision && d.rollout_state.as_deref() == Some("IN_PROGRESS")
    })?;
    let old =
        service.deployments.iter().find(|d| d.status != "PRIMARY" && d.rollout_state.as_deref() != Some("FAILED"))?;
    let binding = service.load_balancers.first()?;
    let traffic = binding.traffic.as_ref()?;
    let listener = &target.spec.load_balancer.as_ref()?.listener_arn;
    // `...:listener/app/NAME/ID/LISTENER`: the load balancer's dimension is `app/NAME/ID`.
    let (_, path) = listener.split_once(":listener/")?;
    let load_balancer = path.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    Some(Subject {
        new_revision: revision.to_string(),
        old_revision: old.task_definition.clone(),
        traffic: AlbTraffic {
            load_balancer,
            new_target_group: crate::analysis::cloudwatch::dimension(&traffic.alternate_target_group)?,
            old_target_group: crate::analysis::cloudwatch::dimension(&binding.arn)?,
        },
        started: new.created_at.map_or(std::time::UNIX_EPOCH, Into::into),
    })
}

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
        let rollout_spec = &target.spec.service.rollout;
        let deadline = i64::from(rollout_spec.progress_deadline_seconds) + rollout_spec.strategy.bake_seconds();
        // Between two looks the failed deployment may have left DescribeServices already.
        let history = match (&service, revision) {
            (Some(s), Some(r)) if observe::needs_history(s, r) => {
                Some(self.clients.ecs.service_deployments(cluster, name).await?)
            }
            _ => None,
        };
        Ok((rollout::assess(service.as_ref(), revision, deadline, now, history.as_deref()), service))
    }

    /// Judge `service`'s rollout of `revision` with the spec's analysis, one window at a time (see
    /// [`crate::analysis::watch`]); when a check reaches its limit, stop the rollout with rollback
    /// ([`Engine::stop`]). `None` when there is nothing to judge: no analysis, or no rollout from one
    /// revision to another through a second target group.
    pub async fn analyse(
        &self,
        target: &Target,
        service: &crate::aws::Service,
        revision: &str,
        watch: &mut Watch,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, crate::Error> {
        let Some(spec) = target.spec.service.rollout.analysis.as_ref() else {
            return Ok(None);
        };
        let Some(subject) = subject(target, service, revision) else {
            return Ok(None);
        };
        let outcome = watch.evaluate(spec, &subject, self.clients.cloudwatch.as_ref(), now.into()).await?;
        if let Outcome::Stop(abort, _) = &outcome {
            self.stop(target, service, revision, &abort.to_string()).await?;
        }
        Ok(Some(outcome))
    }

    /// Stop the rollout of `revision` with rollback (ECS returns all traffic to the revision before
    /// it), recording `why` on the service first so that every later run reports it, even when the
    /// answer to the stop is lost. Returns whether a rollout was stopped: `false` when none of
    /// `revision` was in progress (it had finished, or was stopped already).
    pub async fn stop(
        &self,
        target: &Target,
        service: &crate::aws::Service,
        revision: &str,
        why: &str,
    ) -> Result<bool, AwsError> {
        let (cluster, name) = (&target.spec.cluster, target.names.service());
        let deployments = self.clients.ecs.service_deployments(cluster, name).await?;
        let Some(running) = deployments.iter().find(|d| {
            matches!(d.status.as_str(), "PENDING" | "IN_PROGRESS") && d.task_definition.as_deref() == Some(revision)
        }) else {
            return Ok(false);
        };
        let record = crate::aws::Tags::from([(
            names::service_tags::ANALYSIS_FAILED.to_string(),
            rollout::analysis_record(revision, why),
        )]);
        self.clients.ecs.tag(&service.arn, &record).await?;
        match self.clients.ecs.stop_service_deployment(&running.arn, true).await {
            Ok(()) => Ok(true),
            // It ended between the read and the stop.
            Err(e) if e.kind == crate::aws::ErrorKind::Conflict => Ok(false),
            Err(e) => Err(e),
        }
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
