//! The Kubernetes controller (`ecsop run`): the engine driven by ApiDeployment watch events.
//!
//! The finalizer `ecsop.io/cleanup` is the single top-level step: Apply runs the engine and writes the
//! status subresource by server-side apply; Cleanup runs the engine's ordered teardown and only then
//! lets the finalizer go. AWS has no watch, so Apply always ends with a requeue: short while a rollout
//! is in progress, the resync period otherwise. Every few resyncs a reconcile reads AWS deeply (see
//! [`crate::engine::observe`]). Nothing is written unless this replica holds the leader lease.

pub mod leader;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use kube::api::{Api, ListParams, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action as Requeue, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, Event as Finalize};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::api::{ApiDeployment, ApiDeploymentStatus, ConditionStatus, condition_type};
use crate::aws::{Calls, Clients, ErrorKind};
use crate::engine::act::{Progress, WaitSettings};
use crate::engine::plan::{Action, Phase};
use crate::engine::{Engine, Options};
use crate::metrics::Metrics;
use crate::{Error, api};
use leader::LeaderState;

/// The finalizer guarding AWS teardown.
pub const FINALIZER: &str = "ecsop.io/cleanup";
/// The field manager of status patches and the events' reporting controller.
pub const MANAGER: &str = "ecsop";

/// Timing of the controller.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Requeue of a settled ApiDeployment (drift correction).
    pub resync: Duration,
    /// Requeue while a rollout is in progress.
    pub rollout_poll: Duration,
    /// Every n-th reconcile of an object reads AWS deeply.
    pub deep_every: u32,
    /// How long a cleanup waits for the ECS service to go before trying again later.
    pub delete_wait: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            resync: Duration::from_secs(300),
            rollout_poll: Duration::from_secs(15),
            deep_every: 12,
            delete_wait: Duration::from_secs(60),
        }
    }
}

/// Where the engines come from: one per region, built on demand from the SDK config, or fixed (tests).
pub enum Engines {
    /// A single engine for every region (tests with the in-memory fakes).
    Fixed(Engine),
    /// SDK clients per region.
    Sdk {
        /// The base SDK configuration (credentials, endpoint).
        base: Box<aws_config::SdkConfig>,
        /// The shared call layer.
        calls: Calls,
        /// The operator's default region.
        default_region: String,
        /// Engines built so far.
        cache: Mutex<HashMap<String, Engine>>,
    },
}

impl Engines {
    fn for_region(&self, region: Option<&str>) -> Engine {
        match self {
            Engines::Fixed(e) => e.clone(),
            Engines::Sdk { base, calls, default_region, cache } => {
                let region = region.unwrap_or(default_region).to_string();
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                cache
                    .entry(region.clone())
                    .or_insert_with(|| {
                        let config =
                            base.clone().into_builder().region(aws_config::Region::new(region.clone())).build();
                        Engine::new(Clients::from_sdk(&config, calls.clone()), region)
                    })
                    .clone()
            }
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The engines.
    pub engines: Engines,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Leadership.
    pub leader: LeaderState,
    /// Identity on events.
    pub reporter: Reporter,
    /// Timing.
    pub timing: Timing,
    reconciles: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context.
    pub fn new(
        client: kube::Client,
        engines: Engines,
        metrics: Arc<Metrics>,
        leader: LeaderState,
        reporter: Reporter,
        timing: Timing,
    ) -> Arc<Context> {
        Arc::new(Context { client, engines, metrics, leader, reporter, timing, reconciles: Mutex::default() })
    }

    /// Whether this reconcile of `key` reads AWS deeply: the first one and every `deep_every`-th after.
    fn deep(&self, key: &str) -> bool {
        let mut map = self.reconciles.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.to_string()).or_insert(0);
        let deep = (*n).is_multiple_of(self.timing.deep_every.max(1));
        *n = n.wrapping_add(1);
        deep
    }
}

/// Collects the writes of a reconcile for Events, and stops writing when leadership is lost.
struct Recorded {
    leader: LeaderState,
    done: Mutex<Vec<Action>>,
}

impl Progress for Recorded {
    fn proceed(&self) -> bool {
        self.leader.is_leader()
    }
    fn done(&self, action: &Action) {
        self.done.lock().unwrap_or_else(|e| e.into_inner()).push(action.clone());
    }
}

/// Reconcile one ApiDeployment.
pub async fn reconcile(obj: Arc<ApiDeployment>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    if !ctx.leader.is_leader() {
        // A standby replica writes nothing; winning the lease triggers a full reconcile.
        return Ok(Requeue::requeue(ctx.timing.resync));
    }
    let started = Instant::now();
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let api: Api<ApiDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer::finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Finalize::Apply(o) => apply(o, &api, &ctx).await,
            Finalize::Cleanup(o) => cleanup(o, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    });
    ctx.metrics.reconciled(started.elapsed().as_secs_f64(), result.as_ref().err().map(Error::label));
    result
}

