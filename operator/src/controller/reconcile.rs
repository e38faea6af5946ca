//! One reconcile of one ApiDeployment: Apply (the engine, then the status by server-side apply) or
//! Cleanup (the ordered teardown, then the finalizer goes), with the requeue and backoff policy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::finalizer::{self, Event as Finalize};
use kube::{Resource, ResourceExt};

use crate::analysis::Judgement;
use crate::analysis::watch::Outcome;
use crate::api::{ApiDeployment, ConditionStatus, condition_type};
use crate::aws::ErrorKind;
use crate::engine::Options;
use crate::engine::act::{Progress, WaitSettings};
use crate::engine::rollout::{ABORTED, short_revision};
use crate::engine::vocabulary::{Action, Phase};
use crate::{Error, api};

use super::leader::LeaderState;
use super::status::{describe, patch_status, publish, ready_of, stalled_status, transitioned};
use super::{ABORT_ANNOTATION, Context, FINALIZER};

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
            ErrorKind::Transient | ErrorKind::Conflict | ErrorKind::Propagating => Duration::from_secs(15),
            ErrorKind::AccessDenied => Duration::from_secs(120),
            ErrorKind::Invalid => Duration::from_secs(300),
            ErrorKind::NotFound | ErrorKind::Other => Duration::from_secs(30),
        },
        Error::Manifest(_) | Error::Usage(_) => Duration::from_secs(300),
        Error::Kube(_) | Error::Finalizer(_) => Duration::from_secs(5),
        Error::Output(_) | Error::Analysis(_) => Duration::from_secs(30),
    }
}

/// Report `obj` Stalled for `reason`: the status, a Warning event when the condition is new (so a
/// resync does not repeat it), and Ready=False in the metrics.
async fn stall(
    api: &Api<ApiDeployment>,
    obj: &ApiDeployment,
    ctx: &Context,
    recorder: &Recorder,
    reason: &str,
    action: &str,
    message: &str,
) -> Result<(), Error> {
    let previous = obj.status.clone();
    let status = stalled_status(&previous, obj.metadata.generation, reason, message);
    patch_status(api, obj, &status).await?;
    if transitioned(previous.as_ref(), &status) {
        publish(recorder, &obj.object_ref(&()), EventType::Warning, reason, action, message).await;
    }
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    ctx.metrics.set_ready(&key, Some("False"));
    Ok(())
}

