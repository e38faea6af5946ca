//! The commands that talk to AWS: `apply`, `diff`, `delete`, `status`, over a fleet of manifests.

use std::io::IsTerminal;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;

use super::wait::{wait_rollout, wait_scan};
use super::{Fleet, Output, Printer, exit, render, stalled_code, worst};
use crate::Error;
use crate::aws::AwsError;
use crate::engine::act::WaitSettings;
use crate::engine::report::Report;
use crate::engine::rollout::{ABORTED, RolloutState, short_revision};
use crate::engine::target::Target;
use crate::engine::vocabulary::Phase;
use crate::engine::{Options, Reconciled};

pub(super) async fn apply(
    fleet: &Fleet,
    refresh: bool,
    wait: Option<(Duration, Duration)>,
    output: Output,
) -> Result<u8, Error> {
    let quiet = output == Output::Json;
    let results: Vec<(usize, Result<crate::engine::Reconciled, Error>)> =
        futures::stream::iter(fleet.items.iter().enumerate())
            .map(|(i, (engine, target))| async move {
                let printer = Printer { name: target.names.owner(), quiet };
                let options = Options { deep: refresh, ..Default::default() };
                (i, engine.reconcile(target, options, &printer, Utc::now()).await.map_err(Error::from))
            })
            .buffer_unordered(fleet.concurrency)
            .collect()
            .await;
    let mut results: Vec<_> = results;
    results.sort_by_key(|(i, _)| *i);

    let mut code = exit::OK;
    let mut reports: Vec<serde_json::Value> = Vec::new();
    let mut waiting = Vec::new();
    for (i, result) in results {
        let (engine, target) = &fleet.items[i];
        match result {
            Err(e) => {
                eprintln!("{}: error: {e}", target.names.owner());
                code = worst(code, e.exit_code());
                reports.push(serde_json::json!({"name": target.names.owner(), "error": e.to_string()}));
            }
            Ok(r) => {
                let report = &r.report;
                let changed = render::counted(&r.plan.actions).len();
                if !quiet {
                    eprintln!("{}: {}", report.name, render::summary_line(report, changed));
                }
                match report.phase {
                    Phase::Stalled => code = worst(code, stalled_code(&report.reason)),
                    _ if wait.is_some() && !target.spec.suspend => waiting.push((
                        engine.clone(),
                        target.clone(),
                        r.revision.clone(),
                        report.reason == "ImageScanInProgress",
                    )),
                    _ => {}
                }
                reports.push(serde_json::json!({
                    "name": report.name,
                    "changes": changed,
                    "report": report,
                    "status": report.status(target.generation, None, Utc::now()),
                }));
            }
        }
    }
    if let Some((timeout, interval)) = wait {
        let tty = std::io::stderr().is_terminal() && !quiet;
        let outcomes: Vec<(String, u8, Option<Report>)> = futures::stream::iter(waiting)
            .map(|(engine, target, revision, scanning)| async move {
                // The scan wait, if any, counts against the same --timeout.
                let (revision, timeout) = if scanning {
                    let deadline = tokio::time::Instant::now() + timeout;
                    match wait_scan(&engine, &target, deadline, interval, quiet).await {
                        Ok(revision) => (revision, deadline.saturating_duration_since(tokio::time::Instant::now())),
                        Err(code) => return (target.names.owner(), code, None),
                    }
                } else {
                    (revision, timeout)
                };
                let code = wait_rollout(&engine, &target, revision.as_deref(), timeout, interval, tty, quiet).await;
                (target.names.owner(), code, None)
            })
            .buffer_unordered(fleet.concurrency.max(1))
            .collect()
            .await;
        for (name, c, _) in outcomes {
            code = worst(code, c);
            if let Some(v) = reports.iter_mut().find(|v| v["name"] == name.as_str()) {
                v["waitExitCode"] = c.into();
            }
        }
    }
    let (reads, writes) = fleet.calls.totals();
    if quiet {
        let doc =
            serde_json::json!({"items": reports, "awsCalls": {"reads": reads, "writes": writes}, "exitCode": code});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        eprintln!("aws calls: {reads} reads, {writes} writes");
    }
    Ok(code)
}

/// Plan every ApiDeployment of the fleet without writing (`deep`: read everything), in manifest order.
async fn dry_runs(fleet: &Fleet, deep: bool) -> Vec<(&Target, Result<Reconciled, AwsError>)> {
    futures::stream::iter(fleet.items.iter())
        .map(|(engine, target)| async move {
            let options = Options { deep, dry_run: true, ..Default::default() };
            (target, engine.reconcile(target, options, &crate::engine::act::Quiet, Utc::now()).await)
        })
        .buffered(fleet.concurrency)
        .collect()
        .await
}

