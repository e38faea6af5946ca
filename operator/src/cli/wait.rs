//! `apply --wait`: following the image scan and the rollout until they finish, fail or time out.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use chrono::Utc;

use super::{Printer, exit, stalled_code};
use crate::Error;
use crate::analysis::watch::{Outcome, Watch};
use crate::engine::rollout::RolloutState;
use crate::engine::target::Target;
use crate::engine::vocabulary::Phase;
use crate::engine::{Engine, Options};

/// Apply again every `interval` while the scan gate waits for the image's ECR scan; the revision to
/// follow once the scan passed, or the exit code when it refused the image or time ran out.
pub(super) async fn wait_scan(
    engine: &Engine,
    target: &Target,
    deadline: tokio::time::Instant,
    interval: Duration,
    quiet: bool,
) -> Result<Option<String>, u8> {
    let name = target.names.owner();
    loop {
        if tokio::time::Instant::now() >= deadline {
            eprintln!("{name}: timed out waiting for the image scan");
            return Err(exit::TIMEOUT);
        }
        tokio::time::sleep(interval).await;
        let printer = Printer { name: name.clone(), quiet };
        let r = engine.reconcile(target, Options::default(), &printer, Utc::now()).await.map_err(|e| {
            eprintln!("{name}: error: {e}");
            Error::from(e).exit_code()
        })?;
        match (r.report.phase, r.report.reason.as_str()) {
            (_, "ImageScanInProgress") => continue,
            (Phase::Stalled, reason) => {
                eprintln!("{name}: {reason}: {}", r.report.message);
                return Err(stalled_code(reason));
            }
            _ => {
                if !quiet {
                    eprintln!("{name}: image scan passed; {}", r.report.message);
                }
                return Ok(r.revision);
            }
        }
    }
}

/// Follow one rollout until it completes, fails, or `timeout` passes, printing new ECS events.
pub(super) async fn wait_rollout(
    engine: &Engine,
    target: &Target,
    revision: Option<&str>,
    timeout: Duration,
    interval: Duration,
    tty: bool,
    quiet: bool,
) -> u8 {
    let name = target.names.owner();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen: HashSet<String> = HashSet::new();
    let mut first = true;
    let mut watch = Watch::new();
    loop {
        match engine.rollout(target, revision, Utc::now()).await {
            Err(e) => {
                if tty {
                    eprint!("\r\x1b[2K");
                }
                eprintln!("{name}: error: {e}");
                return exit::AWS;
            }
            Ok((rollout, service)) => {
                if let Some(s) = &service {
                    // Events already there when waiting starts are history, not progress.
                    let fresh: Vec<_> = s.events.iter().filter(|e| seen.insert(e.id.clone())).collect();
                    if !first && !quiet {
                        for e in fresh.iter().rev() {
                            if tty {
                                eprint!("\r\x1b[2K");
                            }
                            let at = e.created_at.map(|t| t.format("%H:%M:%S").to_string()).unwrap_or_default();
                            eprintln!("{name}: [{at}] {}", e.message);
                        }
                    }
                }
                first = false;
                match rollout.state {
                    RolloutState::Complete => {
                        if tty {
                            eprint!("\r\x1b[2K");
                        }
                        if !quiet {
                            eprintln!("{name}: Ready: {}", rollout.message);
                        }
                        // What follows a completed rollout (the promotion tag) is written now.
                        if target.spec.image.promotion_tag.is_some() {
                            let printer = Printer { name: name.clone(), quiet };
                            if let Err(e) = engine.reconcile(target, Options::default(), &printer, Utc::now()).await {
                                eprintln!("{name}: error: {e}");
                                return exit::AWS;
                            }
                        }
                        return exit::OK;
                    }
                    s if s.is_failure() => {
                        if tty {
                            eprint!("\r\x1b[2K");
                        }
                        let reason = match s {
                            RolloutState::RolledBack => "RolledBack",
                            RolloutState::AnalysisFailed => "AnalysisFailed",
                            RolloutState::Aborted => "Aborted",
                            RolloutState::DeadlineExceeded => "ProgressDeadlineExceeded",
                            _ => "RolloutFailed",
                        };
                        eprintln!("{name}: {reason}: {}", rollout.message);
                        // Record the failure on the service so later runs do not retry it.
                        let options = Options::default();
                        if let Err(e) = engine.reconcile(target, options, &crate::engine::act::Quiet, Utc::now()).await
                        {
                            tracing::warn!(error = %e, "recording the failed rollout");
                        }
                        return exit::FAILED;
                    }
                    _ => {
                        // While ECS shifts traffic, the spec's analysis judges each window as it ends.
                        if let (Some(s), Some(r)) = (&service, revision) {
                            let judged = engine.analyse(target, s, r, &mut watch, Utc::now()).await;
                            if tty {
                                eprint!("\r\x1b[2K");
                            }
                            match judged {
                                Ok(Some(Outcome::Judged(verdicts))) if !quiet => {
                                    for v in verdicts {
                                        eprintln!("{name}: analysis: {v}");
                                    }
                                }
                                Ok(Some(Outcome::Stop(abort, _))) => {
                                    eprintln!("{name}: analysis stopped the rollout, ECS rolls back: {abort}");
                                }
                                Ok(_) => {}
                                Err(e) => eprintln!("{name}: warning: analysis: {e}"),
                            }
                        }
                        if tokio::time::Instant::now() >= deadline {
                            if tty {
                                eprint!("\r\x1b[2K");
                            }
                            eprintln!(
                                "{name}: timed out after {}: {}",
                                humantime::format_duration(timeout),
                                rollout.message
                            );
                            return exit::TIMEOUT;
                        }
                        if tty {
                            eprint!("\r\x1b[2K{name}: {}", rollout.message);
                            let _ = std::io::stderr().flush();
                        } else if !quiet {
                            tracing::debug!(%name, message = %rollout.message, "waiting");
                        }
                        tokio::time::sleep(
                            interval.min(
                                deadline
                                    .saturating_duration_since(tokio::time::Instant::now())
                                    .max(Duration::from_millis(10)),
                            ),
                        )
                        .await;
                    }
                }
            }
        }
    }
}
