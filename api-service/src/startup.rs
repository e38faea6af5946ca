//! Wiring: the shared [`AppState`], the [`router`] with its middleware, and the [`Application`] that
//! binds a listener and serves until a shutdown signal.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use axum::{Router, http::StatusCode};
use tokio::{net::TcpListener, sync::Semaphore};

use crate::{
    auth::{JwtKeys, Passwords},
    config::Config,
    db::{Db, PoolSettings},
    envelope::EnvelopeLayer,
    error::{ApiError, Error},
    metrics::Metrics,
    routes,
    storage::Storage,
};

/// Everything handlers share, behind one `Arc`: axum clones the state for every request, and one
/// reference count is cheaper than one per field (it was 6% of the CPU of a small request).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
#[derive(Debug)]
pub struct Shared {
    /// Configuration.
    pub config: Arc<Config>,
    /// Database pool.
    pub db: Db,
    /// Token keys.
    pub jwt: Arc<JwtKeys>,
    /// Password hashing.
    pub passwords: Arc<Passwords>,
    /// Upload storage, when `UPLOAD_BUCKET` is set.
    pub storage: Option<Arc<Storage>>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Set once shutdown starts (`/readyz` then answers 503).
    pub shutting_down: Arc<AtomicBool>,
    /// Bounds CPU-heavy work (large factorials) to one job per CPU.
    pub cpu_permits: Arc<Semaphore>,
    /// Rate limits.
    pub limits: Arc<crate::limits::Limits>,
    /// Turns true when shutdown's grace period is over: work still running (uploads) stops then.
    pub hard_stop: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// Validates the configuration, connects and migrates the database, and builds the S3 client
    /// (from `sdk_config` when given, else from the standard AWS environment, only when
    /// `UPLOAD_BUCKET` is set).
    pub async fn new(config: Config, sdk_config: Option<aws_config::SdkConfig>) -> Result<Self, Error> {
        config.validate()?;
        let jwt = Arc::new(JwtKeys::from_config(&config)?);
        let passwords =
            Arc::new(Passwords::new(config.argon2_memory_kib, config.argon2_iterations, config.max_concurrent_hashes)?);
        let settings = PoolSettings {
            max_connections: config.database_max_connections,
            acquire_timeout: Duration::from_millis(config.database_acquire_timeout_ms),
        };
        let db = Db::connect(config.database_url.expose(), &settings).await?;
        let storage = match &config.upload_bucket {
            Some(bucket) => {
                let sdk_config = match sdk_config {
                    Some(c) => c,
                    None => aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await,
                };
                Some(Arc::new(Storage::new(&sdk_config, bucket.clone(), config.s3_force_path_style)))
            }
            None => None,
        };
        let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        let limits = Arc::new(crate::limits::Limits::new(&config));
        Ok(Self(Arc::new(Shared {
            limits,
            hard_stop: tokio::sync::watch::channel(false).0,
            config: Arc::new(config),
            db,
            jwt,
            passwords,
            storage,
            metrics: Arc::new(Metrics::new()),
            shutting_down: Arc::new(AtomicBool::new(false)),
            cpu_permits: Arc::new(Semaphore::new(cpus)),
        })))
    }
}

/// The complete router with its middleware, without a socket (for `oneshot` tests and for serving).
///
/// Every route gets the [`Envelope`](crate::envelope) (request id, trace span, metrics by route
/// template, panic catcher, JSON error shape) and the JSON body limit (`BODY_LIMIT_BYTES`; uploads have
/// their own, `UPLOAD_MAX_BYTES` plus framing), which every extractor used here obeys. Routes that can
/// wait (on the database, S3, or a factorial thread) also have the request timeout; see
/// [`routes::routes`].
pub fn router(state: AppState) -> Router {
    // `Router::layer` wraps every route (and the fallback) separately, innermost first, so the
    // envelope sees the matched route template.
    routes::routes(&state)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(EnvelopeLayer::new(state.metrics.clone(), state.config.behind_tls))
        .with_state(state)
}

