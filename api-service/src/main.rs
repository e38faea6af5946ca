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
        Command::Admin { action } => match admin(cli.config, action) {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("api-service admin: {err:#}");
                ExitCode::FAILURE
            }
        },
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

/// `api-service admin grant|revoke USERNAME`: sets the role in the database (migrating it first).
fn admin(config: api_service::Config, action: api_service::config::AdminAction) -> anyhow::Result<String> {
    use api_service::config::AdminAction;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let settings = api_service::db::PoolSettings {
            max_connections: 1,
            acquire_timeout: std::time::Duration::from_millis(config.database_acquire_timeout_ms),
        };
        let db = api_service::db::Db::connect(config.database_url.expose(), &settings).await?;
        let (username, role) = match &action {
            AdminAction::Grant { username } => (username.trim().to_ascii_lowercase(), "admin"),
            AdminAction::Revoke { username } => (username.trim().to_ascii_lowercase(), "user"),
        };
        let found = db.set_role(&username, role).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        db.close().await;
        anyhow::ensure!(found, "no user named {username}");
        Ok(format!("{username} is now {}", if role == "admin" { "an admin" } else { "a user" }))
    })
}