async fn apply(obj: Arc<ApiDeployment>, api: &Api<ApiDeployment>, ctx: &Context) -> Result<Requeue, Error> {
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    let previous = obj.status.clone();
    let generation = obj.metadata.generation;
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference = obj.object_ref(&());

    // The CRD's rules, then the platform team's tenancy policy (what this namespace may use): both before
    // any AWS call, and both wait for the object to change.
    let refused = match api::validate(&obj) {
        Err(errors) => Some(("InvalidSpec", errors)),
        Ok(()) => match ctx.tenancy.as_ref().map(|p| p.check(&obj, &ctx.engines.default_region())) {
            Some(Err(errors)) => Some(("PolicyViolation", errors)),
            _ => None,
        },
    };
    if let Some((reason, errors)) = refused {
        let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        stall(api, &obj, ctx, &recorder, reason, "Validate", &message).await?;
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
    if !ctx.leader.is_leader() {
        // Leadership lapsed or the process is shutting down while this run wrote: another replica (or
        // the next start) reports; this one writes nothing more, to AWS or to Kubernetes.
        tracing::info!(%key, "stopped writing: not the leader (any more)");
        return Ok(Requeue::requeue(ctx.timing.resync));
    }
    let done = std::mem::take(&mut *progress.done.lock().unwrap_or_else(|e| e.into_inner()));
    for action in done.iter().filter(|a| !matches!(a, Action::TagService { .. })) {
        let (reason, note) = describe(action);
        publish(&recorder, &reference, EventType::Normal, reason, "Reconcile", &note).await;
    }
    let reconciled = match outcome {
        Ok(r) => r,
        Err(e) => {
            // Failures a person must fix are Stalled in status, where `kubectl get` and dashboards
            // look; the others are retried soon and only leave a Warning event.
            let stalled = match e.kind {
                ErrorKind::AccessDenied => Some("AccessDenied"),
                ErrorKind::Invalid => Some("RejectedByAws"),
                _ => None,
            };
            if let Some(reason) = stalled {
                stall(api, &obj, ctx, &recorder, reason, "Reconcile", &e.to_string()).await?;
            } else {
                publish(&recorder, &reference, EventType::Warning, "ReconcileFailed", "Reconcile", &e.to_string())
                    .await;
            }
            return Err(Error::Aws(e));
        }
    };

    // `ecsop.io/abort: "<generation>"` stops that generation's rollout with rollback (the value names the
    // generation so that a later spec change is not stopped by an annotation left behind).
    let abort_asked = obj.annotations().get(ABORT_ANNOTATION).and_then(|v| v.trim().parse::<i64>().ok());
    if abort_asked.is_some()
        && abort_asked == generation
        && reconciled.report.phase == Phase::Progressing
        && let (Some(service), Some(revision)) = (&reconciled.observed.service, &reconciled.revision)
    {
        let why = format!("{ABORTED} annotation {ABORT_ANNOTATION}");
        match engine.stop(&target, service, revision, &why).await {
            Ok(true) => {
                let note = format!("stopped the rollout of revision {} with rollback", short_revision(revision));
                publish(&recorder, &reference, EventType::Warning, "RolloutAborted", "Abort", &note).await;
            }
            Ok(false) => {}
            Err(e) => {
                publish(&recorder, &reference, EventType::Warning, "AbortFailed", "Abort", &e.to_string()).await;
                return Err(Error::Aws(e));
            }
        }
    }

    // While ECS shifts traffic, the spec's analysis judges each window as it ends; a stop is reported
    // Stalled/AnalysisFailed by the next reconcile, from what it recorded on the service.
    let mut checks = Vec::new();
    let judging = reconciled.report.phase == Phase::Progressing && obj.spec.service.rollout.analysis.is_some();
    if let (true, Some(service), Some(revision)) = (judging, &reconciled.observed.service, &reconciled.revision) {
        let mut watch = ctx.take_watch(&key);
        let judged = engine.analyse(&target, service, revision, &mut watch, Utc::now()).await;
        match &judged {
            Ok(Some(Outcome::Judged(verdicts))) => {
                for v in verdicts.iter().filter(|v| matches!(v.judgement, Judgement::Failed(_))) {
                    publish(
                        &recorder,
                        &reference,
                        EventType::Warning,
                        "AnalysisCheckFailed",
                        "Analysis",
                        &v.to_string(),
                    )
                    .await;
                }
            }
            Ok(Some(Outcome::Stop(abort, _))) => {
                let note = format!("stopped the rollout with rollback: {abort}");
                publish(&recorder, &reference, EventType::Warning, "AnalysisStoppedRollout", "Analysis", &note).await;
            }
            Ok(_) => {}
            Err(e) => {
                publish(&recorder, &reference, EventType::Warning, "AnalysisError", "Analysis", &e.to_string()).await;
            }
        }
        if let Ok(Some(Outcome::Judged(verdicts) | Outcome::Stop(_, verdicts))) = &judged {
            for v in verdicts {
                let result = check_status(v).result.to_ascii_lowercase();
                ctx.metrics.analysed(&key, &v.check, &result, v.measured.new.value, v.measured.old.value);
            }
        }
        checks = watch.last().iter().map(check_status).collect();
        ctx.keep_watch(&key, Some(watch));
    } else {
        ctx.keep_watch(&key, None);
        ctx.metrics.analysis_ended(&key);
    }
    let report = &reconciled.report;
    let mut status = report.status(generation, previous.as_ref(), Utc::now());
    if let Some(rollout) = status.rollout.as_mut() {
        rollout.analysis = checks;
    }
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
        let strategy = serde_json::to_value(obj.spec.service.rollout.strategy.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match (report.phase, report.reason.as_str()) {
            (Phase::Ready, _) => {
                ctx.metrics.rollout("completed", &strategy);
                publish(&recorder, &reference, EventType::Normal, "RolloutComplete", "Rollout", &report.message).await;
            }
            (Phase::Stalled, reason) => {
                let outcome = match reason {
                    "RolledBack" => Some("rolled_back"),
                    "AnalysisFailed" => Some("analysis_failed"),
                    "Aborted" => Some("aborted"),
                    "RolloutFailed" => Some("failed"),
                    "ProgressDeadlineExceeded" => Some("deadline_exceeded"),
                    _ => None,
                };
                if let Some(o) = outcome {
                    ctx.metrics.rollout(o, &strategy);
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
    if let Err(e) = &result
        && crate::engine::act::is_stopped(e)
    {
        // As in apply: stopped by a lapsed lease or a shutdown; the finalizer stays, nothing is reported.
        tracing::info!(%key, "deletion stopped: not the leader (any more)");
        return Err(Error::Aws(e.clone()));
    }
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

/// A verdict as the status shows it.
fn check_status(v: &crate::analysis::watch::Verdict) -> api::CheckStatus {
    api::CheckStatus {
        name: v.check.clone(),
        result: match v.judgement {
            Judgement::Passed => "Passed",
            Judgement::Failed(_) => "Failed",
            Judgement::Inconclusive(_) => "Inconclusive",
        }
        .into(),
        message: v.to_string(),
        failed_windows: v.failed,
        limit: v.limit,
        window_end: chrono::DateTime::<Utc>::from(v.window_end).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}