/// The admin server's router: `/metrics`, `/healthz`, `/readyz`. Its requests are not counted in the
/// API's request metrics (a scrape every 15 s is not traffic).
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(routes::health::metrics))
        .route("/healthz", axum::routing::get(routes::health::healthz))
        .route("/readyz", axum::routing::get(routes::health::readyz))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::Status { status: StatusCode::NOT_FOUND, message: "no route for this path".into() }
}

/// A bound, ready-to-serve service.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    admin: Option<(TcpListener, SocketAddr)>,
    state: AppState,
    local_addr: SocketAddr,
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let listener =
        TcpListener::bind(addr).await.map_err(|source| Error::Io { context: format!("binding {addr}"), source })?;
    let local_addr =
        listener.local_addr().map_err(|source| Error::Io { context: "reading the bound address".into(), source })?;
    Ok((listener, local_addr))
}

impl Application {
    /// Builds the state and binds `HOST:PORT` and `ADMIN_ADDR` (port 0 picks a free port).
    pub async fn build(config: Config, sdk_config: Option<aws_config::SdkConfig>) -> Result<Self, Error> {
        let addr = SocketAddr::new(config.host, config.port);
        let admin_addr = config.admin_addr.0;
        let state = AppState::new(config, sdk_config).await?;
        let (listener, local_addr) = bind(addr).await?;
        let admin = match admin_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Self { listener, admin, state, local_addr })
    }

    /// The admin server's bound address (`None` with `ADMIN_ADDR=off`).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The shared state (tests use it to reach the database).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes; then stops accepting, lets in-flight requests finish (for
    /// at most `SHUTDOWN_TIMEOUT_SECS`), closes the pool and returns. The admin server answers until the
    /// API has drained (its `/readyz` says 503 meanwhile, and `/metrics` shows the drain).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let Self { listener, admin, state, local_addr } = self;
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_server = admin.map(|(admin_listener, admin_addr)| {
            tracing::info!(admin_addr = %admin_addr, "admin server (/metrics, /healthz, /readyz) listening on {admin_addr}");
            let served = axum::serve(admin_listener, admin_router(state.clone())).with_graceful_shutdown(async move {
                let _ = admin_stopped.await;
            });
            tokio::spawn(async move {
                if let Err(e) = served.await {
                    tracing::error!(error = %e, "the admin server stopped");
                }
            })
        });
        let grace = Duration::from_secs(state.config.shutdown_timeout_secs);
        let (started_tx, mut started_rx) = tokio::sync::watch::channel(false);
        let flag = state.shutting_down.clone();
        let signal = async move {
            shutdown.await;
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!("shutdown: no new connections; draining in-flight requests");
            let _ = started_tx.send(true);
        };
        let db = state.db.clone();
        let storage = state.storage.clone();
        let hard_stop = state.hard_stop.clone();
        let app = router(state);
        tracing::info!(addr = %local_addr, "listening on {local_addr}");
        let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(signal);
        let deadline = async move {
            let _ = started_rx.wait_for(|started| *started).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = serve => served.map_err(|source| Error::Io { context: "serving".into(), source })?,
            () = deadline => tracing::warn!(?grace, "shutdown: in-flight requests did not finish in time"),
        }
        // Past the grace period, uploads still running stop (and abort their multipart uploads); those
        // cut short by a dropped request abort on tasks of their own: let them all finish.
        let _ = hard_stop.send(true);
        if let Some(storage) = storage {
            tokio::time::sleep(Duration::from_millis(100)).await;
            storage.finish_aborts(Duration::from_secs(10)).await;
        }
        let _ = admin_stop.send(());
        if let Some(admin_server) = admin_server {
            let _ = admin_server.await;
        }
        db.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what ECS sends to stop a task).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
