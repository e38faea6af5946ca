//! Typed configuration, read from flags and the environment (every flag has an environment variable).

use std::{convert::Infallible, fmt, net::IpAddr, str::FromStr, time::Duration};

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum, builder::BoolishValueParser};

use crate::error::Error;

/// A string that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// The command line: an optional subcommand plus the service configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "api-service", version, about = "The companion HTTP API that ecsop deploys")]
pub struct Cli {
    /// What to do; `serve` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Service configuration.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands of the binary.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// GET http://127.0.0.1:$PORT/healthz and exit 0 when it answers 200, else 1 (container health check).
    Healthcheck,
    /// Grant or revoke the admin role in the database (`DATABASE_URL`); the API itself never does.
    Admin {
        /// What to do.
        #[command(subcommand)]
        action: AdminAction,
    },
}

/// `api-service admin ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AdminAction {
    /// Make a registered user an admin.
    Grant {
        /// The username.
        username: String,
    },
    /// Make an admin a plain user again.
    Revoke {
        /// The username.
        username: String,
    },
}

/// Where the service runs; production refuses insecure defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// Local development and tests: a missing `JWT_SECRET` is replaced by a random one, with a warning.
    Development,
    /// Production: `JWT_SECRET` is required and must be at least 32 bytes.
    Production,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for CloudWatch Logs and other collectors).
    Json,
}

