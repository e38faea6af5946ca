//! The command line (docs/cli.md): `apply`, `diff`, `delete`, `status`, `crd`, `validate`.
//!
//! Manifests are loaded and validated before any AWS client exists, so invalid input exits 2 having
//! made no AWS call at all.

mod commands;
pub mod render;
mod wait;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::api::tenancy::TenancyPolicy;
use crate::aws::{Calls, Clients};
use crate::engine::Engine;
use crate::engine::act::Progress;
use crate::engine::target::Target;
use crate::engine::vocabulary::Action;
use crate::{Error, api, manifest};
use commands::{abort, apply, delete, diff, status};

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
    /// The platform team's tenancy policy: every manifest is checked against it before any AWS call
    /// (exit 2 on a violation), as the controller does.
    #[arg(long, env = "ECSOP_TENANCY_POLICY")]
    pub tenancy_policy: Option<PathBuf>,
    /// The most AWS calls per second ecsop makes in one region, all ApiDeployments and operations
    /// together (on top of the rates per operation class); unset: only those rates.
    #[arg(long, env = "ECSOP_AWS_CALLS_PER_SECOND", value_parser = calls_per_second)]
    pub aws_calls_per_second: Option<f64>,
}

/// `--aws-calls-per-second`: a positive number.
fn calls_per_second(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("{value:?} is not a positive number of calls per second")),
    }
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
        /// Also check the manifests against this tenancy policy (regions default to AWS_REGION).
        #[arg(long, env = "ECSOP_TENANCY_POLICY")]
        tenancy_policy: Option<PathBuf>,
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
        /// The platform team's tenancy policy (YAML): what each namespace's ApiDeployments may use.
        /// Without it, every ApiDeployment may use whatever the controller's AWS role reaches.
        #[arg(long, env = "ECSOP_TENANCY_POLICY")]
        tenancy_policy: Option<PathBuf>,
        /// The most AWS calls per second the controller makes in one region, all ApiDeployments and
        /// operations together (on top of the rates per operation class); unset: only those rates.
        #[arg(long, env = "ECSOP_AWS_CALLS_PER_SECOND", value_parser = calls_per_second)]
        aws_calls_per_second: Option<f64>,
    },
    /// Stop each ApiDeployment's rollout in progress with rollback: ECS returns all traffic to the
    /// revision before it. The revision is reported Stalled (Aborted) and not deployed again until the
    /// spec changes. Nothing in progress: nothing is written.
    Abort {
        /// Manifests and concurrency.
        #[command(flatten)]
        common: Common,
        /// Why, as status and the service record will say (default: who ran it is not known to AWS).
        #[arg(long, default_value = "ecsop abort")]
        reason: String,
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

/// Exit codes (docs/cli.md).
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
        Command::Validate { path, tenancy_policy } => {
            let manifests = manifest::load(&path)?;
            if let Some(policy) = tenancy(tenancy_policy.as_deref())? {
                let region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION"));
                manifest::check_policy(&manifests, &policy, region.as_deref().unwrap_or("us-east-1"))?;
            }
            for m in manifests {
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
            tenancy_policy,
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
            aws_calls_per_second,
            ..
        } => {
            let identity = identity.unwrap_or_else(|| {
                std::env::var("HOSTNAME").unwrap_or_else(|_| format!("ecsop-{}", std::process::id()))
            });
            // A policy that cannot be read stops the start: running without it would let every tenant
            // use everything.
            let tenancy = tenancy(tenancy_policy.as_deref())?;
            let config = crate::controller::RunConfig {
                aws_calls_per_second,
                tenancy,
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
        Command::Abort { common, reason } => {
            let fleet = Fleet::load(&common).await?;
            abort(&fleet, &reason).await
        }
    }
}

/// The tenancy policy at `path`, when one is given. One that cannot be read is a usage error (exit 2),
/// never a silent single-tenant run.
fn tenancy(path: Option<&std::path::Path>) -> Result<Option<TenancyPolicy>, Error> {
    path.map(TenancyPolicy::load).transpose().map_err(|e| Error::Usage(e.to_string()))
}

/// The manifests' ApiDeployments with an engine for each one's region.
pub(super) struct Fleet {
    items: Vec<(Engine, Target)>,
    calls: Calls,
    concurrency: usize,
}

impl Fleet {
    /// Load and validate first; only then build AWS clients (so invalid input makes no AWS call).
    async fn load(common: &Common) -> Result<Fleet, Error> {
        let manifests = manifest::load(&common.path)?;
        let policy = tenancy(common.tenancy_policy.as_deref())?;
        // Loading the SDK configuration reads the environment and profile files; it calls no AWS API.
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let default_region = base.region().map(|r| r.to_string());
        if let Some(policy) = &policy {
            manifest::check_policy(&manifests, policy, default_region.as_deref().unwrap_or("us-east-1"))?;
        }
        let calls = Calls::with_budget(common.aws_calls_per_second);
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
pub(super) struct Printer {
    name: String,
    quiet: bool,
}

impl Progress for Printer {
    fn done(&self, action: &Action) {
        if self.quiet || matches!(action, Action::TagService { .. }) {
            return;
        }
        eprintln!("{}: {}", self.name, render::progress(action));
    }
}

/// Stalled reasons map to exit codes: bad input 2, everything else a failed rollout 1.
pub(super) fn stalled_code(reason: &str) -> u8 {
    match reason {
        "InvalidSpec" => exit::INVALID,
        _ => exit::FAILED,
    }
}

/// The exit code that matters more: AWS errors, then invalid input, then failures, then timeouts.
pub(super) fn worst(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        exit::AWS => 4,
        exit::INVALID => 3,
        exit::FAILED => 2,
        exit::TIMEOUT => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
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
