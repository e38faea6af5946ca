//! Logging set-up: `RUST_LOG` filter (default `warn` for the CLI), to stderr.

/// Initialise logging for the CLI. Safe to call twice (the second call does nothing).
pub fn init_cli() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