/// The service configuration.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Port to bind (0 picks a free port); also the port `healthcheck` probes.
    #[arg(long, env = "PORT", default_value_t = 8080, global = true)]
    pub port: u16,
    /// Deployment environment.
    #[arg(long = "app-env", env = "APP_ENV", value_enum, default_value = "development")]
    pub environment: Environment,
    /// Database URL: `sqlite://PATH` (created if missing, WAL mode) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://api.db", hide_env_values = true)]
    pub database_url: Secret,
    /// Maximum pooled database connections.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
    /// How long a request waits for a pooled connection, in milliseconds.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 5000)]
    pub database_acquire_timeout_ms: u64,
    /// Largest N accepted by the factorial endpoint.
    #[arg(long, env = "FACTORIAL_MAX", default_value_t = 100_000)]
    pub factorial_max: u64,
    /// HS256 signing secret for access tokens (required in production unless `JWT_SIGNING_KEY` is set).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// PEM of an unencrypted PKCS#8 private key, EC P-256 (ES256) or RSA of 2048 to 8192 bits (RS256,
    /// the only kind API Gateway HTTP API JWT authorizers verify): tokens are then signed with it and a
    /// `kid`, the public key is served at `/.well-known/jwks.json`, and `JWT_SECRET` is ignored.
    #[arg(long, env = "JWT_SIGNING_KEY", hide_env_values = true, allow_hyphen_values = true)]
    pub jwt_signing_key: Option<Secret>,
    /// Issuer of access tokens (`iss`): the public base URL of the service, where a JWT authorizer
    /// finds `/.well-known/openid-configuration`. When set, tokens carry it and must match it.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Audiences of access tokens, comma-separated: tokens carry the first as `aud`, and must name one.
    #[arg(long, env = "JWT_AUDIENCE", value_delimiter = ',', value_parser = non_empty_trimmed)]
    pub jwt_audience: Vec<String>,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "JWT_TTL_SECS", default_value_t = 3600)]
    pub jwt_ttl_secs: u64,
    /// Argon2id memory cost in KiB (OWASP minimum recommendation by default).
    #[arg(long, env = "ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    #[arg(long, env = "ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// Concurrent password hashes (each holds `ARGON2_MEMORY_KIB`); 0 means the number of CPUs.
    #[arg(long, env = "MAX_CONCURRENT_HASHES", default_value_t = 0)]
    pub max_concurrent_hashes: usize,
    /// S3 bucket for uploads; uploads answer 503 when unset.
    #[arg(long, env = "UPLOAD_BUCKET")]
    pub upload_bucket: Option<String>,
    /// Largest accepted upload in bytes (larger ones get 413).
    #[arg(long, env = "UPLOAD_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub upload_max_bytes: u64,
    /// Content types uploads are stored with as given; any other is stored as
    /// `application/octet-stream` with `Content-Disposition: attachment` (never rendered by a browser).
    #[arg(long, env = "UPLOAD_CONTENT_TYPES", value_delimiter = ',', value_parser = non_empty_trimmed,
          default_value = "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/csv,application/json,application/zip")]
    pub upload_content_types: Vec<String>,
    /// Path-style S3 addressing (`endpoint/bucket/key`), needed by local emulators.
    #[arg(long, env = "S3_FORCE_PATH_STYLE", default_value_t = false, action = ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub s3_force_path_style: bool,
    /// Largest accepted JSON request body in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub body_limit_bytes: usize,
    /// Time limit for one request, in seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// How long shutdown waits for in-flight requests before giving up, in seconds.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// Log format (`RUST_LOG` sets the filter).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Usernames that are admins (may change and delete every book and movie, and register users when
    /// registration is closed), comma-separated. Also grantable with `api-service admin grant USER`.
    #[arg(long, env = "ADMIN_USERS", value_delimiter = ',', value_parser = non_empty_trimmed)]
    pub admin_users: Vec<String>,
    /// Who may register: `open` (anyone), `closed` (only admins create users), or `invitation` (anyone
    /// who sends `REGISTRATION_INVITATION_TOKEN` as `invitation`).
    #[arg(long, env = "REGISTRATION", value_enum, default_value = "open")]
    pub registration: Registration,
    /// The service is reached over TLS (an HTTPS listener or API Gateway in front): answers carry
    /// `Strict-Transport-Security`.
    #[arg(long, env = "BEHIND_TLS", default_value_t = false, action = ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub behind_tls: bool,
    /// Rate limits on login, registration, factorial and uploads (429 with `Retry-After` over them).
    #[arg(long, env = "RATE_LIMITS", default_value_t = true, action = ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub rate_limits: bool,
    /// The header a trusted proxy appends the client's address to (`x-forwarded-for` behind an ALB or
    /// API Gateway); its last entry is the client. Unset: the connection's peer address.
    #[arg(long, env = "TRUSTED_PROXY_HEADER")]
    pub trusted_proxy_header: Option<String>,
    /// Logins per client address per minute.
    #[arg(long, env = "RATE_LIMIT_LOGIN_PER_MINUTE", default_value_t = 20)]
    pub rate_limit_login_per_minute: u32,
    /// Registrations per client address per minute.
    #[arg(long, env = "RATE_LIMIT_REGISTER_PER_MINUTE", default_value_t = 5)]
    pub rate_limit_register_per_minute: u32,
    /// Factorials per client address per minute, without a token.
    #[arg(long, env = "RATE_LIMIT_FACTORIAL_PER_MINUTE", default_value_t = 60)]
    pub rate_limit_factorial_per_minute: u32,
    /// Factorials per user per minute, with a token.
    #[arg(long, env = "RATE_LIMIT_FACTORIAL_USER_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_factorial_user_per_minute: u32,
    /// Uploads per client address per minute.
    #[arg(long, env = "RATE_LIMIT_UPLOADS_PER_MINUTE", default_value_t = 30)]
    pub rate_limit_uploads_per_minute: u32,
    /// Failed logins per account per minute; the next one, and any login until the quota has room again,
    /// gets 429.
    #[arg(long, env = "LOGIN_FAILURES_PER_MINUTE", default_value_t = 5)]
    pub login_failures_per_minute: u32,
    /// The admin server: `/metrics` (Prometheus), `/healthz`, `/readyz`, on an address of its own so that
    /// metrics are not public wherever the API is (a load balancer forwards only `PORT`). `off`: no
    /// admin server and no metrics endpoint. Port 0 picks a free port.
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: AdminAddr,
    /// The invitation token `REGISTRATION=invitation` asks for.
    #[arg(long, env = "REGISTRATION_INVITATION_TOKEN", hide_env_values = true)]
    pub registration_invitation_token: Option<Secret>,
}