/// The watch keeps only object metadata in memory (the spec is read when an object is reconciled), so a
/// fleet of 10,000 ApiDeployments costs about a kilobyte each instead of the whole typed object: this is
/// the reconcile the controller runs, fetching the object and handing it to [`reconcile`].
pub async fn reconcile_meta(obj: Arc<PartialObjectMeta<ApiDeployment>>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    if !ctx.leader.is_leader() {
        return Ok(Requeue::requeue(ctx.timing.resync));
    }
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let api: Api<ApiDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    match api.get_opt(&obj.name_any()).await? {
        // Deleted since the watch saw it: nothing left to do (the finalizer guarded its teardown).
        None => Ok(Requeue::await_change()),
        Some(full) => reconcile(Arc::new(full), ctx).await,
    }
}

/// [`error_policy`] for [`reconcile_meta`].
pub fn error_policy_meta(obj: Arc<PartialObjectMeta<ApiDeployment>>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    let backoff = backoff(error);
    tracing::warn!(name = %obj.name_any(), namespace = ?obj.namespace(), error = %error, ?backoff, "reconcile failed");
    Requeue::requeue(backoff)
}

/// The backoff after a failed reconcile, by error kind.
pub fn error_policy(obj: Arc<ApiDeployment>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    let backoff = backoff(error);
    tracing::warn!(name = %obj.name_any(), namespace = ?obj.namespace(), error = %error, ?backoff, "reconcile failed");
    Requeue::requeue(backoff)
}

/// How long to wait before retrying after `error`.
pub fn backoff(error: &Error) -> Duration {
    match error {
        Error::Aws(e) => match e.kind {
            ErrorKind::Throttled => Duration::from_secs(10),
            ErrorKind::Transient | ErrorKind::Conflict => Duration::from_secs(15),
            ErrorKind::AccessDenied => Duration::from_secs(120),
            ErrorKind::Invalid => Duration::from_secs(300),
            ErrorKind::NotFound | ErrorKind::Other => Duration::from_secs(30),
        },
        Error::Manifest(_) | Error::Usage(_) => Duration::from_secs(300),
        Error::Kube(_) | Error::Finalizer(_) => Duration::from_secs(5),
        Error::Output(_) => Duration::from_secs(30),
    }
}

