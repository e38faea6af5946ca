//! The command line (DESIGN.md section 5).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{Error, api, manifest};

/// Deploy HTTP API services to AWS ECS Fargate from ApiDeployment manifests.
#[derive(Debug, Parser)]
#[command(name = "ecsop", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Crd => {
            std::io::stdout().write_all(api::crd_yaml().as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { path } => {
            let manifests = manifest::load(&path)?;
            for m in manifests {
                let meta = &m.resource.metadata;
                println!(
                    "{}/{}: valid ({})",
                    meta.namespace.as_deref().unwrap_or("default"),
                    meta.name.as_deref().unwrap_or(""),
                    m.location
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