/// `ADMIN_ADDR`: an address to bind, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminAddr(pub Option<std::net::SocketAddr>);

impl FromStr for AdminAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "off" | "" => Ok(Self(None)),
            addr => addr
                .parse()
                .map(|addr| Self(Some(addr)))
                .map_err(|_| format!("`{addr}` is neither HOST:PORT (for example 0.0.0.0:9090) nor `off`")),
        }
    }
}

impl fmt::Display for AdminAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// Who may register (`REGISTRATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    /// Anyone.
    Open,
    /// Only admins create users.
    Closed,
    /// Whoever holds the invitation token.
    Invitation,
}

impl Config {
    /// The defaults, with any of the variables above that are set in the environment applied.
    pub fn from_env() -> Result<Self, Error> {
        Cli::try_parse_from(["api-service"]).map(|cli| cli.config).map_err(|e| Error::Config(e.to_string()))
    }

    /// Rejects settings that cannot work or are unsafe for the environment. (The `JWT_SIGNING_KEY`
    /// PEM itself is parsed, and rejected, when the keys are built: [`crate::auth::JwtKeys::from_config`].)
    pub fn validate(&self) -> Result<(), Error> {
        let production = self.environment == Environment::Production;
        if production && self.jwt_signing_key.is_none() {
            match &self.jwt_secret {
                None => {
                    return Err(Error::Config(
                        "JWT_SECRET (or JWT_SIGNING_KEY) is required when APP_ENV=production".into(),
                    ));
                }
                Some(s) if s.expose().len() < 32 => {
                    return Err(Error::Config("JWT_SECRET must be at least 32 bytes in production".into()));
                }
                Some(_) => {}
            }
        }
        if matches!(&self.jwt_secret, Some(s) if s.expose().is_empty()) {
            return Err(Error::Config("JWT_SECRET must not be empty".into()));
        }
        if matches!(&self.jwt_signing_key, Some(k) if k.expose().trim().is_empty()) {
            return Err(Error::Config("JWT_SIGNING_KEY must not be empty when set".into()));
        }
        if let Some(issuer) = &self.jwt_issuer {
            check_issuer(issuer, production)?;
        }
        if self.database_max_connections == 0 {
            return Err(Error::Config("DATABASE_MAX_CONNECTIONS must be at least 1".into()));
        }
        if self.upload_bucket.as_deref() == Some("") {
            return Err(Error::Config("UPLOAD_BUCKET must not be empty when set".into()));
        }
        if self.request_timeout_secs == 0 {
            return Err(Error::Config("REQUEST_TIMEOUT_SECS must be at least 1".into()));
        }
        if let Some(admin) = self.admin_addr.0
            && admin.port() != 0
            && admin.port() == self.port
            && (admin.ip() == self.host || admin.ip().is_unspecified() || self.host.is_unspecified())
        {
            return Err(Error::Config(format!(
                "ADMIN_ADDR ({admin}) must not use PORT ({}): metrics would be served where the API is",
                self.port
            )));
        }
        if self.registration == Registration::Invitation
            && self.registration_invitation_token.as_ref().is_none_or(|t| t.expose().len() < 16)
        {
            return Err(Error::Config(
                "REGISTRATION=invitation needs REGISTRATION_INVITATION_TOKEN of at least 16 characters".into(),
            ));
        }
        Ok(())
    }