async fn apply(obj: Arc<ApiDeployment>, api: &Api<ApiDeployment>, ctx: &Context) -> Result<Requeue, Error> {
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    let previous = obj.status.clone();
    let generation = obj.metadata.generation;
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference = obj.object_ref(&());

    if let Err(errors) = api::validate(&obj) {
        let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        let status = stalled_status(&previous, generation, "InvalidSpec", &message);
        patch_status(api, &obj, &status).await?;
        if transitioned(previous.as_ref(), &status) {
            publish(&recorder, &reference, EventType::Warning, "InvalidSpec", "Validate", &message).await;
        }
        ctx.metrics.set_ready(&key, Some("False"));
        return Ok(Requeue::await_change());
    }

    let engine = ctx.engines.for_region(obj.spec.region.as_deref());
    let target = engine.target(&obj);
    let progress = Recorded { leader: ctx.leader.clone(), done: Mutex::default() };
    let options = Options {
        deep: ctx.deep(&key),
        wait: WaitSettings { timeout: ctx.timing.delete_wait, interval: Duration::from_secs(2) },
        ..Default::default()
    };
    let outcome = engine.reconcile(&target, options, &progress, Utc::now()).await;
    let done = std::mem::take(&mut *progress.done.lock().unwrap_or_else(|e| e.into_inner()));
    for action in done.iter().filter(|a| !matches!(a, Action::TagService { .. })) {
        let (reason, note) = describe(action);
        publish(&recorder, &reference, EventType::Normal, reason, "Reconcile", &note).await;
    }
    let reconciled = match outcome {
        Ok(r) => r,
        Err(e) => {
            if e.kind == ErrorKind::AccessDenied {
                let status = stalled_status(&previous, generation, "AccessDenied", &e.to_string());
                patch_status(api, &obj, &status).await?;
                if transitioned(previous.as_ref(), &status) {
                    publish(&recorder, &reference, EventType::Warning, "AccessDenied", "Reconcile", &e.to_string())
                        .await;
                }
                ctx.metrics.set_ready(&key, Some("False"));
            } else {
                publish(&recorder, &reference, EventType::Warning, "ReconcileFailed", "Reconcile", &e.to_string())
                    .await;
            }
            return Err(Error::Aws(e));
        }
    };

    let report = &reconciled.report;
    let status = report.status(generation, previous.as_ref(), Utc::now());
    patch_status(api, &obj, &status).await?;

    // Events and metrics for what changed.
    let wrote = done.iter().any(|a| !matches!(a, Action::TagService { .. }));
    let same_generation = previous.as_ref().and_then(|s| s.observed_generation) == generation;
    let was_ready = previous.as_ref().and_then(ready_of) == Some(ConditionStatus::True);
    if wrote && same_generation && was_ready {
        ctx.metrics.drift_corrected();
        publish(
            &recorder,
            &reference,
            EventType::Normal,
            "DriftCorrected",
            "Reconcile",
            "AWS differed from the spec and was corrected",
        )
        .await;
    }
    if transitioned(previous.as_ref(), &status) {
        match (report.phase, report.reason.as_str()) {
            (Phase::Ready, _) => {
                ctx.metrics.rollout("completed");
                publish(&recorder, &reference, EventType::Normal, "RolloutComplete", "Rollout", &report.message).await;
            }
            (Phase::Stalled, reason) => {
                let outcome = match reason {
                    "RolledBack" => Some("rolled_back"),
                    "RolloutFailed" => Some("failed"),
                    "ProgressDeadlineExceeded" => Some("deadline_exceeded"),
                    _ => None,
                };
                if let Some(o) = outcome {
                    ctx.metrics.rollout(o);
                }
                publish(&recorder, &reference, EventType::Warning, reason, "Rollout", &report.message).await;
            }
            _ => {}
        }
    }
    let ready = status.conditions.iter().find(|c| c.type_ == condition_type::READY).map(|c| format!("{:?}", c.status));
    ctx.metrics.set_ready(&key, ready.as_deref());
    Ok(match report.phase {
        Phase::Progressing => Requeue::requeue(ctx.timing.rollout_poll),
        Phase::Ready | Phase::Stalled => Requeue::requeue(ctx.timing.resync),
    })
}

