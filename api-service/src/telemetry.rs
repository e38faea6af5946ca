//! Logging: `RUST_LOG` filter (default `info`), text or JSON lines on stdout.

use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::LogFormat;

/// Installs the global subscriber; a second call is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false))
            .try_init(),
        LogFormat::Text => {
            registry.with(fmt::layer().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))).try_init()
        }
    };
}