    /// The request time limit.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// `JWT_AUDIENCE` entries: trimmed, not empty.
fn non_empty_trimmed(value: &str) -> Result<String, String> {
    match value.trim() {
        "" => Err("empty entry".into()),
        trimmed => Ok(trimmed.to_owned()),
    }
}

/// An issuer is an absolute `http(s)` URL without query or fragment (OpenID Connect Discovery §2;
/// API Gateway also wants `https`, which production requires).
fn check_issuer(issuer: &str, production: bool) -> Result<(), Error> {
    let invalid = |why: &str| Err(Error::Config(format!("JWT_ISSUER {why} (got {issuer:?})")));
    let rest = match issuer.split_once("://") {
        Some(("https", rest)) => rest,
        Some(("http", _)) if production => return invalid("must be an https URL in production"),
        Some(("http", rest)) => rest,
        _ => return invalid("must be an absolute http(s) URL"),
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return invalid("must name a host (and no user information)");
    }
    if issuer.contains(['?', '#']) || issuer.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("must not have a query, a fragment or white space");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let cli = Cli::try_parse_from([
            "api-service",
            "--jwt-secret",
            "hunter2-hunter2",
            "--database-url",
            "postgres://u:pw@db/x",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("pw@db"), "{shown}");
        assert!(shown.contains("[redacted]"));
        assert_eq!(cli.config.jwt_secret.unwrap().expose(), "hunter2-hunter2");
    }

    #[test]
    fn production_requires_a_strong_jwt_secret() {
        let mut config = Cli::try_parse_from(["api-service", "--app-env", "production"]).unwrap().config;
        config.jwt_secret = None;
        assert!(config.validate().is_err());
        config.jwt_secret = Some(Secret::new("short"));
        assert!(config.validate().is_err());
        config.jwt_secret = Some(Secret::new("x".repeat(32)));
        config.validate().unwrap();
    }

    #[test]
    fn a_signing_key_replaces_the_jwt_secret_in_production() {
        let mut config = Cli::try_parse_from(["api-service", "--app-env", "production"]).unwrap().config;
        config.jwt_secret = None;
        config.jwt_signing_key = Some(Secret::new("-----BEGIN PRIVATE KEY-----..."));
        config.validate().unwrap();
        config.jwt_signing_key = Some(Secret::new("  "));
        assert!(config.validate().is_err());
    }

    #[test]
    fn issuer_and_audience_parse_and_validate() {
        let cli = Cli::try_parse_from([
            "api-service",
            "--jwt-issuer",
            "https://api.example.org",
            "--jwt-audience",
            "api, old-api",
            "--jwt-signing-key",
            "-----BEGIN PRIVATE KEY-----hunter2",
        ])
        .unwrap();
        assert_eq!(cli.config.jwt_audience, ["api", "old-api"]);
        assert!(!format!("{cli:?}").contains("hunter2"));
        cli.config.validate().unwrap();
        assert!(Cli::try_parse_from(["api-service", "--jwt-audience", "api,,x"]).is_err());
        assert!(Cli::try_parse_from(["api-service"]).unwrap().config.jwt_audience.is_empty());

        let mut config = cli.config;
        for ok in ["https://api.example.org/", "https://example.org/auth", "http://127.0.0.1:8080"] {
            config.jwt_issuer = Some(ok.into());
            config.validate().unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in
            ["api.example.org", "ftp://x", "https://", "https:///path", "https://x?y=1", "https://x#f", "https://u@x"]
        {
            config.jwt_issuer = Some(bad.into());
            assert!(config.validate().is_err(), "{bad}");
        }
        config.environment = Environment::Production;
        config.jwt_issuer = Some("http://api.example.org".into());
        assert!(config.validate().is_err(), "production wants https");
        config.jwt_issuer = Some("https://api.example.org".into());
        config.validate().unwrap();
    }

    #[test]
    fn boolish_flags_and_subcommands_parse() {
        let cli = Cli::try_parse_from(["api-service", "--s3-force-path-style", "yes", "healthcheck"]).unwrap();
        assert!(cli.config.s3_force_path_style);
        assert_eq!(cli.command, Some(Command::Healthcheck));
    }
}