async fn cleanup(obj: Arc<ApiDeployment>, ctx: &Context) -> Result<Requeue, Error> {
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference = obj.object_ref(&());
    let engine = ctx.engines.for_region(obj.spec.region.as_deref());
    let target = engine.target(&obj);
    let progress = Recorded { leader: ctx.leader.clone(), done: Mutex::default() };
    let options = Options {
        deep: true,
        wait: WaitSettings { timeout: ctx.timing.delete_wait, interval: Duration::from_secs(2) },
        ..Default::default()
    };
    let result = engine.delete(&target, options, &progress).await;
    let done = std::mem::take(&mut *progress.done.lock().unwrap_or_else(|e| e.into_inner()));
    for action in &done {
        let (reason, note) = describe(action);
        publish(&recorder, &reference, EventType::Normal, reason, "Delete", &note).await;
    }
    match result {
        Ok(_) => {
            let note = if obj.spec.deletion_policy == crate::api::DeletionPolicy::Retain {
                "AWS resources retained; ecsop's ownership tags removed"
            } else {
                "every AWS resource owned by this ApiDeployment was deleted"
            };
            publish(&recorder, &reference, EventType::Normal, "Deleted", "Delete", note).await;
            ctx.metrics.set_ready(&key, None);
            Ok(Requeue::await_change())
        }
        Err(e) => {
            publish(&recorder, &reference, EventType::Warning, "DeleteFailed", "Delete", &e.to_string()).await;
            Err(Error::Aws(e))
        }
    }
}

/// An event's reason and note for a write.
pub fn describe(action: &Action) -> (&'static str, String) {
    let changes = action.change_summary();
    let note = if changes.is_empty() { action.subject() } else { format!("{}: {changes}", action.subject()) };
    let reason = match action {
        Action::RegisterTaskDefinition { .. } => "RevisionRegistered",
        Action::DeregisterTaskDefinition { .. } => "RevisionDeregistered",
        Action::CreateService { .. } => "ServiceCreated",
        Action::UpdateService { .. } => "ServiceUpdated",
        Action::DeleteService { .. } => "ServiceDeleted",
        Action::WaitServiceGone { .. } => "ServiceGone",
        Action::CreateTargetGroup { .. } => "TargetGroupCreated",
        Action::ModifyTargetGroup { .. } | Action::SetTargetGroupAttributes { .. } => "TargetGroupUpdated",
        Action::DeleteTargetGroup { .. } => "TargetGroupDeleted",
        Action::CreateRule { .. } | Action::CreateRedirectRule { .. } => "ListenerRuleCreated",
        Action::ModifyRule { .. } | Action::SetRulePriority { .. } => "ListenerRuleUpdated",
        Action::DeleteRule { .. } => "ListenerRuleDeleted",
        Action::CreateRepository { .. } => "RepositoryCreated",
        Action::SetScanOnPush { .. } | Action::SetTagMutability { .. } | Action::PutLifecyclePolicy { .. } => {
            "RepositoryUpdated"
        }
        Action::DeleteRepository { .. } => "RepositoryDeleted",
        Action::CreateDiscoveryService { .. } => "DiscoveryServiceCreated",
        Action::UpdateDiscoveryTtl { .. } => "DiscoveryServiceUpdated",
        Action::DeleteDiscoveryService { .. } => "DiscoveryServiceDeleted",
        Action::RegisterScalableTarget { .. } | Action::PutScalingPolicy { .. } => "AutoscalingUpdated",
        Action::DeleteScalingPolicy { .. } | Action::DeregisterScalableTarget { .. } => "AutoscalingRemoved",
        Action::TagService { .. } => "Recorded",
        Action::StartImageScan { .. } => "ImageScanStarted",
        Action::PromoteImage { .. } => "ImagePromoted",
        Action::PutAlarm { exists: false, .. } => "AlarmCreated",
        Action::PutAlarm { exists: true, .. } => "AlarmUpdated",
        Action::DeleteAlarms { .. } => "AlarmsDeleted",
        Action::CreateIntegration { .. } | Action::CreateAuthorizer { .. } | Action::CreateRoute { .. } => {
            "ApiGatewayCreated"
        }
        Action::UpdateIntegration { .. } | Action::UpdateAuthorizer { .. } | Action::UpdateRoute { .. } => {
            "ApiGatewayUpdated"
        }
        Action::DeleteIntegration { .. } | Action::DeleteAuthorizer { .. } | Action::DeleteRoute { .. } => {
            "ApiGatewayDeleted"
        }
        Action::Untag { .. } => "Released",
    };
    (reason, note)
}

