//! The command line (DESIGN.md section 5): `apply`, `diff`, `delete`, `status`, `crd`, `validate`.
//!
//! Manifests are loaded and validated before any AWS client exists, so invalid input exits 2 having
//! made no AWS call at all.

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;

use crate::aws::{Calls, Clients};
use crate::engine::act::{Progress, WaitSettings};
use crate::engine::desired::Target;
use crate::engine::plan::{Action, Phase};
use crate::engine::report::Report;
use crate::engine::rollout::{RolloutState, short_revision};
use crate::engine::{Engine, Options};
use crate::{Error, api, manifest};

/// Deploy HTTP API services to AWS ECS Fargate from ApiDeployment manifests.
#[derive(Debug, Parser)]
#[command(name = "ecsop", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Lines for humans.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Log format of `ecsop run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags shared by the commands that talk to AWS.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// A manifest file or a directory of them (multi-document YAML allowed).
    #[arg(short = 'f', long = "filename")]
    pub path: PathBuf,
    /// How many ApiDeployments to work on at once (concurrent reads are batched, so more is cheaper).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinition YAML (identical to crds/).
    Crd,
    /// Check manifests against the CRD's schema and CEL rules without touching AWS.
    Validate {
        /// A manifest file or a directory of them.
        #[arg(short = 'f', long = "filename")]
        path: PathBuf,
    },
    /// Create or update everything the manifests describe.
    Apply {
        /// Manifests and concurrency.
        #[command(flatten)]
        common: Common,
        /// Wait until every rollout finished (exit 1 if one failed or rolled back, 3 on timeout).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// How often --wait looks at ECS.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        poll_interval: Duration,
        /// Also re-read what only changes by hand (lifecycle policy, target-group attributes, scaling
        /// policies, Cloud Map) to correct drift there.
        #[arg(long)]
        refresh: bool,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show what apply would change; writes nothing. Exit 0: no changes, 1: changes.
    Diff {
        /// Manifests and concurrency.
        #[command(flatten)]
        common: Common,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Delete what the manifests own, in order (or untag it with deletionPolicy Retain).
    Delete {
        /// Manifests and concurrency.
        #[command(flatten)]
        common: Common,
        /// Wait for the ECS service to be gone before deleting the target group (always done; this
        /// flag only bounds it with --timeout).
        #[arg(long)]
        wait: bool,
        /// How long to wait for the service to drain.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Show what would be deleted; writes nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the Kubernetes controller: reconcile ApiDeployments continuously.
    Run {
        /// Watch only this namespace (default: all namespaces).
        #[arg(long, env = "ECSOP_NAMESPACE")]
        namespace: Option<String>,
        /// Watch only ApiDeployments with these labels (`team=payments,tier!=batch`), to split a fleet
        /// between several operator instances.
        #[arg(long, env = "ECSOP_SELECTOR")]
        selector: Option<String>,
        /// Address of the admin server (/metrics, /healthz, /readyz).
        #[arg(long, default_value = "0.0.0.0:8080", env = "ECSOP_ADMIN_ADDR")]
        admin_addr: std::net::SocketAddr,
        /// Reconciles running at once.
        #[arg(long, default_value_t = 16, env = "ECSOP_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=1024))]
        concurrency: u16,
        /// Resync period of settled ApiDeployments (AWS has no watch; drift is found by looking).
        #[arg(long, default_value = "5m", env = "ECSOP_RESYNC", value_parser = humantime::parse_duration)]
        resync: Duration,
        /// Requeue period while a rollout is in progress.
        #[arg(long, default_value = "15s", env = "ECSOP_ROLLOUT_POLL", value_parser = humantime::parse_duration)]
        rollout_poll: Duration,
        /// Every N-th reconcile of an ApiDeployment re-reads what only changes by hand.
        #[arg(long, default_value_t = 12, env = "ECSOP_DEEP_EVERY")]
        deep_every: u32,
        /// Elect a leader through a Lease so only one replica writes.
        #[arg(long, env = "ECSOP_LEADER_ELECTION")]
        leader_election: bool,
        /// The Lease's name.
        #[arg(long, default_value = "ecsop-leader", env = "ECSOP_LEASE_NAME")]
        lease_name: String,
        /// The Lease's namespace (the pod's own namespace in a cluster).
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        lease_namespace: String,
        /// This replica's identity in the Lease (the pod name in a cluster).
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "ECSOP_LOG_FORMAT")]
        log_format: LogFormat,
    },
    /// Report the state of each ApiDeployment; writes nothing.
    Status {
        /// Manifests and concurrency.
        #[command(flatten)]
        common: Common,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// Parse arguments, run, and map the outcome to the documented exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap exits 0 for --help/--version and 2 for usage errors, as the contract wants.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match &cli.command {
        Command::Run { log_format, .. } => crate::telemetry::init_controller(*log_format == LogFormat::Json),
        _ => crate::telemetry::init_cli(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Exit codes (DESIGN.md section 5).
pub mod exit {
    /// Success (diff: no changes).
    pub const OK: u8 = 0;
    /// A rollout failed or was rolled back (diff: changes found).
    pub const FAILED: u8 = 1;
    /// Invalid input or usage.
    pub const INVALID: u8 = 2;
    /// Timed out.
    pub const TIMEOUT: u8 = 3;
    /// AWS or permission error.
    pub const AWS: u8 = 4;
}

async fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Crd => {
            std::io::stdout().write_all(api::crd_yaml().as_bytes())?;
            Ok(exit::OK)
        }
        Command::Validate { path } => {
            for m in manifest::load(&path)? {
                let meta = &m.resource.metadata;
                println!(
                    "{}/{}: valid ({})",
                    meta.namespace.as_deref().unwrap_or("default"),
                    meta.name.as_deref().unwrap_or(""),
                    m.location
                );
            }
            Ok(exit::OK)
        }
        Command::Apply { common, wait, timeout, poll_interval, refresh, output } => {
            let fleet = Fleet::load(&common).await?;
            apply(&fleet, refresh, wait.then_some((timeout, poll_interval)), output).await
        }
        Command::Diff { common, output } => {
            let fleet = Fleet::load(&common).await?;
            diff(&fleet, output).await
        }
        Command::Delete { common, timeout, dry_run, .. } => {
            let fleet = Fleet::load(&common).await?;
            delete(&fleet, timeout, dry_run).await
        }
        Command::Run {
            namespace,
            selector,
            admin_addr,
            concurrency,
            resync,
            rollout_poll,
            deep_every,
            leader_election,
            lease_name,
            lease_namespace,
            identity,
            ..
        } => {
            let identity = identity.unwrap_or_else(|| {
                std::env::var("HOSTNAME").unwrap_or_else(|_| format!("ecsop-{}", std::process::id()))
            });
            let config = crate::controller::RunConfig {
                namespace,
                selector,
                admin_addr,
                concurrency,
                timing: crate::controller::Timing { resync, rollout_poll, deep_every, ..Default::default() },
                leader_election: leader_election.then(|| {
                    (
                        lease_namespace,
                        crate::controller::leader::LeaseConfig {
                            name: lease_name,
                            identity,
                            duration: Duration::from_secs(15),
                            renew_every: Duration::from_secs(5),
                        },
                    )
                }),
            };
            crate::controller::run(config).await?;
            Ok(exit::OK)
        }
        Command::Status { common, output } => {
            let fleet = Fleet::load(&common).await?;
            status(&fleet, output).await
        }
    }
}

/// The manifests' ApiDeployments with an engine for each one's region.
struct Fleet {
    items: Vec<(Engine, Target)>,
    calls: Calls,
    concurrency: usize,
}

impl Fleet {
    /// Load and validate first; only then build AWS clients (so invalid input makes no AWS call).
    async fn load(common: &Common) -> Result<Fleet, Error> {
        let manifests = manifest::load(&common.path)?;
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let default_region = base.region().map(|r| r.to_string());
        let calls = Calls::default();
        let mut engines: BTreeMap<String, Engine> = BTreeMap::new();
        let mut items = Vec::new();
        for m in manifests {
            let region = match m.resource.spec.region.clone().or_else(|| default_region.clone()) {
                Some(r) => r,
                None => {
                    return Err(Error::Usage(format!("{}: no AWS region: set spec.region or AWS_REGION", m.location)));
                }
            };
            let engine = engines
                .entry(region.clone())
                .or_insert_with(|| {
                    let config = base.clone().into_builder().region(aws_config::Region::new(region.clone())).build();
                    Engine::new(Clients::from_sdk(&config, calls.clone()), region.clone())
                })
                .clone();
            let target = engine.target(&m.resource);
            items.push((engine, target));
        }
        Ok(Fleet { items, calls, concurrency: usize::from(common.concurrency) })
    }
}

/// Prints each write as it happens, prefixed with the ApiDeployment.
struct Printer {
    name: String,
    quiet: bool,
}

impl Progress for Printer {
    fn done(&self, action: &Action) {
        if self.quiet || matches!(action, Action::TagService { .. }) {
            return;
        }
        let changes = action.change_summary();
        let sep = if changes.is_empty() { "" } else { ": " };
        eprintln!("{}: {} {}{sep}{changes}", self.name, action.verb(), action.subject());
    }
}

async fn apply(fleet: &Fleet, refresh: bool, wait: Option<(Duration, Duration)>, output: Output) -> Result<u8, Error> {
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
                let changed = r.plan.actions.iter().filter(|a| !matches!(a, Action::TagService { .. })).count();
                if !quiet {
                    eprintln!("{}: {}", report.name, summary_line(report, changed));
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

fn summary_line(report: &Report, changed: usize) -> String {
    let revision = report.task_definition_arn.as_deref().map(short_revision).unwrap_or_else(|| "-".into());
    let what = if changed == 0 { "unchanged".to_string() } else { format!("{changed} change(s) applied") };
    format!("{what}; {:?} ({}): {} [revision {revision}]", report.phase, report.reason, report.message)
}

/// Stalled reasons map to exit codes: bad input 2, everything else a failed rollout 1.
fn stalled_code(reason: &str) -> u8 {
    match reason {
        "InvalidSpec" => exit::INVALID,
        _ => exit::FAILED,
    }
}

/// The exit code that matters more: AWS errors, then invalid input, then failures, then timeouts.
fn worst(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        exit::AWS => 4,
        exit::INVALID => 3,
        exit::FAILED => 2,
        exit::TIMEOUT => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Apply again every `interval` while the scan gate waits for the image's ECR scan; the revision to
/// follow once the scan passed, or the exit code when it refused the image or time ran out.
async fn wait_scan(
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
async fn wait_rollout(
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

async fn diff(fleet: &Fleet, output: Output) -> Result<u8, Error> {
    let results: Vec<_> = futures::stream::iter(fleet.items.iter())
        .map(|(engine, target)| async move {
            let options = Options { deep: true, dry_run: true, ..Default::default() };
            (target, engine.reconcile(target, options, &crate::engine::act::Quiet, Utc::now()).await)
        })
        .buffered(fleet.concurrency)
        .collect()
        .await;
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
                let actions: Vec<&Action> =
                    r.plan.actions.iter().filter(|a| !matches!(a, Action::TagService { .. })).collect();
                if !actions.is_empty() {
                    code = worst(code, exit::FAILED);
                }
                if r.report.phase == Phase::Stalled {
                    out.push_str(&format!("{name}: {} ({}): {}\n", "Stalled", r.report.reason, r.report.message));
                }
                if actions.is_empty() {
                    out.push_str(&format!("{name}: no changes\n"));
                } else {
                    out.push_str(&format!("{name}: {} change(s)\n", actions.len()));
                    for a in &actions {
                        out.push_str(&format!("  {} {}\n", a.verb(), a.subject()));
                        for c in a.changes() {
                            out.push_str(&format!("      {}: {} -> {}\n", c.field, c.from, c.to));
                        }
                    }
                }
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

async fn delete(fleet: &Fleet, timeout: Duration, dry_run: bool) -> Result<u8, Error> {
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
            Ok(actions) if dry_run => {
                println!("{name}: would {} action(s)", actions.len());
                for a in actions {
                    println!("  {} {}", a.verb(), a.subject());
                }
            }
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

async fn status(fleet: &Fleet, output: Output) -> Result<u8, Error> {
    let results: Vec<_> = futures::stream::iter(fleet.items.iter())
        .map(|(engine, target)| async move {
            let options = Options { dry_run: true, ..Default::default() };
            (target, engine.reconcile(target, options, &crate::engine::act::Quiet, Utc::now()).await)
        })
        .buffered(fleet.concurrency)
        .collect()
        .await;
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
                    print_status(&report);
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

fn print_status(r: &Report) {
    let replicas =
        r.replicas.map(|(d, run, p)| format!("{run}/{d} running, {p} pending")).unwrap_or_else(|| "-".into());
    println!("{}  {:?}  {}", r.name, r.phase, r.reason);
    println!("  message:         {}", r.message);
    println!(
        "  image:           {}{}",
        r.image_ref,
        r.image.as_ref().map(|i| format!(" ({})", i.digest)).unwrap_or_default()
    );
    println!("  revision:        {}", r.task_definition_arn.as_deref().unwrap_or("-"));
    println!("  service:         {}", r.service_arn.as_deref().unwrap_or("-"));
    println!("  replicas:        {replicas}");
    println!("  target group:    {}", r.target_group_arn.as_deref().unwrap_or("-"));
    println!("  listener rule:   {}", r.listener_rule_arn.as_deref().unwrap_or("-"));
    println!("  repository:      {}", r.repository_uri.as_deref().unwrap_or("-"));
    if let Some(ro) = &r.rollout {
        println!("  rollout:         {} {} (started {})", ro.id, ro.state, ro.started.as_deref().unwrap_or("?"));
    }
    println!("  last good:       {}", r.last_good_revision.as_deref().unwrap_or("-"));
    println!("  pending changes: {}", r.pending_changes);
    for e in r.events.iter().take(3) {
        println!("  event:           {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_exit_code_wins() {
        assert_eq!(worst(exit::OK, exit::TIMEOUT), exit::TIMEOUT);
        assert_eq!(worst(exit::TIMEOUT, exit::FAILED), exit::FAILED);
        assert_eq!(worst(exit::FAILED, exit::AWS), exit::AWS);
        assert_eq!(worst(exit::AWS, exit::FAILED), exit::AWS);
        assert_eq!(stalled_code("RolledBack"), exit::FAILED);
        assert_eq!(stalled_code("InvalidSpec"), exit::INVALID);
    }

    #[test]
    fn timeouts_parse_as_the_contract_writes_them() {
        let cli =
            Cli::try_parse_from(["ecsop", "apply", "-f", "x.yaml", "--wait", "--timeout", "10m"]).expect("parses");
        match cli.command {
            Command::Apply { timeout, wait, .. } => {
                assert!(wait);
                assert_eq!(timeout, Duration::from_secs(600));
            }
            other => panic!("{other:?}"),
        }
    }
}
