//! The `api-service` binary: `serve` (the default) or `healthcheck`.

use std::process::ExitCode;

use api_service::{Application, Cli, Command, healthcheck, shutdown_signal, telemetry};
use clap::Parser;

// musl's allocator is slow under concurrency; the container image builds with this feature.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        // The container health check: no shell or curl in the image, so the binary probes itself.
        Command::Healthcheck => healthcheck::run(cli.config.port),
        Command::Serve => match serve(cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "api-service failed");
                eprintln!("api-service: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(config: api_service::Config) -> anyhow::Result<()> {
    telemetry::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = Application::build(config, None).await?;
        app.run_until(shutdown_signal()).await?;
        anyhow::Ok(())
    })
}