fn ready_of(status: &ApiDeploymentStatus) -> Option<ConditionStatus> {
    status.conditions.iter().find(|c| c.type_ == condition_type::READY).map(|c| c.status)
}

/// Whether the Ready condition changed status or reason (or generation).
fn transitioned(previous: Option<&ApiDeploymentStatus>, new: &ApiDeploymentStatus) -> bool {
    let key = |s: &ApiDeploymentStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == condition_type::READY)
            .map(|c| (c.status, c.reason.clone(), c.observed_generation))
    };
    previous.and_then(key) != key(new)
}

/// A status with Ready=False, Stalled=True for a failure before any report exists.
fn stalled_status(
    previous: &Option<ApiDeploymentStatus>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
) -> ApiDeploymentStatus {
    let report = crate::engine::report::Report {
        name: String::new(),
        phase: Phase::Stalled,
        reason: reason.to_string(),
        message: message.to_string(),
        image_ref: String::new(),
        image: None,
        task_definition_arn: None,
        service_arn: None,
        target_group_arn: None,
        listener_rule_arn: None,
        repository_uri: None,
        replicas: None,
        rollout: None,
        last_good_revision: None,
        pending_changes: 0,
        events: Vec::new(),
    };
    let mut status = report.status(generation, previous.as_ref(), Utc::now());
    // Keep what is known about AWS from before.
    if let Some(p) = previous {
        status.image = p.image.clone();
        status.task_definition_arn = p.task_definition_arn.clone();
        status.service_arn = p.service_arn.clone();
        status.target_group_arn = p.target_group_arn.clone();
        status.listener_rule_arn = p.listener_rule_arn.clone();
        status.replicas = p.replicas.clone();
        status.rollout = p.rollout.clone();
        status.last_good_revision = p.last_good_revision.clone();
    }
    status
}

/// Write the status subresource by server-side apply.
pub async fn patch_status(
    api: &Api<ApiDeployment>,
    obj: &ApiDeployment,
    status: &ApiDeploymentStatus,
) -> Result<(), Error> {
    let patch = serde_json::json!({
        "apiVersion": "ecsop.io/v1alpha1",
        "kind": "ApiDeployment",
        "status": status,
    });
    api.patch_status(&obj.name_any(), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    // Event notes are at most 1 kB.
    let note: String = note.chars().take(1000).collect();
    let event = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, reason, "publishing an event failed");
    }
}

/// Settings of `ecsop run`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Watch one namespace, or all.
    pub namespace: Option<String>,
    /// Label selector.
    pub selector: Option<String>,
    /// Admin server address.
    pub admin_addr: std::net::SocketAddr,
    /// Concurrent reconciles.
    pub concurrency: u16,
    /// Timing.
    pub timing: Timing,
    /// Leader election: the lease's namespace and name, and this replica's identity.
    pub leader_election: Option<(String, leader::LeaseConfig)>,
}

/// Run the controller until SIGTERM or Ctrl-C.
pub async fn run(config: RunConfig) -> Result<(), Error> {
    // Both rustls providers are compiled in (ring through kube and reqwest, aws-lc-rs through the AWS
    // SDK), so rustls cannot pick a process default and the kube client would panic. The AWS SDK
    // passes its provider explicitly; kube takes the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default().await?;
    let base = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let default_region = base.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let metrics = Arc::new(Metrics::default());
    let observer = metrics.clone();
    let calls = Calls::default().with_observer(move |record| observer.aws_call(record));
    let engines = Engines::Sdk { base: Box::new(base), calls, default_region, cache: Mutex::default() };
    run_with(client, engines, metrics, config).await
}