pub(super) async fn diff(fleet: &Fleet, output: Output) -> Result<u8, Error> {
    let results = dry_runs(fleet, true).await;
    let mut code = exit::OK;
    let mut docs = Vec::new();
    let mut out = String::new();
    for (target, result) in results {
        let name = target.names.owner();
        match result {
            Err(e) => {
                eprintln!("{name}: error: {e}");
                code = worst(code, exit::AWS);
            }
            Ok(r) => {
                let actions = render::counted(&r.plan.actions);
                if !actions.is_empty() {
                    code = worst(code, exit::FAILED);
                }
                out.push_str(&render::diff(&name, &actions, &r.report));
                docs.push(serde_json::json!({"name": name, "actions": actions, "report": r.report}));
            }
        }
    }
    match output {
        Output::Text => print!("{out}"),
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"items": docs})).unwrap_or_default())
        }
    }
    Ok(code)
}

pub(super) async fn delete(fleet: &Fleet, timeout: Duration, dry_run: bool) -> Result<u8, Error> {
    let mut code = exit::OK;
    let wait = WaitSettings { timeout, interval: Duration::from_millis(500).min(timeout) };
    let results: Vec<_> = futures::stream::iter(fleet.items.iter())
        .map(|(engine, target)| async move {
            let printer = Printer { name: target.names.owner(), quiet: dry_run };
            let options = Options { deep: true, dry_run, wait };
            (target, engine.delete(target, options, &printer).await)
        })
        .buffered(fleet.concurrency)
        .collect()
        .await;
    for (target, result) in results {
        let name = target.names.owner();
        match result {
            Err(e) => {
                eprintln!("{name}: error: {e}");
                code = worst(code, exit::AWS);
            }
            Ok(actions) if dry_run => print!("{}", render::teardown(&name, &actions)),
            Ok(actions) if actions.is_empty() => eprintln!("{name}: nothing owned by it exists"),
            Ok(actions) => eprintln!(
                "{name}: {} ({} action(s))",
                if target.spec.deletion_policy == crate::api::DeletionPolicy::Retain {
                    "retained; ecsop's tags removed"
                } else {
                    "deleted"
                },
                actions.len()
            ),
        }
    }
    Ok(code)
}

pub(super) async fn abort(fleet: &Fleet, reason: &str) -> Result<u8, Error> {
    let results = dry_runs(fleet, false).await;
    let mut code = exit::OK;
    for ((engine, _), (target, result)) in fleet.items.iter().zip(results) {
        let name = target.names.owner();
        let stopped = match result {
            Ok(r) => match (&r.observed.service, &r.revision, r.plan.assessment.rollout.as_ref().map(|o| &o.state)) {
                (Some(service), Some(revision), Some(RolloutState::InProgress)) => {
                    let why = format!("{ABORTED} {reason}");
                    engine.stop(target, service, revision, &why).await.map(|s| s.then(|| short_revision(revision)))
                }
                _ => Ok(None),
            },
            Err(e) => Err(e),
        };
        match stopped {
            Ok(Some(revision)) => {
                eprintln!(
                    "{name}: stopped the rollout of revision {revision}; ECS rolls back to the revision before it"
                )
            }
            Ok(None) => eprintln!("{name}: no rollout in progress; nothing stopped"),
            Err(e) => {
                eprintln!("{name}: error: {e}");
                code = worst(code, exit::AWS);
            }
        }
    }
    Ok(code)
}

pub(super) async fn status(fleet: &Fleet, output: Output) -> Result<u8, Error> {
    let results = dry_runs(fleet, false).await;
    let mut code = exit::OK;
    let mut docs = Vec::new();
    for (target, result) in results {
        match result {
            Err(e) => {
                eprintln!("{}: error: {e}", target.names.owner());
                code = worst(code, exit::AWS);
            }
            Ok(r) => {
                let report = r.report;
                if output == Output::Text {
                    print!("{}", render::status(&report));
                }
                docs.push(serde_json::json!({
                    "name": report.name,
                    "report": report,
                    "status": report.status(target.generation, None, Utc::now()),
                }));
            }
        }
    }
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"items": docs})).unwrap_or_default());
    }
    Ok(code)
}