/// Run the controller with the given clients (the end-to-end tests pass a fake API server's client).
pub async fn run_with(
    client: kube::Client,
    engines: Engines,
    metrics: Arc<Metrics>,
    config: RunConfig,
) -> Result<(), Error> {
    let readiness = crate::admin::Readiness::default();
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    });
    run_until(client, engines, metrics, config, readiness, shutdown_rx).await
}

/// Run until `shutdown` turns true.
pub async fn run_until(
    client: kube::Client,
    engines: Engines,
    metrics: Arc<Metrics>,
    config: RunConfig,
    readiness: crate::admin::Readiness,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Error> {
    let wait_shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };

    let admin = tokio::spawn(crate::admin::serve(
        config.admin_addr,
        metrics.clone(),
        readiness.clone(),
        wait_shutdown(shutdown.clone()),
    ));

    let (leader, gained_rx, lease_task) = match &config.leader_election {
        None => {
            metrics.set_leader(true);
            (LeaderState::always(), None, None)
        }
        Some((namespace, lease)) => {
            let state = LeaderState::contender();
            let api = Api::namespaced(client.clone(), namespace);
            let (gained_tx, gained_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            let m = metrics.clone();
            let task = tokio::spawn(leader::run(
                api,
                lease.clone(),
                state.clone(),
                move |leading| {
                    m.set_leader(leading);
                    if leading {
                        let _ = gained_tx.send(());
                    }
                },
                shutdown.clone(),
            ));
            (state, Some(gained_rx), Some(task))
        }
    };

    let api: Api<ApiDeployment> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &config.selector {
        watch_config = watch_config.labels(selector);
    }
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: config.leader_election.as_ref().map(|(_, l)| l.identity.clone()),
    };
    let ctx = Context::new(client, engines, metrics, leader, reporter, config.timing.clone());
    let probe = api.clone();
    let meta_api: Api<PartialObjectMeta<ApiDeployment>> = match &config.namespace {
        Some(ns) => Api::namespaced(probe.clone().into_client(), ns),
        None => Api::all(probe.clone().into_client()),
    };
    let mut controller = Controller::new(meta_api, watch_config)
        .with_config(ControllerConfig::default().concurrency(config.concurrency))
        .graceful_shutdown_on(wait_shutdown(shutdown.clone()));
    if let Some(rx) = gained_rx {
        controller = controller.reconcile_all_on(tokio_stream_from(rx));
    }
    // Ready after the first successful list of ApiDeployments. Not `controller.store().wait_until_ready()`:
    // kube-runtime's store readiness keeps only the last waiter's waker, so a second waiter beside the
    // controller's own is never woken (readyz stayed 503) or takes the controller's wake-up away.
    let ready = readiness.clone();
    let list = ListParams { label_selector: config.selector.clone(), limit: Some(1), ..Default::default() };
    let mut stopping = shutdown.clone();
    tokio::spawn(async move {
        loop {
            match probe.list(&list).await {
                Ok(_) => {
                    if !*stopping.borrow() {
                        ready.set(true);
                    }
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "listing ApiDeployments for readiness"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stopping.changed() => return,
            }
        }
    });
    let not_ready = readiness.clone();
    let mut rx = shutdown.clone();
    tokio::spawn(async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
        // Unready as soon as shutdown starts, before in-flight reconciles finish.
        not_ready.set(false);
    });
    controller
        .run(reconcile_meta, error_policy_meta, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    readiness.set(false);
    let _ = admin.await;
    // Let the lease task release the lease: the process exits when this returns, taking unfinished
    // tasks with it, and a lease left held blocks the next leader for a whole lease duration.
    if let Some(task) = lease_task
        && tokio::time::timeout(Duration::from_secs(5), task).await.is_err()
    {
        tracing::warn!("releasing the lease did not finish in time");
    }
    Ok(())
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<()>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
